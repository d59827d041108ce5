"""The simulator's order payloads read back by the client side: every shape
``qdash.binance.orders`` and the simulator's account views write (order answers RESULT and ACK,
``ORDER_TRADE_UPDATE``, ``ACCOUNT_UPDATE`` positions, ``userTrades`` rows, ``positionRisk`` v2
and v3) is read by ``qdash.binance.order_updates`` into the values the simulator's own records
hold, and the trader's order parameters are the ones the simulator's order endpoint takes.
In process, no sockets."""

import pytest

from qdash.binance import order_fields as F
from qdash.binance.order_updates import Fill, OrderUpdate, Position, order_params
from qdash.binance.orders import ack_json, order_json
from qdash.sim import account_views as views
from qdash.sim.exchange import SimExchange

pytestmark = pytest.mark.unit

SYM = "BTCUSDT"


@pytest.fixture
def traded():
    """An account with a filled market buy, a reduce-only market sell and a limit buy resting
    1% under the mark; the user-data events it was sent."""
    sim = SimExchange([SYM], seed=5, warmup_s=0, start_ms=1_790_000_000_000, rate=20)
    events = []
    sim.trading.emit = lambda acc, ev: events.append(ev)
    acc = sim.open_account(balance=1e6)
    buy = sim.trading.place(acc, SYM, F.BUY, F.MARKET, 0.5, client_id="rt-buy")
    sell = sim.trading.place(acc, SYM, F.SELL, F.MARKET, 0.2, reduce_only=True)
    f = sim.trading.filters[SYM]
    price = round(round(sim.trading.mark(SYM) * 0.99 / f.tick_size) * f.tick_size, f.price_decimals)
    rest = sim.trading.place(acc, SYM, F.BUY, F.LIMIT, 0.01, price, F.GTC)
    return sim, acc, [buy, sell, rest], events


def _same_order(u: OrderUpdate, o) -> None:
    assert (u.symbol, u.client_id, u.order_id, u.side, u.type, u.status, u.reduce_only) == \
        (o.symbol, o.client_id, o.order_id, o.side, o.type, o.status, o.reduce_only)
    assert u.qty == pytest.approx(o.qty) and u.price == pytest.approx(o.price)
    assert u.filled == pytest.approx(o.executed)
    assert u.avg_price == pytest.approx(o.avg_price, rel=1e-6)


def test_order_answers_read_back(traded):
    sim, _, orders, _ = traded
    assert {o.status for o in orders} == {F.FILLED, F.NEW}
    for o in orders:
        f = sim.trading.filters[o.symbol]
        for with_time in (True, False):
            u = OrderUpdate.from_rest(order_json(o, f.price_decimals, f.qty_decimals,
                                                 with_time=with_time))
            _same_order(u, o)
            assert u.time_ms == o.update_time
            assert u.final == (o.status in F.FINAL_STATUSES) == (not o.is_open)
        ack = OrderUpdate.from_rest(ack_json(o, f.price_decimals, f.qty_decimals))
        assert (ack.order_id, ack.client_id, ack.status, ack.filled) == \
            (o.order_id, o.client_id, F.NEW, 0.0)


def test_stream_events_read_back(traded):
    sim, acc, orders, events = traded
    by_id = {o.order_id: o for o in orders}
    updates = [OrderUpdate.from_event(e) for e in events if e["e"] == F.ORDER_TRADE_UPDATE]
    assert {e["e"] for e in events} <= set(F.USER_EVENTS)
    # each order's last event carries its final record
    last = {u.order_id: u for u in updates}
    assert last.keys() == by_id.keys()
    for oid, u in last.items():
        _same_order(u, by_id[oid])
    # every TRADE event is one of the account's userTrades rows, read the same either way
    stream_fills = [Fill.from_update(u) for u in updates if u.is_fill]
    rest_fills = [Fill.from_user_trade(t) for t in acc.trades]
    assert len(stream_fills) == len(rest_fills) >= 2
    for a, b in zip(stream_fills, rest_fills):
        assert (a.symbol, a.order_id, a.trade_id, a.side, a.maker) == \
            (b.symbol, b.order_id, b.trade_id, b.side, b.maker)
        assert (a.price, a.qty, a.commission, a.realized) == pytest.approx(
            (b.price, b.qty, b.commission, b.realized))
        assert a.time_ms == b.time_ms and a.commission_asset == b.commission_asset == "USDT"
    assert sum(f.qty for f in rest_fills if f.side == F.BUY) == pytest.approx(0.5)
    # ACCOUNT_UPDATE positions are the position's amount and entry (written to 1/100 tick)
    pos, pdec = acc.position(SYM), sim.trading.filters[SYM].price_decimals
    got = [Position.from_account_update(p) for e in events if e["e"] == F.ACCOUNT_UPDATE
           for p in e["a"]["P"]][-1]
    assert (got.symbol, got.amount, got.entry_price) == \
        (SYM, pytest.approx(pos.amt), pytest.approx(pos.entry, abs=10.0 ** -(pdec + 2)))
    assert got.amount == pytest.approx(0.3)


@pytest.mark.parametrize("version", [2, 3])
def test_position_risk_reads_back(traded, version):
    sim, acc, _, _ = traded
    fig = views.figures(sim.trading, acc)
    (row,) = [r for r in views.position_risk(fig, sim.trading, acc, version) if
              r["symbol"] == SYM]
    p, pf = acc.position(SYM), fig.positions[SYM]
    got = Position.from_position_risk(row)
    assert got.amount == pytest.approx(p.amt) == pytest.approx(0.3)
    assert got.entry_price == pytest.approx(p.entry, rel=1e-9)
    assert got.mark_price == pytest.approx(pf.mark, rel=1e-9)
    assert got.unrealized == pytest.approx(pf.upnl, abs=1e-6)


def test_order_params_are_what_the_order_endpoint_takes():
    taken = set(F.ORDER_PARAMS.values())
    market = order_params(SYM, F.SELL, 0.012, 3, reduce_only=True, client_id="x-1")
    limit = order_params(SYM, F.BUY, 0.01, 3, type=F.LIMIT, price=58011.1, price_decimals=1,
                         time_in_force=F.GTX, resp_type=F.ACK)
    assert set(market) | set(limit) <= taken
    assert market == {"symbol": SYM, "side": "SELL", "type": "MARKET", "quantity": "0.012",
                      "newOrderRespType": "RESULT", "reduceOnly": "true",
                      "newClientOrderId": "x-1"}
    assert (limit["price"], limit["timeInForce"], limit["newOrderRespType"]) == \
        ("58011.1", "GTX", "ACK")
