"""The :class:`Store`: the one entry point to a store file, its tables and its archive."""

from __future__ import annotations

from functools import cached_property

import pandas as pd

from .alerts import AlertTables
from .coverage import Coverage
from .depth import DepthTable
from .funding import FundingTable
from .ohlcv import OhlcvTable
from .orders import TradeTables
from .ticks import TickTable
from .venue import claim_venue


class Store(TickTable, OhlcvTable, FundingTable, DepthTable):
    """SQLite store of ticks (``tick_data``), candles (``ohlcv_data``), funding (``funding``),
    order book snapshots (``depth_snapshots``), alerts (:attr:`alerts`) and fetch coverage
    (:attr:`coverage`), with the Parquet archive of its closed days (:attr:`archive`) merged
    into its reads.

    ``path`` defaults to :func:`~qdash.store.default_db_path` (``$QDASH_DB``, else the user data
    directory); :attr:`path` is absolute. ``readonly=True`` opens an existing store with SQLite's
    ``mode=ro`` (a missing file is a :class:`StoreError`, never a new empty store; any write
    raises one), so reading works on a store this user cannot write. Each thread gets its own
    connection, so a Store can be shared by the event loop and ``asyncio.to_thread`` writers.
    The tables' methods come from :class:`~.ticks.TickTable`, :class:`~.ohlcv.OhlcvTable`,
    :class:`~.funding.FundingTable` and :class:`~.depth.DepthTable`; connections and
    transactions from
    :class:`~.connection.StoreFile`.
    """

    @cached_property
    def alerts(self) -> AlertTables:
        """The alert tables (``alerts_log``, ``alert_rules``)."""
        return AlertTables(self)

    @cached_property
    def orders(self) -> TradeTables:
        """The paper trader's tables (``trade_orders``, ``trade_fills``, ``trade_positions``,
        ``trade_leggings``)."""
        return TradeTables(self)

    @cached_property
    def coverage(self) -> Coverage:
        """The ranges fetched in full (``fetch_coverage``)."""
        return Coverage(self)

    def claim_venue(self, venue: str | None, what: str) -> None:
        """Check, before writing any, that ``what`` (e.g. ``"trades"``) of ``venue``
        (``"exchange"``, ``"simulated"``) may go into this store, and name the store's venue if
        it has none: :class:`~qdash.errors.StoreError` for the other venue's data, nothing
        written (:mod:`qdash.store.venue`)."""
        with self.transaction() as conn:
            claim_venue(conn, venue, self.path, what)

    def symbols(self) -> list[str]:
        """Every symbol with stored ticks or candles, sorted."""
        rows = self._conn().execute(
            "SELECT DISTINCT symbol FROM tick_data UNION SELECT DISTINCT symbol FROM ohlcv_data "
            "ORDER BY 1").fetchall()
        return [r[0] for r in rows]

    def stats(self) -> pd.DataFrame:
        """One row per (symbol, kind, timeframe): row count and first/last time (UTC), of SQLite
        and the Parquet archive together (what :meth:`ticks` and :meth:`bars` read), so moving
        closed days into the archive changes no count.

        ``kind`` is ``ticks`` (timeframe empty), ``bars`` (trade candles), ``bars:<source>``
        (e.g. ``bars:mark``), ``funding`` or ``depth`` (order book snapshots). Rows left in both
        places by an archive run that was interrupted between its two steps count twice until
        the next run.
        """
        conn = self._conn()
        rows = conn.execute(
            "SELECT symbol, 'ticks', '', COUNT(*), MIN(ts), MAX(ts) FROM tick_data GROUP BY symbol"
        ).fetchall()
        rows += conn.execute(
            "SELECT symbol, CASE source WHEN '' THEN 'bars' ELSE 'bars:' || source END, "
            "timeframe, COUNT(*), MIN(open_time), MAX(open_time) "
            "FROM ohlcv_data GROUP BY symbol, timeframe, source").fetchall()
        rows += conn.execute(
            "SELECT symbol, 'funding', '', COUNT(*), MIN(funding_time), MAX(funding_time) "
            "FROM funding GROUP BY symbol").fetchall()
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'depth_snapshots'").fetchone():
            rows += conn.execute("SELECT symbol, 'depth', '', COUNT(*), MIN(ts), MAX(ts) "
                                 "FROM depth_snapshots GROUP BY symbol").fetchall()
        if (arch := self._archived()) is not None:
            rows += arch.stats()
        df = pd.DataFrame(rows, columns=["symbol", "kind", "timeframe", "rows", "first", "last"])
        df = df.groupby(["symbol", "kind", "timeframe"], as_index=False).agg(
            rows=("rows", "sum"), first=("first", "min"), last=("last", "max"))
        for c in ("first", "last"):
            df[c] = pd.to_datetime(df[c].astype("int64"), unit="ms", utc=True)
        return df.sort_values(["symbol", "kind", "timeframe"], ignore_index=True)
