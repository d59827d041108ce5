"""Pair analytics: hedge ratios, spread statistics, liquidity — batch and live.

The public API of :mod:`qdash.analytics` (the lead re-exports it from :mod:`qdash`).
"""

from .hedge import METHODS, HedgeResult, align, hedge_ratio
from .liquidity import (
    LIQUIDITY_FILTERS,
    FilterParam,
    LiquidityStats,
    check_filters,
    liquidity_score,
    liquidity_stats,
    pair_liquidity_score,
    roll_spread_bps,
)
from .pair import PairAnalytics, PairConfig, PairState, compute_refresh
from .signal import HEDGE_METHODS, SignalSpec, align_bars, compute_signal
from .stats import (
    ADFResult,
    CointResult,
    adf,
    coint,
    correlation,
    half_life,
    hurst,
    log_returns,
    spread,
    zscore,
)

__all__ = [
    "ADFResult", "CointResult", "HEDGE_METHODS", "SignalSpec", "compute_signal", "FilterParam",
    "HedgeResult", "LIQUIDITY_FILTERS", "LiquidityStats",
    "METHODS", "PairAnalytics", "PairConfig", "PairState", "adf", "align", "align_bars",
    "check_filters", "coint", "compute_refresh", "correlation", "half_life", "hedge_ratio", "hurst",
    "liquidity_score", "liquidity_stats", "log_returns", "pair_liquidity_score",
    "roll_spread_bps", "spread", "zscore",
]
