"""One SQLite store file in WAL mode: per-thread connections, transactions, opening errors.

One writer and many readers, in the same or different processes (kernels, the server), work at
once: WAL lets readers proceed while a write commits, and ``busy_timeout`` makes a second writer
wait instead of failing. Every write is one transaction; a call returns only after it committed
(``synchronous=FULL`` by default, so a committed write survives a power cut; pass
``synchronous="NORMAL"`` to trade that for speed — still safe against a process crash).
Read-only users (``readonly=True``) open the file with SQLite's ``mode=ro`` and never create or
change it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd

from ..errors import StoreError
from . import schema
from .paths import default_archive_dir, resolve_db_path

log = logging.getLogger(__name__)
# Page size of new store files (bytes) and page cache per connection (KiB, allocated as used):
# bulk loads of a few hundred thousand ticks then keep their index pages in memory.
PAGE_SIZE = 65536
CACHE_KIB = 65536


class StoreFile:
    """The store's file: connections (one per thread, so the event loop and
    ``asyncio.to_thread`` writers can share it), transactions, the schema, and the Parquet
    archive beside it. :class:`qdash.store.Store` adds the tables' reads and writes.

    ``path`` defaults to :func:`~qdash.store.paths.default_db_path`; :attr:`path` is absolute.
    ``readonly=True`` opens an existing store with SQLite's ``mode=ro`` (a missing file is a
    :class:`StoreError`, never a new empty store; any write raises one).
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
            schema.prepare(self._conn(), self.path, self.readonly, self.transaction)
        except sqlite3.Error as e:
            self.close()
            raise open_error(self.path, e, self.readonly) from e

    def _check_location(self) -> None:
        """A read-only store must exist; a writable one gets its directory created."""
        path = Path(self.path)
        if self.readonly:
            if not path.exists():
                raise StoreError(f"no store at {path}: check the path (--db / $QDASH_DB), or "
                                 "create one with `qdash load` or `qdash record`")
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the store's directory {path.parent}: "
                             f"{e.strerror or e}; choose another place with --db or "
                             "$QDASH_DB") from e

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
        """This thread's connection (autocommit; wrap writes in :meth:`transaction`), for the
        store's own modules and for tests that look at the file directly."""
        return self._conn()

    def close(self) -> None:
        """Close every connection this Store opened (in any thread)."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> Self:
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
        """Run ``sql`` for every row in ONE transaction (all or nothing); returns rows changed."""
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany(sql, rows)
            return conn.total_changes - before

    def _frame(self, sql: str, params, dtypes: dict) -> pd.DataFrame:
        """The rows of ``sql`` as a frame of ``dtypes`` (column → dtype, in SELECT order); an
        empty answer costs no pandas parsing (a store whose history was archived answers most
        queries with nothing)."""
        rows = self._conn().execute(sql, params).fetchall()
        if not rows:
            return pd.DataFrame({c: np.array([], dtype=t) for c, t in dtypes.items()})
        return pd.DataFrame.from_records(rows, columns=list(dtypes)).astype(dtypes)

    def reclaim(self, min_free: float = 0.25) -> tuple[int, int]:
        """Give the file's free pages back to the file system when they are at least ``min_free``
        of it (rows deleted by ``qdash archive`` leave their pages free, and SQLite keeps a
        file's size): ``VACUUM`` rewrites the file without them, and a ``TRUNCATE`` checkpoint
        moves that into the file and empties the log. Returns the file's size in bytes before
        and after (equal when nothing was reclaimed; an in-memory store: ``(0, 0)``)."""
        if self.path == ":memory:":
            return 0, 0
        conn = self._conn()
        before = os.path.getsize(self.path)
        (pages,), = conn.execute("PRAGMA page_count").fetchall()
        (free,), = conn.execute("PRAGMA freelist_count").fetchall()
        if not free or free < min_free * pages:
            return before, before
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only: its free space cannot be "
                             "reclaimed through this Store")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return before, os.path.getsize(self.path)

    # --- the Parquet tier ------------------------------------------------------------------------
    @property
    def archive(self):
        """The Parquet archive of this store (:class:`qdash.store.parquet.ParquetArchive`): the
        ``archive`` directory or URL given, else ``<db>.archive`` beside the file; None in
        memory."""
        if self._archive is None:
            from .parquet import ParquetArchive

            root = self._archive_root or default_archive_dir(self.path)
            self._archive = ParquetArchive(root) if root is not None else None
        return self._archive

    def _archived(self):
        """The archive when it holds anything (reads then merge it in), else None."""
        arch = self.archive
        return arch if arch is not None and arch.exists() else None


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
