"""The synthetic universe: determinism, exact aggregation, planted cointegration."""

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.stattools import coint

from qdash.sim.universe import (
    DAY_MS,
    MINUTE_MS,
    UniverseSymbol,
    make_universe,
    universe_klines,
)

T0 = 1_760_000_000_000 // DAY_MS * DAY_MS  # 2025-10-09 00:00 UTC
SUMS = ["volume", "quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume"]


def test_make_universe_shape_and_determinism():
    u = make_universe(60, seed=3)
    assert repr(u) == repr(make_universe(60, seed=3)) != repr(make_universe(60, seed=4))
    assert [s.symbol for s in u[:2]] == ["SYN001USDT", "SYN002USDT"]
    assert all(isinstance(s, UniverseSymbol) for s in u)
    assert abs(math.log(u[0].base_price / 60_000)) < 0.3
    assert abs(math.log(u[1].base_price / 3_000)) < 0.3
    assert any(s.base_price < 1 for s in u)
    clusters = {}
    for s in u:
        if s.cluster is None:
            assert math.isnan(s.beta)
        else:
            clusters.setdefault(s.cluster, []).append(s)
    assert 3 <= len(clusters) <= 5
    for members in clusters.values():
        assert 2 <= len(members) <= 4
        betas = sorted(m.beta for m in members)
        assert 1.0 in betas and all(0.5 <= b <= 2.0 for b in betas)
    vol = np.array([s.quote_volume_per_day for s in u])
    assert vol.max() / np.median(vol) > 50  # long-tailed


def test_klines_columns_window_and_onboarding():
    u = make_universe(5, seed=1)
    df = universe_klines(u, "1h", T0 + 1, T0 + DAY_MS + 1, seed=1)
    assert list(df.columns) == ["symbol", "open_time", "open", "high", "low", "close", "volume",
                                "quote_volume", "trades", "taker_buy_volume",
                                "taker_buy_quote_volume"]
    assert df["open_time"].dtype == np.int64 and df["trades"].dtype == np.int64
    for _, g in df.groupby("symbol", observed=True):
        assert g["open_time"].iloc[0] == T0 + 3_600_000  # first open ≥ start
        assert g["open_time"].iloc[-1] == T0 + DAY_MS  # last open < end
        assert np.all(np.diff(g["open_time"]) == 3_600_000)
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert (df["taker_buy_volume"] <= df["volume"]).all() and (df["trades"] >= 1).all()
    late = UniverseSymbol("SYNLATEUSDT", 10.0, 1e6, None, float("nan"), T0 + DAY_MS)
    got = universe_klines([late], "1d", T0 - DAY_MS, T0 + 3 * DAY_MS)
    assert list(got["open_time"]) == [T0 + DAY_MS, T0 + 2 * DAY_MS]


def test_same_minute_same_values_whatever_the_window():
    u = make_universe(12, seed=5)
    wide = universe_klines(u, "1m", T0 - 2 * DAY_MS, T0 + DAY_MS, seed=5)
    narrow = universe_klines(u, "1m", T0 + 5 * MINUTE_MS, T0 + 90 * MINUTE_MS, seed=5)
    cut = wide[(wide.open_time >= T0 + 5 * MINUTE_MS) & (wide.open_time < T0 + 90 * MINUTE_MS)]
    pd.testing.assert_frame_equal(cut.reset_index(drop=True), narrow.reset_index(drop=True),
                                  check_exact=True, check_categorical=False)
    # one symbol alone gives the same values as inside the universe
    alone = universe_klines([u[7]], "1m", T0, T0 + 60 * MINUTE_MS, seed=5)
    both = universe_klines(u, "1m", T0, T0 + 60 * MINUTE_MS, seed=5)
    np.testing.assert_array_equal(both[both.symbol == u[7].symbol]["close"].to_numpy(),
                                  alone["close"].to_numpy())
    # the close of the last bar of a day is the open of the next day's first bar
    for _, g in wide.groupby("symbol", observed=True):
        np.testing.assert_array_equal(g["open"].to_numpy()[1:], g["close"].to_numpy()[:-1])


@pytest.mark.parametrize("interval,minutes", [("5m", 5), ("1h", 60), ("4h", 240), ("1d", 1440)])
def test_larger_intervals_aggregate_1m_exactly(interval, minutes):
    u = make_universe(4, seed=2)
    one = universe_klines(u, "1m", T0 - DAY_MS, T0 + DAY_MS, seed=2)
    big = universe_klines(u, interval, T0 - DAY_MS, T0 + DAY_MS, seed=2)
    key = one["open_time"] // (minutes * MINUTE_MS) * (minutes * MINUTE_MS)
    ref = one.groupby([one["symbol"], key], observed=True, sort=False).agg(
        open=("open", "first"), high=("high", "max"), low=("low", "min"),
        close=("close", "last"), **{c: (c, "sum") for c in SUMS}).reset_index()
    assert len(ref) == len(big)
    for c in ("open_time", "open", "high", "low", "close", "trades"):
        np.testing.assert_array_equal(big[c].to_numpy(), ref[c].to_numpy())
    for c in SUMS:
        np.testing.assert_allclose(big[c].to_numpy(), ref[c].to_numpy(), rtol=1e-12)


def test_weekly_and_monthly_bars_are_calendar_aligned():
    u = make_universe(3, seed=0)
    w = universe_klines(u[:1], "1w", T0 - 21 * DAY_MS, T0 + 14 * DAY_MS)
    assert all(pd.Timestamp(t, unit="ms").day_of_week == 0 for t in w["open_time"])
    m = universe_klines(u[:1], "1M", T0 - 70 * DAY_MS, T0 + 5 * DAY_MS)
    assert all(pd.Timestamp(t, unit="ms").day == 1 for t in m["open_time"])
    with pytest.raises(ValueError, match="interval"):
        universe_klines(u, "7m", T0, T0 + DAY_MS)


def test_planted_cluster_is_cointegrated_and_unrelated_pairs_mostly_not():
    u = make_universe(40, seed=0)
    df = universe_klines(u, "5m", T0 - 30 * DAY_MS, T0, seed=0)
    close = df.pivot(index="open_time", columns="symbol", values="close")
    logp = np.log(close)
    by_cluster = {}
    for s in u:
        if s.cluster is not None:
            by_cluster.setdefault(s.cluster, []).append(s)
    members = by_cluster[min(by_cluster)]
    leader = next(m for m in members if m.beta == 1.0)
    for m in members:
        if m is leader:
            continue
        y, x = logp[m.symbol].to_numpy(), logp[leader.symbol].to_numpy()
        assert coint(y, x, maxlag=2, autolag=None)[1] < 0.01
        slope = np.polyfit(x, y, 1)[0]
        assert abs(slope - m.beta) < 0.15 * m.beta
    loners = [s.symbol for s in u if s.cluster is None][:12]
    pvals = [coint(logp[a].to_numpy(), logp[b].to_numpy(), maxlag=2, autolag=None)[1]
             for a, b in zip(loners[0::2], loners[1::2])]
    assert sum(p < 0.05 for p in pvals) <= 1
