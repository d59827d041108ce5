"""Exporters: ticks or candles → CSV / Parquet with an ISO-8601 UTC time column first.

Ticks (columns include ``ts``) get a ``time`` column from ``ts``; candles (indexed by open time)
get ``open_time``. Any UTC DatetimeIndex becomes that first column; a RangeIndex is dropped.
"""

from __future__ import annotations

import os

import pandas as pd

from ..model import ms_to_index


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
    out = _with_time_column(df)
    col = out.columns[0]
    if isinstance(out[col].dtype, pd.DatetimeTZDtype):
        out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    return out.to_csv(path, index=False)


def to_parquet(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` as Parquet (the time column first, as a UTC timestamp)."""
    _with_time_column(df).to_parquet(path, index=False)
