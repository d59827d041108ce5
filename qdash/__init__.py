"""qdash: Jupyter-native analytics for statistical arbitrage on Binance USDⓈ-M futures.

The public API a notebook imports; this module only re-exports.
"""

from .errors import DataFormatError, QdashError, StoreError, TimeframeError
from .store import Store

__all__ = ["DataFormatError", "QdashError", "Store", "StoreError", "TimeframeError"]
__version__ = "0.1.0"
