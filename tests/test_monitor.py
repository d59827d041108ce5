"""PairMonitor, the dashboard's model, runs a whole session on the simulated exchange without a
widget: history and live stream, an alert firing, funding, a backtest, stats, export, stop. The
session runs in a fresh interpreter that must never import ipywidgets."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

SESSION = r"""
import asyncio, math, sys
from qdash.app.monitor import PairMonitor
from qdash.sim.exchange import SimExchange


async def main(db):
    async with SimExchange(["BTCUSDT", "ETHUSDT"], rate=80, seed=7, port=0) as sim:
        mon = PairMonitor(source="sim", symbols=["BTCUSDT", "ETHUSDT"], timeframe="1s",
                          window=30, db=db, sim_ws_url=sim.ws_url, sim_rest_url=sim.rest_url)
        rule = mon.add_rule("bars >= 3", name="three bars", cooldown_s=3600)
        assert rule.name == "three bars" and len(mon.rules_frame()) == 1
        session = await mon.start()
        assert session is mon.session
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while not (session.ready.is_set() and mon.alerts.recent
                   and all(mon.funding.premium.values())):
            assert loop.time() < deadline, (session.bootstrap_error, list(mon.alerts.recent))
            await asyncio.sleep(0.1)
        fired = list(mon.alerts.recent)
        assert fired[0].rule == "three bars" and fired[0].pair == "ETHUSDT/BTCUSDT"
        assert math.isfinite(session.metrics()["zscore"])
        # cost to trade from the live books, against the edge of the one signal
        while (cost := mon.trade_cost()) is None or not len(mon.store.depth("ETHUSDT")):
            assert loop.time() < deadline, session.feed.stats()["depth"]
            await asyncio.sleep(0.1)
        assert cost["slip_y_bps"] > 0 and cost["slip_x_bps"] > 0 and cost["complete"]
        assert cost["cost_bps"] == cost["slip_y_bps"] + cost["slip_x_bps"]
        assert cost["side_y"] != cost["side_x"] and cost["notional"] == 10_000.0
        sigma = float(session.state.frame(last=1)["spread_std"].iloc[0])
        edge = (abs(cost["zscore"]) - mon.exit_z) * sigma * 1e4
        assert math.isfinite(edge) and abs(cost["edge_bps"] - edge) <= 1e-9 * max(1, abs(edge))
        assert cost["net_bps"] == cost["edge_bps"] - 2 * cost["cost_bps"]
        assert session.feed.stats()["depth"]["resyncs"] == 0
        from qdash.app.stats_table import stats_html
        page = stats_html(session, session.metrics(), mon, comm_messages=0, frames=0)
        assert "cost to trade 10,000 USDT / leg now" in page and "order books" in page
        row = mon.record_stats()
        assert row["bars"] > 0 and len(mon.stats_history_frame()) == 1
        result = await mon.run_backtest(fee_bps=4.0, slippage_bps=1.0)
        assert result is mon.last_backtest and len(result.equity) > 30
        assert "total_return" in result.metrics
        files = mon.export()
        assert {"candles_ETHUSDT.csv", "candles_BTCUSDT.csv", "analytics.csv",
                "stats_over_time.csv", "backtest_trades.csv", "alert_history.csv"} == set(files)
        assert len(files["alert_history.csv"]) >= 1 and len(files["candles_ETHUSDT.csv"]) > 0
        await mon.close()
        assert mon.session is None and not mon.alerts.running


asyncio.run(main(sys.argv[1]))
assert "ipywidgets" not in sys.modules, "the monitor imported ipywidgets"
print("ok")
"""


def test_pair_monitor_runs_a_whole_session_without_widgets(tmp_path):
    env = {**os.environ, "QDASH_DEPTH_INTERVAL": "0.5"}  # book snapshots recorded every 0.5 s
    out = subprocess.run([sys.executable, "-c", SESSION, str(tmp_path / "m.db")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
