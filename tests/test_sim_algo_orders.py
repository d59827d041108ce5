"""Conditional orders (Binance's Algo Order API) on the simulated exchange, in process (no
sockets): Binance's trigger rule, the life of an order from NEW to FINISHED, closePosition, the
codes of what is refused, and the payloads against the official SDK's models (strictly)."""

import pytest

from qdash.binance import algo_orders as A
from qdash.binance.orders import Rejected
from qdash.sim.exchange import SimExchange

pytestmark = pytest.mark.unit

SYM = "BTCUSDT"
TICK = 0.1


@pytest.fixture
def sim():
    """An exchange that is not started: its clock stands still unless a test advances it.
    ``sim.events`` collects the ALGO_UPDATE events."""
    ex = SimExchange([SYM], seed=3, warmup_s=0, start_ms=1_790_000_000_000, rate=20)
    ex.events = []
    ex.algo_desk.emit = lambda acc, e: ex.events.append(e)
    return ex


def _place(sim, acc, side, otype, trigger, *, qty=None, price=None, working=A.CONTRACT_PRICE,
           close=False, reduce=False, client_id=None):
    return sim.algo_desk.place(acc, SYM, side, otype, qty, price, round(trigger, 1), working,
                               "GTC", close, reduce, client_id)


def _run_until(sim, a, steps=400, ms=500):
    """Advance the clock in ``ms`` steps, running the desk after each; returns, per step while
    the order waited (the last: the step that triggered it), (working price at the step, low
    and high of the trades since the step before)."""
    seen = []
    for _ in range(steps):
        sim._advance_to(sim.now_ms() + ms, 20)
        now = sim.algo_desk.working_price(a)
        seen.append((now, *sim.algo_desk.ranges.get(SYM, (now, now))))
        sim.algo_desk.step()
        if a.status != "NEW":
            return seen
    raise AssertionError(f"no trigger in {steps} steps: {seen[-5:]}")


@pytest.mark.parametrize("otype,side,fires_at", [
    ("STOP_MARKET", "BUY", (100.0, 100.1)), ("STOP_MARKET", "SELL", (100.0, 99.9)),
    ("STOP", "BUY", (100.0, 100.1)), ("STOP", "SELL", (100.0, 99.9)),
    ("TAKE_PROFIT_MARKET", "BUY", (100.0, 99.9)), ("TAKE_PROFIT_MARKET", "SELL", (100.0, 100.1)),
    ("TAKE_PROFIT", "BUY", (100.0, 99.9)), ("TAKE_PROFIT", "SELL", (100.0, 100.1))])
def test_binances_trigger_rule(otype, side, fires_at):
    """Binance: STOP/STOP_MARKET buy at latest ≥ trigger, sell at ≤; TAKE_PROFIT(_MARKET) buy
    at ≤, sell at ≥."""
    for price in (99.9, 100.0, 100.1):
        assert A.fires(otype, side, 100.0, price) == (price in fires_at), price


def test_a_stop_loss_closes_the_position_when_the_last_price_reaches_it(sim):
    acc = sim.open_account(balance=1e6)
    sim.trading.place(acc, SYM, "BUY", "MARKET", 0.1)
    trigger = sim.last_price(SYM) - 5 * TICK
    a = _place(sim, acc, "SELL", "STOP_MARKET", trigger, close=True)
    assert a.status == "NEW" and acc.positions[SYM].amt == pytest.approx(0.1)
    seen = _run_until(sim, a)
    lows = [lo for _, lo, _ in seen]                    # every trade counts, not the last only
    assert all(lo > a.trigger_price for lo in lows[:-1]) and lows[-1] <= a.trigger_price
    assert a.status == "FINISHED" and acc.positions[SYM].amt == 0.0
    o = acc.orders[a.actual_id]
    assert (o.type, o.side, o.reduce_only, o.status) == ("MARKET", "SELL", True, "FILLED")
    assert (a.actual_qty, a.actual_price) == (pytest.approx(0.1), pytest.approx(o.avg_price))
    assert [e["o"]["X"] for e in sim.events] == ["NEW", "TRIGGERING", "TRIGGERED", "FINISHED"]
    assert sim.events[2]["o"]["ai"] == str(o.order_id) and sim.events[-1]["o"]["aq"] == "0.100"


