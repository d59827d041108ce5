"""qdash.backtest: pair mean-reversion backtests, parameter sweeps and walk-forward analysis."""

from ..analytics.signal import HEDGE_METHODS
from .engine import (
    BacktestResult,
    InSampleWarning,
    Params,
    WalkForwardResult,
    run,
    sweep,
    walk_forward,
)

__all__ = ["HEDGE_METHODS", "BacktestResult", "InSampleWarning", "Params", "WalkForwardResult",
           "run", "sweep", "walk_forward"]
