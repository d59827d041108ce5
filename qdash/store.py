"""The embedded tick and candle store: one SQLite file in WAL mode.

One writer and many readers, in the same or different processes (kernels, the server), work at
once: WAL lets readers proceed while a write commits, and ``busy_timeout`` makes a second writer
wait instead of failing. Every write is one transaction; a call returns only after it committed
(``synchronous=FULL`` by default, so a committed write survives a power cut; pass
``synchronous="NORMAL"`` to trade that for speed — still safe against a process crash).

Ticks live in ONE B-tree, ``tick_data`` clustered on its primary key ``(symbol, ts, trade_id)``:
the key is both the de-duplication key and the ``(symbol, ts)`` index, so a range read is a
sequential scan and a write updates one B-tree instead of three (measured on 2024 trades with
``executemany``: 445–556k rows/s, against 300–345k/s into a rowid table with a UNIQUE
``(symbol, trade_id)`` and a ``(symbol, ts)`` index).
Writing the same ticks twice stores them once, so retries and re-loads are harmless. An exchange
trade's time is fixed by its id, so for every consistent source this is uniqueness on
``(symbol, trade_id)``; the one difference is that a source that reports a known trade id at
another time is not silently dropped. Ticks without an exchange id carry a content-hash id
(:func:`qdash.model.synthetic_trade_ids`) and an arrival number ``seq`` (0 for exchange trades), so
trades of one millisecond read back in exchange-id order, id-less ones in the order they were
written. An id-less tick that is a trade the store already holds with its exchange id (same
symbol, time, price and size: the same trades loaded from a collector capture after the exchange's
trades file) is recognised and not stored again (:attr:`WriteResult.matched`). Candles are unique
on ``(symbol, timeframe, source, open_time)`` (``source`` ``""`` for trade candles, ``"mark"`` for
mark-price klines) and a re-write replaces the stored candle (a forming candle is written again as
it grows). Funding events (``funding``) are unique on ``(symbol, funding_time)``.

Every entry point finds the same file: ``$QDASH_DB`` if set, else ``qdash.db`` in the user data
directory (:func:`default_db_path`), whatever the working directory. Read-only users
(``Store(path, readonly=True)``) open it with SQLite's ``mode=ro`` and never create or change it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import platformdirs

from .errors import DataFormatError, StoreError
from .model import BAR_COLUMNS, TICK_COLUMNS, ms_to_index, parse_time, timeframe_name

DB_ENV = "QDASH_DB"
DEFAULT_DB = "qdash.db"
SIM_DB_ENV = "QDASH_SIM_DB"
SIM_DB = "qdash-sim.db"
SIM_SOURCES = frozenset({"sim"})
"""Tick sources that are the simulated exchange's."""
EXCHANGE_SOURCES = frozenset({"binance", "binance-agg"})
"""Tick sources that are a real exchange's (files, collectors and pushes are neither)."""
VENUES = {1: "exchange", 2: "simulated"}
log = logging.getLogger(__name__)
# Page size of new store files (bytes) and page cache per connection (KiB, allocated as used):
# bulk loads of a few hundred thousand ticks then keep their index pages in memory.
PAGE_SIZE = 65536
CACHE_KIB = 65536

# Layout version, kept in ``PRAGMA user_version``. Version 0 (before 2026-11) kept ticks in a rowid
# table with two secondary indexes; opening such a file migrates it (see ``_migrate_ticks_v0``).
# Version 1 had candles without a ``source`` (see ``_migrate_bars_v1``).
SCHEMA_VERSION = 2

TICK_TABLE = """
CREATE TABLE IF NOT EXISTS tick_data (
    symbol TEXT NOT NULL,
    ts INTEGER NOT NULL,
    trade_id INTEGER NOT NULL,
    price REAL NOT NULL,
    qty REAL NOT NULL,
    is_buyer_maker INTEGER NOT NULL,
    source TEXT NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (symbol, ts, trade_id)
) WITHOUT ROWID;
"""

