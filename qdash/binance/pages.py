"""Every Binance REST pager of qdash, written once and free of I/O (nautilus_trader's model).

``query_*`` builds ONE request (a :class:`Query`: ``client.get(*query)``). ``request_*`` returns a
pager: a generator that yields a :class:`Query`, is sent the decoded rows, then yields the
:class:`Page` of those rows, and so on until the range is done. The pager owns Binance's paging
rules (page sizes, the aggTrades window under one hour, paging by ``fromId``); the caller owns the
transport and any policy (when to stop early, what counts as settled). :func:`pages` drives a
pager with a blocking ``get(path, params)`` (e.g. :meth:`qdash.binance.rest.RestClient.get`),
:func:`apages` with an awaitable one. Times are int ms UTC; ranges are ``[start, end)``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from ..model import timeframe_ms
from .limits import (
    AGG_TRADES,
    AGG_TRADES_LIMIT,
    AGG_WINDOW_MS,
    DEPTH,
    DEPTH_LIMITS,
    DEPTH_SNAPSHOT_LIMIT,
    FUNDING_LIMIT,
    FUNDING_RATE,
    KLINE_PAGE_SIZES,
    KLINES,
    PREMIUM_INDEX,
    TRADES,
    TRADES_LIMIT,
    kline_weight,
)


class Query(NamedTuple):
    """One GET: ``path`` and ``params`` (``client.get(*query)``)."""

    path: str
    params: dict


@dataclass
class Page:
    """Rows of one response, as Binance sent them (clipped to the range asked), and the range
    ``[start, end)`` they complete; ``sent_ms``: wall time just before the request went out."""

    rows: list
    start: int
    end: int
    sent_ms: int


Pager = Generator["Query | Page", list, None]
Clock = Callable[[], float]


def pages(pager: Pager, get: Callable[[str, dict], list]) -> Iterator[Page]:
    """The pages of ``pager``, each request sent with the blocking ``get(path, params)``."""
    for query in pager:
        yield pager.send(get(*query))


async def apages(pager: Pager, get: Callable[[str, dict], Awaitable[list]]
                 ) -> AsyncIterator[Page]:
    """The pages of ``pager``, each request sent with the awaitable ``get(path, params)``."""
    for query in pager:
        yield pager.send(await get(*query))


def _ms(clock: Clock) -> int:
    return int(clock() * 1000)


# --- single requests -------------------------------------------------------------------------
def query_recent_trades(symbol: str) -> Query:
    """The most recent market trades (``/trades``, at most :data:`TRADES_LIMIT`)."""
    return Query(TRADES, {"symbol": symbol, "limit": TRADES_LIMIT})


def query_agg_trades_at(symbol: str, start: int, limit: int = 1) -> Query:
    """The first ``limit`` aggregate trades at or after ``start`` within the aggTrades window."""
    return Query(AGG_TRADES, {"symbol": symbol, "startTime": start,
                              "endTime": start + AGG_WINDOW_MS, "limit": limit})


def query_last_agg_trade(symbol: str) -> Query:
    """The most recent aggregate trade."""
    return Query(AGG_TRADES, {"symbol": symbol, "limit": 1})


def query_klines(symbol: str, interval: str, start: int, end: int, limit: int,
                 path: str = KLINES) -> Query:
    """Klines (or mark-price klines with ``path``) opening in ``[start, end]``, at most
    ``limit``."""
    return Query(path, {"symbol": symbol, "interval": interval, "startTime": start,
                        "endTime": end, "limit": limit})


def query_depth(symbol: str, limit: int = DEPTH_SNAPSHOT_LIMIT) -> Query:
    """The symbol's order book, ``limit`` levels a side (5, 10, 20, 50, 100, 500 or 1000), with
    its ``lastUpdateId`` (the start of a local book, :mod:`qdash.binance.book`)."""
    if limit not in DEPTH_LIMITS:
        raise ValueError(f"depth limit must be one of {DEPTH_LIMITS}, got {limit}")
    return Query(DEPTH, {"symbol": symbol, "limit": limit})


def query_premium_index(symbol: str) -> Query:
    """The symbol's premiumIndex entry (mark and index price, funding rate and time)."""
    return Query(PREMIUM_INDEX, {"symbol": symbol})


