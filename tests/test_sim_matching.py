"""Matching on the simulated exchange, in process (no sockets): market orders walk the book at
their VWAP, taken liquidity is gone, limit orders queue, fees, PnL and liquidation by Binance's
formulas. Expected values are computed here from the book and the formulas, independently of
the engine."""

import math

import pytest

from qdash.binance.orders import Rejected
from qdash.sim import account_views as views
from qdash.sim.exchange import SimExchange

pytestmark = pytest.mark.unit

SYM = "BTCUSDT"
TICK, STEP = 0.1, 0.001


@pytest.fixture
def sim():
    """An exchange that is not started: its clock stands still unless a test advances it."""
    return SimExchange([SYM], seed=3, warmup_s=0, start_ms=1_790_000_000_000, rate=20)


def _levels(sim, n=50):
    bids, asks = sim.order_book(SYM).top(n)
    def fmt(levels):
        return [(round(t * TICK, 1), round(q * STEP, 3)) for t, q in levels]
    return fmt(bids), fmt(asks)


def _expected_walk(levels, qty):
    """Fills (price, qty) a taker of ``qty`` gets from ``levels`` (best first)."""
    fills, left = [], qty
    for price, avail in levels:
        got = min(avail, left)
        fills.append((price, got))
        left = round(left - got, 9)
        if left <= 0:
            break
    return fills


def test_market_order_walks_levels_at_their_vwap(sim):
    acc = sim.open_account(balance=1e6)
    _, asks = _levels(sim)
    qty = round(sum(q for _, q in asks[:3]) + STEP * 2, 3)  # three levels and a bit of a 4th
    want = _expected_walk(asks, qty)
    assert len(want) == 4
    o = sim.trading.place(acc, SYM, "BUY", "MARKET", qty)
    assert o.status == "FILLED" and o.executed == pytest.approx(qty)
    vwap = sum(p * q for p, q in want) / qty
    assert o.avg_price == pytest.approx(vwap, rel=1e-12)
    got = [(float(t["price"]), float(t["qty"])) for t in acc.trades]
    assert got == [(pytest.approx(p), pytest.approx(q)) for p, q in want]  # one fill a level
    assert sim.ledger.arrays(SYM)["trade_id"][-4:].tolist() == [t["id"] for t in acc.trades]


def test_second_market_order_fills_worse(sim):
    acc = sim.open_account(balance=1e6)
    first = sim.trading.place(acc, SYM, "BUY", "MARKET", 0.3)
    second = sim.trading.place(acc, SYM, "BUY", "MARKET", 0.3)
    assert second.avg_price > first.avg_price
    # the liquidity the first took is gone: the second starts above the first's last level
    assert min(float(t["price"]) for t in acc.trades[-3:]) > float(acc.trades[0]["price"])


def _rebuild(snapshot: dict, bids_asks) -> dict:
    """A client's book: a REST snapshot with diff levels (qty 0 removes) applied."""
    book = {side: {float(p): float(q) for p, q in snapshot[side]} for side in ("bids", "asks")}
    for side, levels in zip(("bids", "asks"), bids_asks):
        for p, q in levels:
            book[side].pop(float(p), None) if float(q) == 0 else book[side].update(
                {float(p): float(q)})
    return book


def _as_book(depth: dict) -> dict:
    return {side: {float(p): float(q) for p, q in depth[side]} for side in ("bids", "asks")}


