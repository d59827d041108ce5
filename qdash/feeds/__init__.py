"""qdash.feeds: live tick sources (Binance USDⓈ-M consumer), the frame decoder, the recorder."""

from .base import Subscription, TickFeed
from .binance import BinanceFutures
from .record import Recorder

__all__ = ["BinanceFutures", "Recorder", "Subscription", "TickFeed"]
