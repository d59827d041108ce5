"""Funding events: the ``funding`` table, unique on ``(symbol, funding_time)``; a re-write replaces
the stored event."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..model import ms_to_index
from .connection import StoreFile
from .rows import WriteResult, none_for_nan, range_clause
from .venue import claim_venue

FUNDING_UPSERT = ("INSERT OR REPLACE INTO funding (symbol, funding_time, rate, mark_price) "
                  "VALUES (?, ?, ?, ?)")


class FundingTable(StoreFile):
    """Reads and writes of ``funding`` (a part of :class:`qdash.store.Store`)."""

    def write_funding(self, symbol: str, funding: pd.DataFrame, *,
                      venue: str | None = None) -> WriteResult:
        """Store funding events of ``symbol``: columns ``funding_time`` (int ms UTC), ``rate``
        (fraction per funding interval, e.g. 0.0001 = 0.01 %) and ``mark_price`` (NaN when
        unknown); a re-write replaces the stored event. ``venue``: whose events (``"exchange"``,
        ``"simulated"``; None: no venue of their own), which must be the store's
        (:mod:`qdash.store.venue`), else :class:`~qdash.errors.StoreError` and nothing stored."""
        if len(funding) == 0:
            return WriteResult(0, 0)
        rows = zip([symbol] * len(funding),
                   funding["funding_time"].to_numpy(dtype=np.int64).tolist(),
                   funding["rate"].to_numpy(dtype=np.float64).tolist(),
                   none_for_nan(funding["mark_price"].to_numpy(dtype=np.float64)))
        with self.transaction() as conn:
            claim_venue(conn, venue, self.path, f"funding of {symbol}")
            return WriteResult(len(funding), self.execute_many(FUNDING_UPSERT, rows))

    def funding(self, symbol: str, start=None, end=None) -> pd.DataFrame:
        """Stored funding events with ``start <= funding_time < end``: index ``funding_time``
        (UTC), columns ``rate`` and ``mark_price`` (NaN when unknown)."""
        where, params = range_clause("funding_time", symbol, start, end)
        df = pd.read_sql_query(f"SELECT funding_time, rate, mark_price FROM funding WHERE {where} "
                               "ORDER BY funding_time", self._conn(), params=params)
        df.index = ms_to_index(df.pop("funding_time").to_numpy(dtype=np.int64),
                               name="funding_time")
        return df.astype({"rate": np.float64, "mark_price": np.float64})
