"""What history the store holds completely: the ``fetch_coverage`` table.

A range ``[start_ms, end_ms)`` (int ms UTC) of ``(symbol, kind, timeframe)`` is *covered* when every
row of that kind the source has in it is stored. Fetches mark what they stored in the same
transaction as the rows (:meth:`Coverage.mark`), so an interrupted fetch keeps what it committed
and the next run asks only for :meth:`Coverage.missing` ranges. Ranges of one key are kept merged
(no two overlap or touch). ``kind`` is a fetch kind (``klines``, ``mark``, ``aggTrades``,
``funding``); ``timeframe`` is empty for kinds without one.
"""

from __future__ import annotations

from .connection import StoreFile


class Coverage:
    """``store.coverage``: the covered ranges of one store."""

    def __init__(self, store: StoreFile):
        self._store = store

    def covered(self, symbol: str, kind: str, timeframe: str, start: int,
                end: int) -> list[tuple[int, int]]:
        """Covered ranges that intersect ``[start, end)``, clipped to it, in time order."""
        rows = self._store.connection().execute(
            "SELECT start_ms, end_ms FROM fetch_coverage WHERE symbol = ? AND kind = ? "
            "AND timeframe = ? AND start_ms < ? AND end_ms > ? ORDER BY start_ms",
            (symbol, kind, timeframe, end, start)).fetchall()
        return [(max(s, start), min(e, end)) for s, e in rows]

    def missing(self, symbol: str, kind: str, timeframe: str, start: int,
                end: int) -> list[tuple[int, int]]:
        """The parts of ``[start, end)`` not covered yet, in time order."""
        out, cur = [], start
        for s, e in self.covered(symbol, kind, timeframe, start, end):
            if s > cur:
                out.append((cur, s))
            cur = max(cur, e)
        if cur < end:
            out.append((cur, end))
        return out

    def mark(self, symbol: str, kind: str, timeframe: str, start: int, end: int) -> None:
        """Mark ``[start, end)`` covered, merging with ranges it overlaps or touches. Call inside
        the :meth:`~qdash.store.Store.transaction` that stores the rows of that range (it joins
        it)."""
        if end <= start:
            return
        key = (symbol, kind, timeframe)
        with self._store.transaction() as conn:
            lo, hi = conn.execute(
                "SELECT MIN(start_ms), MAX(end_ms) FROM fetch_coverage WHERE symbol = ? "
                "AND kind = ? AND timeframe = ? AND start_ms <= ? AND end_ms >= ?",
                (*key, end, start)).fetchone()
            if lo is not None:
                conn.execute("DELETE FROM fetch_coverage WHERE symbol = ? AND kind = ? "
                             "AND timeframe = ? AND start_ms <= ? AND end_ms >= ?",
                             (*key, end, start))
                start, end = min(start, lo), max(end, hi)
            conn.execute("INSERT INTO fetch_coverage VALUES (?, ?, ?, ?, ?)", (*key, start, end))
