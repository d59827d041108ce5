"""qdash: Jupyter-native analytics for statistical arbitrage on Binance USDⓈ-M futures.

The public API a notebook imports; this module only re-exports. ``qdash.backtest`` is the
package (``import qdash.backtest as bt``); ``qdash.run_backtest`` is its :func:`run`.
``qdash.scan`` is the scanner package, and calling it runs :func:`qdash.scan.scan`; likewise
``qdash.book(...)`` runs :func:`qdash.book.engine.book`.

Names are imported on first use (PEP 562): ``import qdash`` is instant, and a command line tool
that needs the store does not pay for numba, Dask, ipywidgets and Bokeh.
"""

import importlib
import warnings

_EXPORTS = {
    "AlertManager": "alerts", "AlertRule": "alerts", "CallbackSink": "alerts", "Rule": "alerts",
    "WebhookSink": "alerts",
    "HEDGE_METHODS": "analytics", "PairAnalytics": "analytics", "PairConfig": "analytics",
    "PairState": "analytics", "SignalSpec": "analytics", "adf": "analytics", "coint": "analytics",
    "compute_signal": "analytics", "correlation": "analytics", "half_life": "analytics",
    "hedge_ratio": "analytics", "hurst": "analytics", "liquidity_stats": "analytics",
    "DepthSlippage": "analytics", "pair_trade_cost": "analytics", "walk_book": "analytics",
    "sweep": "backtest", "walk_forward": "backtest",
    "BarBuilder": "bars", "resample": "bars", "stored_candles": "bars",
    "DataFormatError": "errors", "QdashError": "errors", "StoreError": "errors",
    "TimeframeError": "errors",
    "BinanceFutures": "feeds", "Hub": "feeds",
    "fetch": "history",
    "load": "io", "read_bars": "io", "read_ticks": "io", "to_csv": "io", "to_parquet": "io",
    "LiveSession": "live",
    "Store": "store",
    "PaperTrader": "trade",
    "Dashboard": "app", "PairMonitor": "app", "load_bokehjs": "app",
}
_RENAMED = {"run_backtest": ("backtest", "run")}
_SUBPACKAGES = ("backtest", "book", "scan")
_DEPRECATED = {"spread": "compute_signal(...)['spread']", "zscore": "compute_signal(...)['zscore']"}
"""Names that left the public API (they ignore the pair signal's gap rule) -> what to use."""

__all__ = sorted([*_EXPORTS, *_RENAMED, *_SUBPACKAGES])
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _DEPRECATED:
        warnings.warn(f"qdash.{name} is deprecated: it ignores the pair signal's gap rule; use "
                      f"qdash.{_DEPRECATED[name]}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(".analytics.stats", __name__), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    if name in _EXPORTS or name in _RENAMED:
        module, attr = _RENAMED.get(name, (_EXPORTS.get(name), name))
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value  # the next lookup is a plain attribute
        return value
    raise AttributeError(f"module 'qdash' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