def test_published_book_shows_taken_liquidity_and_resting_orders(sim):
    """REST depth and the @depth diffs show what a market order took (gone until it refills)
    and a resting limit order at its price; snapshot + diffs rebuild REST depth exactly."""
    acc = sim.open_account(balance=1e6)
    before = sim.depth(SYM, 1000)
    bids, asks = _levels(sim, 1000)
    qty = round(sum(q for _, q in asks[:3]) + STEP * 2, 3)   # three levels and 2 lots of a 4th
    sim.trading.place(acc, SYM, "BUY", "MARKET", qty)
    price, there = bids[3]
    sim.trading.place(acc, SYM, "BUY", "LIMIT", 0.05, price, "GTC")
    after = sim.depth(SYM, 1000)
    assert after["lastUpdateId"] > before["lastUpdateId"]
    got = _as_book(after)
    assert not {p for p, _ in asks[:3]} & set(got["asks"])            # taken: gone
    assert float(after["asks"][0][0]) == asks[3][0]
    assert got["asks"][asks[3][0]] == pytest.approx(asks[3][1] - 2 * STEP)
    assert got["bids"][price] == pytest.approx(there + 0.05)         # the resting order
    book = sim.order_book(SYM)
    assert _rebuild(before, sim.format_levels(SYM, *book.diff(before["lastUpdateId"]))) == got
    sim.model.t_ms += 600_000                      # no trade: the price stays, the book refills
    refilled = sim.depth(SYM, 1000)
    assert {p for p, _ in asks[:3]} <= set(_as_book(refilled)["asks"])
    assert _rebuild(after, sim.format_levels(SYM, *book.diff(after["lastUpdateId"]))) == \
        _as_book(refilled)
    o = next(iter(acc.live.values()))
    sim.trading.cancel(acc, SYM, o.order_id, None)              # cancelled: off the book
    assert _as_book(sim.depth(SYM, 1000))["bids"][price] == \
        pytest.approx(_as_book(refilled)["bids"][price] - 0.05)


def test_resting_limit_fills_after_the_queue_ahead(sim):
    acc = sim.open_account(balance=1e6)
    bids, _ = _levels(sim)
    price, ahead = bids[2]  # three levels down: rests behind what is there
    o = sim.trading.place(acc, SYM, "BUY", "LIMIT", 0.05, price, "GTC")
    assert o.status == "NEW" and not acc.trades
    sim.trading.on_trade(SYM, price, round(ahead - STEP, 3), True)  # the queue but one lot
    assert o.executed == 0
    sim.trading.on_trade(SYM, price + TICK, 1.0, True)  # another price: nothing
    sim.trading.on_trade(SYM, price, 1.0, False)  # a taker BUY does not reach a resting buy
    assert o.executed == 0
    sim.trading.on_trade(SYM, price, 0.021, True)  # one lot of queue, then 0.02 for us
    assert o.executed == pytest.approx(0.02) and o.status == "PARTIALLY_FILLED"
    assert [x.order_id for x in acc.open_orders(SYM)] == [o.order_id]  # the rest stays open
    t = acc.trades[-1]
    assert t["maker"] is True and float(t["price"]) == pytest.approx(price)
    assert float(t["commission"]) == pytest.approx(price * 0.02 * acc.maker)
    sim.trading.on_trade(SYM, price - TICK, 0.001, True)  # traded through: the rest fills
    assert o.status == "FILLED" and o.executed == pytest.approx(0.05)
    assert not acc.open_orders(SYM)


def test_limit_order_crossing_takes_then_rests(sim):
    acc = sim.open_account(balance=1e6)
    _, asks = _levels(sim)
    limit = asks[1][0]
    qty = round(asks[0][1] + asks[1][1] + 0.01, 3)
    o = sim.trading.place(acc, SYM, "BUY", "LIMIT", qty, limit, "GTC")
    assert o.executed == pytest.approx(asks[0][1] + asks[1][1]) and o.is_open
    assert [t["maker"] for t in acc.trades] == [False, False]
    ioc = sim.trading.place(acc, SYM, "SELL", "LIMIT", 0.01, round(limit + 500, 1), "IOC")
    assert ioc.status == "EXPIRED" and ioc.executed == 0


def test_fees_are_notional_times_rate(sim):
    acc = sim.open_account(balance=1e6)
    before = acc.wallet
    o = sim.trading.place(acc, SYM, "BUY", "MARKET", 0.2)
    fees = sum(float(t["commission"]) for t in acc.trades)
    assert fees == pytest.approx(o.cum_quote * 0.0005, rel=1e-9)
    assert before - acc.wallet == pytest.approx(fees, rel=1e-9)  # opening realizes nothing
    sim.trading.place(acc, SYM, "SELL", "MARKET", 0.2)
    pnl = sum(float(t["realizedPnl"]) for t in acc.trades)
    fees = sum(float(t["commission"]) for t in acc.trades)
    assert acc.wallet - before == pytest.approx(pnl - fees, rel=1e-9)
    assert not acc.positions[SYM].amt


