"""LiveSession starts from history: REST bootstrap against the simulated exchange (loopback), the
seam between fetched and live bars checked against the exchange's own trades and klines.

The references are the simulator's ledger and deterministic past (its trades) and its klines
endpoint, read after the run: not the code under test.
"""

import asyncio
import math

import numpy as np
import pandas as pd
import pytest

from qdash.analytics import PairConfig
from qdash.bars import resample
from qdash.binance.rest import RestClient
from qdash.binance.schema import kline_frame
from qdash.feeds.binance import BinanceFutures
from qdash.live import LiveSession
from qdash.sim.exchange import SimExchange
from qdash.sim.market import X_MARKET
from qdash.sim.universe import DAY_MS
from qdash.store import Store

pytestmark = pytest.mark.integration

PAIR = ("ETHUSDT", "BTCUSDT")


def _exchange_trades(sim: SimExchange, symbol: str, start: int, end: int) -> pd.DataFrame:
    """Every MARKET trade of ``symbol`` with ``start <= ts < end``: the simulator's past days and
    its live ledger (the exchange's truth)."""
    parts = []
    for day in range(start // DAY_MS, min(end, sim.past.end_ms) // DAY_MS + 1):
        if day * DAY_MS < sim.past.end_ms:
            tr = sim.past.trades(symbol, day)
            parts.append(pd.DataFrame({"ts": tr["time"].to_numpy(), "trade_id": tr["id"],
                                       "price": tr["price"], "qty": tr["qty"]}))
    a = sim.ledger.arrays(symbol)
    mk = a["x"] == X_MARKET
    parts.append(pd.DataFrame({"ts": a["ts"][mk], "trade_id": a["trade_id"][mk],
                               "price": a["price"][mk], "qty": a["qty"][mk]}))
    df = pd.concat(parts, ignore_index=True)
    ts = df["ts"].to_numpy()
    return df[(ts >= start) & (ts < end)]


def _ms(frame) -> np.ndarray:
    return frame.index.as_unit("ms").asi8


def _session(sim, store, timeframe, cfg, **kw):
    feed = BinanceFutures(list(PAIR), ws_url=sim.ws_url, rest_url=sim.rest_url, source="sim",
                          flush_interval=0.05, max_lag=None)
    statuses = []
    session = LiveSession(feed, y=PAIR[0], x=PAIR[1], timeframe=timeframe, store=store,
                          pair_config=cfg, refresh_every_s=3600,
                          on_status=lambda text, level: statuses.append((level, text)), **kw)
    return session, statuses


async def _wait(cond, timeout: float, what: str):
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _assert_ready(session, statuses):
    """Bootstrapped, warmed up and a finite z-score before any live bar closed."""
    assert session.bootstrap_error is None, statuses
    hist = session.history
    spec = session.state.spec
    assert session.state.bars >= spec.warmup_bars
    m = session.metrics()
    assert math.isfinite(m["zscore"]) and not m["stale"]
    assert math.isfinite(m["coint_p"]) and math.isfinite(m["beta_huber"])
    for s in PAIR:  # the candles shown are exactly the fetched ones so far
        assert session.candles[s].total == len(hist.bars[s]) > 0
        assert (_ms(hist.bars[s]) < hist.seam_ms).all()
    assert session.state._t < hist.seam_ms
    assert statuses[-1][0] in ("ok", "warn") and statuses[-1][1].startswith("history:")


def test_one_second_bars_bootstrap_from_trades_and_continue_without_a_seam(tmp_path):
    async def main():
        async with SimExchange(list(PAIR), rate=120, seed=7, port=0) as sim:
            store = Store(tmp_path / "q.db")
            cfg = PairConfig(beta_window=30, z_window=30, corr_window=30, window=600,
                             history=2_000)
            session, statuses = _session(sim, store, "1s", cfg)
            session.start()
            await session.ready.wait()
            _assert_ready(session, statuses)
            hist = session.history
            assert hist.source == "aggTrades" and hist.start_ms == hist.seam_ms - 600_000
            # live: the backfill since the seam, then the stream, closes bars past the seam
            await _wait(lambda: all((_ms(session.candles[s].frame()) >= hist.seam_ms).sum() >= 3
                                    for s in PAIR), 30, "live bars")
            await session.stop()
            return sim, session, store

    sim, session, store = asyncio.run(main())
    hist = session.history
    seam = hist.seam_ms
    for s in PAIR:
        shown = session.candles[s].frame()
        t = _ms(shown)
        assert (np.diff(t) > 0).all()  # strictly increasing: no duplicate open time
        assert session.builders[s].late_dropped == 0
        live_end = int(t[-1]) + 1000
        lo = seam - 60_000
        truth = resample(_exchange_trades(sim, s, lo, live_end), "1s")
        got = shown[(t >= lo) & (t < live_end)]
        # the same open times as the exchange's trades give: no hole, no extra bar at the seam
        np.testing.assert_array_equal(_ms(got), _ms(truth))
        assert (_ms(got) >= seam).sum() >= 3 and (_ms(got) < seam).any()
        for c in ("open", "high", "low", "close", "trades"):
            np.testing.assert_array_equal(got[c].to_numpy(), truth[c].to_numpy(), err_msg=c)
        np.testing.assert_allclose(got["volume"], truth["volume"], rtol=1e-9)
    # the pair continued bar after bar from the history: strictly increasing times
    frame = session.state.frame()
    assert (np.diff(_ms(frame)) > 0).all()
    assert _ms(frame)[-1] >= seam


def test_minute_bars_continue_the_last_kline_and_the_seam_bar_matches_the_exchange(tmp_path):
    # the exchange clock starts 57 s into a minute, so the forming kline closes within seconds
    t0 = int(pd.Timestamp("2026-11-01 00:20:57", tz="UTC").value // 1_000_000)

    async def main():
        async with SimExchange(list(PAIR), rate=120, seed=7, port=0, start_ms=t0) as sim:
            store = Store(tmp_path / "q.db")
            cfg = PairConfig(beta_window=60, z_window=60, corr_window=60, window=200,
                             history=500)
            session, statuses = _session(sim, store, "1m", cfg, clock=sim.now_ms)
            session.start()
            await session.ready.wait()
            _assert_ready(session, statuses)
            hist = session.history
            assert hist.source == "klines" and hist.seam_ms == t0 // 60_000 * 60_000
            # the kline open at fetch time was not stored as closed
            for s in PAIR:
                assert len(store.bars(s, "1m", hist.seam_ms, None)) == 0
                assert len(hist.bars[s]) == 200
            bars0 = session.state.bars
            await _wait(lambda: session.state.bars > bars0, 30, "the seam bar to close")
            await session.stop()
            rest = RestClient(sim.rest_url)
            klines = {s: kline_frame(await rest.aget("/fapi/v1/klines", {
                "symbol": s, "interval": "1m", "startTime": hist.start_ms,
                "endTime": hist.seam_ms, "limit": 1000})) for s in PAIR}
            return session, klines

    session, klines = asyncio.run(main())
    seam = session.history.seam_ms
    for s in PAIR:
        shown = session.candles[s].frame()
        t = _ms(shown)
        assert (np.diff(t) == 60_000).all()  # every minute once, the seam bar right after
        assert t[-1] == seam
        ref = klines[s]  # the exchange's klines, the closed seam bar included
        ref.index = pd.to_datetime(ref.index, unit="ms", utc=True).as_unit("ms")
        pd.testing.assert_frame_equal(
            shown[["open", "high", "low", "close", "trades"]],
            ref.loc[shown.index, ["open", "high", "low", "close", "trades"]],
            check_freq=False, check_index_type=False, check_dtype=False)
        np.testing.assert_allclose(shown["volume"], ref.loc[shown.index, "volume"], rtol=1e-9)


def test_hourly_history_gives_agreeing_estimators_on_the_cointegrated_pair(tmp_path):
    t0 = int(pd.Timestamp("2026-11-01 00:20", tz="UTC").value // 1_000_000)

    async def main():
        async with SimExchange(list(PAIR), rate=20, seed=7, port=0, start_ms=t0) as sim:
            store = Store(tmp_path / "q.db")
            cfg = PairConfig(beta_window=336, z_window=336, corr_window=336, window=1_000,
                             history=1_000)
            session, statuses = _session(sim, store, "1h", cfg, clock=sim.now_ms)
            session.start()
            await session.ready.wait()
            _assert_ready(session, statuses)
            await session.stop()
            return session, store

    session, store = asyncio.run(main())
    hist = session.history
    assert len(hist.bars[PAIR[0]]) == 1_000
    m = session.metrics()
    betas = [m[k] for k in ("beta_ols", "beta_huber", "beta_theil_sen", "beta_rolling",
                            "beta_kalman")]
    assert all(math.isfinite(b) for b in betas)
    assert (max(betas) - min(betas)) / abs(np.median(betas)) <= 0.05, betas
    assert m["beta_disagreement"] <= 0.05
    assert m["coint_p"] < 0.01  # the built-in symbols form one cointegrated cluster
    # funding came with the history: every 8 h over the week before the seam, in the store
    for s in PAIR:
        f = store.funding(s, hist.seam_ms - 7 * DAY_MS, hist.seam_ms)
        assert len(f) == 21 and (f.index.asi8 % (8 * 3_600_000) == 0).all()
        pd.testing.assert_frame_equal(hist.funding[s].loc[f.index], f)


def test_a_failed_bootstrap_is_reported_and_the_stream_starts_empty(tmp_path):
    async def main():
        async with SimExchange(list(PAIR), rate=50, seed=7, port=0) as sim:
            store = Store(tmp_path / "q.db")
            cfg = PairConfig(beta_window=10, z_window=10, corr_window=10, window=100)
            session, statuses = _session(sim, store, "1s", cfg,
                                         rest_url="http://127.0.0.1:9")  # nothing listens
            session.start()
            await asyncio.wait_for(session.ready.wait(), 120)
            await _wait(lambda: sum(session.ticks.values()) > 0, 30, "live ticks")
            await session.stop()
            return session, statuses

    session, statuses = asyncio.run(main())
    assert session.history is None and session.bootstrap_error
    assert any(level == "error" and "bootstrap failed" in text for level, text in statuses)

