"""qdash.backtest: pair mean-reversion backtests, parameter sweeps and walk-forward analysis."""

from .engine import (
    BacktestResult,
    InSampleWarning,
    Params,
    Signals,
    WalkForwardResult,
    run,
    signals,
    sweep,
    walk_forward,
)

__all__ = ["BacktestResult", "InSampleWarning", "Params", "Signals", "WalkForwardResult", "run",
           "signals", "sweep", "walk_forward"]