# --- pagers ----------------------------------------------------------------------------------
def best_kline_limit(rows_left: int) -> int:
    """The klines page size that fetches ``rows_left`` rows with the least total weight (ties:
    fewer requests)."""
    def cost(limit):
        return math.ceil(rows_left / limit) * kline_weight(limit), math.ceil(rows_left / limit)
    return min(KLINE_PAGE_SIZES, key=cost)


def request_klines(symbol: str, interval: str, start: int, end: int, *, path: str = KLINES,
                   clock: Clock = time.time) -> Pager:
    """Kline rows opening in ``[start, end)`` (``interval`` of fixed length), each page as large
    as the least weight allows; a page ends after its last kline's interval."""
    tf = timeframe_ms(interval)
    cur = start
    while cur < end:
        limit = best_kline_limit(math.ceil((end - cur) / tf))
        sent = _ms(clock)
        rows = yield query_klines(symbol, interval, cur, end - 1, limit, path)
        full = len(rows) >= limit
        page_end = int(rows[-1][0]) + tf if full else end
        yield Page(rows, cur, page_end, sent)
        if not full:
            return
        cur = page_end


def request_funding(symbol: str, start: int, end: int, *, clock: Clock = time.time) -> Pager:
    """fundingRate rows with funding times in ``[start, end)``."""
    cur = start
    while cur < end:
        sent = _ms(clock)
        rows = yield Query(FUNDING_RATE, {"symbol": symbol, "startTime": cur,
                                          "endTime": end - 1, "limit": FUNDING_LIMIT})
        full = len(rows) >= FUNDING_LIMIT
        page_end = int(rows[-1]["fundingTime"]) + 1 if full else end
        yield Page(rows, cur, page_end, sent)
        if not full:
            return
        cur = page_end


def request_agg_trades(symbol: str, start: int, end: int, *, limit: int = AGG_TRADES_LIMIT,
                       clock: Clock = time.time) -> Pager:
    """aggTrades rows with trade times in ``[start, end)``: windows under one hour located by
    time until a window fills a page, then paged by ``fromId`` (exact, also within one
    millisecond). A full page ends at its last trade time (more may share it)."""
    cur = start
    while cur < end:
        sent = _ms(clock)
        window_end = min(cur + AGG_WINDOW_MS, end - 1)
        rows = yield Query(AGG_TRADES, {"symbol": symbol, "startTime": cur,
                                        "endTime": window_end, "limit": limit})
        if len(rows) < limit:  # the whole window came
            yield Page(rows, cur, window_end + 1, sent)
            cur = window_end + 1
            continue
        yield Page(rows, cur, rows[-1]["T"], sent)
        yield from request_agg_trades_from_id(symbol, rows[-1]["a"] + 1, max(cur, rows[-1]["T"]),
                                              end, limit=limit, clock=clock)
        return


def request_agg_trades_from_id(symbol: str, from_id: int, start: int = 0, end: int = sys.maxsize,
                               *, limit: int = AGG_TRADES_LIMIT, clock: Clock = time.time
                               ) -> Pager:
    """aggTrades rows from aggregate id ``from_id`` on, paged by ``fromId``, with trade times
    before ``end``; pages cover ``[start, ...)`` and the last one ends at ``end``."""
    cur = start
    while True:
        sent = _ms(clock)
        rows = yield Query(AGG_TRADES, {"symbol": symbol, "fromId": from_id, "limit": limit})
        kept = [r for r in rows if r["T"] < end]
        full = len(kept) == limit
        page_end = kept[-1]["T"] if full else end
        yield Page(kept, cur, page_end, sent)
        if not full:
            return
        cur, from_id = max(cur, page_end), kept[-1]["a"] + 1
