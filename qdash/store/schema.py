"""Every table of the store, and the migrations of older files: the one place that says what a
store file holds.

| table | key | rows |
|---|---|---|
| ``tick_data`` | ``(symbol, ts, trade_id)`` | trades (see :mod:`qdash.store.ticks`) |
| ``store_meta`` | ``name`` | the arrival counter ``tick_seq`` and the store's ``venue`` |
| ``ohlcv_data`` | ``(symbol, timeframe, source, open_time)`` | candles (:mod:`.ohlcv`) |
| ``funding`` | ``(symbol, funding_time)`` | funding events (:mod:`.funding`) |
| ``alerts_log`` | ``id`` | alert firings (:mod:`.alerts`) |
| ``alert_rules`` | ``name`` | alert rule definitions (:mod:`.alerts`) |
| ``fetch_coverage`` | ``(symbol, kind, timeframe, start_ms)`` | ranges fetched in full |
| ``depth_snapshots`` | ``(symbol, ts, update_id)`` | top-of-book snapshots (:mod:`.depth`) |
| ``trade_orders`` | ``client_id`` | the paper trader's orders (:mod:`.orders`) |
| ``trade_fills`` | ``(symbol, trade_id)`` | their fills (:mod:`.orders`) |
| ``trade_positions`` | ``id`` | position changes of the trader's legs (:mod:`.orders`) |
| ``trade_leggings`` | ``(pair, signal_bar_ms, kind)`` | legging per entry/exit (:mod:`.orders`) |

The layout version is kept in ``PRAGMA user_version``:
- 0 (before 2026-11) kept ticks in a rowid table with two secondary indexes
  (:func:`_migrate_ticks_v0`);
- 1 had candles without a ``source`` (:func:`_migrate_bars_v1`);
- 2 had no ``fetch_coverage`` table until the first fetch created it;
- 3 had no ``depth_snapshots`` and no ``trade_*`` tables;
- 4 (this one) creates every table with the file.
Opening an older file for writing migrates it, in one transaction. A read-only open only checks;
it accepts the layouts in :data:`READABLE_VERSIONS` (layout 2 lacks only ``fetch_coverage``, which
only fetches, always writers, read; layouts 2 and 3 lack ``depth_snapshots`` and the ``trade_*``
tables: their depth and trade reads answer nothing).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

from ..errors import StoreError
from ..model import BAR_COLUMNS

SCHEMA_VERSION = 4
READABLE_VERSIONS = frozenset({2, 3, SCHEMA_VERSION})

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

META_TABLE = """
CREATE TABLE IF NOT EXISTS store_meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""

OHLCV_TABLE = """
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
"""

OTHER_TABLES = """
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
CREATE TABLE IF NOT EXISTS fetch_coverage (
    symbol TEXT NOT NULL,
    kind TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    PRIMARY KEY (symbol, kind, timeframe, start_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS depth_snapshots (
    symbol TEXT NOT NULL,
    ts INTEGER NOT NULL,
    update_id INTEGER NOT NULL,
    levels BLOB NOT NULL,
    PRIMARY KEY (symbol, ts, update_id)
) WITHOUT ROWID;
"""

TRADE_TABLES = """
CREATE TABLE IF NOT EXISTS trade_orders (
    client_id TEXT PRIMARY KEY,
    pair TEXT NOT NULL,
    symbol TEXT NOT NULL,
    leg TEXT NOT NULL,
    kind TEXT NOT NULL,
    side TEXT NOT NULL,
    type TEXT NOT NULL,
    qty REAL NOT NULL,
    price REAL,
    reduce_only INTEGER NOT NULL,
    signal_bar_ms INTEGER NOT NULL,
    sent_ms INTEGER NOT NULL,
    order_id INTEGER,
    status TEXT NOT NULL,
    filled REAL NOT NULL DEFAULT 0,
    avg_price REAL,
    updated_ms INTEGER,
    error TEXT
);
CREATE INDEX IF NOT EXISTS trade_orders_pair ON trade_orders (pair, signal_bar_ms);
CREATE TABLE IF NOT EXISTS trade_fills (
    symbol TEXT NOT NULL,
    trade_id INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    order_id INTEGER NOT NULL,
    pair TEXT NOT NULL,
    signal_bar_ms INTEGER NOT NULL,
    side TEXT NOT NULL,
    price REAL NOT NULL,
    qty REAL NOT NULL,
    commission REAL NOT NULL,
    commission_asset TEXT NOT NULL,
    realized REAL NOT NULL,
    maker INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    PRIMARY KEY (symbol, trade_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trade_positions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pair TEXT NOT NULL,
    symbol TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    amount REAL NOT NULL,
    entry_price REAL,
    reason TEXT NOT NULL,
    signal_bar_ms INTEGER
);
CREATE TABLE IF NOT EXISTS trade_leggings (
    pair TEXT NOT NULL,
    signal_bar_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT,
    reason TEXT,
    legging_ms INTEGER,
    legging_bps REAL,
    first_leg TEXT,
    price_y REAL,
    price_x REAL,
    filled_y REAL,
    filled_x REAL,
    shortfall_bps_y REAL,
    shortfall_bps_x REAL,
    fees REAL,
    problem TEXT,
    PRIMARY KEY (pair, signal_bar_ms, kind)
) WITHOUT ROWID;
"""

SCHEMA = (TICK_TABLE + META_TABLE
          + "INSERT OR IGNORE INTO store_meta (name, value) VALUES ('tick_seq', 0);"
          + OHLCV_TABLE + OTHER_TABLES + TRADE_TABLES)
"""Every statement that creates a new store file (each idempotent), separated by ``;``."""


def prepare(conn: sqlite3.Connection, path: str, readonly: bool,
            transaction: Callable[[], AbstractContextManager]) -> None:
    """Create the tables of a new file, or migrate an older layout (in ONE ``transaction()``).
    A read-only store is only checked: it must have a layout this version reads."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION or (readonly and version in READABLE_VERSIONS):
        return
    if readonly:
        _check_not_newer(version, path)
        tables = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                              "AND name = 'tick_data'").fetchone()[0]
        raise StoreError(
            f"{path} is not a qdash store (no tick_data table)" if not tables else
            f"{path} has the old store layout {version}: open it once with a write "
            "command (e.g. `qdash load`) to migrate it")
    with transaction():
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        _check_not_newer(version, path)
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


def _check_not_newer(version: int, path: str) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path} has store layout {version}, written by a newer "
                         f"qdash; this version reads layout {SCHEMA_VERSION}")


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
    conn.execute(META_TABLE)
    conn.execute("INSERT OR REPLACE INTO store_meta (name, value) "
                 "SELECT 'tick_seq', COALESCE(MAX(seq), 0) FROM tick_data")


def _migrate_bars_v1(conn: sqlite3.Connection) -> None:
    """Give the candles of a layout-1 file the ``source`` key column (``''``: trade candles).
    Runs inside the opening transaction."""
    conn.execute("ALTER TABLE ohlcv_data RENAME TO ohlcv_data_v1")
    conn.execute(OHLCV_TABLE)
    cols = ", ".join(["symbol", "timeframe", "open_time"] + BAR_COLUMNS)
    conn.execute(f"INSERT INTO ohlcv_data ({cols}) SELECT {cols} FROM ohlcv_data_v1")
    conn.execute("DROP TABLE ohlcv_data_v1")
