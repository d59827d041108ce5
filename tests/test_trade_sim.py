"""The paper trader on the simulated exchange (real sockets on loopback): round trips on the
signal's crossings, legging (chase and unwind), restart mid-position, the kill switch, replay
parity with the backtest, and no secret in a log, the store or the files."""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
import pandas as pd
import pytest
from conftest import COLLECTOR

from qdash.analytics.signal import SignalSpec
from qdash.sim.exchange import SimExchange
from qdash.sim.replay import load_replay
from qdash.store import Store
from qdash.trade import LeggingPolicy, PaperTrader
from qdash.trade.ids import parse_client_id
from qdash.trade.replay import replay_paper
from qdash.trade.rule import Decision

pytestmark = pytest.mark.integration

KEY = "paperKey" + "k" * 24
SECRET = "paperSecret" + "s" * 29
Y, X = "ETHUSDT", "BTCUSDT"
CAPTURE = COLLECTOR / "ticks_2025-12-15_BTCUSDT_ETHUSDT.ndjson"
SPEC = SignalSpec(beta_window=30, z_window=30, beta_band=None)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 240))


def sim_exchange(**kw):
    return SimExchange([Y, X], seed=5, warmup_s=0, rate=50,
                       accounts=[(KEY, SECRET, 1_000_000.0)], **kw)


def trader_on(sim, cls=PaperTrader, **kw):
    return cls(Y, X, SPEC, timeframe="1s", capital=20_000, rest_url=sim.rest_url,
               ws_url=sim.ws_url, api_key=KEY, api_secret=SECRET, **kw)


async def exchange_amounts(trader) -> dict:
    return {p.symbol: p.amount for p in await trader.account.positions() if p.symbol in (Y, X)}


def entry_decision(bar_ms=60_000, side=1) -> Decision:
    return Decision(bar_ms, "enter", side, "", -2.5 * side, 0.8, 3_000.0, 90_000.0)


def test_round_trips_on_the_bars_where_the_signal_crosses(tmp_path):
    """An armed trader on a replayed capture enters and exits on the bars where the signal
    crosses: the backtest's round trips on the same ticks (an independent path: batch signal,
    compiled loop); every order and fill is stored with its signal bar."""
    ticks = load_replay(CAPTURE, [Y, X])
    ticks = ticks[ticks["ts"] < ticks["ts"].iloc[0] + 170_000]
    with Store(tmp_path / "paper.db") as store:
        r = run(replay_paper(ticks, Y, X, SPEC, timeframe="1s", entry=1.5, capital=20_000,
                             speed=30, store=store))
        trips, bt = r.trips, r.backtest.trades
        assert len(bt) >= 3
        refused = {pd.Timestamp(d["bar_ms"] + 1000, unit="ms", tz="UTC")
                   for d in r.trader.leggings if d["outcome"] == "refused"}
        want = bt[~bt["entry_time"].isin(refused)]
        assert trips["entry_time"].tolist() == want["entry_time"].tolist()
        assert trips["exit_time"].tolist() == want["exit_time"].tolist()
        assert trips["side"].tolist() == [1 if s == "long" else -1 for s in want["side"]]
        orders, fills = store.orders.frame("trade_orders"), store.orders.frame("trade_fills")
        decided = {d.bar_ms for d in r.trader.decisions}
        assert set(orders["signal_bar_ms"]) <= decided | {max(orders["signal_bar_ms"])}
        assert len(fills) and set(fills["signal_bar_ms"]) <= set(orders["signal_bar_ms"])
        assert (orders["status"] == "FILLED").all()
        legs = store.orders.frame("trade_leggings")
        assert set(legs["kind"]) >= {"entry", "exit"} and legs["legging_ms"].notna().any()


