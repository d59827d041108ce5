"""qdash: Jupyter-native analytics for statistical arbitrage on Binance USDⓈ-M futures.

The public API a notebook imports; this module only re-exports. ``qdash.backtest`` is the
package (``import qdash.backtest as bt``); ``qdash.run_backtest`` is its :func:`run`.
``qdash.scan`` is the scanner package, and calling it runs :func:`qdash.scan.scan`.
``qdash.Dashboard`` is imported
on first use (it pulls in ipywidgets and Bokeh).
"""

from . import backtest, scan
from .alerts import AlertManager, AlertRule, CallbackSink, Rule, WebhookSink
from .analytics import (
    HEDGE_METHODS,
    PairAnalytics,
    PairConfig,
    PairState,
    SignalSpec,
    adf,
    coint,
    compute_signal,
    correlation,
    half_life,
    hedge_ratio,
    hurst,
    liquidity_stats,
    spread,
    zscore,
)
from .backtest import run as run_backtest
from .backtest import sweep, walk_forward
from .bars import BarBuilder, resample, stored_candles
from .errors import DataFormatError, QdashError, StoreError, TimeframeError
from .feeds import BinanceFutures, Hub
from .history import fetch
from .io import load, read_bars, read_ticks, to_csv, to_parquet
from .live import LiveSession
from .store import Store

__all__ = [
    "HEDGE_METHODS", "SignalSpec", "compute_signal", "run_backtest",
    "AlertManager", "AlertRule", "BarBuilder", "BinanceFutures", "CallbackSink", "Dashboard",
    "DataFormatError", "Hub", "LiveSession", "PairAnalytics", "PairConfig", "PairState",
    "QdashError", "Rule", "Store", "StoreError", "TimeframeError", "WebhookSink", "adf",
    "backtest", "coint", "correlation", "fetch", "half_life", "hedge_ratio", "hurst",
    "liquidity_stats", "load", "read_bars", "read_ticks", "resample", "scan", "spread",
    "stored_candles", "sweep", "to_csv", "to_parquet", "walk_forward", "zscore",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "Dashboard":
        from .ui import Dashboard
        return Dashboard
    raise AttributeError(f"module 'qdash' has no attribute {name!r}")
