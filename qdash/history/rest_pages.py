"""The REST page source of :mod:`qdash.history.fetch`: Binance's pagers
(:mod:`qdash.binance.pages`) parsed into store-ready pages, settled data only.

Only what can no longer change is reported as complete: a kline page ends where the kline
forming at request time opens; an aggTrades page ends :data:`AGG_SETTLE_MS` before the request
(younger trades may not be published yet); a funding page ends at the request time. A page that
ends short of what its pager covered is the last one. Times are int ms UTC.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from ..binance import pages as bp
from ..binance.limits import KLINES, MARK_PRICE_KLINES
from ..binance.rest import RestClient
from ..binance.schema import agg_ticks, funding_frame, kline_frame
from ..model import timeframe_ms
from .page import HistoryPage

AGG_SETTLE_MS = 10_000  # trades younger than this at request time may still be published
AGG_SOURCE = "binance:rest-agg"


def rest_pages(client: RestClient, kind: str, timeframe: str, symbol: str, start: int,
               end: int) -> Iterator[HistoryPage]:
    """Pages of ``kind`` (``klines``, ``mark``, ``aggTrades``, ``funding``) for ``[start, end)``
    fetched with ``client`` (see the module docstring)."""
    if kind in ("klines", "mark"):
        yield from _kline_pages(client, kind, timeframe, symbol, start, end)
    elif kind == "aggTrades":
        for p in bp.pages(bp.request_agg_trades(symbol, start, end), client.get):
            settled = min(p.end, p.sent_ms - AGG_SETTLE_MS)
            yield HistoryPage(symbol, p.start, max(p.start, settled),
                              agg_ticks(p.rows, symbol, AGG_SOURCE))
            if settled < p.end:
                return
    else:
        for p in bp.pages(bp.request_funding(symbol, start, end), client.get):
            yield HistoryPage(symbol, p.start, max(p.start, min(p.end, p.sent_ms)),
                              funding_frame(p.rows))
            if p.end > p.sent_ms:
                return


def _kline_pages(client: RestClient, kind: str, timeframe: str, symbol: str, start: int,
                 end: int) -> Iterator[HistoryPage]:
    tf = timeframe_ms(timeframe)
    path = MARK_PRICE_KLINES if kind == "mark" else KLINES
    for p in bp.pages(bp.request_klines(symbol, timeframe, start, end, path=path,
                                        clock=time.time), client.get):
        bars = kline_frame(p.rows, mark=kind == "mark")
        bars = bars[bars.index.to_numpy() + tf <= p.sent_ms]  # closed klines only
        closed_until = p.sent_ms // tf * tf  # klines opening at or after this may still change
        yield HistoryPage(symbol, p.start, max(p.start, min(p.end, closed_until)), bars)
        if p.end > closed_until:
            return