def test_the_decision_at_each_step_is_the_same_without_the_future(sim):
    """No look-ahead: a copy of the exchange stopped at T, before the trigger, holds the same
    untriggered order; run on, it triggers at the same step as the original."""
    acc = sim.open_account(balance=1e6)
    sim.trading.place(acc, SYM, "SELL", "MARKET", 0.1)
    a = _place(sim, acc, "BUY", "STOP_MARKET", sim.last_price(SYM) + 5 * TICK, qty=0.1,
               reduce=True)
    seen = _run_until(sim, a)
    twin = SimExchange([SYM], seed=3, warmup_s=0, start_ms=1_790_000_000_000, rate=20)
    twin.algo_desk.emit = lambda acc, e: None
    acc2 = twin.open_account(balance=1e6)
    twin.trading.place(acc2, SYM, "SELL", "MARKET", 0.1)
    b = _place(twin, acc2, "BUY", "STOP_MARKET", a.trigger_price, qty=0.1, reduce=True)
    for _ in seen[:-1]:                                 # up to T: the data before it only
        twin._advance_to(twin.now_ms() + 500, 20)
        twin.algo_desk.step()
    assert b.status == "NEW"
    assert _run_until(twin, b) == seen[-1:]             # and on: the same trigger
    assert b.status == a.status == "FINISHED" and acc2.positions[SYM].amt == 0.0


def test_a_trigger_touched_between_two_steps_fires(sim):
    """The desk sees every trade price since its last step (the exchange reports each batch's
    low and high): a dip to the trigger and back before the step still fires the stop."""
    acc = sim.open_account(balance=1e6)
    sim.trading.place(acc, SYM, "BUY", "MARKET", 0.1)
    last = sim.last_price(SYM)
    a = _place(sim, acc, "SELL", "STOP_MARKET", last - 10 * TICK, close=True)
    sim.algo_desk.traded(SYM, last - 5 * TICK, last + 3 * TICK)    # not down to the trigger
    sim.algo_desk.step()
    assert a.status == "NEW"
    sim.algo_desk.traded(SYM, a.trigger_price, last)               # touched it, came back
    sim.algo_desk.step()
    assert a.status == "FINISHED" and acc.positions[SYM].amt == 0.0
    b = _place(sim, acc, "BUY", "STOP_MARKET", sim.last_price(SYM) + 10 * TICK, qty=0.01)
    sim.algo_desk.step()                                            # the stop's own fill seen
    ledger_before = len(sim.ledger.frame(SYM))
    sim._advance_to(sim.now_ms() + 500, 20)                         # the exchange's trades
    prices = sim.ledger.frame(SYM)["price"].to_numpy()[ledger_before:]
    assert sim.algo_desk.ranges[SYM] == (prices.min(), prices.max())
    assert b.status == "NEW"


def test_a_take_profit_limit_order_rests_at_its_price_once_triggered(sim):
    acc = sim.open_account(balance=1e6)
    trigger = sim.last_price(SYM) - 3 * TICK
    price = round(trigger - 200.0, 1)                     # far under the book: it rests
    a = _place(sim, acc, "BUY", "TAKE_PROFIT", trigger, qty=0.05, price=price)
    _run_until(sim, a)
    o = acc.orders[a.actual_id]
    assert a.status == "TRIGGERED" and (o.type, o.price, o.status) == ("LIMIT", price, "NEW")
    assert [e["o"]["X"] for e in sim.events] == ["NEW", "TRIGGERING", "TRIGGERED"]
    sim.trading.cancel(acc, SYM, o.order_id, None)
    sim.algo_desk.step()
    assert a.status == "FINISHED" and sim.events[-1]["o"]["X"] == "FINISHED"


def test_a_mark_price_trigger_follows_the_mark(sim):
    acc = sim.open_account(balance=1e6)
    a = _place(sim, acc, "BUY", "STOP_MARKET", sim.mark_price(SYM) + 3 * TICK, qty=0.01,
               working=A.MARK_PRICE)
    seen = _run_until(sim, a)
    assert seen[-1][0] >= a.trigger_price and a.status == "FINISHED"
    assert acc.positions[SYM].amt == pytest.approx(0.01)


