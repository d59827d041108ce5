"""Candle file readers: Binance klines dumps and OHLC(V) CSV uploads.

Binance klines (``open_time,open,high,low,close,volume,close_time,quote_volume,count,
taker_buy_volume,taker_buy_quote_volume,ignore``; header optional; ms or µs) give every column of
:data:`qdash.model.BAR_COLUMNS` (``vwap`` = quote volume / volume). Other OHLC CSVs need a time
column and open/high/low/close; volume, trade count, taker-buy volume, quote volume and vwap are
taken when a column names them and are NaN otherwise (``trades`` is int64 when present).
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pandas as pd

from ..errors import DataFormatError
from ..model import BAR_COLUMNS, ms_to_index, normalize_symbol, timeframe_name
from . import columns as C
from .detect import Detected, detect
from .source import open_data

OPEN_TIME_COLUMNS = ("open_time", "time", "timestamp", "date", "datetime", "ts", "open time")
OPTIONAL = {
    "volume": ("volume", "vol", "base_volume"),
    "trades": ("count", "trades", "number_of_trades", "num_trades", "trade_count"),
    "buy_volume": ("taker_buy_volume", "taker_buy_base_volume", "taker_buy_base", "buy_volume"),
    "quote_volume": ("quote_volume", "quote_asset_volume", "turnover", "quote_vol"),
    "vwap": ("vwap",),
}


def read_bars(path: str | os.PathLike, format: str | None = None, symbol: str | None = None,
              timeframe: str | None = None, skip_bad: bool = False
              ) -> tuple[pd.DataFrame, str]:
    """Candles of a klines/OHLC file → ``(bars, timeframe)``.

    ``bars`` is indexed by the UTC ``open_time`` with :data:`BAR_COLUMNS` (NaN where the file has
    no such column), sorted, one row per open time (later duplicates are dropped and counted);
    ``bars.attrs`` holds ``symbol``, ``filtered`` (reason → rows) and ``bad_rows``. The timeframe is
    ``timeframe``, else the file name's interval (``ETHUSDT-1m-2024-07-18.zip``), else the most
    common step between open times. Candles with a non-finite, zero or negative price are dropped
    and counted; rows with high < low (or open/close outside them) are malformed.
    """
    bars, tf, _ = _read_bars(path, detect(path, format), symbol, timeframe, skip_bad)
    return bars, tf


def _read_bars(path, det: Detected, symbol, timeframe, skip_bad, bar=None):
    if det.kind != "bars":
        raise DataFormatError(f"holds ticks ({det.format}), not candles: use read_ticks",
                              path=str(path))
    names = list(det.names)
    t = C.pick(names, OPEN_TIME_COLUMNS)
    ohlc = [C.pick(names, (c,)) for c in ("open", "high", "low", "close")]
    if t is None or None in ohlc:
        raise DataFormatError(f"candles need an open time column and open, high, low, close; "
                              f"found {names}", path=str(path), line=1)
    sym_col = C.pick(names, ("symbol", "ticker", "pair"))
    opt = {k: C.pick(names, v) for k, v in OPTIONAL.items()}
    used = [c for c in [t, *ohlc, sym_col, *opt.values()] if c]
    with open_data(path, bar) as (stream, _):
        try:
            df = pd.read_csv(stream, sep=det.delimiter, header=None, names=names, usecols=used,
                             skiprows=1 if det.header else 0, skip_blank_lines=False,
                             keep_default_na=False, na_values=[""], index_col=False)
        except (pd.errors.ParserError, ValueError) as e:
            raise DataFormatError(f"cannot parse CSV: {str(e).strip()}", path=str(path)) from e
    lines = np.arange(len(df), dtype=np.int64) + (2 if det.header else 1)
    blank = df.isna().all(axis=1).to_numpy()
    df, lines = df[~blank], lines[~blank]
    err = C.RowErrors(lines)
    open_ms = C.times_ms(df[t], t, err)
    o, h, lo, c = (C.floats(df[col], col, err) for col in ohlc)
    cols = {"open": o, "high": h, "low": lo, "close": c}
    for k, col in opt.items():
        if col is None:
            cols[k] = np.full(len(df), np.nan)
        elif k == "trades":
            cols[k] = C.integers(df[col], col, err)
        else:
            cols[k] = C.floats(df[col], col, err)
    syms = C.symbols(df[sym_col], sym_col, err) if sym_col else None
    with np.errstate(invalid="ignore"):
        incoherent = (h < lo) | (o > h) | (o < lo) | (c > h) | (c < lo)
    err.mark(incoherent & np.isfinite(h + lo + o + c), ohlc[1],
             lambda i: f"high/low do not enclose open/close (o={o[i]}, h={h[i]}, l={lo[i]}, "
             f"c={c[i]})")
    if not skip_bad:
        err.raise_first(str(path))
    keep = ~err.mask
    sym = _bars_symbol(syms, keep, symbol, det, str(path))
    if syms is not None:
        keep &= syms == sym
    filtered: Counter = Counter()
    with np.errstate(invalid="ignore"):
        prices = np.vstack([o, h, lo, c])
        nonfinite = keep & ~np.isfinite(prices).all(axis=0)
        nonpos = keep & ~nonfinite & ~(prices > 0).all(axis=0)
    filtered["non-finite"] += int(nonfinite.sum())
    filtered["price<=0"] += int(nonpos.sum())
    keep &= ~(nonfinite | nonpos)
    out = pd.DataFrame({k: v[keep] for k, v in cols.items()}, index=open_ms[keep])
    if opt["vwap"] is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            vwap = out["quote_volume"] / out["volume"]
        out["vwap"] = vwap.where(out["volume"] > 0)
    out = out.sort_index(kind="stable")
    dup = out.index.duplicated()
    filtered["duplicate open_time"] += int(dup.sum())
    out = out[~dup]
    tf = _timeframe(out.index.to_numpy(), timeframe, det, str(path))
    out.index = ms_to_index(out.index.to_numpy(), name="open_time")
    out = out[BAR_COLUMNS]
    out.attrs = {"symbol": sym, "filtered": {k: v for k, v in filtered.items() if v},
                 "bad_rows": [str(b) for b in err.sorted_rows()]}
    return out, tf, err


def _bars_symbol(syms, keep, symbol, det: Detected, path: str) -> str:
    if symbol:
        return normalize_symbol(symbol)
    if syms is not None:
        uniq = sorted(set(syms[keep].tolist()))
        if len(uniq) == 1:
            return uniq[0]
        raise DataFormatError(f"candles of several symbols {uniq[:5]}: pass symbol=... / --symbol "
                              "to load one", path=path)
    if det.hints.symbol:
        return det.hints.symbol
    raise DataFormatError("no symbol column and no symbol in the file name "
                          "(ETHUSDT-1m-2024-07-18.csv); pass symbol=... / --symbol", path=path)


def _timeframe(open_ms: np.ndarray, timeframe, det: Detected, path: str) -> str:
    if timeframe:
        return timeframe_name(timeframe)
    if det.hints.timeframe:
        return timeframe_name(det.hints.timeframe)
    steps = np.diff(open_ms)
    steps = steps[steps > 0]
    if len(steps) == 0:
        raise DataFormatError("cannot detect the timeframe from fewer than two candles; pass "
                              "timeframe=... (e.g. '1m')", path=path)
    values, counts = np.unique(steps, return_counts=True)
    return timeframe_name(int(values[np.argmax(counts)]))
