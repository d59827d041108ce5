"""BinanceFutures against the simulated exchange: live (un)subscription, connection splitting,
consumers and the slow-consumer policy, counters, and replay of real captured frames."""

import asyncio
import gzip
import threading

import numpy as np
import pandas as pd
import pytest
from conftest import JULY, JULY_TRADES

from qdash.binance.decode import decode_frames
from qdash.feeds.base import Subscription
from qdash.feeds.binance import BinanceFutures
from qdash.model import tick_frame
from qdash.sim.exchange import SimExchange

pytestmark = pytest.mark.integration

FAST = dict(stale_timeout=1.0, backoff_initial=0.05, backoff_max=0.4, gap_grace=0.1,
            flush_interval=0.05, max_lag=None)


def run(coro):
    return asyncio.run(coro)


def test_symbols_added_and_removed_live_and_connections_split():
    async def main():
        async with SimExchange(["BTCUSDT", "ETHUSDT", "SOLUSDT"], rate=300, seed=4) as sim:
            feed = BinanceFutures(["BTCUSDT"], ws_url=sim.ws_url, rest_url=sim.rest_url,
                                  max_streams=2, **FAST)
            seen = []
            feed.on_ticks(lambda b: seen.append(b))
            feed.start()
            await wait_for(lambda: feed.stats()["ticks"] > 0)
            await feed.subscribe(["ETHUSDT"])  # SUBSCRIBE on the open connection
            # from another thread, as an ipywidgets callback on a subshell would
            threading.Thread(target=feed.add_symbols, args=(["solusdt"],)).start()

            def streams():
                return sorted(s for c in sim.connections for s in c.streams)
            await wait_for(lambda: streams() == ["btcusdt@trade", "ethusdt@trade",
                                                 "solusdt@trade"]
                           and feed.stats()["symbols"].get("SOLUSDT", {}).get("ticks"))
            assert len(sim.connections) == 2  # max_streams=2: SOLUSDT got a connection of its own
            await feed.unsubscribe(["BTCUSDT"])  # returns once the exchange replied
            mark = len(seen)
            await wait_for(lambda: sum(map(len, seen[mark:])) > 20)
            after = pd.concat(seen[mark:], ignore_index=True)
            st = feed.stats()
            await feed.stop()
        got = pd.concat(seen, ignore_index=True)
        assert set(got["symbol"]) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
        assert "BTCUSDT" not in set(after["symbol"]) and len(after) > 0
        assert feed.symbols == ["ETHUSDT", "SOLUSDT"]
        assert st["connections"] == 2 and st["messages_per_s"] > 0 and st["ticks_per_s"] > 0
        assert st["symbols"]["ETHUSDT"]["lag_ms"] < 5_000
        assert st["symbols"]["ETHUSDT"]["last_message_age_s"] < 1.0
        assert st["reconnects"] == 0
    run(main())


def test_iterator_and_async_callback_see_the_same_batches():
    async def main():
        async with SimExchange(["BTCUSDT", "ETHUSDT"], rate=200, seed=5) as sim:
            feed = BinanceFutures(["BTCUSDT", "ETHUSDT"], ws_url=sim.ws_url,
                                  rest_url=sim.rest_url, **FAST)
            via_cb = []

            async def cb(batch):
                await asyncio.sleep(0.01)
                via_cb.append(batch)
            feed.on_ticks(cb)
            via_iter = []

            async def consume():
                async for b in feed.batches():
                    via_iter.append(b)
            task = asyncio.create_task(consume())
            feed.start()
            await asyncio.sleep(1.0)
            await feed.stop()
            await task
        a = pd.concat(via_iter, ignore_index=True)
        b = pd.concat(via_cb, ignore_index=True)
        assert len(a) > 50
        pd.testing.assert_frame_equal(a, b)
    run(main())


