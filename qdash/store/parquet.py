"""The Parquet tier (:class:`ParquetArchive`): closed UTC days of ticks and candles moved from
SQLite into Parquet, and read back merged with SQLite by :class:`qdash.store.Store`.

Layout (hive partitions, readable by pyarrow, DuckDB, pandas and Dask from a local path or any
fsspec URL)::

    <root>/kind=ticks/symbol=BTCUSDT/date=2024-07-18/part-0.parquet
        ts, trade_id, price, qty, is_buyer_maker, source, seq — sorted by ts, seq, trade_id
    <root>/kind=candles/symbol=BTCUSDT/year=2024/part-0.parquet
        timeframe, source, open_time, open, high, low, close, volume, trades, buy_volume,
        quote_volume, vwap — sorted by timeframe, source, open_time
    <root>/kind=depth/symbol=BTCUSDT/date=2024-07-18/part-0.parquet
        ts, update_id, bid_px_0..19, bid_qty_0..19, ask_px_0..19, ask_qty_0..19 — sorted by
        ts, update_id (order book snapshots, :mod:`qdash.store.depth`)

Ticks go by day (a day of an active symbol is millions of rows), candles by year (a year of 1m
candles is 525,600 rows: one file, read without concatenating, where month files of 43,200 rows
read at half the speed — 11.6 vs 22 ms for 300,000 candles — and an archive run rewrites at most
a year of a symbol's candles). Row groups of at most 1M
rows; columns zstd-compressed where that pays (see ``TICK_WRITE``); ``symbol`` (and
``date``/``year``) come from the path.

Moving is crash-safe at any point: a partition file is written to a hidden temporary file in its
directory, fsynced and renamed over the old one (which it merges with, so a partition can grow
over several runs), and only then are its rows deleted from SQLite, in one transaction, and only
if no row of that range arrived meanwhile (else they stay for the next run). A crash between the
two steps leaves rows in both places: reads de-duplicate them and the next run merges them again
without duplicating. On fsspec URLs (object stores) a file is written in one put instead.
Times are int64 ms UTC; symbols upper case.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import StoreError
from ..model import (
    BAR_COLUMNS,
    DEPTH_COLUMNS,
    DEPTH_LEVEL_COLUMNS,
    ms_to_index,
    parse_time,
    timeframe_ms,
    timeframe_name,
)

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
ROW_GROUP_ROWS = 1_000_000
# Encodings: delta for the increasing integers; dictionaries where values repeat (prices and sizes
# are multiples of the tick and lot size, flags and names few); plain where they do not (quote
# volume and VWAP are products and averages). zstd only where it makes a column at least a quarter
# smaller (trade prices and sizes); elsewhere it saves 5-20% and halves decoding speed. Measured
# one column at a time on one core: 1M ticks, price 0.77 MB zstd vs 1.23 MB without at 7.3 vs
# 4.0 ms, size 0.91 vs 1.33 MB at 5.1 vs 3.9 ms, times (delta) 1.54 vs 1.58 MB at 7.4 vs 3.2 ms;
# 302,400 1m candles on tick/lot grids: open 508 vs 553 kB at 2.2 vs 1.5 ms, volume 1,045 vs
# 1,326 kB at 3.7 vs 1.8 ms, quote volume (plain) 2,284 vs 2,424 kB at 4.6 vs 1.2 ms. The bench's
# archive (bench/bench_archive.py): 105 MB read back at 21-23M rows/s, against 92 MB at 14M rows/s
# with zstd on every column.
TICK_WRITE = dict(use_dictionary=["price", "qty", "is_buyer_maker", "source", "seq"],
                  column_encoding={"ts": "DELTA_BINARY_PACKED",
                                   "trade_id": "DELTA_BINARY_PACKED"},
                  compression={"price": "zstd", "qty": "zstd", "ts": "none", "trade_id": "none",
                               "is_buyer_maker": "none", "source": "none", "seq": "none"})
CANDLE_WRITE = dict(use_dictionary=["timeframe", "source", "open", "high", "low", "close",
                                    "volume", "trades", "buy_volume"],
                    column_encoding={"open_time": "DELTA_BINARY_PACKED"}, compression="none")
PART = "part-0.parquet"

TICK_SCHEMA = pa.schema([("ts", pa.int64()), ("trade_id", pa.int64()), ("price", pa.float64()),
                         ("qty", pa.float64()), ("is_buyer_maker", pa.int8()),
                         ("source", pa.string()), ("seq", pa.int64())])
CANDLE_SCHEMA = pa.schema([("timeframe", pa.string()), ("source", pa.string()),
                           ("open_time", pa.int64())]
                          + [(c, pa.int64() if c == "trades" else pa.float64())
                             for c in BAR_COLUMNS])
DEPTH_SCHEMA = pa.schema([("ts", pa.int64()), ("update_id", pa.int64())]
                         + [(c, pa.float64()) for c in DEPTH_LEVEL_COLUMNS])
DEPTH_WRITE = dict(column_encoding={"ts": "DELTA_BINARY_PACKED",
                                    "update_id": "DELTA_BINARY_PACKED"},
                   use_dictionary=False, compression="zstd")
DEPTH_KEY = ["ts", "update_id"]
TICK_KEY = ["ts", "trade_id"]
TICK_COLUMNS = ["ts", "trade_id", "price", "qty", "is_buyer_maker", "source"]  # what reads return
# Read as Arrow dictionaries: decoding a column of 1M equal strings costs 22 ms, its dictionary 0.
DICTIONARY_READS = ["source"]
CANDLE_KEY = ["timeframe", "source", "open_time"]


def _day(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%d")


def _year_of(ms: int) -> int:
    return pd.Timestamp(ms, unit="ms", tz="UTC").year


def _year_start(year: int) -> int:
    """1 January of ``year`` 00:00 UTC, in ms."""
    return int(pd.Timestamp(year=year, month=1, day=1, tz="UTC").value // 1_000_000)


class ParquetArchive:
    """A Parquet archive rooted at a local directory or an fsspec URL (see the module docstring).
    """

    def __init__(self, root: str | os.PathLike):
        import fsspec.core

        self.root = str(root).rstrip("/")
        self.fs, self._path = fsspec.core.url_to_fs(self.root)
        self.local = "file" in np.atleast_1d(self.fs.protocol)
        if self.local:
            self._path = os.path.abspath(self._path)

    # --- paths -----------------------------------------------------------------------------------
    def _dir(self, kind: str, symbol: str) -> str:
        return f"{self._path}/kind={kind}/symbol={symbol}"

    def _partitions(self, kind: str, symbol: str) -> list[tuple[str, str]]:
        """(partition value, file path) of one symbol, sorted by partition value."""
        d = self._dir(kind, symbol)
        try:
            if self.local:
                names = os.listdir(d)
            else:
                names = [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(d, detail=False)]
        except FileNotFoundError:
            return []
        out = [(n.split("=", 1)[1], f"{d}/{n}/{PART}") for n in names if "=" in n]
        return sorted(out)

    def exists(self) -> bool:
        """True when the archive holds anything."""
        if self.local:
            return os.path.isdir(self._path)
        return self.fs.exists(self._path)

    # --- reads -----------------------------------------------------------------------------------
    def ticks_table(self, symbol: str, start: int | None = None, end: int | None = None
                    ) -> pa.Table:
        """Archived ticks of ``symbol`` with ``start <= ts < end`` as an Arrow table (sorted) of
        the columns :meth:`qdash.Store.ticks` returns (``source`` dictionary-encoded)."""
        files = [p for day, p in self._partitions("ticks", symbol)
                 if (start is None or _day_end(day) > start)
                 and (end is None or _day_start(day) < end)]
        return self._read(files, TICK_SCHEMA, TICK_COLUMNS, "ts", start, end, {})

    def candles_table(self, symbol: str, timeframe: str, source: str = "",
                      start: int | None = None, end: int | None = None) -> pa.Table:
        """Archived candles of ``symbol``/``timeframe``/``source`` with ``start <= open_time <
        end`` (sorted by open_time): ``open_time`` and the bar columns."""
        files = [p for year, p in self._partitions("candles", symbol)
                 if (start is None or _year_start(int(year) + 1) > start)
                 and (end is None or _year_start(int(year)) < end)]
        return self._read(files, CANDLE_SCHEMA, ["open_time", *BAR_COLUMNS], "open_time", start,
                          end, {"timeframe": timeframe, "source": source})

    def depth_table(self, symbol: str, start: int | None = None, end: int | None = None
                    ) -> pa.Table:
        """Archived depth snapshots of ``symbol`` with ``start <= ts < end`` (sorted)."""
        files = [p for day, p in self._partitions("depth", symbol)
                 if (start is None or _day_end(day) > start)
                 and (end is None or _day_start(day) < end)]
        return self._read(files, DEPTH_SCHEMA, DEPTH_COLUMNS, "ts", start, end, {})

    def depth(self, symbol: str, start=None, end=None) -> pd.DataFrame:
        """Archived depth snapshots as :meth:`qdash.Store.depth` returns them."""
        t = self.depth_table(symbol, parse_time(start), parse_time(end))
        df = t.combine_chunks().to_pandas(split_blocks=True)
        df.index = ms_to_index(df["ts"].to_numpy())
        return df

    def _read(self, files: list[str], schema: pa.Schema, columns: list[str], time_col: str,
              start, end, keep: dict) -> pa.Table:
        """``columns`` of the rows of ``files`` within ``[start, end)`` of ``time_col`` and
        matching ``keep`` (column → value), files in order. Each file's columns are decoded on
        pyarrow's threads; local files are memory-mapped (no copy of the file into buffers).
        Measured on the bench's 1M ticks in 10 files and 3M candles in 20 (2 cores): decoding
        files in parallel, one thread each, was no faster, and slower where one file is large."""
        want = pa.schema([schema.field(c).with_type(pa.dictionary(pa.int32(), pa.string()))
                          if c in DICTIONARY_READS else schema.field(c) for c in columns])
        parts = [self._read_file(f, want, time_col, start, end, keep) for f in files]
        tables = [t for t in parts if t is not None and t.num_rows]
        return pa.concat_tables(tables) if tables else want.empty_table()

    def _read_file(self, f: str, want: pa.Schema, time_col: str, start, end, keep: dict
                   ) -> pa.Table | None:
        """One file's matching rows (see :meth:`_read`). Row-group statistics decide what is
        read: groups wholly outside the range or of another ``keep`` value are skipped, and
        the filter (with its columns) is only applied where a group is not wholly inside."""
        try:
            pf = pq.ParquetFile(f if self.local else self.fs.open(f, "rb"),
                                read_dictionary=[c for c in DICTIONARY_READS if c in want.names],
                                memory_map=self.local)
        except FileNotFoundError:  # a partition whose first write did not finish
            return None
        bounds = {time_col: (start, None if end is None else end - 1),
                  **{col: (value, value) for col, value in keep.items()}}
        groups, filtered = [], set()
        for i in range(pf.metadata.num_row_groups):
            inside = _row_group_inside(pf.metadata.row_group(i), bounds)
            if inside is not None:
                groups.append(i)
                filtered |= {col for col, ok in inside.items() if not ok}
        if not groups:
            return None
        read = list(want.names) + [c for c in bounds if c in filtered and c not in want.names]
        t = pf.read_row_groups(groups, columns=read)
        mask = None
        for col in filtered:
            lo, hi = bounds[col]
            for op, bound in ((pc.greater_equal, lo), (pc.less_equal, hi)):
                if bound is not None:
                    m = op(t[col], bound)
                    mask = m if mask is None else pc.and_(mask, m)
        if mask is not None:
            t = t.filter(mask).select(want.names)
        return t if t.schema.equals(want) else t.cast(want)

    def ticks(self, symbol: str, start=None, end=None) -> pd.DataFrame:
        """Archived ticks as :meth:`qdash.Store.ticks` returns them."""
        return ticks_frame(self.ticks_table(symbol, parse_time(start), parse_time(end)), symbol)

    def bars(self, symbol: str, timeframe: str, start=None, end=None,
             source: str = "") -> pd.DataFrame:
        """Archived candles as :meth:`qdash.Store.bars` returns them."""
        return candles_frame(self.candles_table(symbol, timeframe_name(timeframe), source,
                                                parse_time(start), parse_time(end)))

    def stats(self) -> list[tuple]:
        """What the archive holds: rows ``(symbol, kind, timeframe, rows, first ms, last ms)``,
        one per symbol for ticks (kind ``ticks``, timeframe ``""``) and depth snapshots (kind
        ``depth``), and per symbol, timeframe and source for candles (kind ``bars`` or
        ``bars:<source>``), as :meth:`qdash.Store.stats` counts them. Reads only the time
        column (and, of candles, their keys)."""
        out = []
        for kind in ("ticks", "depth"):  # day partitions with a ``ts`` column
            for symbol in self._names(kind, "symbol"):
                ts = [self._table(f, ["ts"])["ts"] for _, f in self._partitions(kind, symbol)]
                ts = pa.chunked_array([c for t in ts for c in t.chunks], pa.int64())
                if len(ts):
                    out.append((symbol, kind, "", len(ts), pc.min(ts).as_py(),
                                pc.max(ts).as_py()))
        for symbol in self._names("candles", "symbol"):
            parts = [self._table(f, CANDLE_KEY) for _, f in self._partitions("candles", symbol)]
            if not parts:
                continue
            groups = pa.concat_tables(parts).group_by(["timeframe", "source"]).aggregate(
                [("open_time", "count"), ("open_time", "min"), ("open_time", "max")])
            g = groups.to_pydict()
            for tf, src, n, lo, hi in zip(g["timeframe"], g["source"], g["open_time_count"],
                                          g["open_time_min"], g["open_time_max"], strict=True):
                out.append((symbol, "bars:" + src if src else "bars", tf, n, lo, hi))
        return out

    def _names(self, kind: str, part: str) -> list[str]:
        """The partition values ``part=VALUE`` under ``kind=KIND`` (e.g. its symbols)."""
        d = f"{self._path}/kind={kind}"
        try:
            names = os.listdir(d) if self.local else [
                p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(d, detail=False)]
        except FileNotFoundError:
            return []
        return sorted(n.split("=", 1)[1] for n in names if n.startswith(part + "="))

    def _table(self, path: str, columns: list[str]) -> pa.Table:
        """``columns`` of one partition file (empty when the file is gone)."""
        try:
            pf = pq.ParquetFile(path if self.local else self.fs.open(path, "rb"))
        except FileNotFoundError:  # a partition whose first write did not finish
            schema = TICK_SCHEMA if "ts" in columns else CANDLE_SCHEMA
            return schema.empty_table().select(columns)
        return pf.read(columns=columns)

    # --- writes ----------------------------------------------------------------------------------
    def write_partition(self, kind: str, symbol: str, value: str, table: pa.Table) -> int:
        """Merge ``table`` into one partition (``value``: the day or year) and write it durably;
        returns the rows the partition holds now."""
        key, schema, part, order, write = KINDS[kind]
        d = f"{self._dir(kind, symbol)}/{part}={value}"
        path = f"{d}/{PART}"
        table = table.cast(schema)
        old = self._existing(path, schema)
        if old is not None and old.num_rows:
            table = _merge(old, table, key)  # rows of ``table`` win
        table = table.sort_by([(c, "ascending") for c in order])
        options = dict(write, row_group_size=ROW_GROUP_ROWS)
        if self.local:
            _write_local(d, path, table, options)
        else:
            self.fs.makedirs(d, exist_ok=True)
            with self.fs.open(path, "wb") as f:
                pq.write_table(table, f, **options)
        return table.num_rows

    def _existing(self, path: str, schema: pa.Schema) -> pa.Table | None:
        try:
            if self.local:
                return pq.read_table(path, schema=schema)
            with self.fs.open(path, "rb") as f:
                return pq.read_table(f, schema=schema)
        except FileNotFoundError:
            return None


# kind → (key, schema, partition name, sort order, write options)
KINDS = {"ticks": (TICK_KEY, TICK_SCHEMA, "date", ["ts", "seq", "trade_id"], TICK_WRITE),
         "candles": (CANDLE_KEY, CANDLE_SCHEMA, "year", CANDLE_KEY, CANDLE_WRITE),
         "depth": (DEPTH_KEY, DEPTH_SCHEMA, "date", DEPTH_KEY, DEPTH_WRITE)}


def _day_start(day: str) -> int:
    return int(pd.Timestamp(day, tz="UTC").value // 1_000_000)


def _day_end(day: str) -> int:
    return _day_start(day) + DAY_MS


def _merge(old: pa.Table, new: pa.Table, key: list[str]) -> pa.Table:
    """Rows of ``old`` whose key is not in ``new``, plus ``new``."""
    both = pa.concat_tables([new, old])
    idx = pa.table({k: both[k] for k in key}).append_column(
        "_i", pa.array(np.arange(both.num_rows)))
    first = idx.group_by(key, use_threads=False).aggregate([("_i", "min")])["_i_min"]
    return both.take(first)


def _write_local(d: str, path: str, table: pa.Table, options: dict) -> None:
    """Write ``table`` to ``path`` atomically and durably: temp file, fsync, rename, fsync dir."""
    os.makedirs(d, exist_ok=True)
    for stale in os.listdir(d):  # left by a crash during an earlier write
        if stale.startswith(".") and stale.endswith(".tmp"):
            os.unlink(os.path.join(d, stale))
    tmp = f"{d}/.{PART}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "wb") as f:
            pq.write_table(table, f, **options)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _row_group_inside(rg, bounds: dict) -> dict[str, bool] | None:
    """For each bounded column (column → (lowest, highest) kept value, either None for open):
    True when every row of the row group is within the bounds, False when some may not be;
    None when no row can be (the group is skipped). Missing statistics mean "some may not"."""
    stats = {rg.column(j).path_in_schema: rg.column(j).statistics for j in range(rg.num_columns)}
    inside = {}
    for col, (lo, hi) in bounds.items():
        st = stats.get(col)
        if st is None or not st.has_min_max:
            inside[col] = lo is None and hi is None
            continue
        if (lo is not None and st.max < lo) or (hi is not None and st.min > hi):
            return None
        inside[col] = (lo is None or st.min >= lo) and (hi is None or st.max <= hi)
    return inside


# --- Arrow → the frames Store returns ------------------------------------------------------------

def ticks_frame(table: pa.Table, symbol: str) -> pd.DataFrame:
    """An archived ticks table → the frame :meth:`qdash.Store.ticks` returns (time index,
    canonical tick columns); built by Arrow, not row by row (the files' chunks concatenated
    once, then one block per column without a copy)."""
    df = table.select([c for c in TICK_COLUMNS if c != "source"]).combine_chunks().to_pandas(
        split_blocks=True)
    df.insert(0, "symbol", _strings(pa.array([symbol]), np.zeros(len(df), np.int32)))
    source = table["source"].unify_dictionaries()  # stored NOT NULL: no null codes
    values = source.chunks[0].dictionary if source.num_chunks else pa.array([], pa.string())
    codes = [c.indices.to_numpy() for c in source.chunks] or [np.zeros(0, np.int32)]
    df["source"] = _strings(values, np.concatenate(codes))
    df.index = ms_to_index(df["ts"].to_numpy())
    return df


STR = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default ``str`` dtype


def _strings(values: pa.Array, codes: np.ndarray) -> pd.arrays.ArrowStringArray:
    """``values[codes]`` as a pandas ``str`` column. One value (the common case: a file's ticks
    have one source, a symbol is one name) is built from two buffers, 5× faster than a take."""
    n = len(codes)
    if len(values) == 1 and values[0].is_valid:
        b = values[0].as_py().encode()
        offsets = np.arange(n + 1, dtype=np.int64) * len(b)
        out = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(b * n))
    else:
        out = values.cast(pa.large_string()).take(pa.array(codes))
    return pd.arrays.ArrowStringArray(out, dtype=STR)


def candles_frame(table: pa.Table) -> pd.DataFrame:
    """An archived candles table → the frame :meth:`qdash.Store.bars` returns."""
    df = table.select(BAR_COLUMNS).combine_chunks().to_pandas(split_blocks=True)
    df.index = ms_to_index(table["open_time"].to_numpy(), name="open_time")
    return df


def combine(archived: pd.DataFrame, stored: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Archived rows followed by SQLite rows of the same query; rows in both (a crash between
    writing the archive and deleting from SQLite) appear once, the SQLite copy winning."""
    if not len(archived):
        return stored
    if not len(stored):
        return archived
    both = pd.concat([archived, stored])
    if stored.index[0] <= archived.index[-1]:  # overlapping: de-duplicate and re-sort
        keys = both[key] if all(k in both.columns for k in key) else \
            both.assign(open_time=both.index.asi8)[key]
        both = both[~keys.duplicated(keep="last").to_numpy()]
        both = both.iloc[np.argsort(both.index.asi8, kind="stable")]
    return both


