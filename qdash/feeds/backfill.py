"""Filling a hole in a trade stream from Binance REST: the ticks of trade ids ``lo..hi``.

``get(path, params)`` is an awaitable returning the decoded JSON of one GET (the feed's
:class:`~qdash.binance.rest.RestClient`: weight limit, rate-limit answers and retries live there,
not here); the requests are :mod:`qdash.binance.pages`'. Strategy, exact whenever Binance allows
it:

* ``@aggTrade`` streams (ids are aggregate ids): aggTrades from ``fromId=lo``, paged by id — exact.
* ``@trade`` streams, hole among the last 1,000 trades: the recent-trades endpoint — exact.
* ``@trade`` streams, older hole (a long outage, a restart resuming from the store): aggTrades
  located by time (the first aggregate at or after ``t_before``, windows under 1 h) and then
  paged by ``fromId``; each aggregate ``a`` covering trade ids ``f..l`` becomes one tick per trade
  id at the aggregate's price and time, its quantity split equally
  (:func:`qdash.binance.schema.agg_ticks`: exact ids, prices, times and total volume; per-trade
  sizes approximate), source ``"<source>:rest-agg"``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pandas as pd

from ..binance import pages as bp
from ..binance.decode import decode_payloads
from ..binance.schema import agg_ticks

Get = Callable[[str, dict], Awaitable[list]]


async def fetch_hole(get: Get, symbol: str, lo: int, hi: int, t_before: int, t_after: int, *,
                     stream: str = "trade", source: str = "binance") -> pd.DataFrame:
    """Market ticks of ``symbol`` with ids in ``[lo, hi]`` (see the module docstring); ``t_before``
    / ``t_after`` (ms) bound their trade times."""
    if stream == "aggTrade":
        rows = await _aggs_from_id(get, symbol, lo, last_agg=hi)
        ticks = decode_payloads(rows, source + ":rest", symbol=symbol).ticks
        return _select(ticks, lo, hi)
    recent = await get(*bp.query_recent_trades(symbol))
    if recent and recent[0]["id"] <= lo:
        ticks = decode_payloads(recent, source + ":rest", symbol=symbol).ticks
        return _select(ticks, lo, hi)
    first = await _first_agg_after(get, symbol, t_before, max(t_after, t_before))
    rows = [] if first is None else await _aggs_from_id(get, symbol, first, last_trade=hi)
    unique = list({r["a"]: r for r in rows}.values())  # a row repeated across pages counts once
    return _select(agg_ticks(unique, symbol, source + ":rest-agg"), lo, hi)


async def _first_agg_after(get: Get, symbol: str, start: int, end: int) -> int | None:
    """The id of the first aggregate trade at or after ``start`` (searched up to ``end``)."""
    async for page in bp.apages(bp.request_agg_trades(symbol, start, end + 1, limit=1), get):
        if page.rows:
            return int(page.rows[0]["a"])
    return None


async def _aggs_from_id(get: Get, symbol: str, from_id: int, *, last_agg: int | None = None,
                        last_trade: int | None = None) -> list[dict]:
    """aggTrades rows from aggregate id ``from_id`` up to aggregate ``last_agg`` or to the row
    holding trade id ``last_trade``, paged by ``fromId``."""
    rows: list[dict] = []
    async for page in bp.apages(bp.request_agg_trades_from_id(symbol, from_id), get):
        for r in page.rows:
            if last_agg is not None and r["a"] > last_agg:
                return rows
            rows.append(r)
            if last_trade is not None and r["l"] >= last_trade:
                return rows
    return rows


def _select(ticks: pd.DataFrame, lo: int, hi: int) -> pd.DataFrame:
    ids = ticks["trade_id"].to_numpy()
    return ticks[(ids >= lo) & (ids <= hi)]