SCHEMA = TICK_TABLE + """
CREATE TABLE IF NOT EXISTS store_meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO store_meta (name, value) VALUES ('tick_seq', 0);
CREATE TABLE IF NOT EXISTS ohlcv_data (
    symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    open_time INTEGER NOT NULL,
    open REAL NOT NULL,
    high REAL NOT NULL,
    low REAL NOT NULL,
    close REAL NOT NULL,
    volume REAL NOT NULL,
    trades INTEGER NOT NULL,
    buy_volume REAL,
    quote_volume REAL,
    vwap REAL,
    PRIMARY KEY (symbol, timeframe, source, open_time)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS funding (
    symbol TEXT NOT NULL,
    funding_time INTEGER NOT NULL,
    rate REAL NOT NULL,
    mark_price REAL,
    PRIMARY KEY (symbol, funding_time)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL DEFAULT 'info',
    pair TEXT,
    message TEXT,
    metric_values TEXT,
    delivery TEXT
);
CREATE INDEX IF NOT EXISTS alerts_log_ts ON alerts_log (ts);
CREATE TABLE IF NOT EXISTS alert_rules (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
"""

TICK_INSERT = ("INSERT OR IGNORE INTO tick_data "
               "(symbol, ts, trade_id, price, qty, is_buyer_maker, source) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)")
# trade order: time, then arrival (id-less ticks), then exchange id
TICK_ORDER = "ts, seq, trade_id"
BAR_UPSERT = ("INSERT OR REPLACE INTO ohlcv_data (symbol, timeframe, source, open_time, "
              + ", ".join(BAR_COLUMNS) + ") VALUES (" + ", ".join("?" * (4 + len(BAR_COLUMNS)))
              + ")")
FUNDING_COLUMNS = ["funding_time", "rate", "mark_price"]
FUNDING_UPSERT = ("INSERT OR REPLACE INTO funding (symbol, funding_time, rate, mark_price) "
                  "VALUES (?, ?, ?, ?)")


@dataclass(frozen=True)
class WriteResult:
    """Outcome of one committed write: rows offered, rows newly stored, rows already present
    (``duplicates``; of them, ``matched`` id-less rows that are trades stored with an exchange
    id)."""

    received: int
    stored: int
    matched: int = 0

    @property
    def duplicates(self) -> int:
        return self.received - self.stored


def default_db_path(simulated: bool = False) -> str:
    """The store every entry point uses when given none, as an absolute path: ``$QDASH_DB`` when
    set, else ``qdash.db`` in the user data directory (``$XDG_DATA_HOME/qdash``, by default
    ``~/.local/share/qdash`` on Linux; the platform's equivalent elsewhere).

    ``simulated``: the simulated exchange's own store (``$QDASH_SIM_DB``, else ``qdash-sim.db``
    beside the other), so simulated trades never mix with the exchange's of the same symbol."""
    env = os.environ.get(SIM_DB_ENV if simulated else DB_ENV)
    if env:
        return os.path.abspath(os.path.expanduser(env))
    return str(platformdirs.user_data_path("qdash") / (SIM_DB if simulated else DEFAULT_DB))


def resolve_db_path(path: str | os.PathLike | None = None, *, simulated: bool = False) -> str:
    """``path`` as an absolute path (``~`` expanded), or :func:`default_db_path` when None;
    ``":memory:"`` stays as it is."""
    if path is None or str(path) == "":
        return default_db_path(simulated)
    if str(path) == ":memory:":
        return ":memory:"
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def tick_rows(ticks: pd.DataFrame) -> list[tuple]:
    """Rows of a canonical tick batch as Python tuples in :data:`TICK_INSERT` order."""
    return list(zip(ticks["symbol"].tolist(), ticks["ts"].tolist(), ticks["trade_id"].tolist(),
                    ticks["price"].tolist(), ticks["qty"].tolist(),
                    ticks["is_buyer_maker"].tolist(), ticks["source"].tolist()))


