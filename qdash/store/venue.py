"""Whose data a store holds (``store_meta.venue``): a real exchange's or the simulator's, never
both.

Every write of trades, candles or funding carries its venue (:data:`qdash.model.EXCHANGE_VENUE`
or :data:`qdash.model.SIM_VENUE`; a tick batch also by its ``source``, :func:`qdash.model.
source_venue`), checked inside the write's transaction: the first write with a venue names the
store's, and a write of the other venue is refused with a :class:`StoreError` and stores
nothing. Writes of no venue (files, collectors, pushes, candles built from stored ticks) are
taken by any store.
"""

from __future__ import annotations

import sqlite3

import pandas as pd

from ..errors import StoreError
from ..model import EXCHANGE_VENUE, SIM_VENUE, source_venue
from .paths import default_db_path

VENUE_CODES = {EXCHANGE_VENUE: 1, SIM_VENUE: 2}
"""``store_meta.value`` of each venue (the table holds integers)."""
VENUES = {code: venue for venue, code in VENUE_CODES.items()}


def stored_venue(conn: sqlite3.Connection) -> str | None:
    """The venue of the store on ``conn``; None while nothing with a venue was written."""
    row = conn.execute("SELECT value FROM store_meta WHERE name = 'venue'").fetchone()
    return VENUES.get(row[0]) if row else None


def claim_venue(conn: sqlite3.Connection, venue: str | None, path: str, what: str) -> None:
    """Check that ``what`` (e.g. ``"candles of BTCUSDT"``) of ``venue`` may go into the store at
    ``path``, and name the store's venue on its first such write. Call inside the write's
    transaction, so a refused write rolls back whole. ``venue`` None: nothing to check."""
    if venue is None:
        return
    if venue not in VENUE_CODES:
        raise ValueError(f"venue must be one of {sorted(VENUE_CODES)}, got {venue!r}")
    held = stored_venue(conn)
    if held is None:
        conn.execute("INSERT OR REPLACE INTO store_meta (name, value) VALUES ('venue', ?)",
                     (VENUE_CODES[venue],))
    elif held != venue:
        raise StoreError(
            f"{path} holds {held} data; these are {venue} {what}, not stored here (nothing "
            f"written): simulated and exchange data never share a store. The simulator's "
            f"default store is {default_db_path(simulated=True)}; or pass another --db")


def ticks_venue(sources: pd.Series, venue: str | None) -> str | None:
    """The venue of a tick batch: the one its ``sources`` name (:func:`qdash.model.source_venue`),
    which must agree with each other and with ``venue`` when given; None when neither names one.
    Raises :class:`StoreError` for a batch that mixes venues."""
    first = sources.iat[0]
    kinds = [first] if (sources == first).all() else list(sources.unique())
    named = {v for k in kinds if (v := source_venue(k)) is not None}
    if venue is not None:
        named.add(venue)
    if len(named) > 1:
        raise StoreError(f"a batch mixes simulated and exchange trades (sources {sorted(kinds)}"
                         f"{'' if venue is None else f', written as {venue}'}); nothing stored")
    return named.pop() if named else None
