"""The dashboard's render model: session state → each view's columns. No widgets, no analytics.

Every number here comes from :mod:`qdash.analytics` (the pair kernel's series, the live metrics,
:meth:`~qdash.analytics.PairState.preview`); these functions only pick, convert (log → price
ratios, ms → plot time) and lay out. They are unit-tested without a browser.

Breaks: a row that starts a new segment (after a hole in the data, see
:mod:`qdash.analytics.signal`) is preceded by an all-NaN row, so Bokeh lifts the pen there and no
line or band is drawn across the hole.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from ..analytics import SignalSpec
from .plots import PAIR_COLUMNS

BAND_K = 2.0  # the spread chart's band: mean ± BAND_K standard deviations of the z window


def pair_columns(rows: pd.DataFrame, metrics: dict, spec: SignalSpec,
                 norm_base: tuple[float, float], *, continues: bool) -> dict[str, list]:
    """Columns of the pair views for kernel rows (``PairState.frame()`` or
    ``PairAnalytics.series``): normalised prices, the signal's spread with its z-window mean and
    ±:data:`BAND_K`σ band, its z-score (``zscore_raw``: the chart shows the series the alerts and
    the backtest use; staleness is shown in the table), correlation and every estimator's β.

    ``metrics``: the live metrics (the refresh betas are drawn flat); ``norm_base``: the raw
    closes prices are normalised by; ``continues``: rows follow rows already shown (a segment
    start then gets a break row before it)."""
    if not len(rows):
        return {c: [] for c in PAIR_COLUMNS}
    t = rows.index.as_unit("ms").asi8.astype(float)
    y_raw = np.exp(rows["y"].to_numpy()) if spec.log else rows["y"].to_numpy()
    x_raw = np.exp(rows["x"].to_numpy()) if spec.log else rows["x"].to_numpy()
    mean, std = rows["spread_mean"].to_numpy(), rows["spread_std"].to_numpy()
    n = len(rows)
    cols = {
        "t": t, "y_norm": y_raw / norm_base[0], "x_norm": x_raw / norm_base[1],
        "spread": rows["spread"].to_numpy(), "mean": mean, "upper": mean + BAND_K * std,
        "lower": mean - BAND_K * std, "z": rows["zscore_raw"].to_numpy(),
        "corr": rows["corr_returns"].to_numpy(),
        "beta_ols": np.full(n, metrics.get("beta_ols", math.nan)),
        "beta_rolling_ols": rows["beta_rolling"].to_numpy(),
        "beta_huber": np.full(n, metrics.get("beta_huber", math.nan)),
        "beta_theil_sen": np.full(n, metrics.get("beta_theil_sen", math.nan)),
        "beta_kalman": rows["beta_kalman"].to_numpy(),
    }
    starts = rows["segment_bar"].to_numpy() == 0
    if not continues:
        starts[0] = False
    breaks = np.flatnonzero(starts)
    if len(breaks):
        gap_t = t[breaks] - 0.5
        for k, v in cols.items():
            filler = gap_t if k == "t" else np.full(len(breaks), np.nan)
            cols[k] = np.insert(np.asarray(v, dtype=float), breaks, filler)
    return {k: np.asarray(v, dtype=float).tolist() for k, v in cols.items()}


def live_point(preview: dict | None, t_ms: float) -> dict[str, list]:
    """The z-score dot of the forming bar (``PairState.preview``); empty when undefined."""
    if preview is None or not math.isfinite(preview.get("zscore", math.nan)):
        return {"t": [], "z": []}
    return {"t": [float(t_ms)], "z": [float(preview["zscore"])]}


def fmt(v, digits: int = 4) -> str:
    """A table cell: ``–`` for missing/NaN, thousands separators, ``yes``/``no``."""
    if v is None:
        return "–"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return f"{v:,}"
    if isinstance(v, float | np.floating):
        if not math.isfinite(v):
            return "–"
        return f"{v:,.{digits}g}" if abs(v) < 1e6 else f"{v:,.0f}"
    return html.escape(str(v))


def signal_rows(m: dict, spec: SignalSpec, waiting: list[str]) -> list[tuple[str, str]]:
    """The stats table's signal rows: the z-score (with why it is missing) and the βs, each
    labelled with its price space."""
    z_text = fmt(m["zscore"], 3)
    if m.get("stale"):
        z_text = (f"{fmt(m['zscore_raw'], 3)} — withheld: a leg has not traded for "
                  f"{fmt(max(m['age_y_s'], m['age_x_s']), 3)} s")
    elif not math.isfinite(m.get("zscore", math.nan)):
        z_wait = next((w for w in waiting if w.startswith("z-score")), None)
        if z_wait:
            z_text = "– (" + html.escape(z_wait) + ")"
    sp = spec.space
    return [
        ("signal", html.escape(spec.describe())),
        ("z-score (chart, alerts, backtest)", z_text),
        (f"β of the signal ({spec.hedge}, {sp})", fmt(m["beta"])),
        (f"β OLS (refresh window, {sp})", fmt(m["beta_ols"])),
        (f"β rolling OLS ({sp})", fmt(m["beta_rolling"])),
        (f"β Huber (refresh window, {sp})", fmt(m["beta_huber"])),
        (f"β Theil–Sen (refresh window, {sp})", fmt(m["beta_theil_sen"])),
        (f"β Kalman ({sp})", fmt(m["beta_kalman"])),
        ("β disagreement (max−min)/|median|", fmt(m["beta_disagreement"], 3)),
    ]