# --- moving closed days --------------------------------------------------------------------------

@dataclass
class ArchiveReport:
    """What :func:`archive` moved: rows per kind, partitions written, partitions left in SQLite
    because rows arrived while they were archived."""

    root: str
    before_ms: int
    ticks: int = 0
    candles: int = 0
    depth: int = 0
    partitions: int = 0
    deferred: list[str] = field(default_factory=list)
    file_bytes: tuple[int, int] = (0, 0)  # the SQLite file's size before and after its space
    # freed by the move was reclaimed (StoreFile.reclaim)

    def __str__(self) -> str:
        day = pd.Timestamp(self.before_ms, unit="ms", tz="UTC")
        depth = f", {self.depth:,} depth snapshots" if self.depth else ""
        out = [f"archive {self.root}: days before {day:%Y-%m-%d}: moved {self.ticks:,} ticks and "
               f"{self.candles:,} candles{depth} into {self.partitions:,} partitions"]
        if self.file_bytes[1] < self.file_bytes[0]:
            out.append(f"  store file {self.file_bytes[0] / 1e6:,.1f} MB -> "
                       f"{self.file_bytes[1] / 1e6:,.1f} MB (freed space returned)")
        if self.deferred:
            out.append(f"  left in SQLite (rows arrived meanwhile; run again): "
                       f"{', '.join(self.deferred)}")
        return "\n".join(out)