def _sql_text(value: str) -> str:
    """``value`` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _tick_insert(ticks: pd.DataFrame, seq: np.ndarray | None) -> tuple[str, Iterable[tuple]]:
    """The insert statement and row parameters for a canonical tick batch (``seq``: the arrival
    numbers of its rows, or None when every row has an exchange id and so ``seq`` 0).

    When ``symbol`` and ``source`` are the same in every row (a feed or file batch of one symbol),
    they go into the statement as literals and each row binds five values instead of seven. The
    rows are a lazy ``zip``: executemany consumes them one at a time, so no list of tuples is
    built (zip reuses its tuple when the consumer has let go of it).
    """
    symbol, source = ticks["symbol"], ticks["source"]
    cols = [ticks[c].to_numpy().tolist() for c in ("ts", "trade_id", "price", "qty",
                                                    "is_buyer_maker")]
    names = "ts, trade_id, price, qty, is_buyer_maker"
    if seq is not None:
        cols.append(seq.tolist())
        names += ", seq"
    marks = ", ".join("?" * len(cols))
    sym0, src0 = symbol.iat[0], source.iat[0]
    if (type(sym0) is str and type(src0) is str and "\0" not in sym0 + src0
            and (symbol == sym0).all() and (source == src0).all()):
        sql = (f"INSERT OR IGNORE INTO tick_data ({names}, symbol, source) "
               f"VALUES ({marks}, {_sql_text(sym0)}, {_sql_text(src0)})")
        return sql, zip(*cols)
    sql = (f"INSERT OR IGNORE INTO tick_data ({names}, symbol, source) "
           f"VALUES ({marks}, ?, ?)")
    return sql, zip(*cols, symbol.tolist(), source.tolist())


def _insert(conn: sqlite3.Connection, ticks: pd.DataFrame, seq: np.ndarray | None) -> int:
    """Insert a canonical tick batch (see :func:`_tick_insert`); returns the rows stored."""
    before = conn.total_changes
    conn.executemany(*_tick_insert(ticks, seq))
    return conn.total_changes - before


def validate_ticks(ticks: pd.DataFrame) -> None:
    """Raise :class:`DataFormatError` naming the first bad row unless every tick is storable."""
    missing = [c for c in TICK_COLUMNS if c not in ticks.columns]
    if missing:
        raise DataFormatError(f"tick batch lacks columns {missing}; expected {TICK_COLUMNS}")
    price = ticks["price"].to_numpy(dtype=np.float64)
    qty = ticks["qty"].to_numpy(dtype=np.float64)
    for name, values in (("price", price), ("qty", qty)):
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataFormatError(
                f"row {i} ({ticks['symbol'].iloc[i]}): {name} must be finite and > 0, "
                f"got {values[i]!r}; nothing from this batch was stored", column=name)


class Store:
    """SQLite store of ticks (``tick_data``), candles (``ohlcv_data``) and alerts (``alerts_log``).

    ``path`` defaults to :func:`default_db_path` (``$QDASH_DB``, else the user data directory);
    :attr:`path` is absolute. ``readonly=True`` opens an existing store with SQLite's ``mode=ro``
    (a missing file is a :class:`StoreError`, never a new empty store; any write raises one), so
    reading works on a store this user cannot write. Each thread gets its own connection, so a
    Store can be shared by the event loop and ``asyncio.to_thread`` writers.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, readonly: bool = False,
                 synchronous: str = "FULL", busy_timeout_ms: int = 30_000,
                 archive: str | os.PathLike | None = None):
        self.path = resolve_db_path(path)
        self.readonly = bool(readonly)
        self._archive_root = str(archive) if archive is not None else None
        self._archive = None
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.synchronous = synchronous.upper()
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._immutable = False
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if self.path != ":memory:":
            self._check_location()
        try:
            self._create_schema()
        except sqlite3.Error as e:
            self.close()
            raise open_error(self.path, e, self.readonly) from e

    def _check_location(self) -> None:
        """A read-only store must exist; a writable one gets its directory created."""
        path = Path(self.path)
        if self.readonly:
            if not path.exists():
                raise StoreError(f"no store at {path}: check the path (--db / ${DB_ENV}), or "
                                 "create one with `qdash load` or `qdash record`")
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the store's directory {path.parent}: "
                             f"{e.strerror or e}; choose another place with --db or "
                             f"${DB_ENV}") from e

    def _create_schema(self) -> None:
        """Create the tables of a new file, or migrate an older layout (one transaction).
        A read-only store is only checked: it must have this version's layout."""
        conn = self._conn()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if self.readonly:
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} has store layout {version}, written by a newer "
                                 f"qdash; this version reads layout {SCHEMA_VERSION}")
            tables = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                                  "AND name = 'tick_data'").fetchone()[0]
            raise StoreError(
                f"{self.path} is not a qdash store (no tick_data table)" if not tables else
                f"{self.path} has the old store layout {version}: open it once with a write "
                "command (e.g. `qdash load`) to migrate it")
        with self.transaction():
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} has store layout {version}, written by a newer "
                                 f"qdash; this version reads layout {SCHEMA_VERSION}")
            if version < SCHEMA_VERSION:
                cols = [r[1] for r in conn.execute("PRAGMA table_info(tick_data)")]
                if cols and "seq" not in cols:
                    _migrate_ticks_v0(conn)
                bar_cols = [r[1] for r in conn.execute("PRAGMA table_info(ohlcv_data)")]
                if bar_cols and "source" not in bar_cols:
                    _migrate_bars_v1(conn)
                for statement in filter(str.strip, SCHEMA.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # --- connections ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        """A new connection, set up (read-only: ``mode=ro``; in a directory this user cannot
        write, where SQLite cannot create the WAL index beside the file, ``immutable=1``)."""
        kw = {"timeout": self.busy_timeout_ms / 1000, "isolation_level": None,
              "check_same_thread": False}
        if not self.readonly or self.path == ":memory:":
            conn = sqlite3.connect(self.path, **kw)
            conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # only takes effect in a new file
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            return conn
        uri = "file:" + urllib.parse.quote(self.path) + "?mode=ro"
        conn = sqlite3.connect(uri + ("&immutable=1" if self._immutable else ""), uri=True, **kw)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as e:
            if getattr(e, "sqlite_errorname", "") != "SQLITE_READONLY_DIRECTORY":
                conn.close()
                raise
            conn.close()
            log.warning("%s: directory not writable and no WAL index beside the store; reading "
                        "it as immutable (changes made meanwhile by others are not seen)",
                        self.path)
            self._immutable = True
            conn = sqlite3.connect(uri + "&immutable=1", uri=True, **kw)
        conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._connect()
            except sqlite3.Error as e:
                raise open_error(self.path, e, self.readonly) from e
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit; wrap writes in BEGIN IMMEDIATE ... COMMIT), for
        modules that own tables of their own (``alerts_log``, ``alert_rules``)."""
        return self._conn()

    def close(self) -> None:
        """Close every connection this Store opened (in any thread)."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Group writes into ONE transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``): all or nothing.

        Writes through this Store on this thread inside the block join it (so does a nested
        block); any exception rolls every one of them back. Yields this thread's connection.
        """
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only: nothing can be written through "
                             "this Store (open it without readonly=True to write)")
        conn = self._conn()
        if conn.in_transaction:
            yield conn
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                raise StoreError(f"write to {self.path} failed, nothing stored: {e}") from e
            raise

    def execute_many(self, sql: str, rows: Iterable[tuple]) -> int:
        """Run ``sql`` for every row in ONE transaction (all or nothing); returns rows changed.

        For modules that keep tables of their own in the store (alert rules and history)."""
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany(sql, rows)
            return conn.total_changes - before

    # --- writes --------------------------------------------------------------------------------
    def write_ticks(self, ticks: pd.DataFrame) -> WriteResult:
        """Store a canonical tick batch in one transaction; duplicates are ignored.

        Id-less rows (negative synthetic ids) that are trades already stored with an exchange id
        (same symbol, ts, price and qty) are not stored and counted in ``matched``: the k-th
        id-less row of one (symbol, ts, price, qty) in the batch matches when at least k + 1
        exchange-id rows have those values, so separate identical fills stay separate.

        Raises :class:`DataFormatError` (and stores nothing) if any price or qty is not finite
        and positive. Returns after the transaction committed (inside :meth:`transaction`, the
        batch joins that transaction instead).
        """
        return self._write_ticks(ticks)[0]

    def _write_ticks(self, ticks: pd.DataFrame) -> tuple[WriteResult, np.ndarray | None]:
        """:meth:`write_ticks`, also returning the mask of rows matched to exchange trades
        (None when no row was)."""
        if len(ticks) == 0:
            return WriteResult(0, 0), None
        validate_ticks(ticks)
        synthetic = ticks["trade_id"].to_numpy() < 0
        with self.transaction() as conn:
            _check_venue(conn, ticks["source"], self.path)
            if not synthetic.any():
                return WriteResult(len(ticks), _insert(conn, ticks, None)), None
            idless, stored = ticks, 0
            if not synthetic.all():  # exchange trades first: the id-less rows may be among them
                stored = _insert(conn, ticks[~synthetic], None)
                idless = ticks[synthetic]
            matched = _matches_exchange_ticks(conn, idless)
            if matched.any():
                idless = idless[~matched]
            if len(idless):
                seq = _arrival_numbers(conn, idless["trade_id"].to_numpy())
                stored += _insert(conn, idless, seq)
        n_matched = int(matched.sum())
        if not n_matched:
            return WriteResult(len(ticks), stored), None
        mask = np.zeros(len(ticks), dtype=bool)
        mask[np.flatnonzero(synthetic)[matched]] = True
        return WriteResult(len(ticks), stored, n_matched), mask

    def write_new_ticks(self, ticks: pd.DataFrame) -> tuple[WriteResult, pd.DataFrame]:
        """:meth:`write_ticks`, also returning the rows this write stored (not stored before,
        first of their key in the batch, not matched to an exchange trade), in batch order: what
        a live fan-out should publish."""
        try:
            with self.transaction():
                result = self.write_ticks(ticks)
                if 0 < result.stored < result.received:
                    raise _PartlyNew  # roll back and find out which rows are new first
        except _PartlyNew:
            with self.transaction() as conn:
                new = ~_stored_already(conn, ticks) & ~ticks.duplicated(["symbol", "ts",
                                                                          "trade_id"]).to_numpy()
                result, matched = self._write_ticks(ticks)
                if matched is not None:
                    new &= ~matched
            return result, ticks[new].reset_index(drop=True)
        return result, ticks if result.stored else ticks.iloc[:0]

    def write_bars(self, bars: pd.DataFrame, symbol: str, timeframe: str,
                   source: str = "") -> WriteResult:
        """Store candles (index: open time, UTC DatetimeIndex or int ms) replacing same-key rows.

        ``source`` tells candles of other prices apart: ``""`` trade candles (from ticks or
        Binance klines), ``"mark"`` mark-price klines."""
        if len(bars) == 0:
            return WriteResult(0, 0)
        tf = timeframe_name(timeframe)
        open_ms = _index_ms(bars.index)
        cols = [bars[c].to_numpy(dtype=np.float64) for c in BAR_COLUMNS]
        trades_i = BAR_COLUMNS.index("trades")
        cols[trades_i] = bars["trades"].to_numpy(dtype=np.int64)
        rows = [(symbol, tf, source, t, *vals) for t, *vals in
                zip(open_ms.tolist(), *[_none_for_nan(c) for c in cols])]
        stored = self.execute_many(BAR_UPSERT, rows)
        return WriteResult(len(bars), stored)

    # --- reads ---------------------------------------------------------------------------------
    @property
    def archive(self):
        """The Parquet archive of this store (:class:`qdash.archive.Archive`): the ``archive``
        directory or URL given, else ``<db>.archive`` beside the file; None in memory."""
        if self._archive is None:
            from .archive import Archive, default_archive_dir

            root = self._archive_root or default_archive_dir(self.path)
            self._archive = Archive(root) if root is not None else None
        return self._archive

    def _archived(self):
        """The archive when it holds anything (reads then merge it in), else None."""
        arch = self.archive
        return arch if arch is not None and arch.exists() else None

    def ticks(self, symbol: str, start=None, end=None) -> pd.DataFrame:
        """Ticks of ``symbol`` with ``start <= ts < end``, in trade order, from the archive
        (closed days moved by ``qdash archive``) and SQLite together.

        Trade order is time, then the exchange trade id; ticks with synthetic (negative) ids keep
        the order they were stored in, which is the order of their file or request.

        Index: UTC DatetimeIndex named ``time``; columns: the canonical tick columns (``ts`` stays
        as int64 ms next to the index).
        """
        df = self._sqlite_ticks(symbol, start, end)
        if (arch := self._archived()) is not None:
            from .archive import TICK_KEY, combine

            df = combine(arch.ticks(symbol, start, end), df, TICK_KEY)
        return df

    def _sqlite_ticks(self, symbol: str, start, end) -> pd.DataFrame:
        where, params = _range_clause("ts", symbol, start, end)
        df = self._frame(
            f"SELECT symbol, ts, trade_id, price, qty, is_buyer_maker, source FROM tick_data "
            f"WHERE {where} ORDER BY {TICK_ORDER}", params,
            {"symbol": str, "ts": np.int64, "trade_id": np.int64, "price": np.float64,
             "qty": np.float64, "is_buyer_maker": np.int8, "source": str})
        df.index = ms_to_index(df["ts"].to_numpy())
        return df

    def _frame(self, sql: str, params, dtypes: dict) -> pd.DataFrame:
        """The rows of ``sql`` as a frame of ``dtypes`` (column → dtype, in SELECT order); an
        empty answer costs no pandas parsing (a store whose history was archived answers most
        queries with nothing)."""
        rows = self._conn().execute(sql, params).fetchall()
        if not rows:
            return pd.DataFrame({c: np.array([], dtype=t) for c, t in dtypes.items()})
        return pd.DataFrame.from_records(rows, columns=list(dtypes)).astype(dtypes)

    def bars(self, symbol: str, timeframe: str, start=None, end=None,
             source: str = "") -> pd.DataFrame:
        """Stored candles with ``start <= open_time < end``; index ``open_time`` (UTC), from the
        archive and SQLite together. ``source``: see :meth:`write_bars`."""
        df = self._sqlite_bars(symbol, timeframe, start, end, source)
        if (arch := self._archived()) is not None:
            from .archive import combine

            df = combine(arch.bars(symbol, timeframe, start, end, source), df, ["open_time"])
        return df

    def _sqlite_bars(self, symbol: str, timeframe: str, start, end, source: str) -> pd.DataFrame:
        where, params = _range_clause("open_time", symbol, start, end)
        where += " AND timeframe = ? AND source = ?"
        params += [timeframe_name(timeframe), source]
        dtypes = {"open_time": np.int64} | {c: np.float64 for c in BAR_COLUMNS} | {
            "trades": np.int64}
        df = self._frame(f"SELECT open_time, {', '.join(BAR_COLUMNS)} FROM ohlcv_data WHERE "
                         f"{where} ORDER BY open_time", params, dtypes)
        df.index = ms_to_index(df.pop("open_time").to_numpy(), name="open_time")
        return df

    def write_funding(self, symbol: str, funding: pd.DataFrame) -> WriteResult:
        """Store funding events of ``symbol``: columns ``funding_time`` (int ms UTC), ``rate``
        (fraction per funding interval, e.g. 0.0001 = 0.01 %) and ``mark_price`` (NaN when
        unknown); a re-write replaces the stored event."""
        if len(funding) == 0:
            return WriteResult(0, 0)
        rows = zip([symbol] * len(funding),
                   funding["funding_time"].to_numpy(dtype=np.int64).tolist(),
                   funding["rate"].to_numpy(dtype=np.float64).tolist(),
                   _none_for_nan(funding["mark_price"].to_numpy(dtype=np.float64)))
        return WriteResult(len(funding), self.execute_many(FUNDING_UPSERT, rows))

    def funding(self, symbol: str, start=None, end=None) -> pd.DataFrame:
        """Stored funding events with ``start <= funding_time < end``: index ``funding_time``
        (UTC), columns ``rate`` and ``mark_price`` (NaN when unknown)."""
        where, params = _range_clause("funding_time", symbol, start, end)
        df = pd.read_sql_query(f"SELECT funding_time, rate, mark_price FROM funding WHERE {where} "
                               "ORDER BY funding_time", self._conn(), params=params)
        df.index = ms_to_index(df.pop("funding_time").to_numpy(dtype=np.int64),
                               name="funding_time")
        return df.astype({"rate": np.float64, "mark_price": np.float64})

    @property
    def venue(self) -> str | None:
        """``"exchange"`` or ``"simulated"``: whose trades this store holds (set by the first
        exchange or simulator ticks written); None while it has neither."""
        row = self._conn().execute("SELECT value FROM store_meta WHERE name = 'venue'").fetchone()
        return VENUES.get(row[0]) if row else None

    def symbols(self) -> list[str]:
        """Every symbol with stored ticks or candles, sorted."""
        rows = self._conn().execute(
            "SELECT DISTINCT symbol FROM tick_data UNION SELECT DISTINCT symbol FROM ohlcv_data "
            "ORDER BY 1").fetchall()
        return [r[0] for r in rows]

    def stats(self) -> pd.DataFrame:
        """One row per (symbol, kind, timeframe): row count and first/last time (UTC).

        ``kind`` is ``ticks`` (timeframe empty), ``bars`` (trade candles), ``bars:<source>``
        (e.g. ``bars:mark``) or ``funding``.
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
        df = pd.DataFrame(rows, columns=["symbol", "kind", "timeframe", "rows", "first", "last"])
        for c in ("first", "last"):
            df[c] = pd.to_datetime(df[c].astype("int64"), unit="ms", utc=True)
        return df.sort_values(["symbol", "kind", "timeframe"], ignore_index=True)

    def tick_count(self, symbol: str | None = None) -> int:
        """Number of stored ticks (of one symbol, or all)."""
        if symbol is None:
            return self._conn().execute("SELECT COUNT(*) FROM tick_data").fetchone()[0]
        return self._conn().execute("SELECT COUNT(*) FROM tick_data WHERE symbol = ?",
                                    (symbol,)).fetchone()[0]


class _PartlyNew(Exception):
    """Raised inside a transaction to roll back a write whose batch was only partly new."""


def _arrival_numbers(conn: sqlite3.Connection, trade_ids: np.ndarray) -> np.ndarray | None:
    """``seq`` of each row of a batch: 0 for exchange ids, the next store-wide arrival numbers for
    synthetic (negative) ids; None when the batch has no synthetic id. Call inside the write's
    transaction, which makes the counter update atomic with the rows."""
    synthetic = trade_ids < 0
    n = int(synthetic.sum())
    if n == 0:
        return None
    (last,), = conn.execute("UPDATE store_meta SET value = value + ? WHERE name = 'tick_seq' "
                            "RETURNING value", (n,)).fetchall()
    seq = np.zeros(len(trade_ids), dtype=np.int64)
    seq[synthetic] = np.arange(last - n + 1, last + 1)
    return seq


def _matches_exchange_ticks(conn: sqlite3.Connection, idless: pd.DataFrame) -> np.ndarray:
    """Mask of the id-less rows that are trades stored with an exchange id (see
    :meth:`Store.write_ticks`): per symbol, one range read of the exchange-id rows in the batch's
    time span, counted by (ts, price, qty), against each row's occurrence number in the batch."""
    mask = np.zeros(len(idless), dtype=bool)
    symbols = idless["symbol"]
    for sym in pd.unique(symbols):
        rows = np.flatnonzero((symbols == sym).to_numpy())
        sub = idless.iloc[rows]
        ts = sub["ts"].to_numpy()
        counts = conn.execute(
            "SELECT ts, price, qty, COUNT(*) FROM tick_data WHERE symbol = ? AND ts >= ? "
            "AND ts <= ? AND trade_id >= 0 GROUP BY ts, price, qty",
            (sym, int(ts.min()), int(ts.max()))).fetchall()
        if not counts:
            continue
        known = pd.DataFrame(counts, columns=["ts", "price", "qty", "n"]).astype(
            {"ts": np.int64, "price": np.float64, "qty": np.float64})
        keys = pd.DataFrame({"ts": ts, "price": sub["price"].to_numpy(dtype=np.float64),
                             "qty": sub["qty"].to_numpy(dtype=np.float64)})
        keys["k"] = keys.groupby(["ts", "price", "qty"], sort=False).cumcount()
        n = keys.merge(known, on=["ts", "price", "qty"], how="left")["n"].fillna(0).to_numpy()
        mask[rows] = keys["k"].to_numpy() < n
    return mask


