"""The scanner view's render model: a scan frame (:func:`qdash.scan.scan`) → the ranked table's
rows and the heatmap's columns. Pure: no widgets, no Bokeh, unit-tested without a browser.

Filters: ``passing`` (only pairs that passed every rule), ``min_quote_volume`` (the smaller leg's
mean quote volume per day, quote currency), ``text`` (case-insensitive substring of either
symbol). Sorting by any column; ``top`` rows kept. The heatmap's value is ``-log10(q)`` (capped at
:data:`NEG_LOG_CAP`) or ``-coint_t`` (larger = stronger cointegration for both), y on the vertical
axis, x on the horizontal one, over the symbols of the rows shown.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import QdashError

TABLE_COLUMNS = ["rank", "y", "x", "beta", "coint_t", "coint_p", "q", "half_life", "hurst",
                 "crossings", "test_sharpe", "test_sharpe_se", "liquidity", "pass", "reason"]
HEAT_METRICS = {"-log10 q": "q", "-coint t": "coint_t"}
NEG_LOG_CAP = 16.0       # -log10(q) shown for q = 0 (and capped there)
MAX_HEAT_SYMBOLS = 40    # heatmap side, at most (a 400-symbol grid is not readable)


def table_rows(frame: pd.DataFrame | None, *, passing: bool = False,
               min_quote_volume: float = 0.0, text: str = "", sort_by: str = "rank",
               ascending: bool = True, top: int = 50) -> pd.DataFrame:
    """The rows the ranked table shows, in :data:`TABLE_COLUMNS`: ``rank`` is the scan's order
    (1 = best), ``liquidity`` the smaller leg's quote volume per day."""
    if frame is None or not len(frame):
        return pd.DataFrame(columns=TABLE_COLUMNS)
    df = frame.reset_index(drop=True)
    df = df.assign(rank=np.arange(1, len(df) + 1),
                   liquidity=np.fmin(df["quote_volume_y"].to_numpy(float),
                                     df["quote_volume_x"].to_numpy(float)))
    keep = np.ones(len(df), dtype=bool)
    if passing:
        keep &= df["pass"].to_numpy(bool)
    if min_quote_volume > 0:
        keep &= df["liquidity"].to_numpy() >= min_quote_volume
    needle = text.strip().upper()
    if needle:
        keep &= (df["y"].str.contains(needle, regex=False)
                 | df["x"].str.contains(needle, regex=False)).to_numpy()
    df = df.loc[keep, TABLE_COLUMNS]
    if sort_by not in TABLE_COLUMNS:
        raise QdashError(f"scanner table: no column {sort_by!r} to sort by; use one of "
                         f"{', '.join(TABLE_COLUMNS)}")
    if sort_by != "rank" or not ascending:
        df = df.sort_values(sort_by, ascending=ascending, kind="stable", na_position="last")
    return df.head(max(0, int(top))).reset_index(drop=True)


def heat_value(frame: pd.DataFrame, metric: str) -> np.ndarray:
    """The heatmap's value per row of ``frame``: ``-log10(q)`` capped at :data:`NEG_LOG_CAP`,
    or ``-coint_t``; NaN stays NaN."""
    if metric not in HEAT_METRICS:
        raise QdashError(f"scanner heatmap: unknown metric {metric!r}; use one of "
                         f"{', '.join(HEAT_METRICS)}")
    if HEAT_METRICS[metric] == "q":
        q = frame["q"].to_numpy(float)
        with np.errstate(divide="ignore"):
            return np.minimum(-np.log10(q), NEG_LOG_CAP)
    return -frame["coint_t"].to_numpy(float)


def heat_columns(frame: pd.DataFrame, rows: pd.DataFrame, metric: str = "-log10 q",
                 max_symbols: int = MAX_HEAT_SYMBOLS) -> tuple[list[str], dict]:
    """The heatmap over the symbols of ``rows`` (the table shown; first seen first, at most
    ``max_symbols``): ``(symbols, {"y", "x", "value", "label"})`` with one cell per directed pair
    of those symbols that ``frame`` tested; ``label`` the value with 1 decimal."""
    symbols = list(dict.fromkeys([*rows["y"], *rows["x"]] if len(rows) else []))
    symbols = symbols[:max_symbols]
    cols = {"y": [], "x": [], "value": [], "label": []}
    if len(symbols) < 2 or frame is None:
        return symbols, cols
    cells = frame[frame["y"].isin(symbols) & frame["x"].isin(symbols)]
    values = heat_value(cells, metric)
    for y, x, v in zip(cells["y"], cells["x"], values):
        ok = math.isfinite(v)
        cols["y"].append(y)
        cols["x"].append(x)
        cols["value"].append(float(v) if ok else 0.0)
        cols["label"].append(f"{v:.1f}" if ok else "")
    return symbols, cols


def pair_label(row) -> str:
    """How a table row is named in the pair list: ``"#1 ETHUSDT / BTCUSDT  q 1.2e-05 ✓"``."""
    mark = "✓" if bool(row["pass"]) else "✗"
    return f"#{int(row['rank'])} {row['y']} / {row['x']}  q {float(row['q']):.2g} {mark}"


__all__ = ["HEAT_METRICS", "TABLE_COLUMNS", "heat_columns", "heat_value", "pair_label",
           "table_rows"]
