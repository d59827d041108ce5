"""File readers and exporters.

* :func:`read_ticks` / :func:`iter_tick_batches`: tick files (Binance trades/aggTrades dumps, raw
  WebSocket NDJSON, browser-collector NDJSON, generic tick CSV) → canonical tick batches;
* :func:`read_bars`: klines / OHLC(V) CSV → ``(bars, timeframe)``;
* :func:`load`: any of those → a :class:`qdash.Store`, returning a printable :class:`LoadReport`;
* :func:`to_csv` / :func:`to_parquet`: ticks or candles → files with an ISO UTC time column first.

Formats are auto-detected (:mod:`qdash.io.detect` lists them); ``.gz`` and ``.zip`` are read
transparently, large files in bounded-memory chunks.
"""

from .candles import read_bars
from .detect import FORMATS, detect
from .export import to_csv, to_parquet
from .load import FileReport, LoadReport, SymbolReport, load
from .ticks import iter_tick_batches, read_ticks

__all__ = ["FORMATS", "FileReport", "LoadReport", "SymbolReport", "detect", "iter_tick_batches",
           "load", "read_bars", "read_ticks", "to_csv", "to_parquet"]