def open_error(path: str, error: sqlite3.Error, readonly: bool) -> StoreError:
    """A :class:`StoreError` saying why SQLite could not open ``path`` (missing directory,
    permissions, not a database) and what to do, instead of "unable to open database file"."""
    p = Path(path)
    d = p.parent
    what = "read" if readonly else "open"
    name = getattr(error, "sqlite_errorname", "")
    if not d.is_dir():
        why, todo = f"directory {d} does not exist", "create it or pass another --db"
    elif p.is_dir():
        why, todo = "it is a directory", "pass the path of a store file (--db FILE)"
    elif p.exists() and not os.access(p, os.R_OK):
        why, todo = (f"permission denied reading it ({_owner_mode(p)})",
                     "ask its owner for read access, or read a copy")
    elif not readonly and p.exists() and not os.access(p, os.W_OK):
        why, todo = (f"this user may not write it ({_owner_mode(p)})",
                     "read commands (info, bars, backtest) open it read-only; to write, use a "
                     "store you own (--db or $QDASH_DB)")
    elif not readonly and not os.access(d, os.W_OK):
        why, todo = (f"directory {d} is not writable (SQLite keeps {p.name}-wal and "
                     f"{p.name}-shm beside the store)", "use a writable directory (--db or "
                     "$QDASH_DB)")
    elif name == "SQLITE_NOTADB":
        why, todo = "it is not an SQLite database", "check the path (--db or $QDASH_DB)"
    else:
        why, todo = str(error), "check the path and its permissions"
    return StoreError(f"cannot {what} store {p}: {why}; {todo} (sqlite: {error})")