class DelayedX(PaperTrader):
    """A trader whose x leg joins the book far from the touch: its fills are delayed (or, with
    ``reject``, refused by the exchange's PERCENT_PRICE filter); y crosses the book."""

    reject = False

    async def touch(self, qty):
        out = {}
        for sym, q in qty.items():
            bid, ask = await self.account.touch(sym)
            if sym == self.y:
                out[sym] = self.filters[sym].round_price(ask * 1.002 if q > 0 else bid * 0.998)
            else:
                far = 0.5 if self.reject else 0.02
                out[sym] = self.filters[sym].round_price(bid * (1 - far) if q > 0
                                                         else ask * (1 + far))
        return out


def test_a_delayed_leg_is_chased_and_a_rejected_leg_unwinds_the_other():
    async def main():
        async with sim_exchange() as sim:
            tr = trader_on(sim, DelayedX, policy=LeggingPolicy("LIMIT", timeout_ms=300))
            await tr.start()
            chased = await tr.enact(entry_decision(60_000))
            held = await exchange_amounts(tr)
            exit_ = await tr.enact(Decision(120_000, "exit", 1, "exit", 0.0, 0.8, 3e3, 9e4))
            tr.reject = True
            unwound = await tr.enact(entry_decision(180_000))
            flat = await exchange_amounts(tr)
            orders = tr.orders_frame()
            await tr.stop()
            return chased, held, exit_, unwound, flat, orders

    chased, held, exit_, unwound, flat, orders = run(main())
    assert chased["outcome"] == "filled" and chased["chases_x"] == 1
    assert chased["chases_y"] == 0 and chased["legging_ms"] >= 250
    assert held[Y] == pytest.approx(chased["filled_y"]) and held[X] == pytest.approx(
        chased["filled_x"]) and held[Y] > 0 > held[X]
    x_orders = orders[(orders["symbol"] == X) & (orders["kind"] == "entry")]
    assert x_orders["type"].tolist()[:2] == ["LIMIT", "MARKET"]      # the chase
    assert exit_["outcome"] == "filled"
    assert unwound["outcome"] == "unwound" and "leg x" in unwound["problem"]
    unwind = orders[orders["kind"] == "unwind"]
    assert unwind["symbol"].tolist() == [Y] and unwind["reduce_only"].tolist() == [1]
    assert unwind["status"].tolist() == ["FILLED"]
    assert flat == {Y: 0.0, X: 0.0}


def test_restart_mid_position_reads_it_back_and_exits_on_the_next_exit_signal(caplog):
    caplog.set_level(logging.DEBUG)

    async def main():
        async with sim_exchange() as sim:
            first = trader_on(sim)
            await first.start()
            entry = await first.enact(entry_decision(60_000))
            await first.stop()                           # the kernel dies mid-position
            second = trader_on(sim)
            await second.start()
            back = dict(second.amount), second.rule.side, second.rule.entry_bar_ms
            nothing = second.rule.on_bar(61_000, 0.8, -1.0, 8.0, 11.4, 3e3, 9e4)
            d = second.rule.on_bar(62_000, 0.8, 0.05, 8.0, 11.4, 3e3, 9e4)
            out = await second.enact(d)
            flat = await exchange_amounts(second)
            await second.stop()
            return entry, back, nothing, d, out, flat

    entry, back, nothing, d, out, flat = run(main())
    assert back == ({Y: entry["filled_y"], X: entry["filled_x"]}, 1, 60_000)
    assert nothing is None and d.action == "exit" and d.reason == "exit"
    assert out["outcome"] == "filled" and flat == {Y: 0.0, X: 0.0}
    assert SECRET not in caplog.text


def test_kill_switch_flattens_within_a_second_and_leaves_foreign_positions_alone(tmp_path):
    async def main():
        async with sim_exchange() as sim:
            with Store(tmp_path / "k.db") as store:
                tr = trader_on(sim, store=store)
                await tr.start()
                # a position the trader did not open, on one of its legs
                await tr.account.new_order({"symbol": X, "side": "BUY", "type": "MARKET",
                                            "quantity": "0.005", "newClientOrderId": "manual1"})
                await tr.reconcile()
                blocked = tr.blocked
                tr.blocked = None                          # trade beside it for the test
                await tr.enact(entry_decision(60_000))
                before = await exchange_amounts(tr)
                t0 = time.perf_counter()
                rec = await tr.flatten()
                took = time.perf_counter() - t0
                after = await exchange_amounts(tr)
                open_orders = await tr.account.open_orders(Y) + await tr.account.open_orders(X)
                await tr.stop()
                return blocked, before, rec, took, after, open_orders

    blocked, before, rec, took, after, open_orders = run(main())
    assert "not opened by this trader" in blocked and X in blocked
    assert before[Y] > 0 and before[X] < 0.005
    assert rec["outcome"] == "filled" and took < 1.0 and rec["seconds"] < 1.0
    assert after == {Y: 0.0, X: pytest.approx(0.005)}             # the foreign 0.005 stays
    assert open_orders == []


