"""The live scanner against the simulated exchange (loopback): history from REST, a rescan on
the first closed 1m kline of the universe's streams, the planted clusters on top, and the
dashboard's pair switched by ``open_pair``.

References: the simulator's own universe description (which symbols share a planted cluster) and
its klines endpoint; not the code under test.
"""

import asyncio

import pandas as pd
import pytest

from qdash.binance.rest import RestClient
from qdash.binance.schema import kline_frame
from qdash.scan.live import LiveScanner
from qdash.sim.exchange import SimExchange
from qdash.store import Store

pytestmark = pytest.mark.integration

# the exchange clock starts 57 s into a minute: the forming 1m kline closes within seconds
T0 = int(pd.Timestamp("2026-11-01 00:20:57", tz="UTC").value // 1_000_000)


async def _wait(cond, timeout: float, what: str):
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _same_cluster(sim: SimExchange, frame: pd.DataFrame) -> pd.Series:
    cl = {s: i.sym.cluster for s, i in sim.instruments.items()}
    return pd.Series([cl[y] is not None and cl[y] == cl[x] for y, x in zip(frame.y, frame.x)])


def test_live_scanner_rescans_on_the_first_closed_kline_and_ranks_the_clusters(tmp_path):
    async def main():
        async with SimExchange(["BTCUSDT", "ETHUSDT"], rate=100, seed=0, universe=20, port=0,
                               start_ms=T0, weight_limit=100_000) as sim:
            statuses = []
            sc = LiveScanner("all", store=Store(tmp_path / "s.db"), rest_url=sim.rest_url,
                             ws_url=sim.ws_url, timeframe="1m", lookback="7d", grace_s=3.0,
                             clock=sim.now_ms,
                             on_status=lambda text, level: statuses.append((level, text)))
            sc.start()
            await _wait(lambda: sc.scans >= 1 or sc.error, 120, "the first scan")
            assert sc.error is None, statuses
            first = sc.result
            assert sc.last_bar_ms == T0 // 60_000 * 60_000 - 60_000   # the last closed bar
            loaded = sim.now_ms()
            # the next kline to close after the streams opened closes within a minute
            await _wait(lambda: sc.scans >= 2, 90, "a rescan on a closed kline")
            second = sc.result
            await sc.stop()
            rest = RestClient(sim.rest_url)
            klines = {s: kline_frame(await rest.aget("/fapi/v1/klines", {
                "symbol": s, "interval": "1m", "startTime": sc.seam_ms,
                "endTime": sc.last_bar_ms + 59_999, "limit": 100})) for s in sc.symbols}
            return sim, sc, first, second, klines, loaded

    sim, sc, first, second, klines, loaded = asyncio.run(main())
    assert len(sc.symbols) == 22 and sc.connections
    k = len(sc.symbols)
    for frame in (first, second):
        assert len(frame) == k * (k - 1)          # every directed pair
    # the rescan ran through a kline closed on the stream; bars between the seam and it that
    # closed before the streams opened came from REST (the hole fill)
    assert sc.seam_ms <= sc.last_bar_ms <= loaded // 60_000 * 60_000
    assert pd.Timestamp(second.attrs["end"]) == pd.Timestamp(sc.last_bar_ms, unit="ms", tz="UTC")
    assert pd.Timestamp(first.attrs["end"]) < pd.Timestamp(second.attrs["end"])
    assert sc.closed_frames >= 1
    for s in sc.symbols:   # the live bars scanned are the exchange's closed klines
        ref = klines[s]["close"]
        ref.index = ref.index.astype("int64")
        prev = sc._hist[s][1][-1]   # the last history close
        for t in range(sc.seam_ms, sc.last_bar_ms + 1, 60_000):
            close, qv = sc._live[s][t]
            if t in ref.index:
                assert close == pytest.approx(float(ref[t]), rel=1e-12)
            else:  # no trade in the minute: the exchange has no kline, the scan the last close
                assert qv == 0.0 and close == prev
            prev = close
    # the planted clusters rank on top: the best pairs share a cluster
    for frame in (first, second):
        same = _same_cluster(sim, frame)
        assert same.iloc[:5].all(), frame[["y", "x", "q", "reason"]].head(8)
        assert frame["pass"].any() and same[frame["pass"]].all()


def test_scanner_tab_ranks_the_universe_and_opens_a_pair_in_the_monitor(tmp_path):
    from qdash.app import Dashboard

    async def main():
        async with SimExchange(["BTCUSDT", "ETHUSDT"], rate=100, seed=0, universe=20, port=0,
                               weight_limit=100_000) as sim:
            # the monitor on the scan's 1m bars: their history goes back weeks, where a thin
            # synthetic symbol may not trade once in the few minutes 1s bars would fetch
            d = Dashboard(source="sim", symbols=["BTCUSDT", "ETHUSDT"], window=30,
                          timeframe="1m", db=str(tmp_path / "d.db"), sim_ws_url=sim.ws_url,
                          sim_rest_url=sim.rest_url)
            panel = d.scanner
            panel.timeframe.value, panel.lookback.value = "1m", "7d"
            await panel.start()
            await _wait(lambda: panel.scanner.scans >= 1 or panel.scanner.error, 120,
                        "the first scan")
            assert panel.scanner.error is None, panel.status.value
            shown = panel.rows.copy()
            heat = dict(panel.heat.data)
            panel.passing.value = True
            panel.render()
            passing = panel.rows.copy()
            y, x = panel.pairs.options[0][1]
            panel.pairs.value = (y, x)
            await panel.open_selected()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 120
            while d.session is None or not d.session.ready.is_set():
                assert loop.time() < deadline, d.status.value
                await asyncio.sleep(0.05)
            s = d.session
            await asyncio.sleep(2)    # one trade feed (no session left over) + the scanner
            trades = [set(c.streams) for c in sim.connections
                      if any(n.endswith("@trade") for n in c.streams)]
            depth = [set(c.streams) for c in sim.connections
                     if c.streams and all("@depth" in n for n in c.streams)]
            assert len(sim.connections) - len(depth) == 2 and len(trades) == 1
            watched = {sym.lower() for sym in d.symbols}   # the feed's books, one connection
            assert len(depth) <= 1 and all(n.split("@")[0] in watched
                                           for n in (depth[0] if depth else ()))
            assert {f"{y.lower()}@trade", f"{x.lower()}@trade"} <= trades[0]
            state = (d.y, d.x, s.y, s.x, list(d.symbols), d.market.symbols.value,
                     {k: len(v) for k, v in s.history.bars.items()})
            await d.close()
            assert panel.scanner is None   # close() stopped the scanner
            return sim, shown, heat, passing, (y, x), state

    sim, shown, heat, passing, pair, state = asyncio.run(main())
    assert len(shown) == 30 and shown["rank"].tolist() == list(range(1, 31))
    assert len(heat["value"]) > 0 and set(heat["y"]) <= set(shown["y"]) | set(shown["x"])
    assert len(passing) >= 1 and passing["pass"].all()
    assert _same_cluster(sim, passing).all()
    y, x = pair
    d_y, d_x, s_y, s_x, symbols, text, history = state
    assert (d_y, d_x, s_y, s_x) == (y, x, y, x)       # the monitor runs on the opened pair
    assert symbols[:2] == [y, x] and {"BTCUSDT", "ETHUSDT"} <= set(symbols)
    assert text == ",".join(symbols)
    assert history[y] > 0 and history[x] > 0          # its history loaded by the bootstrap
