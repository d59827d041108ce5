"""LiveSession end to end: simulated exchange → Binance consumer → store, candles, pair, alerts."""

import asyncio
import math

import numpy as np
import pandas as pd
import pytest

from qdash.alerts import AlertManager
from qdash.analytics import PairConfig
from qdash.bars import resample
from qdash.feeds.base import TickFeed
from qdash.feeds.binance import BinanceFutures
from qdash.live import CandleLog, LiveSession
from qdash.sim.exchange import SimExchange
from qdash.store import Store


async def _run_session(db_path, seconds: float):
    sim = SimExchange(["BTCUSDT", "ETHUSDT", "SOLUSDT"], rate=300, seed=5)
    await sim.start()
    store = Store(db_path)
    alerts = AlertManager(store)
    alerts.add("bars >= 3", name="three bars", cooldown_s=3600)
    alerts.start()
    feed = BinanceFutures(["BTCUSDT", "ETHUSDT", "SOLUSDT"], ws_url=sim.ws_url,
                          rest_url=sim.rest_url, flush_interval=0.05)
    session = LiveSession(feed, y="ETHUSDT", x="BTCUSDT", symbols=["SOLUSDT"], timeframe="1s",
                          store=store, alerts=alerts, refresh_every_s=1.0, bootstrap=False,
                          pair_config=PairConfig(beta_window=3, z_window=3, corr_window=3,
                                                 window=500, history=500))
    session.start()
    await asyncio.sleep(seconds)
    await session.stop()
    await alerts.stop()
    await sim.stop()
    return session, store, alerts


@pytest.mark.integration
def test_live_session_builds_candles_pair_and_alerts(db_path):
    session, store, alerts = asyncio.run(_run_session(db_path, 13.0))
    # every received tick was recorded
    assert session.recorder.failed == 0
    assert store.tick_count() == sum(session.ticks.values()) > 500
    # the live candles equal resample() of the stored ticks, candle for candle
    for symbol in ("ETHUSDT", "BTCUSDT", "SOLUSDT"):
        live = session.candles[symbol].frame()
        assert len(live) >= 3
        batch = resample(store.ticks(symbol), "1s").loc[live.index]
        pd.testing.assert_frame_equal(live[["open", "high", "low", "close", "trades"]],
                                      batch[["open", "high", "low", "close", "trades"]],
                                      check_freq=False)
        np.testing.assert_allclose(live["volume"], batch["volume"], rtol=1e-12)
    # one pair update per closed second, in order, z defined once the window filled
    frame = session.state.frame()
    assert len(frame) >= 4
    steps = np.diff(frame.index.asi8)
    assert (steps == 1000).all()
    m = session.metrics()
    assert m["symbol_y"] == "ETHUSDT" and math.isfinite(m["zscore_raw"])
    assert m["refreshed_ms"] is not None and math.isfinite(m["adf_p"])  # the refresh ran
    assert math.isfinite(m["beta_ols"]) and math.isfinite(m["beta_theil_sen"])
    # the alert fired once (cooldown) and is in the store's history
    hist = alerts.history()
    assert list(hist["rule"]) == ["three bars"]


def test_candle_log_cursor_and_bound():
    log = CandleLog(maxlen=5)
    t0 = 1_721_347_200_000
    ticks = pd.DataFrame({"ts": t0 + np.arange(12) * 1000, "price": np.arange(12.0) + 1,
                          "qty": 1.0, "trade_id": np.arange(12) + 1, "is_buyer_maker": 0})
    bars = resample(ticks, "1s")
    log.append(bars.iloc[:3])
    got, cursor = log.since(0)
    assert len(got) == 3 and cursor == 3
    log.append(bars.iloc[3:12])
    got, cursor = log.since(cursor)
    assert cursor == 12 and len(got) == 5  # only the kept ones
    assert got.index[-1] == bars.index[-1]
    assert len(log.frame()) == 5
    empty, same = log.since(cursor)
    assert len(empty) == 0 and same == 12


@pytest.mark.parametrize("warm", [True])
def test_live_session_warm_starts_from_stored_history(db_path, warm):
    from qdash.model import tick_frame
    store = Store(db_path)
    now = pd.Timestamp.now(tz="UTC").floor("s").value // 1_000_000
    n = 200
    t = now - n * 1000 + np.arange(n) * 1000
    rng = np.random.default_rng(0)
    x = 100 + np.cumsum(rng.normal(0, 0.1, n))
    y = 2 * x + rng.normal(0, 0.05, n)
    store.write_ticks(tick_frame("AAAUSDT", t, np.arange(n) + 1, y, 1.0, 0, "test"))
    store.write_ticks(tick_frame("BBBUSDT", t, np.arange(n) + 1, x, 1.0, 0, "test"))

    session = LiveSession(TickFeed(), y="AAAUSDT", x="BBBUSDT", timeframe="1s", store=store,
                          pair_config=PairConfig(beta_window=50, z_window=50, corr_window=50))
    assert session.state.bars == n
    assert session.metrics()["beta_ols"] == pytest.approx(1.0, abs=0.05)  # y = 2x: log β 1
    assert len(session.candles["AAAUSDT"].frame()) == n


def test_a_backfill_is_not_a_tick_rate():
    """Ticks/s counts trades of the last seconds of exchange time: a REST backfill bringing five
    minutes of trades at once (a resumed or bootstrapped session) does not read as 600 ticks/s."""

    from qdash.model import tick_frame

    session = LiveSession(TickFeed(), y="ETHUSDT", x="BTCUSDT", timeframe="1s",
                          bootstrap=False)
    t0 = 1_721_347_200_000
    backfill = tick_frame("ETHUSDT", t0 + np.arange(3000) * 100, np.arange(3000), 3400.0, 0.1)
    session.on_ticks(backfill)                        # 300 s of trades, the last at t0 + 299.9 s
    assert session.ticks["ETHUSDT"] == 3000
    assert session.ticks_per_second("ETHUSDT") == pytest.approx(50 / 5.0)  # its last 5 s only
    live = tick_frame("ETHUSDT", t0 + 300_000 + np.arange(20) * 100, 3000 + np.arange(20),
                      3400.0, 0.1)
    session.on_ticks(live)
    assert session.ticks_per_second("ETHUSDT") == pytest.approx((50 + 20) / 5.0)
