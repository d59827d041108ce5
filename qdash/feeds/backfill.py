"""Filling a hole in a trade stream from Binance REST: the ticks of trade ids ``lo..hi``.

``get(path, params)`` is an awaitable returning the decoded JSON of one GET (the feed's REST
client: weight limit, ``Retry-After`` on 429/418, retries live there, not here). Strategy, exact
whenever Binance allows it:

* ``@aggTrade`` streams (ids are aggregate ids): ``/fapi/v1/aggTrades?fromId=lo``, paged by id —
  exact.
* ``@trade`` streams, hole among the last 1,000 trades: ``/fapi/v1/trades`` — exact.
* ``@trade`` streams, older hole (a long outage, a restart resuming from the store):
  ``/fapi/v1/aggTrades`` located by time (the first aggregate at or after ``t_before``, windows
  under 1 h) and then paged by ``fromId``; each aggregate ``a`` covering trade ids ``f..l`` becomes
  one tick per trade id at the aggregate's price and time, its quantity split equally (exact ids,
  prices, times and total volume; per-trade sizes approximate), source ``"<source>:rest-agg"``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pandas as pd

from ..model import tick_frame
from .decode import decode_payloads

RECENT_TRADES_LIMIT = 1000
PAGE = 1000
AGG_WINDOW_MS = 3_599_000  # aggTrades time ranges must be under 1 h

Get = Callable[[str, dict], Awaitable[list]]


async def fetch_hole(get: Get, symbol: str, lo: int, hi: int, t_before: int, t_after: int, *,
                     stream: str = "trade", source: str = "binance") -> pd.DataFrame:
    """Market ticks of ``symbol`` with ids in ``[lo, hi]`` (see the module docstring); ``t_before``
    / ``t_after`` (ms) bound their trade times."""
    if stream == "aggTrade":
        rows = await _aggs_from_id(get, symbol, lo, hi)
        ticks = decode_payloads(rows, source + ":rest", symbol=symbol).ticks
        return _select(ticks, lo, hi)
    recent = await get("/fapi/v1/trades", {"symbol": symbol, "limit": RECENT_TRADES_LIMIT})
    if recent and recent[0]["id"] <= lo:
        ticks = decode_payloads(recent, source + ":rest", symbol=symbol).ticks
        return _select(ticks, lo, hi)
    first = await _first_agg_after(get, symbol, t_before, max(t_after, t_before))
    if first is None:
        return tick_frame(symbol, [], [], [], [], [], source + ":rest-agg")
    rows = await _aggs_from_id(get, symbol, first, None, last_trade=hi)
    return expand_aggs(rows, symbol, lo, hi, source + ":rest-agg")


async def _first_agg_after(get: Get, symbol: str, start: int, end: int) -> int | None:
    """The id of the first aggregate trade at or after ``start`` (searched up to ``end``)."""
    while start <= end:
        page = await get("/fapi/v1/aggTrades", {
            "symbol": symbol, "startTime": start, "endTime": min(end, start + AGG_WINDOW_MS),
            "limit": 1})
        if page:
            return int(page[0]["a"])
        start += AGG_WINDOW_MS + 1
    return None


async def _aggs_from_id(get: Get, symbol: str, from_id: int, last_agg: int | None, *,
                        last_trade: int | None = None) -> list[dict]:
    """aggTrades rows from aggregate id ``from_id`` up to aggregate ``last_agg`` or to the row
    holding trade id ``last_trade``, paged by ``fromId``."""
    rows: list[dict] = []
    while True:
        page = await get("/fapi/v1/aggTrades", {"symbol": symbol, "fromId": from_id,
                                                "limit": PAGE})
        for r in page:
            if last_agg is not None and r["a"] > last_agg:
                return rows
            rows.append(r)
            if last_trade is not None and r["l"] >= last_trade:
                return rows
        if len(page) < PAGE:
            return rows
        from_id = page[-1]["a"] + 1


def _select(ticks: pd.DataFrame, lo: int, hi: int) -> pd.DataFrame:
    ids = ticks["trade_id"].to_numpy()
    return ticks[(ids >= lo) & (ids <= hi)]


def expand_aggs(rows: list[dict], symbol: str, lo: int, hi: int, source: str) -> pd.DataFrame:
    """aggTrades rows → one tick per trade id in ``[lo, hi]`` (quantity split equally within an
    aggregate; rows repeated across pages count once)."""
    seen, ts, ids, price, qty, side = set(), [], [], [], [], []
    for r in rows:
        if r["a"] in seen or r["l"] < lo or r["f"] > hi:
            continue
        seen.add(r["a"])
        n = r["l"] - r["f"] + 1
        for t in range(max(r["f"], lo), min(r["l"], hi) + 1):
            ts.append(r["T"])
            ids.append(t)
            price.append(float(r["p"]))
            qty.append(float(r["q"]) / n)
            side.append(1 if r["m"] else 0)
    return tick_frame(symbol, ts, ids, price, qty, side, source)
