"""One signal on screen: for every hedge method, on 1 s bars and on 1 m and 1 h bars seeded
with history, the chart's z-score series, the stats table (whose metrics the alerts are fed), and
the backtest button's traded signal are the same numbers bar for bar (in-process dashboard on the
simulated exchange, no browser)."""

import asyncio
import math

import numpy as np
import pytest
from conftest import dashboard_ready

from qdash.app import Dashboard
from qdash.app.render import fmt
from qdash.sim.exchange import SimExchange

pytestmark = pytest.mark.integration

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
METHODS = ["rolling-ols", "huber", "theil-sen", "kalman"]


@pytest.mark.parametrize("timeframe", ["1s", "1m", "1h"])  # 1h: the demo's default
def test_chart_table_alerts_and_backtest_show_one_z_for_every_method(tmp_path, timeframe):
    async def main():
        found = {}
        async with SimExchange(SYMBOLS, rate=80, seed=7, port=0) as sim:
            for method in METHODS:
                d = Dashboard(source="sim", symbols=SYMBOLS, window=30, timeframe=timeframe,
                              method=method, db=str(tmp_path / f"{method}.db"),
                              sim_ws_url=sim.ws_url, sim_rest_url=sim.rest_url)
                d.start()
                await dashboard_ready(d)
                d.render_frame()
                chart = {t: z for t, z in zip(d.figures.pair.data["t"], d.figures.pair.data["z"])
                         if float(t).is_integer()}          # break rows sit at t - 0.5
                m = d.session.metrics()
                d.render_stats(d.session)
                table = d.stats.value
                await d.run_backtest()
                signals = d.last_backtest.signals
                await d.close()
                found[method] = (chart, m, table, signals)
        return found

    found = asyncio.run(main())
    for method, (chart, m, table, signals) in found.items():
        t = np.array(sorted(chart), dtype=float)
        z_chart = np.array([chart[k] for k in t])
        assert np.isfinite(z_chart).sum() >= 10, method   # history: z on screen at first paint
        # the exchange's recent past is as dense as its live stream: no bar of the window is
        # carried through silent seconds long enough to make a leg constant, so z is finite
        assert np.isfinite(z_chart[-10:]).all(), (method, z_chart[-10:])
        # the table (and the alerts, fed the same metrics dict) show the chart's last bar's z
        np.testing.assert_allclose(m["zscore_raw"], z_chart[-1], rtol=1e-12, atol=1e-12,
                                   equal_nan=True, err_msg=f"{method}: chart {z_chart[-4:]}")
        if math.isfinite(m["zscore_raw"]):
            cell = f"<td style='text-align:right'>{fmt(m['zscore_raw'], 3)}</td>"
            assert cell in table, (method, table)
        # the backtest trades the chart's series, bar for bar, on every bar both show
        sig = signals["zscore"]
        sig_t = sig.index.as_unit("ms").asi8.astype(float)
        common, i_chart, i_sig = np.intersect1d(t, sig_t, return_indices=True)
        assert len(common) >= 0.9 * len(t), (method, len(common), len(t))
        np.testing.assert_allclose(sig.to_numpy()[i_sig], z_chart[i_chart], rtol=1e-9,
                                   atol=1e-9, equal_nan=True, err_msg=method)
        # and the β the table shows is the one traded on that bar
        beta = signals["beta"].to_numpy()[sig_t == t[-1]]
        np.testing.assert_allclose(beta, [m["beta"]], rtol=1e-9, equal_nan=True, err_msg=method)