def test_close_position_with_nothing_to_close_is_rejected_with_the_reason(sim):
    acc = sim.open_account(balance=1e6)
    a = _place(sim, acc, "SELL", "STOP_MARKET", sim.last_price(SYM) - 3 * TICK, close=True)
    _run_until(sim, a)
    assert a.status == "REJECTED" and a.actual_id == 0
    assert sim.events[-1]["o"]["rm"] == Rejected(-2022).msg


def test_refusals_have_binances_codes(sim):
    acc = sim.open_account(balance=1e6)
    last = sim.last_price(SYM)
    cases = [
        (dict(side="SELL", otype="STOP_MARKET", trigger=last + 10, qty=0.01), -2021),
        (dict(side="BUY", otype="TAKE_PROFIT_MARKET", trigger=last + 10, qty=0.01), -2021),
        (dict(side="SELL", otype="STOP_MARKET", trigger=last - 10, qty=0.01, close=True), -1106),
        (dict(side="SELL", otype="STOP", trigger=last - 10, close=True), -1106),
        (dict(side="SELL", otype="STOP", trigger=last - 10, qty=0.01), -1102),
        (dict(side="SELL", otype="STOP_MARKET", trigger=last - 10), -1102),
        (dict(side="SELL", otype="STOP_MARKET", trigger=last - 10, qty=0.0001), -1111),
        (dict(side="SELL", otype="STOP_MARKET", trigger=last - 10, qty=0.01,
              client_id="bad id!"), -4015)]
    for kw, code in cases:
        with pytest.raises(Rejected) as e:
            _place(sim, acc, **kw)
        assert e.value.code == code, kw
    with pytest.raises(Rejected) as e:                   # the trigger off the tick
        sim.algo_desk.place(acc, SYM, "SELL", "STOP_MARKET", 0.01, None, last - 10.05,
                            A.CONTRACT_PRICE, "GTC", False, False, None)
    assert e.value.code in (-4014, -1111)
    placed = [_place(sim, acc, "SELL", "STOP_MARKET", last - 10 - i, qty=0.01)
              for i in range(A.MAX_ALGO_ORDERS)]
    with pytest.raises(Rejected) as e:
        _place(sim, acc, "SELL", "STOP_MARKET", last - 50, qty=0.01)
    assert e.value.code == -4045 and sim.events == [
        A.algo_update(p, 1, 3, p.time) for p in placed]   # nothing stored of what was refused
    assert sim.algo_desk.cancel(acc, placed[0].algo_id, None).status == "CANCELED"
    with pytest.raises(Rejected) as e:
        sim.algo_desk.cancel(acc, placed[0].algo_id, None)
    assert e.value.code == -2011
    sim.algo_desk.cancel_all(acc, SYM)
    assert not any(a.is_open for a in acc.algo_orders.values())


def test_payloads_parse_strictly_under_the_official_sdk(sim):
    from binance_sdk_derivatives_trading_usds_futures.rest_api import models as r
    from binance_sdk_derivatives_trading_usds_futures.websocket_streams import models as w

    acc = sim.open_account(balance=1e6)
    sim.trading.place(acc, SYM, "BUY", "MARKET", 0.1)
    a = _place(sim, acc, "SELL", "STOP_MARKET", sim.last_price(SYM) - 3 * TICK, close=True)
    _run_until(sim, a)
    views = {"new": r.NewAlgoOrderResponse, "query": r.QueryAlgoOrderResponse,
             "list": r.QueryAllAlgoOrdersResponseInner}
    for view, model in views.items():
        body = A.algo_json(a, 1, 3, view=view)
        _strictly(body, model)
    assert r.QueryAlgoOrderResponse.from_dict(A.algo_json(a, 1, 3)).actual_order_id == str(
        a.actual_id)
    _strictly(A.cancel_json(a), r.CancelAlgoOrderResponse)
    for e in sim.events:
        _strictly(e, w.AlgoUpdate)
        _strictly(e["o"], w.AlgoUpdateO)


