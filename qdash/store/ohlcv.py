"""Candles: the ``ohlcv_data`` table.

Candles are unique on ``(symbol, timeframe, source, open_time)`` (``source`` ``""`` for trade
candles, ``"mark"`` for mark-price klines) and a re-write replaces the stored candle (a forming
candle is written again as it grows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..model import BAR_COLUMNS, ms_to_index, timeframe_name
from .connection import StoreFile
from .rows import WriteResult, none_for_nan, range_clause
from .venue import claim_venue

BAR_UPSERT = ("INSERT OR REPLACE INTO ohlcv_data (symbol, timeframe, source, open_time, "
              + ", ".join(BAR_COLUMNS) + ") VALUES (" + ", ".join("?" * (4 + len(BAR_COLUMNS)))
              + ")")


class OhlcvTable(StoreFile):
    """Reads and writes of ``ohlcv_data`` (a part of :class:`qdash.store.Store`)."""

    def write_bars(self, bars: pd.DataFrame, symbol: str, timeframe: str,
                   source: str = "", *, venue: str | None = None) -> WriteResult:
        """Store candles (index: open time, UTC DatetimeIndex or int ms) replacing same-key rows.

        ``source`` tells candles of other prices apart: ``""`` trade candles (from ticks or
        Binance klines), ``"mark"`` mark-price klines. ``venue``: whose candles (``"exchange"``,
        ``"simulated"``; None: no venue of their own), which must be the store's
        (:mod:`qdash.store.venue`), else :class:`~qdash.errors.StoreError` and nothing stored."""
        if len(bars) == 0:
            return WriteResult(0, 0)
        tf = timeframe_name(timeframe)
        open_ms = _index_ms(bars.index)
        cols = [bars[c].to_numpy(dtype=np.float64) for c in BAR_COLUMNS]
        trades_i = BAR_COLUMNS.index("trades")
        cols[trades_i] = bars["trades"].to_numpy(dtype=np.int64)
        rows = [(symbol, tf, source, t, *vals) for t, *vals in
                zip(open_ms.tolist(), *[none_for_nan(c) for c in cols])]
        with self.transaction() as conn:
            claim_venue(conn, venue, self.path, f"candles of {symbol}")
            stored = self.execute_many(BAR_UPSERT, rows)
        return WriteResult(len(bars), stored)

    def bars(self, symbol: str, timeframe: str, start=None, end=None,
             source: str = "") -> pd.DataFrame:
        """Stored candles with ``start <= open_time < end``; index ``open_time`` (UTC), from the
        archive and SQLite together. ``source``: see :meth:`write_bars`."""
        df = self._sqlite_bars(symbol, timeframe, start, end, source)
        if (arch := self._archived()) is not None:
            from .parquet import combine

            df = combine(arch.bars(symbol, timeframe, start, end, source), df, ["open_time"])
        return df

    def _sqlite_bars(self, symbol: str, timeframe: str, start, end, source: str) -> pd.DataFrame:
        where, params = range_clause("open_time", symbol, start, end)
        where += " AND timeframe = ? AND source = ?"
        params += [timeframe_name(timeframe), source]
        dtypes = {"open_time": np.int64} | {c: np.float64 for c in BAR_COLUMNS} | {
            "trades": np.int64}
        df = self._frame(f"SELECT open_time, {', '.join(BAR_COLUMNS)} FROM ohlcv_data WHERE "
                         f"{where} ORDER BY open_time", params, dtypes)
        df.index = ms_to_index(df.pop("open_time").to_numpy(), name="open_time")
        return df


def _index_ms(index) -> np.ndarray:
    """Open times of a candle index (UTC or naive-as-UTC DatetimeIndex, or int ms) in int ms."""
    if isinstance(index, pd.DatetimeIndex):
        return index.as_unit("ms").asi8 if index.tz is not None else \
            index.tz_localize("UTC").as_unit("ms").asi8
    return np.asarray(index, dtype=np.int64)
