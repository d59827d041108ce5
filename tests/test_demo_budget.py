"""The demo's REST start-up fits its simulator's weight budget: no request is refused (429) and
no client holds itself to a smaller budget than the exchange announces."""

from __future__ import annotations

import asyncio
import tempfile
import types
from pathlib import Path

import pytest

from qdash.analytics.pair import PairConfig
from qdash.app.funding import FundingPoller
from qdash.binance.limits import DEFAULT_WEIGHT_LIMIT
from qdash.binance.rest import RestClient
from qdash.history.bootstrap import bars_needed, bootstrap_history
from qdash.model import timeframe_ms
from qdash.sim import limiter
from qdash.sim.exchange import DEMO_WEIGHT_LIMIT, SimExchange
from qdash.store import Store

pytestmark = pytest.mark.integration

SYMBOLS = ["ETHUSDT", "BTCUSDT", "SOLUSDT"]  # the demo's, pair first


def _bootstrap(rest_url: str, timeframe: str, window: int) -> dict:
    """One demo kernel's history bootstrap (the monitor's pair config for ``window``); returns
    its client's stats."""
    cfg = PairConfig(symbol_y="ETHUSDT", symbol_x="BTCUSDT", beta_window=window,
                     z_window=window, corr_window=window, window=max(window * 10, 2_000),
                     history=window * 2)
    with tempfile.TemporaryDirectory() as d:
        store, client = Store(str(Path(d) / "k.db")), RestClient(rest_url)
        try:
            bootstrap_history(SYMBOLS, timeframe, bars_needed(cfg, timeframe_ms(timeframe)),
                              store, client)
            return client.stats()
        finally:
            client.close()
            store.close()


def test_the_demos_start_up_fits_its_simulators_budget(monkeypatch):
    """Five kernels starting on 1s bars (pages opened together, the preheated one among them)
    spend more than Binance's 2,400 a minute from the one simulator: the funding panel's poll
    still answers (its client adopts the limit the simulator announces), and nothing is 429'd.
    The simulator's weight clock stands still 1 s into a minute, so every request of the test
    counts in the same minute, whenever it runs."""
    minute_start = 1_721_390_040.0
    monkeypatch.setattr(limiter, "time", types.SimpleNamespace(time=lambda: minute_start + 1))
    async def main():
        async with SimExchange(SYMBOLS, rate=300, seed=7, weight_limit=DEMO_WEIGHT_LIMIT) as sim:
            ip, spent = "127.0.0.1", []
            kernels = []
            for timeframe, window in (("1s", 120), ("1h", 168)):
                before = sim.limiter.used(ip)
                kernels.append(await asyncio.to_thread(_bootstrap, sim.rest_url, timeframe,
                                                       window))
                spent.append(sim.limiter.used(ip) - before)
            # four more pages on 1s bars start in the same minute: their weight, counted
            assert sim.limiter.admit(ip, 4 * spent[0]) is None
            used = sim.limiter.used(ip)
            poller = FundingPoller(every_s=1.0)
            poller.start(sim.rest_url, ("ETHUSDT", "BTCUSDT"))
            await asyncio.sleep(2.5)
            poller.stop()
            return kernels, used, poller

    kernels, used, poller = asyncio.run(main())
    assert DEFAULT_WEIGHT_LIMIT < used < DEMO_WEIGHT_LIMIT
    assert all(k.get("http_429", 0) == 0 and k.get("http_418", 0) == 0 for k in kernels)
    assert poller.error is None, poller.error
    assert all(poller.premium[s] and "lastFundingRate" in poller.premium[s]
               for s in ("ETHUSDT", "BTCUSDT"))
