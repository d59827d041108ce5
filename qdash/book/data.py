"""The book's input: one checked bar table as a grid of per-bar matrices, and stored funding.

The long table (``symbol, open_time, close[, quote_volume]``: a DataFrame, a CSV/Parquet path or
a :class:`~qdash.store.Store`, as :func:`qdash.scan` reads it) is checked once
(:func:`qdash.scan.io.check_table`), brought to the timeframe and laid on its bar grid: the
``times × symbols`` matrices of closes (NaN where a symbol has no bar) and quote volumes that
trading reads, and from which every window's scan takes its train span's checked rows back
(:meth:`BookData.window_bars`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..errors import QdashError
from ..model import ms_to_index
from ..scan.io import Bars, at_timeframe, check_table, read_store, read_table, time_grid


@dataclass
class BookData:
    """The checked table at the timeframe, cut to [start, end), as a grid: ``times`` (int64 ms,
    every open time of any symbol), ``symbols``, ``close``/``quote_volume`` ``len(times) ×
    len(symbols)`` (NaN: no bar / no volume; ``has_volume`` False when the input had none);
    ``funding``: rates settled per bar (0: none); ``bar_ms``; ``source`` names the input."""

    times: np.ndarray
    symbols: list[str]
    close: np.ndarray
    quote_volume: np.ndarray
    funding: np.ndarray
    bar_ms: int
    has_volume: bool = True
    source: str = "bars"

    @property
    def index(self) -> pd.DatetimeIndex:
        return ms_to_index(self.times, name="open_time")

    def window_bars(self, lo: int, hi: int) -> Bars:
        """The checked rows of grid rows ``[lo, hi)`` as :class:`~qdash.scan.io.Bars` (sorted by
        symbol then time, as :func:`~qdash.scan.io.check_table` leaves them): what a window's
        scan reads."""
        c = self.close[lo:hi].T
        j, t = np.nonzero(np.isfinite(c))
        qv = self.quote_volume[lo:hi].T[j, t] if self.has_volume else None
        return Bars(j.astype(np.int64), np.array(self.symbols, dtype=object),
                    self.times[lo:hi][t], c[j, t], qv, self.source)

    def for_scans(self) -> BookData:
        """This data without the funding matrix: what the window scans need (sent to Dask)."""
        return replace(self, funding=np.zeros((0, 0)))

    def fingerprint(self) -> str:
        """SHA-256 of the bars (symbols, times, closes, quote volumes) and the funding used."""
        h = hashlib.sha256()
        h.update("\n".join(self.symbols).encode())
        for a in (self.times, self.close, self.quote_volume, self.funding):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


def _table(bars, symbols: list[str] | None, timeframe: str) -> pd.DataFrame:
    from ..store import Store

    if isinstance(bars, Store):
        return read_store(bars, symbols, timeframe, None)
    if isinstance(bars, (str, os.PathLike)):
        return read_table(bars, symbols)
    if isinstance(bars, pd.DataFrame):
        return bars
    raise QdashError(f"book needs a long bar DataFrame, a file/directory path or a Store, got "
                     f"{type(bars).__name__}")


def _ms(t) -> int | None:
    if t is None:
        return None
    ts = pd.Timestamp(t)
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def load(bars, *, symbols: list[str] | None, timeframe: str, start=None, end=None,
         funding=None, use_funding: bool = True) -> BookData:
    """Read, check and cut the bars; ``funding``: a mapping symbol → rate Series (index:
    settlement time), or None to read stored funding from a Store input (none otherwise)."""
    table = _table(bars, symbols, timeframe)
    if not len(table):
        raise QdashError("book: no bars in the input" +
                         (f" for {', '.join(symbols)}" if symbols else ""))
    b = check_table(table)
    if symbols:
        from ..model import normalize_symbol
        want = [normalize_symbol(s) for s in symbols]
        b = b.take(np.isin(b.names, want)[b.codes])
    b, bar_ms = at_timeframe(b, timeframe)
    lo, hi = _ms(start), _ms(end)
    keep = np.ones(len(b.times), dtype=bool)
    if lo is not None:
        keep &= b.times >= lo
    if hi is not None:
        keep &= b.times < hi
    if not keep.all():
        b = b.take(keep)
    if not len(b.times):
        raise QdashError(f"book: no bars between {start} and {end}")
    used = np.flatnonzero(np.bincount(b.codes, minlength=len(b.names)))
    if len(used) < len(b.names):
        remap = np.full(len(b.names), -1)
        remap[used] = np.arange(len(used))
        b = Bars(remap[b.codes], b.names[used], b.times, b.close, b.quote_volume, b.source)
    times, row = time_grid(b.times, bar_ms)
    names = [str(s) for s in b.names]
    close = np.full((len(times), len(names)), np.nan)
    close[row, b.codes] = b.close
    qv = np.full_like(close, np.nan)
    if b.quote_volume is not None:
        qv[row, b.codes] = b.quote_volume
    rates = np.zeros_like(close)
    if use_funding:
        rates = _funding(bars, funding, names, times, bar_ms)
    return BookData(times, names, close, qv, rates, int(bar_ms),
                    b.quote_volume is not None, b.source)


def _funding(source, funding, names: list[str], times: np.ndarray, bar_ms: int) -> np.ndarray:
    """Per-bar funding rates of every symbol: from ``funding`` (symbol → Series) when given,
    else the store's (:func:`qdash.backtest.funding.stored_funding` spans), else zeros."""
    from ..backtest.engine import funding_per_bar
    from ..store import Store

    out = np.zeros((len(times), len(names)))
    index = ms_to_index(times, name="open_time")
    for j, sym in enumerate(names):
        rates = None
        if funding is not None:
            rates = funding.get(sym)
        elif isinstance(source, Store):
            f = source.funding(sym, index[0], index[-1] + pd.Timedelta(milliseconds=bar_ms))
            rates = f["rate"] if len(f) else None
        if rates is not None and len(rates):
            out[:, j] = funding_per_bar(rates, index, float(bar_ms))
    return out