@pytest.mark.unit
def test_slow_consumer_drops_oldest_batches_only_for_itself():
    async def main():
        sub = Subscription(maxsize=10)
        for i in range(5):
            sub.put(tick_frame("BTCUSDT", np.arange(4) + 10 * i, np.arange(4) + 10 * i,
                               1.0, 1.0, 0, "t"))
        assert len(sub) == 8 and sub.dropped_batches == 3 and sub.dropped_ticks == 12
        sub.close()
        kept = [b async for b in sub]
        assert [int(b["trade_id"].iloc[0]) for b in kept] == [30, 40]  # the newest survive
    run(main())


def test_wrong_route_is_caught_by_the_stale_watchdog():
    async def main():
        async with SimExchange(["BTCUSDT"], rate=100, seed=6) as sim:
            # aggTrade forced onto /public: acknowledged, then silent forever
            feed = BinanceFutures(["BTCUSDT"], stream="aggTrade",
                                  ws_url=f"{sim.ws_url}/public", rest_url=sim.rest_url,
                                  **(FAST | {"stale_timeout": 0.4}))
            feed.start()
            conn = feed._groups[0].conn
            await wait_for(lambda: conn.counters["closed:stale"] >= 2)
            st = feed.stats()
            await feed.stop()
        assert st["ticks"] == 0 and st["stale_reconnects"] >= 2 and st["reconnects"] >= 1
    run(main())


@pytest.mark.unit
def test_watchdog_health_names_silent_streams_and_lag():
    feed = BinanceFutures(["BTCUSDT", "ETHUSDT"], stale_timeout=10, max_lag=2)
    g = feed._groups[0]
    btc, eth = feed._symbols["BTCUSDT"], feed._symbols["ETHUSDT"]
    btc.last_seen = eth.last_seen = 100.0
    assert feed._health(g, now=109.0, connected_at=95.0) is None
    eth.last_seen = 98.0  # one silent stream is enough: it may sit on the wrong route
    assert feed._health(g, now=108.5, connected_at=95.0) == "stale"
    assert feed._health(g, now=108.5, connected_at=99.0) is None  # silence counts from connect
    btc.lag_ms, eth.lag_ms = 2500.0, 1500.0
    assert feed._health(g, now=101.0, connected_at=99.0) is None  # not every stream lags
    eth.lag_ms = 2001.0
    assert feed._health(g, now=101.0, connected_at=99.0) == "lag"
    assert btc.lag_ms is None  # measured afresh on the next connection


async def wait_for(cond, timeout=20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def _july_reference():
    """(what the sim replays, the July capture loaded directly): the file path and
    qdash.io.read_ticks when the readers exist, else the decoded frames for both."""
    path = JULY / f"{JULY_TRADES}.raw.ndjson.gz"
    try:
        from qdash.io import read_ticks
    except ImportError:
        with gzip.open(path, "rb") as f:
            ticks = decode_frames(f.read().splitlines()).ticks
        return ticks, ticks
    return path, read_ticks(path)


def test_replaying_real_frames_reproduces_the_file():
    source, ref = _july_reference()
    ref = ref.sort_values(["symbol", "trade_id"], ignore_index=True)

    async def main():
        sim = SimExchange(replay=source, speed=0)
        sim.pause()  # connect first, then play
        await sim.start()
        feed = BinanceFutures(sorted(set(ref["symbol"])), ws_url=sim.ws_url,
                              rest_url=sim.rest_url, **FAST)
        got = []
        feed.on_ticks(got.append)
        feed.start()
        while feed.stats()["connections"] == 0:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        sim.resume()
        while sum(map(len, got)) < len(ref) and not (sim.replay_done and len(got) and
                                                     feed.stats()["messages_per_s"] == 0):
            await asyncio.sleep(0.1)
        st = feed.stats()
        await feed.stop()
        await sim.stop()
        return pd.concat(got, ignore_index=True), st

    got, st = run(main())
    assert st["gaps_found"] == 0 and st["duplicates"] == 0
    got = got.sort_values(["symbol", "trade_id"], ignore_index=True)
    assert len(got) == len(ref) == 24_356
    for col in ("symbol", "ts", "trade_id", "price", "qty", "is_buyer_maker"):
        np.testing.assert_array_equal(got[col].to_numpy(), ref[col].to_numpy(), err_msg=col)
