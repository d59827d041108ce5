"""Exporters: ticks, candles or any table → CSV / Parquet, every time as ISO 8601 UTC.

Ticks (columns include ``ts``) get a ``time`` column from ``ts``; candles (indexed by open time)
get ``open_time``. Any UTC DatetimeIndex becomes that first column; a RangeIndex is dropped.
:func:`write_csv` is THE CSV writer of qdash: every datetime column and index it writes is text
from :func:`iso_utc` (``2026-11-16T21:00:00.000Z``), whoever writes the file (``qdash bars``,
the backtest's ``trades.csv``/``signals.csv``/``equity.csv``, the dashboard's downloads).
"""

from __future__ import annotations

import os

import pandas as pd

from ..model import ms_to_index

ISO_UTC = "%Y-%m-%dT%H:%M:%S.%f"  # + milliseconds cut and "Z" by iso_utc


def iso_utc(times) -> pd.Index:
    """``times`` (DatetimeIndex or datetime Series, naive = UTC) as ISO 8601 UTC text with
    milliseconds, e.g. ``2026-11-16T21:00:00.000Z``; NaT stays missing."""
    idx = pd.DatetimeIndex(times)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    text = idx.strftime(ISO_UTC)
    return pd.Index([t if not isinstance(t, str) else t[:-3] + "Z" for t in text],
                    name=getattr(times, "name", None), dtype=object)


def _iso_times(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every datetime column and a datetime index as :func:`iso_utc` text."""
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = iso_utc(out[col]).to_numpy()
    if isinstance(out.index, pd.DatetimeIndex):
        out.index = iso_utc(out.index)
    return out


def write_csv(df: pd.DataFrame, path: str | os.PathLike | None = None, **to_csv_kw) -> str | None:
    """Write ``df`` as CSV with every time as :func:`iso_utc` text (keywords go to
    :meth:`pandas.DataFrame.to_csv`); returns the text when ``path`` is None."""
    return _iso_times(df).to_csv(path, **to_csv_kw)


def _with_time_column(df: pd.DataFrame) -> pd.DataFrame:
    if "ts" in df.columns:
        time = ms_to_index(df["ts"].to_numpy(), name="time")
    elif isinstance(df.index, pd.DatetimeIndex):
        time = df.index if df.index.tz is not None else df.index.tz_localize("UTC")
        time = time.rename(df.index.name or "open_time")
    else:
        return df.reset_index(drop=True)
    out = df.reset_index(drop=True)
    out.insert(0, time.name, time.tz_convert("UTC"))
    return out


def to_csv(df: pd.DataFrame, path: str | os.PathLike | None = None) -> str | None:
    """Write ``df`` as CSV (ISO UTC time column first, e.g. ``2024-07-18T23:58:00.000Z``);
    returns the text when ``path`` is None."""
    return write_csv(_with_time_column(df), path, index=False)


def to_parquet(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` as Parquet (the time column first, as a UTC timestamp)."""
    _with_time_column(df).to_parquet(path, index=False)
