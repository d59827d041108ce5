"""qdash: Jupyter-native analytics for statistical arbitrage on Binance USDⓈ-M futures.

The public API a notebook imports; this module only re-exports.
"""

from .alerts import AlertManager, AlertRule, CallbackSink, Rule, WebhookSink
from .errors import DataFormatError, QdashError, StoreError, TimeframeError
from .store import Store

__all__ = ["AlertManager", "AlertRule", "CallbackSink", "DataFormatError", "QdashError", "Rule",
           "Store", "StoreError", "TimeframeError", "WebhookSink"]
__version__ = "0.1.0"
