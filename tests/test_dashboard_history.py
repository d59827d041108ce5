"""The dashboard (in-process, no browser) on the simulated exchange: history on screen at first
paint, each leg's funding in the table, and the backtest button settling stored funding."""

import asyncio
import math

import pytest
from conftest import dashboard_ready

from qdash.app import Dashboard
from qdash.sim.exchange import SimExchange

pytestmark = pytest.mark.integration


def test_dashboard_paints_history_first_then_funding_and_a_funded_backtest(tmp_path):
    async def main():
        async with SimExchange(["BTCUSDT", "ETHUSDT"], rate=80, seed=7, port=0) as sim:
            d = Dashboard(source="sim", symbols=["BTCUSDT", "ETHUSDT"], window=30,
                          timeframe="1s", db=str(tmp_path / "d.db"), sim_ws_url=sim.ws_url,
                          sim_rest_url=sim.rest_url)
            d.start()
            await dashboard_ready(d)
            s = d.session
            status = d.status.value  # the bootstrap's last word, before the live summary
            assert "history:" in status and "aligned 1s bars" in status, status
            d.render_frame()  # the first paint
            warm = s.state.spec.warmup_bars
            z = [v for v in d.figures.pair.data["z"] if math.isfinite(v)]
            assert len(z) >= 10 and len(d.figures.pair.data["t"]) >= warm
            assert len(d.figures.candles["y"].data["t"]) >= warm
            d.render_stats(s)
            table = d.stats.value
            m = s.metrics()
            for key in ("zscore", "beta_ols", "beta_huber", "beta_theil_sen", "beta_rolling",
                        "beta_kalman", "coint_p"):
                assert math.isfinite(m[key]), key
            assert "waiting" not in table  # every statistic is shown
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while any(v is None for v in d.monitor.funding.premium.values()):
                assert loop.time() < deadline, "funding never arrived"
                await asyncio.sleep(0.1)
            d.render_stats(s)
            assert d.stats.value.count("funding rate / next in / mark–index") == 2
            await d.run_backtest()
            panel = d.bt.metrics.value
            await d.close()
            return panel

    panel = asyncio.run(main())
    assert "total_funding" in panel and "settlements applied" in panel
    # minutes of 1s bars: the Sharpe is shown with its standard error, flagged short sample
    assert "sharpe_se" in panel and "short sample" in panel and "±" in panel


def test_the_demo_opens_with_agreeing_estimators_on_its_cointegrated_pair(tmp_path):
    """`qdash demo`'s own defaults (timeframe, window, symbols, pair, rate, seed): the z-score,
    every β and the cointegration test are on screen at first paint and the βs agree to 5%."""
    import argparse

    from qdash.cli.demo import add_arguments as add_demo_arguments

    p = argparse.ArgumentParser()
    add_demo_arguments(p)
    args = p.parse_args([])
    symbols = args.symbols.split(",")

    async def main():
        async with SimExchange(symbols, rate=args.rate, seed=args.seed, port=0) as sim:
            d = Dashboard(source="sim", symbols=symbols, timeframe=args.timeframe,
                          window=args.window, db=str(tmp_path / "d.db"),
                          sim_ws_url=sim.ws_url, sim_rest_url=sim.rest_url)
            d.start()
            await dashboard_ready(d)
            d.render_stats(d.session)
            m, table = d.session.metrics(), d.stats.value
            await d.close()
            return m, table

    m, table = asyncio.run(main())
    betas = [m[k] for k in ("beta_ols", "beta_huber", "beta_theil_sen", "beta_rolling",
                            "beta_kalman")]
    assert all(math.isfinite(b) for b in betas) and math.isfinite(m["zscore"])
    assert "waiting" not in table
    assert m["beta_disagreement"] <= 0.05, betas
    assert m["coint_p"] < 0.01