def _owner_mode(p: Path) -> str:
    st = p.stat()
    return f"owner uid {st.st_uid}, mode {st.st_mode & 0o777:o}"


def _stored_already(conn: sqlite3.Connection, ticks: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the rows of ``ticks`` whose key is in ``tick_data`` already."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS batch_keys "
                 "(i INTEGER PRIMARY KEY, symbol TEXT, ts INTEGER, trade_id INTEGER)")
    conn.execute("DELETE FROM batch_keys")
    conn.executemany("INSERT INTO batch_keys VALUES (?, ?, ?, ?)",
                     zip(range(len(ticks)), ticks["symbol"].tolist(), ticks["ts"].tolist(),
                         ticks["trade_id"].tolist()))
    found = [i for (i,) in conn.execute(
        "SELECT b.i FROM batch_keys b JOIN tick_data t "
        "ON t.symbol = b.symbol AND t.ts = b.ts AND t.trade_id = b.trade_id")]
    mask = np.zeros(len(ticks), dtype=bool)
    mask[found] = True
    return mask


def _migrate_ticks_v0(conn: sqlite3.Connection) -> None:
    """Move ticks of the layout-0 rowid table into the clustered table, keeping read order:
    id-less ticks get their old rowid as arrival number. Runs inside the opening transaction."""
    conn.execute("ALTER TABLE tick_data RENAME TO tick_data_v0")
    conn.execute("DROP INDEX IF EXISTS tick_data_symbol_trade_id")
    conn.execute("DROP INDEX IF EXISTS tick_data_symbol_ts")
    conn.execute(TICK_TABLE)
    conn.execute("INSERT OR IGNORE INTO tick_data "
                 "(symbol, ts, trade_id, price, qty, is_buyer_maker, source, seq) "
                 "SELECT symbol, ts, trade_id, price, qty, is_buyer_maker, source, "
                 "CASE WHEN trade_id < 0 THEN rowid ELSE 0 END FROM tick_data_v0")
    conn.execute("DROP TABLE tick_data_v0")
    conn.execute("CREATE TABLE IF NOT EXISTS store_meta "
                 "(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID")
    conn.execute("INSERT OR REPLACE INTO store_meta (name, value) "
                 "SELECT 'tick_seq', COALESCE(MAX(seq), 0) FROM tick_data")