def test_unrealized_pnl_follows_the_mark(sim):
    acc = sim.open_account(balance=1e6)
    sim.trading.place(acc, SYM, "BUY", "MARKET", 0.5)
    pos = acc.positions[SYM]
    seen = []
    for _ in range(4):
        sim._advance_to(sim.now_ms() + 90_000, 1000)
        mark = sim.mark_price(SYM)
        row = views.position_risk(views.figures(sim.trading, acc), sim.trading, acc, 3)[0]
        assert float(row["markPrice"]) == pytest.approx(mark)
        assert float(row["unRealizedProfit"]) == pytest.approx(0.5 * (mark - pos.entry),
                                                               abs=1e-6)
        seen.append(mark)
    assert len(set(seen)) > 1  # the mark moved, and the PnL with it


def test_liquidation_where_binances_formula_says(sim):
    acc = sim.open_account(balance=10_000)
    pos = acc.position(SYM)
    pos.margin_type, pos.leverage = "ISOLATED", 50
    sim.trading.place(acc, SYM, "BUY", "MARKET", 0.1)
    size, entry, iw = abs(pos.amt), pos.entry, pos.wallet
    assert iw == pytest.approx(sum(float(t["price"]) * float(t["qty"]) for t in acc.trades) / 50)
    # Binance: LP = (WB + cum - side*size*EP) / (size*MMR - side*size), first bracket of BTC
    mmr, cum = 0.004, 0.0
    lp = (iw + cum - size * entry) / (size * mmr - size)
    row = views.position_risk(views.figures(sim.trading, acc), sim.trading, acc, 3)[0]
    assert float(row["liquidationPrice"]) == pytest.approx(lp, rel=1e-9)
    wallet = acc.wallet
    assert sim.trading.check_margin(acc, {SYM: lp * 1.0002}) == []
    assert pos.amt == pytest.approx(0.1)
    assert sim.trading.check_margin(acc, {SYM: lp * 0.9998}) == [SYM]
    assert pos.amt == 0 and pos.wallet == 0
    close = acc.trades[-1]
    assert close["side"] == "SELL" and acc.orders[close["orderId"]].client_id.startswith(
        "autoclose-")
    # the isolated margin is lost (what the loss leaves goes to the liquidation fee)
    assert wallet - acc.wallet == pytest.approx(iw, rel=0.01)


@pytest.mark.parametrize("kwargs, code", [
    ({"side": "BUY", "order_type": "LIMIT", "qty": 0.01, "price": 1.05}, -1111),
    ({"side": "BUY", "order_type": "MARKET", "qty": 0.0015}, -1111),
    ({"side": "BUY", "order_type": "MARKET", "qty": 0.001}, -4164),
    ({"side": "BUY", "order_type": "MARKET", "qty": 0.0}, -4003),
    ({"side": "BUY", "order_type": "MARKET", "qty": 100.0}, -4005),
    ({"side": "BUY", "order_type": "MARKET", "qty": 1.0}, -2019),
    ({"side": "SELL", "order_type": "MARKET", "qty": 0.01, "reduce_only": True}, -2022),
])
def test_orders_rejected_with_binances_codes(sim, kwargs, code):
    acc = sim.open_account(balance=1_000)
    with pytest.raises(Rejected) as e:
        sim.trading.place(acc, SYM, **kwargs)
    assert e.value.code == code and not acc.orders and not acc.trades


def test_post_only_percent_price_and_unknown_cancel(sim):
    acc = sim.open_account(balance=1e5)
    bids, asks = _levels(sim)
    with pytest.raises(Rejected) as e:
        sim.trading.place(acc, SYM, "BUY", "LIMIT", 0.01, asks[0][0], "GTX")
    assert e.value.code == -5022
    with pytest.raises(Rejected) as e:
        sim.trading.place(acc, SYM, "BUY", "LIMIT", 0.01, round(bids[0][0] * 0.9, 1), "GTC")
    assert e.value.code == -4024
    o = sim.trading.place(acc, SYM, "BUY", "LIMIT", 0.01, bids[5][0], "GTX")
    assert o.status == "NEW"
    sim.trading.cancel(acc, SYM, o.order_id, None)
    with pytest.raises(Rejected) as e:
        sim.trading.cancel(acc, SYM, o.order_id, None)
    assert e.value.code == -2011


