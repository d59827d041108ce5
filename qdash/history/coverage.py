"""What history the store holds completely: time ranges fetched in full, per symbol and kind.

A range ``[start_ms, end_ms)`` (int ms UTC) of ``(symbol, kind, timeframe)`` is *covered* when every
row of that kind the source has in it is stored. Fetches record what they stored in the same
transaction as the rows (:func:`add`), so an interrupted fetch keeps what it committed and the
next run asks only for :func:`missing` ranges. Ranges of one key are kept merged (no two overlap
or touch). ``kind`` is a fetch kind (``klines``, ``mark``, ``aggTrades``, ``funding``);
``timeframe`` is empty for kinds without one.
"""

from __future__ import annotations

import sqlite3

from ..store import Store

TABLE = """
CREATE TABLE IF NOT EXISTS fetch_coverage (
    symbol TEXT NOT NULL,
    kind TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    PRIMARY KEY (symbol, kind, timeframe, start_ms)
) WITHOUT ROWID
"""


def ensure_table(store: Store) -> None:
    """Create the coverage table of ``store`` if it has none."""
    with store.transaction() as conn:
        conn.execute(TABLE)


def covered(store: Store, symbol: str, kind: str, timeframe: str, start: int,
            end: int) -> list[tuple[int, int]]:
    """Covered ranges that intersect ``[start, end)``, clipped to it, in time order."""
    rows = store.connection().execute(
        "SELECT start_ms, end_ms FROM fetch_coverage WHERE symbol = ? AND kind = ? "
        "AND timeframe = ? AND start_ms < ? AND end_ms > ? ORDER BY start_ms",
        (symbol, kind, timeframe, end, start)).fetchall()
    return [(max(s, start), min(e, end)) for s, e in rows]


def missing(store: Store, symbol: str, kind: str, timeframe: str, start: int,
            end: int) -> list[tuple[int, int]]:
    """The parts of ``[start, end)`` not covered yet, in time order."""
    out, cur = [], start
    for s, e in covered(store, symbol, kind, timeframe, start, end):
        if s > cur:
            out.append((cur, s))
        cur = max(cur, e)
    if cur < end:
        out.append((cur, end))
    return out


def add(conn: sqlite3.Connection, symbol: str, kind: str, timeframe: str, start: int,
        end: int) -> None:
    """Mark ``[start, end)`` covered, merging with ranges it overlaps or touches. Call inside the
    transaction that stores the rows of that range."""
    if end <= start:
        return
    key = (symbol, kind, timeframe)
    lo, hi = conn.execute(
        "SELECT MIN(start_ms), MAX(end_ms) FROM fetch_coverage WHERE symbol = ? AND kind = ? "
        "AND timeframe = ? AND start_ms <= ? AND end_ms >= ?", (*key, end, start)).fetchone()
    if lo is not None:
        conn.execute("DELETE FROM fetch_coverage WHERE symbol = ? AND kind = ? AND timeframe = ? "
                     "AND start_ms <= ? AND end_ms >= ?", (*key, end, start))
        start, end = min(start, lo), max(end, hi)
    conn.execute("INSERT INTO fetch_coverage VALUES (?, ?, ?, ?, ?)", (*key, start, end))
