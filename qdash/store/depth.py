"""Order book snapshots: the ``depth_snapshots`` table, unique on ``(symbol, ts, update_id)``;
a re-write of the same snapshot replaces it.

A row is one snapshot of the top :data:`~qdash.model.DEPTH_LEVELS` levels a side (what
:class:`~qdash.feeds.depth.DepthBooks` records): ``ts`` (int ms UTC, exchange time of the book's
last update), ``update_id`` (Binance's), and ``levels``, a BLOB of the
:data:`~qdash.model.DEPTH_LEVEL_COLUMNS` values in that order as little-endian float64 (NaN
where the book held fewer levels): 4·20 values, 640 bytes, read back for many rows with one
``frombuffer``. Closed days move to the Parquet archive (``kind=depth``, one column per level
value) with :func:`qdash.store.parquet.archive`, and :meth:`DepthTable.depth` reads both.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd

from ..errors import StoreError
from ..model import DEPTH_COLUMNS, DEPTH_LEVEL_COLUMNS, depth_frame, ms_to_index
from .connection import StoreFile
from .rows import WriteResult, range_clause
from .venue import claim_venue

DEPTH_UPSERT = ("INSERT OR REPLACE INTO depth_snapshots (symbol, ts, update_id, levels) "
                "VALUES (?, ?, ?, ?)")
LEVEL_VALUES = len(DEPTH_LEVEL_COLUMNS)
_F8 = np.dtype("<f8")


class DepthTable(StoreFile):
    """Reads and writes of ``depth_snapshots`` (a part of :class:`qdash.store.Store`)."""

    def write_depth(self, symbol: str, snapshots: pd.DataFrame, *,
                    venue: str | None = None) -> WriteResult:
        """Store depth snapshots of ``symbol``: a frame of :data:`~qdash.model.DEPTH_COLUMNS`
        (:func:`~qdash.model.depth_frame`). ``venue``: whose book (``"exchange"``,
        ``"simulated"``; None: no venue of their own), which must be the store's, else
        :class:`~qdash.errors.StoreError` and nothing stored; so is a frame without the
        columns or with a price or quantity below 0."""
        if len(snapshots) == 0:
            return WriteResult(0, 0)
        missing = [c for c in DEPTH_COLUMNS if c not in snapshots.columns]
        if missing:
            raise StoreError(f"depth snapshots of {symbol}: columns {missing[:4]} missing "
                             f"({len(missing)} in all); build them with qdash.model.depth_frame")
        levels = snapshots[DEPTH_LEVEL_COLUMNS].to_numpy(dtype=_F8)
        if (levels < 0).any():
            row = int(np.flatnonzero((levels < 0).any(axis=1))[0])
            raise StoreError(f"depth snapshots of {symbol}: row {row} has a negative price or "
                             "quantity; nothing stored")
        ts = snapshots["ts"].to_numpy(dtype=np.int64).tolist()
        ids = snapshots["update_id"].to_numpy(dtype=np.int64).tolist()
        rows = [(symbol, t, u, lv.tobytes()) for t, u, lv in zip(ts, ids, levels)]
        with self.transaction() as conn:
            claim_venue(conn, venue, self.path, f"depth of {symbol}")
            return WriteResult(len(rows), self.execute_many(DEPTH_UPSERT, rows))

    def depth(self, symbol: str, start=None, end=None) -> pd.DataFrame:
        """Stored depth snapshots with ``start <= ts < end``, from the archive and SQLite
        together: columns :data:`~qdash.model.DEPTH_COLUMNS`, index ``time`` (UTC, from
        ``ts``), ascending by ``ts`` then ``update_id``."""
        df = self._sqlite_depth(symbol, start, end)
        if (arch := self._archived()) is not None:
            from .parquet import combine

            df = combine(arch.depth(symbol, start, end), df, ["ts", "update_id"])
        return df

    def _sqlite_depth(self, symbol: str, start, end) -> pd.DataFrame:
        where, params = range_clause("ts", symbol, start, end)
        try:
            rows = self._conn().execute(f"SELECT ts, update_id, levels FROM depth_snapshots "
                                        f"WHERE {where} ORDER BY ts, update_id",
                                        params).fetchall()
        except sqlite3.OperationalError as e:  # a layout-3 file opened read-only has no table
            if "no such table" not in str(e):
                raise
            rows = []
        ts = np.array([r[0] for r in rows], dtype=np.int64)
        ids = np.array([r[1] for r in rows], dtype=np.int64)
        levels = np.frombuffer(b"".join(r[2] for r in rows), dtype=_F8).reshape(
            len(rows), LEVEL_VALUES)
        df = depth_frame(ts, ids, levels)
        df.index = ms_to_index(ts)
        return df