def test_duplicate_client_order_id_among_open_orders_is_rejected(sim):
    """Binance: newClientOrderId is unique among the account's open orders (-4116); once the
    order is closed the id may be used again; another account's ids are its own."""
    acc, other = sim.open_account(balance=1e5), sim.open_account(balance=1e5)
    bids, _ = _levels(sim)
    first = sim.trading.place(acc, SYM, "BUY", "LIMIT", 0.01, bids[5][0], client_id="pair-1")
    with pytest.raises(Rejected) as e:
        sim.trading.place(acc, SYM, "BUY", "LIMIT", 0.01, bids[6][0], client_id="pair-1")
    assert (e.value.code, e.value.msg) == (-4116, "ClientOrderId is duplicated.")
    assert list(acc.orders) == [first.order_id]  # nothing stored from the rejected order
    assert sim.trading.place(other, SYM, "BUY", "LIMIT", 0.01, bids[6][0],
                             client_id="pair-1").status == "NEW"
    sim.trading.cancel(acc, SYM, first.order_id, None)
    again = sim.trading.place(acc, SYM, "BUY", "LIMIT", 0.01, bids[6][0], client_id="pair-1")
    assert again.status == "NEW" and acc.find(SYM, None, "pair-1") is again  # the latest


def test_reduce_only_closes_and_funding_is_paid(sim):
    acc = sim.open_account(balance=1e5)
    sim.trading.place(acc, SYM, "BUY", "MARKET", 0.1)
    with pytest.raises(Rejected) as e:  # more than the position: it would flip
        sim.trading.place(acc, SYM, "SELL", "MARKET", 0.2, reduce_only=True)
    assert e.value.code == -2022
    events = []
    sim.trading.emit = lambda a, ev: events.append(ev)
    wallet, t = acc.wallet, 1_790_006_400_000  # a funding time (8 h grid)
    assert t % (8 * 3_600_000) == 0
    sim.trading.settle_funding(t)
    want = -0.1 * sim.mark_price(SYM, t) * sim.funding_rate(SYM, t)
    assert acc.wallet - wallet == pytest.approx(want)
    assert events[-1]["a"]["m"] == "FUNDING_FEE"
    assert float(events[-1]["a"]["B"][0]["bc"]) == pytest.approx(want)
    sim.trading.place(acc, SYM, "SELL", "MARKET", 0.1, reduce_only=True)
    assert acc.positions[SYM].amt == 0
    assert math.isclose(sum(float(t["qty"]) for t in acc.trades if t["side"] == "SELL"), 0.1)


def test_isolated_margin_follows_the_position(sim):
    acc = sim.open_account(balance=1e5)
    pos = acc.position(SYM)
    pos.margin_type, pos.leverage = "ISOLATED", 10
    sim.trading.place(acc, SYM, "BUY", "MARKET", 0.2)
    assert pos.wallet == pytest.approx(0.2 * pos.entry / 10)
    sim.trading.place(acc, SYM, "SELL", "MARKET", 0.1)
    assert pos.wallet == pytest.approx(0.1 * pos.entry / 10)  # half released
    sim.trading.place(acc, SYM, "SELL", "MARKET", 0.3)  # closes 0.1, opens a 0.2 short
    assert pos.amt == pytest.approx(-0.2)
    assert pos.wallet == pytest.approx(0.2 * pos.entry / 10)


def test_cross_liquidation_at_the_reported_price(sim):
    acc = sim.open_account(balance=2_000)
    acc.position(SYM).leverage = 50
    sim.trading.place(acc, SYM, "SELL", "MARKET", 0.5)
    row = views.position_risk(views.figures(sim.trading, acc), sim.trading, acc, 3)[0]
    lp = float(row["liquidationPrice"])
    pos = acc.positions[SYM]
    # Binance, one cross position: LP = (WB + cum - side*size*EP) / (size*MMR - side*size)
    assert lp == pytest.approx((acc.wallet + 0.0 + 0.5 * pos.entry) / (0.5 * 0.004 + 0.5))
    assert sim.trading.check_margin(acc, {SYM: lp * 0.9999}) == []
    assert sim.trading.check_margin(acc, {SYM: lp * 1.0001}) == [SYM]
    assert pos.amt == 0 and acc.wallet >= 0
    assert acc.trades[-1]["side"] == "BUY"
