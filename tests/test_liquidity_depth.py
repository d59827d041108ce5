"""The cost of taking liquidity from a book (THE depth walk), checked against walks computed by
hand; the pair's cost against its edge; the backtest's slippage model from recorded depth,
which never looks ahead."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qdash.analytics.liquidity import (
    BUY,
    SELL,
    DepthSlippage,
    pair_trade_cost,
    walk_book,
    walk_cost_bps,
)
from qdash.errors import AnalyticsError
from qdash.model import DEPTH_LEVELS, depth_frame

pytestmark = pytest.mark.unit

BIDS = np.array([[99.0, 1.0], [98.0, 3.0]])
ASKS = np.array([[100.0, 1.0], [101.0, 2.0], [102.0, 5.0]])
MID = 99.5


def test_buy_walks_the_asks_by_hand():
    # 250 USDT: 100 USDT at 100 (1 unit), the other 150 at 101 (150/101 units)
    w = walk_book(BIDS, ASKS, 250.0, BUY)
    qty = 1.0 + 150.0 / 101.0
    assert w.vwap == pytest.approx(250.0 / qty, rel=1e-12)  # 100.59760956...
    assert w.slippage_bps == pytest.approx((250.0 / qty - MID) / MID * 1e4, rel=1e-12)
    assert w.slippage_bps == pytest.approx(110.3125, abs=1e-4)
    assert (w.levels, w.complete, w.mid) == (2, True, MID)


def test_sell_walks_the_bids_by_hand():
    # 150 USDT: 99 USDT at 99 (1 unit), 51 at 98 (51/98 units)
    w = walk_book(BIDS, ASKS, 150.0, SELL)
    vwap = 150.0 / (1.0 + 51.0 / 98.0)
    assert w.vwap == pytest.approx(vwap, rel=1e-12)
    assert w.slippage_bps == pytest.approx((MID - vwap) / MID * 1e4, rel=1e-12)
    assert w.slippage_bps == pytest.approx(84.6514, abs=1e-4) and w.levels == 2


def test_within_the_top_level_the_cost_is_half_the_spread():
    w = walk_book(BIDS, ASKS, 50.0, BUY)
    assert w.vwap == 100.0 and w.slippage_bps == pytest.approx(0.5 / 99.5 * 1e4)


def test_a_book_too_thin_fills_the_rest_at_its_last_level_and_says_so():
    # the asks hold 100 + 202 + 510 = 812 USDT: the first two levels give 3 units for 302
    # USDT, the other 1,698 (the last level's 510 and 1,188 beyond it) are priced at 102
    w = walk_book(BIDS, ASKS, 2000.0, BUY)
    qty = 1.0 + 2.0 + 1698.0 / 102.0
    assert not w.complete and w.levels == 3
    assert w.vwap == pytest.approx(2000.0 / qty, rel=1e-12)


def test_bad_input_is_named():
    with pytest.raises(AnalyticsError, match="notional"):
        walk_book(BIDS, ASKS, 0.0, BUY)
    with pytest.raises(AnalyticsError, match="side"):
        walk_book(BIDS, ASKS, 1.0, 0)
    with pytest.raises(AnalyticsError, match="bids and asks"):
        walk_book(BIDS, np.empty((0, 2)), 1.0, BUY)


def test_vectorised_walk_equals_one_walk_per_book():
    px = np.array([[100.0, 101.0, np.nan], [100.0, 101.0, 102.0]])
    q = np.array([[1.0, 2.0, np.nan], [1.0, 2.0, 5.0]])
    slip, vwap, levels, complete = walk_cost_bps([99.0, 99.0], [100.0, 100.0], px, q, 250.0, BUY)
    one = walk_book(BIDS, ASKS, 250.0, BUY)
    assert slip[1] == pytest.approx(one.slippage_bps) and levels.tolist() == [2, 2]
    assert complete.tolist() == [True, True]
    slip, _, levels, complete = walk_cost_bps([99.0], [100.0], px[:1], q[:1], 1000.0, BUY)
    assert complete.tolist() == [False] and levels.tolist() == [2]


def test_pair_cost_against_the_edge_by_hand():
    """z = 2.5 > 0: short spread, sell y into its bids, buy x from its asks. σ of the log
    spread 0.002, exit 0.5: edge (2.5 − 0.5)·0.002·10⁴ = 40 bps."""
    c = pair_trade_cost((BIDS, ASKS), (BIDS, ASKS), 150.0, z=2.5, exit_z=0.5,
                        spread_std=0.002)
    sell = walk_book(BIDS, ASKS, 150.0, SELL).slippage_bps
    buy = walk_book(BIDS, ASKS, 150.0, BUY).slippage_bps
    assert (c.side, c.y.side, c.x.side) == (SELL, SELL, BUY)
    assert c.cost_bps == pytest.approx(sell + buy)
    assert c.edge_bps == pytest.approx(40.0) and c.net_bps == pytest.approx(40.0 - 2 * (sell + buy))
    long = pair_trade_cost((BIDS, ASKS), (BIDS, ASKS), 150.0, z=-3.0, exit_z=0.0,
                           spread_std=0.5, log=False, price_y=100.0)
    assert (long.y.side, long.x.side) == (BUY, SELL)
    assert long.edge_bps == pytest.approx(3.0 * 0.5 / 100.0 * 1e4)
    assert math.isnan(pair_trade_cost((BIDS, ASKS), (BIDS, ASKS), 1.0, z=math.nan, exit_z=0.0,
                                      spread_std=0.1).edge_bps)


def _snapshots(ts, spreads):
    """One snapshot per time, asks from 100 + spread/2 upwards, bids below the mirror."""
    lv = np.full((len(ts), 2, 2, DEPTH_LEVELS), np.nan)
    k = np.arange(DEPTH_LEVELS)
    for i, sp in enumerate(spreads):
        lv[i, 0, 0], lv[i, 1, 0] = 100.0 - sp / 2 - k, 100.0 + sp / 2 + k
        lv[i, :, 1] = 1.0
    return depth_frame(ts, np.arange(len(ts)), lv)


def test_depth_slippage_uses_the_last_snapshot_at_or_before_each_time():
    snaps = _snapshots([1_000, 2_000, 3_000], [0.2, 1.0, 2.0])
    model = DepthSlippage({"BTCUSDT": snaps}, notional=50.0, max_age_ms=1_000)
    got = model.bps("BTCUSDT", [999, 1_000, 1_500, 2_000, 2_999, 3_000, 4_000, 4_001])
    half = [0.1 / 100 * 1e4, 0.5 / 100 * 1e4, 1.0 / 100 * 1e4]  # 50 USDT fit the top level
    expect = [np.nan, half[0], half[0], half[1], half[1], half[2], half[2], np.nan]
    np.testing.assert_allclose(got, expect, rtol=1e-9)
    assert np.isnan(model.bps("ETHUSDT", [5_000])).all()
    y, x = model.pair("BTCUSDT", "ETHUSDT")([1_500])
    assert y[0] == pytest.approx(half[0]) and np.isnan(x[0])


def test_depth_slippage_never_looks_ahead():
    """Cut the recorded snapshots at T: every rate before T is the same as with all of them."""
    rng = np.random.default_rng(5)
    ts = np.sort(rng.choice(np.arange(0, 100_000, 10), 300, replace=False))
    snaps = _snapshots(ts, rng.uniform(0.1, 3.0, len(ts)))
    times = np.arange(0, 100_000, 37)
    full = DepthSlippage({"S": snaps}, notional=500.0).bps("S", times)
    for cut in (5_000, 50_000, 77_777):
        part = DepthSlippage({"S": snaps[snaps["ts"] < cut]}, notional=500.0).bps("S", times)
        before = times < cut
        np.testing.assert_array_equal(part[before], full[before])
    assert np.isfinite(full[times >= ts[0]]).all()