def _strictly(payload: dict, model) -> None:
    """Every field known to ``model``, of its type, in its order."""
    parsed = model.model_validate(payload, strict=True)
    assert not getattr(parsed, "additional_properties", {}), parsed.additional_properties
    declared = [f.alias or n for n, f in model.model_fields.items()]
    sent = [k for k in payload if k != "e"]
    assert [k for k in declared if k in sent] == sent, (model.__name__, sent)


def test_trailing_stop_rule():
    """Binance: a sell trails the highest price since it activated (at or above
    activatePrice) and fires at ``highest · (1 − rate)``; a buy trails the lowest, fires at
    ``lowest · (1 + rate)``."""
    def run(side, activate, rate, prices):
        state, out = (False, 0.0), []
        for p in prices:
            active, best, fire = A.trail(side, activate, rate, *state, p)
            state = (active, best)
            out.append((active, best, fire))
        return out

    sell = run("SELL", 100.0, 1.0, [99.0, 100.5, 102.0, 101.5, 100.98, 100.0])
    assert [s[0] for s in sell] == [False, True, True, True, True, True]
    assert [s[1] for s in sell[1:]] == [100.5, 102.0, 102.0, 102.0, 102.0]
    assert [s[2] for s in sell] == [False, False, False, False, True, True]   # 102 × 0.99
    buy = run("BUY", 100.0, 2.0, [101.0, 99.0, 98.0, 99.95, 99.97])
    assert [s[0] for s in buy] == [False, True, True, True, True]
    assert [s[2] for s in buy] == [False, False, False, False, True]          # 98 × 1.02
    assert A.trail_level("SELL", 1.0, 102.0) == pytest.approx(100.98)


def test_a_trailing_stop_follows_the_best_price_and_closes_on_the_pullback(sim):
    acc = sim.open_account(balance=1e6)
    sim.trading.place(acc, SYM, "BUY", "MARKET", 0.1)
    start = sim.last_price(SYM)
    a = sim.algo_desk.place(acc, SYM, "SELL", A.TRAILING_STOP_MARKET, 0.1, None, None,
                            A.CONTRACT_PRICE, "GTC", False, True, None, callback_rate=0.1)
    assert a.activated and a.activate_price == start            # default: the price now
    assert a.trigger_price == pytest.approx(round(start * 0.999, 1))
    seen = [last for last, _, _ in _run_until(sim, a, steps=2000)]
    best = [max([start] + seen[:i + 1]) for i in range(len(seen))]
    assert all(p > b * 0.999 for p, b in zip(seen[:-1], best[:-1]))
    assert seen[-1] <= best[-1] * 0.999 and a.best == best[-1]
    assert a.status == "FINISHED" and acc.positions[SYM].amt == 0.0
    assert sim.events[-1]["o"]["ia"] is True


def test_trailing_stop_refusals_and_payloads(sim):
    from binance_sdk_derivatives_trading_usds_futures.rest_api import models as r
    from binance_sdk_derivatives_trading_usds_futures.websocket_streams import models as w

    acc = sim.open_account(balance=1e6)
    last = sim.last_price(SYM)
    for kw, code in [(dict(callback_rate=None), -1102), (dict(callback_rate=20.0), -1130),
                     (dict(callback_rate=1.0, close=True, qty=None), -1106)]:
        with pytest.raises(Rejected) as e:
            sim.algo_desk.place(acc, SYM, "SELL", A.TRAILING_STOP_MARKET, kw.get("qty", 0.1),
                                None, None, A.CONTRACT_PRICE, "GTC", kw.get("close", False),
                                False, None, callback_rate=kw["callback_rate"])
        assert e.value.code == code, kw
    a = sim.algo_desk.place(acc, SYM, "SELL", A.TRAILING_STOP_MARKET, 0.1, None, None,
                            A.CONTRACT_PRICE, "GTC", False, False, None,
                            activate_price=round(last * 1.5, 1), callback_rate=2.0)
    assert not a.activated and a.trigger_price == 0.0
    body = A.algo_json(a, 1, 3, view="new")
    assert (body["activatePrice"], body["callbackRate"]) == (f"{last * 1.5:.1f}", "2")
    _strictly(body, r.NewAlgoOrderResponse)
    _strictly(sim.events[-1], w.AlgoUpdate)
    assert sim.events[-1]["o"]["ia"] is False
