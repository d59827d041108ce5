"""PairAnalytics (batch) and PairState (live): online == batch, staleness, alignment, metrics."""

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from conftest import COLLECTOR
from test_analytics_hedge import _ticks

from qdash.analytics import (
    LIQUIDITY_FILTERS,
    PairAnalytics,
    PairState,
    align_bars,
    check_filters,
    hedge_ratio,
    liquidity_score,
    liquidity_stats,
    pair_liquidity_score,
    roll_spread_bps,
)
from qdash.analytics.stats import zscore
from qdash.bars import resample

CFG = {"symbol_y": "BTCUSDT", "symbol_x": "ETHUSDT", "beta_window": 60, "z_window": 30,
       "corr_window": 45, "window": 400}


@pytest.fixture(scope="module")
def bars_1s():
    t = _ticks()
    return (resample(t, "1s", symbol="BTCUSDT", fill=True),
            resample(t, "1s", symbol="ETHUSDT", fill=True))


def test_batch_series_match_references(bars_1s):
    by, bx = bars_1s
    pa = PairAnalytics.from_bars(by, bx, **CFG, log=False, kalman_delta=1e-2)
    s = pa.series
    rolling = hedge_ratio(by["close"], bx["close"], "rolling-ols", window=60)
    np.testing.assert_allclose(s["beta_rolling"], rolling.beta_series, rtol=1e-12,
                               equal_nan=True)
    kal = hedge_ratio(by["close"], bx["close"], "kalman", window=60, delta=1e-2)
    np.testing.assert_allclose(s["beta_kalman"], kal.beta_series, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(s["innovation_z"], kal.extra["innovation_z"], rtol=1e-6,
                               equal_nan=True)
    np.testing.assert_allclose(s["zscore_raw"], zscore(s["spread_rolling"], 30), rtol=1e-8,
                               atol=1e-9, equal_nan=True)
    np.testing.assert_array_equal(s["spread"], s["spread_rolling"])
    np.testing.assert_allclose(s["corr_prices"],
                               s["price_y"].rolling(45).corr(s["price_x"]), rtol=1e-8,
                               equal_nan=True)
    ry, rx = np.log(s["price_y"]).diff(), np.log(s["price_x"]).diff()
    np.testing.assert_allclose(s["corr_returns"], ry.rolling(45).corr(rx), rtol=1e-7,
                               equal_nan=True)
    m = pa.summary
    ref = sm.OLS(s["price_y"].to_numpy()[-400:],
                 sm.add_constant(s["price_x"].to_numpy()[-400:])).fit().params
    assert m["beta_ols"] == pytest.approx(ref[1], rel=1e-10)
    assert list(pa.estimators.index) == ["ols", "huber", "theil-sen", "rolling-ols", "kalman"]
    assert 0 <= m["coint_p"] <= 1 and m["refresh_bars"] == 400
    assert m["half_life_s"] == pytest.approx(m["half_life_bars"])      # 1 s bars


def test_live_updates_equal_batch(bars_1s):
    by, bx = bars_1s
    batch = PairAnalytics.from_bars(by, bx, **CFG)
    live = PairState(symbol_y="BTCUSDT", symbol_x="ETHUSDT", beta_window=60, z_window=30,
                     corr_window=45, window=400, timeframe_ms=1000)
    for (_, ry), (_, rx) in zip(by.iterrows(), bx.iterrows(), strict=True):
        assert live.update(ry, rx)
    cols = list(live.frame().columns)
    pd.testing.assert_frame_equal(live.frame(), batch.series[cols], check_freq=False)
    live.refresh()
    a, b = live.metrics(), batch.metrics()
    for k, v in b.items():
        if isinstance(v, float) and math.isnan(v):
            assert math.isnan(a[k]), k
        else:
            assert a[k] == v, k


def test_history_then_live_continues_exactly(bars_1s):
    by, bx = bars_1s
    full = PairAnalytics.from_bars(by, bx, **CFG)
    head = PairAnalytics.from_bars(by.iloc[:300], bx.iloc[:300], **CFG)
    for i in range(300, len(by)):
        head.update(by.iloc[i], bx.iloc[i])
    cols = list(head.state.frame().columns)
    pd.testing.assert_frame_equal(head.state.frame(), full.series[cols], check_freq=False)


def test_alignment_policy_gap_limit_and_no_trade_rows():
    idx = pd.date_range("2024-07-19", periods=8, freq="1s", tz="UTC", name="open_time")
    by = pd.DataFrame({"close": np.arange(8.0) + 100, "trades": 1, "quote_volume": 1.0},
                      index=idx)
    keep = [0, 1, 2, 5, 6, 7]                                   # x misses bars 3 and 4
    bx = pd.DataFrame({"close": np.arange(8.0)[keep] + 50, "trades": [1, 1, 0, 1, 1, 1],
                       "quote_volume": 1.0}, index=idx[keep])
    al = align_bars(by, bx, max_gap_bars=2)
    # x's bar 2 has no trades: x is silent over bars 2-4 (3 bars > 2): bar 4 is dropped and
    # bar 5 starts a new segment
    assert list(al.index) == list(idx[[0, 1, 2, 3, 5, 6, 7]])
    assert al.loc[idx[3], "price_x"] == 51.0 and al.loc[idx[3], "trades_x"] == 0
    assert list(al["segment_start"]) == [True, False, False, False, True, False, False]
    wide = align_bars(by, bx, max_gap_bars=3)
    assert len(wide) == 8 and wide["segment_start"].sum() == 1
    # live follows the same rule with None for a missing leg
    st = PairState(beta_window=3, z_window=2, corr_window=2, window=10, max_gap_bars=2)
    used = [st.update(by.iloc[i], None if i in (3, 4) else bx.loc[idx[i]], open_time=idx[i])
            for i in range(8)]
    assert used == [True, True, True, True, False, True, True, True]
    np.testing.assert_array_equal(st.frame()["segment_bar"], [0, 1, 2, 3, 0, 1, 2])


def test_stale_leg_flags_zscore_on_collector_capture():
    # ETHUSDT stops after ~16 s while BTCUSDT runs on (collector README)
    raw = pd.read_json(COLLECTOR / "ticks_2025-11-01_BTCUSDT_ETHUSDT.ndjson", lines=True)
    raw = raw[(raw["price"] > 0) & (raw["size"] > 0)]
    ts = pd.DatetimeIndex(pd.to_datetime(raw["ts"], utc=True)).as_unit("ms").asi8
    ticks = pd.DataFrame({"symbol": raw["symbol"].astype(object), "ts": ts,
                          "price": raw["price"], "qty": raw["size"]})
    by = resample(ticks, "1s", symbol="BTCUSDT", fill=True)
    bx = resample(ticks, "1s", symbol="ETHUSDT")              # no bars after the stop
    pa = PairAnalytics.from_bars(by, bx, beta_window=5, z_window=5, corr_window=5,
                                 max_gap_bars=10_000, stale_after_s=30)
    s = pa.series
    assert s["stale"].iloc[-1] and not s["stale"].iloc[10]
    assert s.loc[s["stale"], "zscore"].isna().all()
    assert s.loc[~s["stale"], "zscore"].equals(s.loc[~s["stale"], "zscore_raw"])
    m = pa.metrics()
    assert m["stale_x"] and not m["stale_y"] and math.isnan(m["zscore"])
    assert m["age_x_s"] > 30 and m["age_y_s"] <= 1
    # ages run from the last trade: bar close of the last traded bar, or the tick stream's time
    pa.state.note_trades(None, m["ts_ms"] + 500)
    assert pa.metrics(now_ms=m["ts_ms"] + 1_000)["age_x_s"] == 0.5
    # wall-clock ageing: a live state goes stale when no bar arrives at all
    fresh = pa.metrics(now_ms=m["ts_ms"] + 1_000)            # the last bar's close
    later = pa.metrics(now_ms=m["ts_ms"] + 61_000)
    assert later["age_y_s"] == fresh["age_y_s"] + 60 and later["stale_y"]


def test_metrics_keys_are_flat_scalars(bars_1s):
    by, bx = bars_1s
    m = PairAnalytics.from_bars(by, bx, **CFG).metrics()
    for k in ("zscore", "spread", "beta_ols", "corr", "adf_p", "coint_p", "half_life_bars",
              "price_y", "price_x", "age_y_s", "age_x_s", "stale", "beta_kalman",
              "innovation_z", "beta_disagreement", "liquidity_pair"):
        assert k in m
    assert all(isinstance(v, (int, float, bool, str, type(None))) for v in m.values())
    assert m["price_y"] == by["close"].iloc[-1]


def test_liquidity_stats_score_and_declared_filters(bars_1s):
    by, bx = bars_1s
    ly = liquidity_stats(by, "BTCUSDT")
    assert ly.quote_volume == pytest.approx(by["quote_volume"].sum())
    assert ly.trades_per_min == pytest.approx(by["trades"].sum() / (len(by) / 60))
    t = _ticks()
    tb = t[t["symbol"] == "BTCUSDT"]
    lt = liquidity_stats(by, "BTCUSDT", ticks=tb)
    assert lt.trade_quote_p50 == pytest.approx(np.median(tb["price"] * tb["qty"]))
    # Roll's estimator on a pure bid-ask bounce recovers the spread
    p = 100 * (1 + 0.0005 * np.where(np.random.default_rng(0).random(20_000) < 0.5, 1, -1))
    assert roll_spread_bps(p) == pytest.approx(10.0, rel=0.05)
    lx = liquidity_stats(bx, "ETHUSDT")
    assert pair_liquidity_score(ly, lx) == min(liquidity_score(ly), liquidity_score(lx))
    names = [f.name for f in LIQUIDITY_FILTERS]
    assert set(check_filters(ly, lx)) == set(names) and all(check_filters(ly, lx).values())
    assert not check_filters(ly, lx, min_trades_per_min=1e9)["min_trades_per_min"]
    assert all(f.min <= f.default <= f.max and f.step > 0 for f in LIQUIDITY_FILTERS)
