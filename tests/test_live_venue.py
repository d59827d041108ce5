"""A live session's ticks carry the venue of the exchange they come from, as its REST API says
(exchangeInfo's ``qdashSimulator``), not a label fixed in code: a LiveSession built in code on
the simulator records its live ticks into the store its bootstrap marked simulated.

End to end on loopback: the simulated exchange, a real BinanceFutures (no ``source`` given), the
history bootstrap, the recorder and a SQLite store.
"""

import asyncio

import numpy as np
import pandas as pd
import pytest

from qdash.analytics import PairConfig
from qdash.feeds.binance import BinanceFutures
from qdash.live import LiveSession
from qdash.model import SIM_VENUE, source_venue
from qdash.sim.exchange import SimExchange
from qdash.store import Store

pytestmark = pytest.mark.integration

PAIR = ("ETHUSDT", "BTCUSDT")


def test_a_code_built_session_on_the_simulator_records_simulated_ticks(tmp_path):
    t0 = int(pd.Timestamp("2026-11-01 00:20:30", tz="UTC").value // 1_000_000)

    async def main():
        async with SimExchange(list(PAIR), rate=100, seed=3, port=0, start_ms=t0) as sim:
            store = Store(tmp_path / "q.db")
            feed = BinanceFutures(list(PAIR), ws_url=sim.ws_url, rest_url=sim.rest_url,
                                  flush_interval=0.05, max_lag=None)
            session = LiveSession(feed, y=PAIR[0], x=PAIR[1], timeframe="1m", store=store,
                                  pair_config=PairConfig(beta_window=30, z_window=30,
                                                         corr_window=30, window=60,
                                                         history=200),
                                  refresh_every_s=3600, clock=sim.now_ms)
            session.start()
            await session.ready.wait()
            assert session.bootstrap_error is None
            assert store.venue == SIM_VENUE  # the bootstrap's klines named the store's venue
            deadline = asyncio.get_running_loop().time() + 20
            while session.recorder.writes < 3 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.1)
            await session.stop()
            return feed, session, store

    feed, session, store = asyncio.run(main())
    assert source_venue(feed.source) == SIM_VENUE
    rec = session.recorder
    assert rec.received > 0 and rec.failed == 0 and rec.stored > 0
    ticks = pd.concat([store.ticks(s) for s in PAIR])
    assert len(ticks) >= rec.stored
    venues = {source_venue(s) for s in np.unique(ticks["source"].to_numpy())}
    assert venues == {SIM_VENUE}
    assert store.venue == SIM_VENUE