def archive(store, before=None, *, progress: bool = True) -> ArchiveReport:
    """Move the ticks and candles of closed UTC days (before ``before``, default: before today)
    from ``store`` into its archive (``store.archive``), then give the SQLite file's freed pages
    back (:meth:`~qdash.store.connection.StoreFile.reclaim`); see the module docstring."""
    if store.archive is None:
        raise StoreError(f"store {store.path} has no archive directory (an in-memory store); "
                         "open it with Store(path, archive=DIR)")
    today = int(pd.Timestamp.now(tz="UTC").floor("D").value // 1_000_000)
    cutoff = today if before is None else min(today, parse_time(before) // DAY_MS * DAY_MS)
    arch = store.archive
    report = ArchiveReport(arch.root, cutoff)
    jobs = _tick_jobs(store, cutoff) + _candle_jobs(store, cutoff) + _depth_jobs(store, cutoff)
    bar = None
    if progress and jobs:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), unit="partition", desc="archive")
    try:
        for job in jobs:
            job(store, arch, report)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if report.ticks or report.candles or report.depth:
        report.file_bytes = store.reclaim()
    return report


def _tick_jobs(store, cutoff: int) -> list:
    conn = store.connection()
    jobs = []
    for sym, lo in conn.execute("SELECT symbol, MIN(ts) FROM tick_data WHERE ts < ? "
                                "GROUP BY symbol", (cutoff,)).fetchall():
        for day in range(lo // DAY_MS * DAY_MS, cutoff, DAY_MS):
            jobs.append(_TickDay(sym, day))
    return jobs


def _depth_jobs(store, cutoff: int) -> list:
    conn = store.connection()
    rows = conn.execute("SELECT symbol, MIN(ts) FROM depth_snapshots WHERE ts < ? "
                        "GROUP BY symbol", (cutoff,)).fetchall()
    return [_DepthDay(sym, day) for sym, lo in rows
            for day in range(lo // DAY_MS * DAY_MS, cutoff, DAY_MS)]


def _candle_jobs(store, cutoff: int) -> list:
    conn = store.connection()
    jobs = []
    rows = conn.execute("SELECT symbol, MIN(open_time) FROM ohlcv_data WHERE open_time < ? "
                        "GROUP BY symbol", (cutoff,)).fetchall()
    for sym, lo in rows:
        year = _year_of(lo)
        while _year_start(year) < cutoff:
            jobs.append(_CandleYear(sym, year, min(_year_start(year + 1), cutoff)))
            year += 1
    return jobs


@dataclass
class _TickDay:
    symbol: str
    day: int

    def __call__(self, store, arch: ParquetArchive, report: ArchiveReport) -> None:
        conn = store.connection()
        rng = (self.symbol, self.day, self.day + DAY_MS)
        cur = conn.execute("SELECT ts, trade_id, price, qty, is_buyer_maker, source, seq "
                           "FROM tick_data WHERE symbol = ? AND ts >= ? AND ts < ?", rng)
        rows = cur.fetchall()
        if not rows:
            return
        cols = list(zip(*rows))
        table = pa.table({name: pa.array(col, type=TICK_SCHEMA.field(name).type)
                          for name, col in zip(TICK_SCHEMA.names, cols)})
        arch.write_partition("ticks", self.symbol, _day(self.day), table)
        where = "symbol = ? AND ts >= ? AND ts < ?"
        if _delete_rows(store, "tick_data", where, rng, len(rows)):
            report.ticks += len(rows)
            report.partitions += 1
        else:
            report.deferred.append(f"ticks {self.symbol} {_day(self.day)}")


@dataclass
class _DepthDay:
    symbol: str
    day: int

    def __call__(self, store, arch: ParquetArchive, report: ArchiveReport) -> None:
        rng = (self.symbol, self.day, self.day + DAY_MS)
        # counted before the read: a row arriving in between makes the delete defer the day
        n = store.connection().execute("SELECT COUNT(*) FROM depth_snapshots WHERE symbol = ? "
                                       "AND ts >= ? AND ts < ?", rng).fetchone()[0]
        if not n:
            return
        df = store.depth(self.symbol, self.day, self.day + DAY_MS)  # SQLite's rows and any
        # archived ones of the day (merged again without duplicating)
        table = pa.Table.from_pandas(df[DEPTH_COLUMNS], schema=DEPTH_SCHEMA,
                                     preserve_index=False)
        arch.write_partition("depth", self.symbol, _day(self.day), table)
        if _delete_rows(store, "depth_snapshots", "symbol = ? AND ts >= ? AND ts < ?", rng, n):
            report.depth += n
            report.partitions += 1
        else:
            report.deferred.append(f"depth {self.symbol} {_day(self.day)}")


@dataclass
class _CandleYear:
    symbol: str
    year: int
    end: int  # exclusive (the next year or the cutoff); candles must also close by then

    @property
    def start(self) -> int:
        return _year_start(self.year)

    def __call__(self, store, arch: ParquetArchive, report: ArchiveReport) -> None:
        conn = store.connection()
        tfs = [r[0] for r in conn.execute(
            "SELECT DISTINCT timeframe FROM ohlcv_data WHERE symbol = ? AND open_time >= ? "
            "AND open_time < ?", (self.symbol, self.start, self.end))]
        parts, n = [], 0
        for tf in tfs:
            rng = (self.symbol, tf, self.start, self.end - timeframe_ms(tf) + 1)
            rows = conn.execute(
                "SELECT timeframe, source, open_time, " + ", ".join(BAR_COLUMNS) +
                " FROM ohlcv_data WHERE symbol = ? AND timeframe = ? AND open_time >= ? "
                "AND open_time < ?", rng).fetchall()
            if rows:
                parts.append((tf, rng, rows))
                n += len(rows)
        if not n:
            return
        cols = list(zip(*[r for _, _, rows in parts for r in rows]))
        table = pa.table({name: pa.array(col, type=CANDLE_SCHEMA.field(name).type)
                          for name, col in zip(CANDLE_SCHEMA.names, cols)})
        arch.write_partition("candles", self.symbol, str(self.year), table)
        where = "symbol = ? AND timeframe = ? AND open_time >= ? AND open_time < ?"
        done = True
        for _, rng, rows in parts:
            done &= _delete_rows(store, "ohlcv_data", where, rng, len(rows))
        if done:
            report.candles += n
            report.partitions += 1
        else:
            report.deferred.append(f"candles {self.symbol} {self.year}")


def _delete_rows(store, table: str, where: str, params: tuple, expected: int) -> bool:
    """Delete the archived rows (one transaction), unless the range no longer holds exactly the
    ``expected`` rows that were archived (rows only arrive, so an equal count means the same rows).
    """
    with store.transaction() as conn:
        (n,), = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", params).fetchall()
        if n != expected:
            log.warning("%s: %d rows arrived in %s while archiving; they stay for the next run",
                        table, n - expected, params)
            return False
        conn.execute(f"DELETE FROM {table} WHERE {where}", params)
        return True
