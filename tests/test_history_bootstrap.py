"""Pure parts of the live bootstrap: how many bars a pair needs, and sealing a bar builder at the
seam (ticks of bars that came from REST are not built again)."""

import numpy as np
import pandas as pd

from qdash.analytics import PairConfig
from qdash.bars import BarBuilder
from qdash.history.bootstrap import MAX_KLINE_BARS, MAX_TRADE_BARS, History, bars_needed


def test_bars_needed_is_the_largest_window_capped_but_never_below_the_warm_up():
    cfg = PairConfig(beta_window=100, z_window=50, corr_window=120, window=400)
    assert bars_needed(cfg, "1m") == 400
    assert bars_needed(PairConfig(beta_window=100, z_window=80, corr_window=20, window=90),
                       "5m") == 180
    big = PairConfig()  # the refresh window defaults to a day of 1 s bars
    assert bars_needed(big, "1s") == MAX_TRADE_BARS
    assert bars_needed(big, "1m") == MAX_KLINE_BARS
    huge = PairConfig(beta_window=4_000, z_window=3_000, window=100)
    assert bars_needed(huge, "1s") == huge.warmup_bars + 1 == 6_999 + 1


def test_history_source_follows_binance_intervals():
    assert History("1m", 0, 0).source == "klines"
    assert History("4h", 0, 0).source == "klines"
    assert History("1s", 0, 0).source == "aggTrades"
    assert History("15s", 0, 0).source == "aggTrades"
    assert History("2m", 0, 0).source == ""  # not a kline interval: no history


def _ticks(ts, price):
    n = len(ts)
    return pd.DataFrame({"ts": np.asarray(ts, np.int64), "price": np.asarray(price, float),
                         "qty": 1.0, "trade_id": np.arange(n) + 1, "is_buyer_maker": 0})


def test_a_sealed_builder_drops_ticks_before_the_seam_and_builds_from_it():
    seam = 1_800_000_060_000
    b = BarBuilder("1m")
    b.seal(seam)
    up = b.update(_ticks([seam - 5_000, seam - 1, seam, seam + 30_000, seam + 61_000],
                         [1.0, 2.0, 3.0, 4.0, 5.0]))
    assert b.late_dropped == 2
    closed = up.closed
    assert list(closed.index.as_unit("ms").asi8) == [seam]
    assert closed["open"].iloc[0] == 3.0 and closed["close"].iloc[0] == 4.0
    assert closed["trades"].iloc[0] == 2