def test_replay_parity_and_the_shortfall_summary(tmp_path, caplog, monkeypatch):
    """``qdash trade --replay`` on a recorded capture: the paper trader and the backtest make
    the same round trips (a row says why where not), shortfall.csv and its summary are
    written; no secret reaches the log, the store or the files."""
    from qdash.cli import main as cli_main

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("QDASH_API_KEY", KEY)
    monkeypatch.setenv("QDASH_API_SECRET", SECRET)
    out = tmp_path / "out"
    code = cli_main(["trade", Y, X, "-t", "1s", "--window", "30", "--entry", "1.5",
                     "--capital", "20000", "--slippage-bps", "1", "--speed", "30",
                     "--replay", str(CAPTURE), "--out", str(out)])
    assert code == 0
    table = pd.read_csv(out / "shortfall.csv")
    summary = pd.read_csv(out / "shortfall_summary.csv").iloc[0]
    assert len(table) >= 5
    same = table["why"].isna()
    assert same.sum() >= 0.7 * len(table)
    assert (table.loc[~same, "why"].astype(str).str.len() > 5).all()
    assert np.isfinite(table.loc[same, ["entry_shortfall_bps", "exit_shortfall_bps"]]).all().all()
    assert summary["assumed_slippage_bps"] == 1.0 and np.isfinite(summary["p95_shortfall_bps"])
    assert summary["mean_shortfall_bps"] == pytest.approx(np.nanmean(np.concatenate([
        table["entry_shortfall_bps"], table["exit_shortfall_bps"]])))
    for f in out.iterdir():
        assert SECRET not in f.read_text() and KEY not in f.read_text()
    assert SECRET not in caplog.text
    trades = pd.read_csv(out / "orders.csv")
    assert all(parse_client_id(c, c[:9]) is not None for c in trades["client_id"])


def test_no_secret_in_the_store_or_the_trader(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)

    async def main():
        async with sim_exchange() as sim:
            with Store(tmp_path / "s.db") as store:
                tr = trader_on(sim, store=store)
                await tr.start()
                await tr.enact(entry_decision(60_000))
                await tr.flatten()
                await tr.stop()
                return repr(tr), repr(tr.account)

    texts = run(main())
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert SECRET.encode() not in blob and KEY.encode() not in blob
    assert all(SECRET not in t and KEY not in t for t in texts)
    assert SECRET not in caplog.text


def test_fills_missed_during_a_stream_gap_come_back_by_rest(tmp_path):
    """The user-data stream goes silent (its listen key closed), an entry fills (the REST
    answers carry the orders' states), then the stream drops: after the reconnect the trader
    fetches the fills it missed (``userTrades``) and stores each once."""
    async def main():
        async with sim_exchange() as sim:
            with Store(tmp_path / "g.db") as store:
                tr = trader_on(sim, store=store)
                await tr.start()
                await tr.account.close_listen_key()       # the stream goes silent
                rec = await tr.enact(entry_decision(60_000))
                await asyncio.sleep(0.2)
                during = len(tr.fills)
                tr.stream_connected.clear()
                sim.drop()
                await asyncio.wait_for(tr.stream_connected.wait(), 10)
                for _ in range(100):
                    if {f["symbol"] for f in tr.fills} == {Y, X}:
                        break
                    await asyncio.sleep(0.05)
                stored = store.orders.frame("trade_fills")
                await tr.stop()
                return rec, during, tr.fills, stored

    rec, during, fills, stored = run(main())
    assert rec["outcome"] == "filled" and during == 0
    got = {}
    for f in fills:
        got[f["symbol"]] = got.get(f["symbol"], 0.0) + (f["qty"] if f["side"] == "BUY"
                                                        else -f["qty"])
    assert got == {Y: pytest.approx(rec["filled_y"]), X: pytest.approx(rec["filled_x"])}
    assert len(stored) == len(fills) and stored["signal_bar_ms"].eq(60_000).all()


