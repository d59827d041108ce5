"""Scan input: a long table of bars (file, directory, store or DataFrame) → a checked panel.

The long table has one row per (symbol, bar): ``symbol``, ``open_time`` (int ms since the epoch,
UTC, or ISO 8601 text; naive times are UTC), ``close`` (> 0) and optionally ``quote_volume``
(quote currency traded in the bar, >= 0). It comes from a CSV or Parquet file, a hive-partitioned
Parquet directory (``symbol=BTCUSDT/...``, read with ``pyarrow.dataset``), the qdash
:class:`~qdash.store.Store`, or a DataFrame.

Broken rows (missing columns, unparsable times, non-positive or missing prices, negative volume,
duplicate (symbol, open_time)) raise :class:`~qdash.errors.DataFormatError` naming the file, the
line (CSV) or row and the symbol. Symbols that cannot be scanned (too few bars, constant price, too
little quote volume) are *skipped* and listed with the reason in :attr:`Panel.skipped`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataFormatError, QdashError
from ..model import MAX_TS_MS, MIN_TS_MS, ms_to_index, normalize_symbol, timeframe_ms, to_epoch_ms

log = logging.getLogger(__name__)

LOOKBACK_DEFAULT, LOOKBACK_ALL = "default", "all"
"""``lookback`` values with a meaning of their own: the bar length's default span
(:mod:`qdash.defaults`) and every bar."""
REQUIRED = ("symbol", "open_time", "close")
OPTIONAL = ("quote_volume",)
DAY_MS = 86_400_000


class ScanInputError(DataFormatError):
    """The bars given to the scan are malformed (see the message for where and what)."""


@dataclass
class Panel:
    """Aligned closes of the scanned symbols.

    ``times``: bar open times (int64 ms UTC, increasing), the bars every kept symbol has;
    ``symbols``: upper-case, sorted; ``close``: ``len(times) × len(symbols)`` float64 closes;
    ``quote_volume``: per symbol, mean quote volume per day over its bars in the window (NaN when
    the input has none); ``bar_ms``: the bar length; ``skipped``: ``[{"symbol", "reason"}]`` for
    every symbol of the input that is not in the panel.
    """

    times: np.ndarray
    symbols: list[str]
    close: np.ndarray
    quote_volume: np.ndarray
    bar_ms: int
    skipped: list[dict] = field(default_factory=list)

    @property
    def index(self) -> pd.DatetimeIndex:
        """The bar open times as a UTC DatetimeIndex."""
        return ms_to_index(self.times, name="open_time")


def tqdm_disable(progress: bool | None) -> bool | None:
    """tqdm's ``disable`` for a ``progress`` flag: True shows, False hides, None shows on a
    terminal only."""
    return None if progress is None else not progress


# --- reading ------------------------------------------------------------------------------------

def _missing(columns, source: str) -> None:
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ScanInputError(
            f"missing column(s) {', '.join(missing)} (found: {', '.join(map(str, columns))}); "
            "a scan needs symbol, open_time (ms or ISO), close and optionally quote_volume",
            path=source)


def read_table(path: str | os.PathLike, symbols: list[str] | None = None) -> pd.DataFrame:
    """Read the long bar table from a ``.csv[.gz]``, ``.parquet`` file or a hive-partitioned
    Parquet directory; only the scan's columns (and ``symbols``, when given) are read.

    The frame's ``attrs['source']`` is the path and ``attrs['row_label']`` says how rows are
    numbered in messages (``line`` for CSV, with the header as line 1; ``row`` otherwise).
    """
    p = Path(path)
    wanted = (*REQUIRED, *OPTIONAL)
    if not p.exists():
        raise ScanInputError("no such file or directory", path=str(p))
    if p.is_dir() or p.suffix in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        try:
            dset = ds.dataset(p, format="parquet", partitioning="hive")
        except Exception as exc:  # pyarrow raises several types for unreadable data
            raise ScanInputError(f"not a readable Parquet file or dataset: {exc}",
                                 path=str(p)) from exc
        names = dset.schema.names
        _missing(names, str(p))
        flt = None
        if symbols:
            flt = ds.field("symbol").isin([normalize_symbol(s) for s in symbols])
        table = dset.to_table(columns=[c for c in wanted if c in names], filter=flt)
        if pa.types.is_string(table.schema.field("symbol").type) or \
                pa.types.is_large_string(table.schema.field("symbol").type):
            i = table.schema.get_field_index("symbol")    # categorical: no string per row
            table = table.set_column(i, "symbol", pc.dictionary_encode(table.column(i)))
        df = table.to_pandas()
        label = "row"
    elif p.name.endswith((".csv", ".csv.gz")):
        header = pd.read_csv(p, nrows=0).columns
        _missing(header, str(p))
        df = pd.read_csv(p, usecols=[c for c in wanted if c in header],
                         dtype={"symbol": "category"}, low_memory=False)
        label = "line"
    else:
        raise ScanInputError("unknown bar file type: use .csv, .csv.gz, .parquet or a Parquet "
                             "directory", path=str(p))
    df.attrs.update(source=str(p), row_label=label)
    return df


def lookback_ms(lookback: str | int | None, bar_ms: int) -> int | None:
    """The span a scan of ``bar_ms`` bars covers, in ms: a span such as ``"30d"``, or ms, as
    given; ``"default"`` the bar length's (:func:`qdash.defaults.defaults_for`: 30 days of 5m
    bars); ``"all"`` or None: every bar (None)."""
    if lookback is None or lookback == LOOKBACK_ALL:
        return None
    if lookback == LOOKBACK_DEFAULT:
        from ..defaults import defaults_for
        lookback = defaults_for(bar_ms).scan_lookback
    return timeframe_ms(lookback) if isinstance(lookback, str) else int(lookback)


def read_store(store, symbols: list[str] | None, timeframe: str, lookback_ms: int | None,
               progress: bool | None = None) -> pd.DataFrame:
    """The long bar table of ``symbols`` (None: every stored symbol) at ``timeframe`` from a
    :class:`~qdash.store.Store`: candles built from stored ticks, else stored candles
    (:func:`qdash.bars.stored_candles`), over the last ``lookback_ms`` before the latest one."""
    from tqdm.auto import tqdm

    from ..bars import stored_candles

    names = [normalize_symbol(s) for s in symbols] if symbols else store.symbols()
    start = None
    if lookback_ms is not None:
        stats = store.stats()
        stats = stats[stats["symbol"].isin(names)]
        if len(stats):
            start = int(stats["last"].max().value // 1_000_000) - lookback_ms
    frames = []
    for sym in tqdm(names, desc="read store", unit="symbol", disable=tqdm_disable(progress),
                    leave=False):
        bars = stored_candles(store, sym, timeframe, start)
        if len(bars):
            frames.append(pd.DataFrame({
                "symbol": sym, "open_time": bars.index.as_unit("ms").asi8,
                "close": bars["close"].to_numpy(),
                "quote_volume": bars["quote_volume"].to_numpy()}))
    if not frames:
        return pd.DataFrame({c: [] for c in (*REQUIRED, *OPTIONAL)})
    df = pd.concat(frames, ignore_index=True)
    df.attrs.update(source=f"store {store.path}", row_label="row")
    return df


# --- checking -----------------------------------------------------------------------------------

def _where(df: pd.DataFrame, pos: int) -> dict:
    """``DataFormatError`` keyword arguments locating the row at position ``pos``."""
    source = df.attrs.get("source", "bars")
    if df.attrs.get("row_label") == "line":
        return {"path": source, "line": pos + 2}
    return {"path": f"{source} row {pos + 1}"}


def _bad(df: pd.DataFrame, mask: np.ndarray, what: str, column: str, values=None) -> None:
    hits = np.flatnonzero(mask)
    if len(hits) == 0:
        return
    pos = int(hits[0])
    sym = df["symbol"].iloc[pos] if "symbol" in df else "?"
    val = (values if values is not None else df[column].to_numpy())[pos]
    val = val.item() if isinstance(val, np.generic) else val
    more = f" ({len(hits) - 1} more rows like it)" if len(hits) > 1 else ""
    raise ScanInputError(f"symbol {sym}: {column} {val!r} {what}{more}", column=column,
                         **_where(df, pos))


@dataclass
class Bars:
    """The checked long table as arrays, sorted by (symbol, open_time): ``codes`` index
    ``names`` (upper-case, sorted), ``times`` int64 ms, ``close`` float64, ``quote_volume``
    float64 or None; ``source`` names the input in messages."""

    codes: np.ndarray
    names: np.ndarray
    times: np.ndarray
    close: np.ndarray
    quote_volume: np.ndarray | None
    source: str

    def take(self, rows) -> Bars:
        """The rows ``rows`` (a boolean mask or sorted positions)."""
        qv = None if self.quote_volume is None else self.quote_volume[rows]
        return Bars(self.codes[rows], self.names, self.times[rows], self.close[rows], qv,
                    self.source)


def check_table(df: pd.DataFrame) -> Bars:
    """Check the long table and return it as :class:`Bars`: upper-case symbols, int64 ms open
    times, float64 closes (and quote volumes), sorted by (symbol, open_time). Raises
    :class:`ScanInputError` at the first bad row (file, line/row, symbol, column)."""
    source = df.attrs.get("source", "bars")
    _missing(df.columns, source)
    raw_codes, raw_names = pd.factorize(df["symbol"])
    stripped = [str(s).strip().upper() for s in raw_names]
    empty = np.array([s == "" for s in stripped] + [True])   # the last entry: code -1 (NaN)
    _bad(df, empty[raw_codes], "is not a symbol", "symbol")
    names, merged = np.unique(np.array(stripped, dtype=object), return_inverse=True)
    codes = merged[raw_codes]                             # codes follow the sorted names
    times = _times(df)
    close = pd.to_numeric(df["close"], errors="coerce").to_numpy(np.float64)
    _bad(df, ~np.isfinite(close), "is not a number", "close")
    _bad(df, close <= 0, "is not a positive price (log closes need prices > 0); fix or remove "
         "the row", "close")
    qv = None
    if "quote_volume" in df:
        qv = pd.to_numeric(df["quote_volume"], errors="coerce").to_numpy(np.float64)
        _bad(df, ~np.isfinite(qv) | (qv < 0), "is not a quote volume >= 0", "quote_volume")
    bars = Bars(codes, names, times, close, qv, source)
    sc, st = codes, times
    same = sc[1:] == sc[:-1]
    order = None
    if (sc[1:] < sc[:-1]).any() or (same & (np.diff(st) < 0)).any():
        order = np.argsort(codes, kind="stable")          # O(n) on symbol-grouped input
        sc, st = codes[order], times[order]
        same = sc[1:] == sc[:-1]
        if (same & (np.diff(st) < 0)).any():              # times out of order inside a symbol
            order = np.lexsort((times, codes))
            sc, st = codes[order], times[order]
        bars = bars.take(order)
    dup = same & (np.diff(st) == 0)
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        first, second = (i, i + 1) if order is None else (int(order[i]), int(order[i + 1]))
        t = ms_to_index([st[i]])[0]
        w1, w2 = _where(df, first), _where(df, second)
        raise ScanInputError(
            f"symbol {names[sc[i]]}: duplicate bar at open_time {t.isoformat()} "
            f"(also at {w1.get('line', w1['path'])}); each (symbol, open_time) must appear once",
            column="open_time", **w2)
    return bars


def _times(df: pd.DataFrame) -> np.ndarray:
    col = df["open_time"]
    if pd.api.types.is_datetime64_any_dtype(col):
        idx = pd.DatetimeIndex(col)
        idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
        _bad(df, idx.isna(), "is not a time", "open_time", values=col.to_numpy())
        return idx.as_unit("ms").asi8
    if pd.api.types.is_integer_dtype(col.dtype):
        ms = col.to_numpy(np.int64)
        if len(ms) and MIN_TS_MS <= ms.min() and ms.max() <= MAX_TS_MS:
            return ms                                     # already ms (the usual case)
        return to_epoch_ms(ms)
    num = pd.to_numeric(col, errors="coerce").to_numpy(np.float64)
    text = np.isnan(num)
    if not text.any():
        return to_epoch_ms(num)
    out = np.zeros(len(col), dtype=np.int64)
    out[~text] = to_epoch_ms(num[~text])
    parsed = pd.to_datetime(col[text].astype(str), utc=True, format="ISO8601", errors="coerce")
    bad = np.zeros(len(col), dtype=bool)
    bad[text] = parsed.isna().to_numpy()
    _bad(df, bad, "is neither epoch milliseconds nor an ISO 8601 time", "open_time",
         values=col.to_numpy())
    out[text] = parsed.dt.as_unit("ms").astype("int64").to_numpy()
    return out


# --- the panel ----------------------------------------------------------------------------------

def _step_ms(times: np.ndarray, codes: np.ndarray) -> int:
    """The most common step between consecutive bars of the same symbol (ms)."""
    same = codes[1:] == codes[:-1]
    d = np.diff(times)[same]
    d = d[d > 0]
    if len(d) == 0:
        raise ScanInputError("cannot tell the bar length: no symbol has two bars")
    vals, counts = np.unique(d, return_counts=True)
    return int(vals[np.argmax(counts)])


def _resample(b: Bars, tf_ms: int) -> Bars:
    """Coarser bars: last close and summed quote volume per (symbol, tf_ms bucket)."""
    bucket = b.times // tf_ms * tf_ms
    last = np.flatnonzero(np.r_[(b.codes[1:] != b.codes[:-1]) | (bucket[1:] != bucket[:-1]),
                                True])
    first = np.r_[0, last[:-1] + 1]
    qv = None if b.quote_volume is None else np.add.reduceat(b.quote_volume, first)
    return Bars(b.codes[last], b.names, bucket[last], b.close[last], qv, b.source)


def at_timeframe(b: Bars, timeframe: str | int | None) -> tuple[Bars, int]:
    """``(bars, bar_ms)``: ``b`` at ``timeframe`` (finer bars resampled: last close, summed quote
    volume; coarser ones an error; None keeps the input's bar length)."""
    step = _step_ms(b.times, b.codes)
    if timeframe is None:
        return b, step
    bar_ms = timeframe_ms(timeframe)
    if step > bar_ms:
        raise ScanInputError(f"the bars are {step // 1000}s apart, coarser than the "
                             f"timeframe {timeframe}: scan at a coarser timeframe", path=b.source)
    if step < bar_ms or (b.times % bar_ms != 0).any():
        b = _resample(b, bar_ms)
    return b, bar_ms


def time_grid(t: np.ndarray, bar_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(t, return_inverse=True)`` of bar open times, in O(n) when they lie on a
    ``bar_ms`` clock (as bars at their timeframe do)."""
    if not len(t):
        return np.unique(t, return_inverse=True)
    t0 = int(t.min())
    if ((t - t0) % bar_ms).any():
        return np.unique(t, return_inverse=True)
    slot = (t - t0) // bar_ms
    present = np.zeros(int(slot.max()) + 1, dtype=bool)
    present[slot] = True
    rank = np.cumsum(present) - 1
    return t0 + np.flatnonzero(present).astype(np.int64) * bar_ms, rank[slot]


def build_panel(df: pd.DataFrame, *, symbols: list[str] | None = None,
                timeframe: str | int | None = None, lookback: str | int | None = None,
                min_coverage: float = 0.9, min_bars: int = 100,
                min_quote_volume: float = 0.0) -> Panel:
    """The aligned panel of closes from a long bar table (checked with :func:`check_table`).

    ``symbols``: those to scan (None: all in the table; a named symbol with no bars is skipped
    and listed). ``timeframe``: the bar length to scan at; finer input bars are resampled (last
    close, summed quote volume), coarser ones are an error; None keeps the input's. ``lookback``
    (e.g. ``"30d"`` or ms; ``"default"``: the bar length's, ``"all"`` or None: every bar,
    :func:`lookback_ms`): the window ending at the last bar of the table. A symbol is skipped
    (and listed) when it has fewer than ``min_coverage`` × the window's bars, a constant close,
    or less than ``min_quote_volume`` quote volume per day (a table without ``quote_volume``
    cannot be filtered on it: error). The panel keeps the bars every remaining symbol has;
    fewer than ``min_bars`` is an error.
    """
    return panel_from_bars(check_table(df), symbols=symbols, timeframe=timeframe,
                           lookback=lookback, min_coverage=min_coverage, min_bars=min_bars,
                           min_quote_volume=min_quote_volume)


def panel_from_bars(b: Bars, *, symbols: list[str] | None = None,
                    timeframe: str | int | None = None, lookback: str | int | None = None,
                    min_coverage: float = 0.9, min_bars: int = 100,
                    min_quote_volume: float = 0.0) -> Panel:
    """:func:`build_panel` of an already checked table (:func:`check_table`), so that a caller
    cutting one table into many windows (the book) checks it once."""
    source = b.source
    skipped: list[dict] = []
    if symbols:
        want = list(dict.fromkeys(normalize_symbol(s) for s in symbols))
        present = set(b.names)
        skipped += [{"symbol": s, "reason": "no bars in the input"} for s in want
                    if s not in present]
        b = b.take(np.isin(b.names, want)[b.codes])
    if min_quote_volume > 0 and b.quote_volume is None:
        raise ScanInputError("a minimum quote volume needs a quote_volume column", path=source)
    if not len(b.times):
        raise ScanInputError("no bars to scan" + (f" for {', '.join(symbols)}" if symbols else ""),
                             path=source)
    b, bar_ms = at_timeframe(b, timeframe)
    span = lookback_ms(lookback, bar_ms)
    if span is not None:
        b = b.take(b.times >= b.times.max() + bar_ms - span)
    grid, tcode = time_grid(b.times, bar_ms)
    new_symbol = np.r_[True, b.codes[1:] != b.codes[:-1]]   # rows are sorted by symbol
    starts = np.flatnonzero(new_symbol)
    scode = np.cumsum(new_symbol) - 1
    names = b.names[b.codes[starts]]
    close = np.full((len(grid), len(names)), np.nan)
    close[tcode, scode] = b.close
    count = np.bincount(scode, minlength=len(names))
    qv = np.full(len(names), np.nan)
    if b.quote_volume is not None:
        total = np.bincount(scode, weights=b.quote_volume, minlength=len(names))
        qv = total / (count * bar_ms / DAY_MS)
    lo, hi = np.fmin.reduceat(b.close, starts), np.fmax.reduceat(b.close, starts)
    keep = np.ones(len(names), dtype=bool)
    for i, s in enumerate(names):
        if count[i] < min_coverage * len(grid):
            reason = (f"too few bars: {count[i]} of the window's {len(grid)} "
                      f"(needs {min_coverage:.0%})")
        elif lo[i] == hi[i]:
            reason = "constant close"
        elif min_quote_volume > 0 and not qv[i] >= min_quote_volume:
            reason = f"quote volume {qv[i]:,.0f}/day < {min_quote_volume:,.0f}"
        else:
            continue
        keep[i] = False
        skipped.append({"symbol": str(s), "reason": reason})
    close, names, qv = close[:, keep], names[keep], qv[keep]
    rows = np.isfinite(close).all(axis=1)
    if (~rows).any():
        log.info("scan: %d of %d bars dropped (a kept symbol has no bar there)",
                 int((~rows).sum()), len(grid))
    if len(names) < 2:
        raise QdashError(f"{source}: fewer than 2 symbols to scan after the checks "
                         f"(skipped: {_skip_text(skipped)})")
    if rows.sum() < min_bars:
        raise ScanInputError(f"only {int(rows.sum())} bars common to the {len(names)} kept "
                             f"symbols, need {min_bars}: widen the lookback or name fewer symbols",
                             path=source)
    for sk in skipped:
        log.info("scan skips %s: %s", sk["symbol"], sk["reason"])
    return Panel(grid[rows].astype(np.int64), [str(s) for s in names],
                 np.ascontiguousarray(close[rows]), qv, int(bar_ms), skipped)


def _skip_text(skipped: list[dict]) -> str:
    return "; ".join(f"{s['symbol']}: {s['reason']}" for s in skipped[:10]) or "none"