def _migrate_bars_v1(conn: sqlite3.Connection) -> None:
    """Give the candles of a layout-1 file the ``source`` key column (``''``: trade candles).
    Runs inside the opening transaction."""
    conn.execute("ALTER TABLE ohlcv_data RENAME TO ohlcv_data_v1")
    conn.execute(SCHEMA[SCHEMA.index("CREATE TABLE IF NOT EXISTS ohlcv_data"):
                        SCHEMA.index("CREATE TABLE IF NOT EXISTS funding")].rstrip().rstrip(";"))
    cols = ", ".join(["symbol", "timeframe", "open_time"] + BAR_COLUMNS)
    conn.execute(f"INSERT INTO ohlcv_data ({cols}) SELECT {cols} FROM ohlcv_data_v1")
    conn.execute("DROP TABLE ohlcv_data_v1")


def _range_clause(column: str, symbol: str, start, end) -> tuple[str, list]:
    where, params = ["symbol = ?"], [symbol]
    if (s := parse_time(start)) is not None:
        where.append(f"{column} >= ?")
        params.append(s)
    if (e := parse_time(end)) is not None:
        where.append(f"{column} < ?")
        params.append(e)
    return " AND ".join(where), params


def _index_ms(index) -> np.ndarray:
    if isinstance(index, pd.DatetimeIndex):
        return index.as_unit("ms").asi8 if index.tz is not None else \
            index.tz_localize("UTC").as_unit("ms").asi8
    return np.asarray(index, dtype=np.int64)