def test_qdash_trade_on_a_running_simulator(tmp_path):
    """``qdash trade`` as a user runs it: a ``qdash sim`` with an account, the key and secret
    in the environment, a few seconds of 1 s bars, flattened at the end; the files are
    written, the account is named by a hint of its key, and no secret is printed or stored.
    A fixed β of 1: the rule enters on |z| alone (no hedge band to refuse a 5-bar β), so 15 s
    of bars hold entries even on a slow machine."""
    import os
    import re
    import signal
    import subprocess
    import sys

    import pandas as pd

    from qdash.store import Store

    key, secret = "cliKey" + "q" * 20, "cliSecret" + "w" * 30
    sim = subprocess.Popen([sys.executable, "-m", "qdash", "sim", "--port", "0", "--rate", "200",
                            "--symbols", "ETHUSDT,BTCUSDT", "--api-key", key, "--api-secret",
                            secret], stdout=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r"ws://127\.0\.0\.1:(\d+)", sim.stdout.readline()).group(1))
        env = {**os.environ, "QDASH_API_KEY": key, "QDASH_API_SECRET": secret}
        out = tmp_path / "out"
        proc = subprocess.run(
            [sys.executable, "-m", "qdash", "trade", "ETHUSDT", "BTCUSDT", "-t", "1s",
             "--window", "5", "--entry", "0.5", "--hedge", "fixed", "--beta", "1",
             "--capital", "20000",
             "--rest-url", f"http://127.0.0.1:{port}", "--ws-url", f"ws://127.0.0.1:{port}",
             "--duration", "15", "--flatten", "--db", str(tmp_path / "t.db"), "--out",
             str(out)], env=env, capture_output=True, text=True, timeout=180)
    finally:
        sim.send_signal(signal.SIGINT)
        sim.communicate(timeout=20)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr
    assert "simulated exchange" in text and f"key {key[:4]}" in text
    assert secret not in text and key not in text
    for name in ("orders", "fills", "trades", "shortfall", "shortfall_summary"):
        assert (out / f"{name}.csv").exists()
    orders = pd.read_csv(out / "orders.csv")
    assert len(orders) >= 2, text                       # what the trader said it did
    assert set(orders["status"]) <= {"FILLED", "CANCELED"}
    with Store(tmp_path / "t.db") as store:
        assert len(store.orders.frame("trade_orders")) == len(orders)
    assert secret.encode() not in (tmp_path / "t.db").read_bytes()


def test_limit_orders_join_the_touch_and_what_stays_unfilled_is_chased():
    async def main():
        async with sim_exchange() as sim:
            tr = trader_on(sim, policy=LeggingPolicy("LIMIT", timeout_ms=300))
            await tr.start()
            rec = await tr.enact(entry_decision(60_000))
            held = await exchange_amounts(tr)
            orders = tr.orders_frame()
            await tr.flatten()
            await tr.stop()
            return rec, held, orders

    rec, held, orders = run(main())
    first = orders.groupby("leg").first()
    assert (first["type"] == "LIMIT").all() and first["price"].notna().all()
    assert rec["outcome"] == "filled"
    assert held[Y] == pytest.approx(rec["filled_y"]) and held[X] == pytest.approx(rec["filled_x"])
    for leg in ("y", "x"):                 # a leg that did not fill as a maker was chased
        legs = orders[orders["leg"] == leg]
        assert (legs["type"].tolist() == ["LIMIT"]) == (rec[f"chases_{leg}"] == 0)
