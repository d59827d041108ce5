"""The paper trader's pure core: the rule against the backtest, cut at T, sizing, legging and
reconciliation (no sockets)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qdash.analytics import PairConfig, PairState
from qdash.analytics.signal import ReferenceBeta, SignalSpec, compute_signal, reference_beta
from qdash.backtest import kernel as K
from qdash.backtest.engine import run
from qdash.binance.filters import SymbolFilters
from qdash.binance.order_updates import OrderUpdate, Position
from qdash.trade import Legging, LeggingPolicy, SignalRule, reconcile, size_entry
from qdash.trade.ids import ClientId, pair_prefix, parse_client_id
from qdash.trade.legging import Cancel, Place

pytestmark = pytest.mark.unit

TF = 60_000
SPEC = SignalSpec(beta_window=60, z_window=40)


def pair_bars(n=1_500, seed=3):
    rng = np.random.default_rng(seed)
    x = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    s = np.zeros(n)
    for i in range(1, n):
        s[i] = 0.9 * s[i - 1] + rng.normal(0, 0.004)
    y = 50 * np.exp(0.8 * np.log(x / 100) + s)
    idx = pd.date_range("2026-01-01", periods=n, freq="1min", tz="UTC")
    return pd.Series(y, idx), pd.Series(x, idx)


def decisions_from_frame(frame, rule):
    out = []
    yw, xw = np.log(frame["price_y"].to_numpy()), np.log(frame["price_x"].to_numpy())
    for i, (t, row) in enumerate(frame.iterrows()):
        d = rule.on_bar(int(t.value // 1_000_000), row["beta"], row["zscore"], yw[i], xw[i],
                        row["price_y"], row["price_x"], bool(row["segment_start"]) and i > 0)
        if d is not None:
            out.append(d)
    return out


def test_rule_makes_the_backtests_round_trips():
    y, x = pair_bars()
    bt = run(y, x, SPEC, entry=1.5, exit=0.0, stop=3.0, max_hold=50, fill="close",
             close_at_end=False)
    assert len(bt.trades) >= 5
    rule = SignalRule(SPEC, TF, entry=1.5, exit=0.0, stop=3.0, max_hold=50)
    ds = decisions_from_frame(compute_signal(y, x, SPEC), rule)
    entries = [d for d in ds if d.action == "enter"]
    exits = [d for d in ds if d.action == "exit"]
    bar = pd.Timedelta(minutes=1)
    got = [(e.bar_ms, e.side, xx.bar_ms, xx.reason) for e, xx in zip(entries, exits)]
    want = [(int((r.entry_time - bar).value // 1_000_000), 1 if r.side == "long" else -1,
             int((r.exit_time - bar).value // 1_000_000), r.exit_reason)
            for r in bt.trades.itertuples()]
    assert got == want
    assert {d.reason for d in exits} >= {"exit"}


def test_rule_on_a_pair_state_decides_as_on_the_batch_signal():
    y, x = pair_bars(800)
    state = PairState(PairConfig(beta_window=60, z_window=40, corr_window=20, window=200,
                                 history=200), TF)
    live = SignalRule(SPEC, TF, entry=1.5, exit=0.0)
    got = []
    for t, cy, cx in zip(y.index, y.to_numpy(), x.to_numpy()):
        assert state.update(float(cy), float(cx), int(t.value // 1_000_000))
        d = live.on_state(state)
        if d is not None:
            got.append((d.bar_ms, d.action, d.side, d.reason))
    batch = decisions_from_frame(compute_signal(y, x, SPEC), SignalRule(SPEC, TF, entry=1.5))
    assert got == [(d.bar_ms, d.action, d.side, d.reason) for d in batch]
    assert len(got) >= 4


def test_decisions_before_a_cut_do_not_depend_on_later_bars():
    y, x = pair_bars()
    cut = y.index[900]
    full = decisions_from_frame(compute_signal(y, x, SPEC), SignalRule(SPEC, TF, entry=1.5))
    part = decisions_from_frame(compute_signal(y[y.index < cut], x[x.index < cut], SPEC),
                                SignalRule(SPEC, TF, entry=1.5))
    before = [d for d in full if d.bar_ms < cut.value // 1_000_000]
    assert part == before and len(before) >= 2


def test_reference_beta_incremental_equals_batch():
    y, x = pair_bars(300)
    rb = ReferenceBeta()
    inc = np.array([rb.push(a, b) for a, b in zip(np.log(y.to_numpy()), np.log(x.to_numpy()))])
    np.testing.assert_allclose(inc, reference_beta(y.to_numpy(), x.to_numpy()), rtol=1e-12,
                               equal_nan=True)


def test_decide_is_the_kernels_rule():
    # flat, z above entry and below stop: short the spread; beyond the stop: refused (stop)
    assert K.decide(0, 2.1, 0.8, True, 0, 0, 2.0, 0.0, 3.0, 10**9)[:2] == (-1, 0)
    assert K.decide(0, 3.5, 0.8, True, 0, 0, 2.0, 0.0, 3.0, 10**9)[3] == K.REFUSED_STOP
    assert K.decide(0, -2.5, 0.8, False, 0, 0, 2.0, 0.0, 3.0, 10**9)[3] == K.REFUSED_BETA
    assert K.decide(1, 0.1, 0.8, True, 0, 3, 2.0, 0.0, 3.0, 10**9)[:2] == (2, K.REASON_EXIT)
    assert K.decide(-1, 1.0, 0.8, True, 0, 5, 2.0, 0.0, 3.0, 5)[:2] == (2, K.REASON_TIME)


def filters(symbol, step=0.001, min_notional=5.0, tick=0.01):
    return SymbolFilters(symbol, tick, 0.01, 1e6, step, step, 1e6, step, step, 1e6,
                         min_notional, 1.05, 0.95, 2, 3)


def test_sizing_is_the_backtests_rounded_down_to_the_step():
    fy, fx = filters("ETHUSDT"), filters("BTCUSDT", step=0.001, min_notional=100)
    s = size_entry(1, 0.8, 2_000.0, 40_000.0, 10_000, allocation=0.95, leverage=1.0,
                   log_beta=True, filters_y=fy, filters_x=fx)
    qy, qx = K.entry_size(1, 0.8, 2_000.0, 40_000.0, 10_000, 0.95, 1.0, True)
    assert s.ok and s.qty_y == np.floor(qy * 1000) / 1000
    assert s.qty_x == -np.floor(-qx * 1000) / 1000
    assert s.qty_y > 0 > s.qty_x
    small = size_entry(-1, 0.8, 2_000.0, 40_000.0, 150, allocation=0.95, leverage=1.0,
                       log_beta=True, filters_y=fy, filters_x=fx)
    assert not small.ok and "leg x (BTCUSDT)" in small.problem and "minimum" in small.problem
    assert "leg y" not in small.problem


PREFIX = pair_prefix("ETHUSDT", "BTCUSDT")


def upd(cid, symbol, side, status, filled, avg, t, qty=1.0):
    return OrderUpdate(symbol, cid, 1, side, "MARKET", status, qty, 0.0, filled, avg, t)


def new_legging(kind="e"):
    return Legging(kind, 1_000_000, {"y": ("ETHUSDT", 1.0, 2_000.0, None),
                                     "x": ("BTCUSDT", -0.05, 40_000.0, None)},
                   LeggingPolicy(), PREFIX, now_ms=0, price_of={"BTCUSDT": 40_010.0}.get)


def test_legging_both_fill_records_the_legging_time_and_price():
    lg = new_legging()
    py, px = lg.start()
    assert (py.side, px.side, py.type) == ("BUY", "SELL", "MARKET")
    assert lg.on_update(upd(py.client_id, "ETHUSDT", "BUY", "FILLED", 1.0, 2_001.0, 100), 100) == []
    assert not lg.done
    lg.on_update(upd(px.client_id, "BTCUSDT", "SELL", "FILLED", 0.05, 40_000.0, 130), 130)
    rec = lg.record()
    assert lg.outcome == "filled" and rec["legging_ms"] == 30 and rec["first_leg"] == "y"
    # the late leg sold at 40,000 where it stood at 40,010 when the first filled: 2.5 bps paid
    assert rec["legging_bps"] == pytest.approx(10 / 40_010 * 1e4)
    assert rec["shortfall_bps_y"] == pytest.approx(5.0)
    assert parse_client_id(py.client_id, PREFIX) == ClientId(1_000_000, "e", "y", 0)


def test_legging_chases_a_late_leg_with_a_market_order():
    lg = Legging("e", 1_000_000, {"y": ("ETHUSDT", 1.0, 2_000.0, 1_999.9),
                                  "x": ("BTCUSDT", -0.05, 40_000.0, 40_000.1)},
                 LeggingPolicy("LIMIT", timeout_ms=500), PREFIX, 0)
    py, px = lg.start()
    assert py.type == px.type == "LIMIT" and py.price == 1_999.9
    lg.on_update(upd(py.client_id, "ETHUSDT", "BUY", "FILLED", 1.0, 1_999.9, 50), 50)
    assert lg.on_timer(400) == []
    (cancel,) = lg.on_timer(600)
    assert cancel == Cancel(px.client_id, "x", "BTCUSDT")
    lg.on_update(upd(px.client_id, "BTCUSDT", "SELL", "PARTIALLY_FILLED", 0.02, 40_000.1, 610),
                 610)
    (chase,) = lg.on_update(upd(px.client_id, "BTCUSDT", "SELL", "CANCELED", 0.02, 40_000.1,
                                620), 620)
    assert isinstance(chase, Place) and chase.type == "MARKET" and chase.qty == pytest.approx(0.03)
    lg.on_update(upd(chase.client_id, "BTCUSDT", "SELL", "FILLED", 0.03, 39_990.0, 650), 650)
    rec = lg.record()
    assert lg.outcome == "filled" and rec["chases_x"] == 1 and rec["legging_ms"] == 600
    assert rec["price_x"] == pytest.approx((0.02 * 40_000.1 + 0.03 * 39_990) / 0.05)


def test_legging_unwinds_the_first_leg_when_the_second_is_rejected():
    lg = new_legging()
    py, px = lg.start()
    lg.on_update(upd(py.client_id, "ETHUSDT", "BUY", "FILLED", 1.0, 2_000.0, 10), 10)
    (unwind,) = lg.on_reject(px.client_id, -2019, "Margin is insufficient.", 12)
    assert (unwind.side, unwind.qty, unwind.reduce_only, unwind.leg) == ("SELL", 1.0, True, "y")
    assert parse_client_id(unwind.client_id, PREFIX).kind == "u"
    lg.on_update(upd(unwind.client_id, "ETHUSDT", "SELL", "FILLED", 1.0, 1_999.0, 20), 20)
    assert lg.outcome == "unwound" and "-2019" in lg.problem


def test_legging_cancels_the_working_leg_before_unwinding_it():
    lg = new_legging()
    py, px = lg.start()
    lg.on_update(upd(py.client_id, "ETHUSDT", "BUY", "PARTIALLY_FILLED", 0.4, 2_000.0, 5), 5)
    (cancel,) = lg.on_reject(px.client_id, -4164, "notional too small", 6)
    assert cancel.client_id == py.client_id
    (unwind,) = lg.on_update(upd(py.client_id, "ETHUSDT", "BUY", "CANCELED", 0.4, 2_000.0, 7), 7)
    assert unwind.qty == pytest.approx(0.4) and unwind.side == "SELL"


def test_reconcile_continues_from_the_exchange_and_leaves_foreign_positions_alone():
    e_y = ClientId(5 * TF, "e", "y", 0).text(PREFIX)
    e_x = ClientId(5 * TF, "e", "x", 0).text(PREFIX)
    history = [OrderUpdate("ETHUSDT", e_y, 1, "BUY", "MARKET", "FILLED", 1, 0, 1.0, 2000, 10),
               OrderUpdate("BTCUSDT", e_x, 2, "SELL", "MARKET", "FILLED", .05, 0, .05, 4e4, 11),
               OrderUpdate("BTCUSDT", "web_123", 3, "SELL", "MARKET", "FILLED", .01, 0, .01, 4e4,
                           12)]
    positions = [Position("ETHUSDT", 1.0, 2000.0), Position("BTCUSDT", -0.06, 40_000.0),
                 Position("SOLUSDT", 3.0, 150.0)]
    rec = reconcile(positions, [], history, "ETHUSDT", "BTCUSDT", PREFIX)
    assert (rec.amount_y, rec.amount_x, rec.side) == (1.0, pytest.approx(-0.05), 1)
    assert rec.entry_bar_ms == 5 * TF
    assert sorted((p.symbol, round(p.amount, 9)) for p in rec.foreign) == [
        ("BTCUSDT", -0.01), ("SOLUSDT", 3.0)]
    assert [p.symbol for p in rec.foreign_on(("ETHUSDT", "BTCUSDT"))] == ["BTCUSDT"]
    # the exchange says flat (liquidated, closed elsewhere): the trader is flat
    flat = reconcile([], [], history, "ETHUSDT", "BTCUSDT", PREFIX)
    assert flat.side == 0 and flat.amount_y == 0 and any("continuing from 0" in n
                                                         for n in flat.notes)


def test_a_trader_that_sent_nothing_still_writes_its_tables_with_their_columns(tmp_path):
    """``qdash trade --out`` after a run without a signal: headers, no rows (not an empty
    file that no CSV reader opens)."""
    from qdash.io.export import write_csv
    from qdash.store.orders import ORDER_COLUMNS
    from qdash.trade.records import TradeRecords

    frame = TradeRecords("ETHUSDT/BTCUSDT", "qd").orders_frame()
    write_csv(frame, tmp_path / "orders.csv", index=False)
    back = pd.read_csv(tmp_path / "orders.csv")
    assert tuple(back.columns) == ORDER_COLUMNS and back.empty