def _none_for_nan(values: np.ndarray) -> list:
    out = values.tolist()
    if values.dtype.kind == "f" and np.isnan(values).any():
        out = [None if v != v else v for v in out]
    return out


def _check_venue(conn: sqlite3.Connection, sources: pd.Series, path: str) -> None:
    """Refuse a batch that would put simulated and exchange trades in one store; the first such
    batch names the store's venue (``store_meta``)."""
    first = sources.iat[0]
    kinds = {first} if (sources == first).all() else set(sources.unique())
    venues = {1 for k in kinds if k in EXCHANGE_SOURCES} | {2 for k in kinds if k in SIM_SOURCES}
    if not venues:
        return                                  # files, collectors, pushes: no venue of their own
    if len(venues) > 1:
        raise StoreError(f"a batch mixes simulated and exchange trades (sources {sorted(kinds)})"
                         "; nothing stored")
    venue = venues.pop()
    row = conn.execute("SELECT value FROM store_meta WHERE name = 'venue'").fetchone()
    if row is None:
        conn.execute("INSERT INTO store_meta (name, value) VALUES ('venue', ?)", (venue,))
    elif row[0] != venue:
        raise StoreError(
            f"{path} holds {VENUES[row[0]]} trades; these are {VENUES[venue]} (source "
            f"{first!r}) and are not stored here: simulated and exchange trades of the same "
            f"symbols never share a store. The simulator's default store is "
            f"{default_db_path(simulated=True)}; or pass another --db")
