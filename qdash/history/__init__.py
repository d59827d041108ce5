"""History: Binance USDⓈ-M klines, mark-price klines, aggTrades and funding into the store, from
REST (:mod:`.fetch`) and Binance's bulk archive (:mod:`.bulk`), with what is complete recorded in
the store (:mod:`qdash.store.coverage`); ``qdash fetch`` and ``qdash archive`` live in
:mod:`.cli`."""

from .fetch import FetchError, FetchReport, fetch

__all__ = ["FetchError", "FetchReport", "fetch"]
