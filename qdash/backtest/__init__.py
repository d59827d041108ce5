"""qdash.backtest: pair mean-reversion backtests, parameter sweeps and walk-forward analysis."""

from .engine import (
    HEDGE_METHODS,
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
