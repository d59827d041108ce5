"""qdash.feeds: live tick sources (Binance USDⓈ-M consumer, the qdash server hub), the gap
backfill, the recorder."""

from .base import Subscription, TickFeed
from .binance import BinanceFutures
from .hub_client import Hub
from .record import Recorder

__all__ = ["BinanceFutures", "Hub", "Recorder", "Subscription", "TickFeed"]
