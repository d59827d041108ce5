"""Recorded order books as the backtest's slippage model (``run(..., slippage_model=...)``): the
hand-computed round trip of test_backtest with each fill's slippage taken from the last
snapshot at or before its fill time, and no look-ahead (snapshots cut at T change nothing
before T)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qdash.analytics.liquidity import DepthSlippage
from qdash.backtest import run
from qdash.errors import BacktestError
from qdash.model import DEPTH_LEVELS, depth_frame

pytestmark = pytest.mark.unit

H_MS = 3_600_000
IDX = pd.date_range("2024-07-18", periods=8, freq="1h", tz="UTC")
T0 = int(IDX[0].value // 1_000_000)
# the short-spread round trip of test_backtest: entry filled at bar 2's close, exit at bar 5's
Y = pd.Series([100, 100, 102, 101, 99, 98, 98, 98], index=IDX, dtype=float)
X = pd.Series([50, 50, 50, 51, 50, 49, 49, 49], index=IDX, dtype=float)
Z = [0, 2.5, 1, 0.5, -0.2, 0, 0, 0]
Q = 0.95 * 10_000 / (102 + 2 * 50)  # qty_y at entry (price-space β = 2)


def book(ts, mids, spreads):
    """Snapshots whose top level holds 10⁶ units: any order fills at the best price, so the
    slippage is half the spread over the mid, in bps."""
    lv = np.full((len(ts), 2, 2, DEPTH_LEVELS), np.nan)
    for i, (m, sp) in enumerate(zip(mids, spreads)):
        lv[i, 0, 0, 0], lv[i, 1, 0, 0] = m - sp / 2, m + sp / 2
        lv[i, :, 1, 0] = 1e6
    return depth_frame(ts, np.arange(len(ts)), lv)


# y's book: 2 bps half-spread from the start, 10 bps from bar 4; x's: 4 bps throughout
SNAPS = {"Y": book([T0, T0 + 4 * H_MS], [100.0, 100.0], [0.04, 0.2]),
         "X": book([T0], [50.0], [0.04])}


def backtest(model=None, slippage_bps=0.0):
    return run(Y, X, beta=2.0, z=Z, log=False, fee_bps=0, slippage_bps=slippage_bps,
               slippage_model=model)


def test_each_fill_pays_the_slippage_of_the_book_before_it():
    model = DepthSlippage(SNAPS, notional=1_000.0).pair("Y", "X")
    r = backtest(model)
    t = r.trades.iloc[0]
    # entry filled at bar 2's close (03:00): y 2 bps, x 4 bps; exit at bar 5's close (06:00):
    # y 10 bps (the snapshot of 04:00), x 4 bps
    entry = Q * 102 * 2e-4 + 2 * Q * 50 * 4e-4
    exit_ = Q * 98 * 10e-4 + 2 * Q * 49 * 4e-4
    assert t.slippage == pytest.approx(entry + exit_, rel=1e-12)
    assert r.metrics["total_slippage"] == pytest.approx(entry + exit_, rel=1e-12)
    flat = backtest(slippage_bps=0.0)
    assert r.equity.iloc[-1] == pytest.approx(flat.equity.iloc[-1] - entry - exit_, rel=1e-12)
    assert r.params["slippage_model"] is True


def test_a_constant_model_equals_the_flat_slippage_exactly():
    n = len(IDX)
    flat = backtest(slippage_bps=3.0)
    same = backtest(lambda t: (np.full(n, 3.0), np.full(n, 3.0)), slippage_bps=0.0)
    pd.testing.assert_series_equal(flat.equity, same.equity)
    gaps = backtest(lambda t: (np.full(n, np.nan), np.full(n, np.nan)), slippage_bps=3.0)
    pd.testing.assert_series_equal(flat.equity, gaps.equity)  # NaN: the flat rate


def test_recorded_depth_never_looks_ahead():
    """Snapshots cut at T (04:00, before the exit fill): every bar whose fills happen before T
    is the same; only the exit, after T, changes."""
    cut = T0 + 4 * H_MS
    full = backtest(DepthSlippage(SNAPS, notional=1_000.0).pair("Y", "X"))
    part_snaps = {s: f[f["ts"] < cut] for s, f in SNAPS.items()}
    part = backtest(DepthSlippage(part_snaps, notional=1_000.0).pair("Y", "X"))
    before = full.equity.index + pd.Timedelta(hours=1) < pd.Timestamp(cut, unit="ms", tz="UTC")
    pd.testing.assert_series_equal(full.equity[before], part.equity[before])
    assert full.equity.iloc[-1] < part.equity.iloc[-1]  # the wider book after T costs more


def test_a_bad_model_is_refused():
    with pytest.raises(BacktestError, match="bps_y, bps_x"):
        backtest(lambda t: (np.zeros(3), np.zeros(3)))
    with pytest.raises(BacktestError, match="negative"):
        backtest(lambda t: (np.full(len(t), -1.0), np.zeros(len(t))))
