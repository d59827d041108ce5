"""Pair analytics: hedge ratios, spread statistics, liquidity — batch and live.

The public API of :mod:`qdash.analytics` (the lead re-exports it from :mod:`qdash`). The pair's
spread and z-score come from :func:`compute_signal` (batch) and :class:`PairState` (live), by
the signal's alignment and gap rule. ``align``, ``spread`` and ``zscore`` are deprecated here:
they know nothing of that rule (see :data:`_DEPRECATED`).
"""

import importlib
import warnings

from .hedge import METHODS, HedgeResult, hedge_ratio
from .liquidity import (
    LIQUIDITY_FILTERS,
    BookWalk,
    DepthSlippage,
    FilterParam,
    LiquidityStats,
    PairTradeCost,
    check_filters,
    liquidity_score,
    liquidity_stats,
    pair_liquidity_score,
    pair_trade_cost,
    roll_spread_bps,
    walk_book,
    walk_cost_bps,
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
    return_correlations,
)

__all__ = [
    "ADFResult", "BookWalk", "CointResult", "DepthSlippage", "FilterParam", "HEDGE_METHODS",
    "HedgeResult", "LIQUIDITY_FILTERS", "LiquidityStats", "METHODS", "PairAnalytics",
    "PairConfig", "PairState", "PairTradeCost", "SignalSpec", "adf", "align_bars",
    "check_filters", "coint", "compute_refresh", "compute_signal", "correlation", "half_life",
    "hedge_ratio", "hurst", "liquidity_score", "liquidity_stats", "log_returns",
    "pair_liquidity_score", "pair_trade_cost", "return_correlations", "roll_spread_bps",
    "walk_book", "walk_cost_bps",
]

_DEPRECATED = {
    "align": ("hedge", "it is hedge_ratio's join without the signal's gap rule; use align_bars"),
    "spread": ("stats", "it ignores the signal's gap rule; use compute_signal(...)['spread']"),
    "zscore": ("stats", "it ignores the signal's gap rule; use compute_signal(...)['zscore']"),
}
"""Names that left the public API: (module that still holds them, why and what to use)."""


def __getattr__(name: str):
    if name in _DEPRECATED:
        module, why = _DEPRECATED[name]
        warnings.warn(f"qdash.analytics.{name} is deprecated: {why}", DeprecationWarning,
                      stacklevel=2)
        return getattr(importlib.import_module(f".{module}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
