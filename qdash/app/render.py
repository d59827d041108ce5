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
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..analytics import SignalSpec
from ..display import equity_columns, fmt  # noqa: F401  (the views' cells and equity columns)
from .plots import DOWN, PAIR_COLUMNS, UP

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


def candle_columns(bars: pd.DataFrame, tf_ms: int) -> dict[str, list]:
    """Columns of a candle view for ``bars`` (open-time index) of ``tf_ms`` ms: each candle
    drawn at its middle, 80 % of the interval wide, green when it closed at or above its open."""
    t = bars.index.as_unit("ms").asi8.astype(float)
    up = bars["close"].to_numpy() >= bars["open"].to_numpy()
    return {"t": (t + tf_ms / 2).tolist(), "open": bars["open"].tolist(),
            "high": bars["high"].tolist(), "low": bars["low"].tolist(),
            "close": bars["close"].tolist(), "volume": bars["volume"].tolist(),
            "color": np.where(up, UP, DOWN).tolist(), "w": [tf_ms * 0.8] * len(bars)}


def heat_columns(corr: pd.DataFrame) -> dict[str, list]:
    """Columns of the correlation heatmap: one cell per pair of symbols (NaN drawn as 0)."""
    names = list(corr.columns)
    a, b, v = [], [], []
    for i in names:
        for j in names:
            a.append(i)
            b.append(j)
            v.append(float(corr.loc[i, j]) if math.isfinite(corr.loc[i, j]) else 0.0)
    return {"a": a, "b": b, "corr": v, "label": [f"{c:.2f}" for c in v]}


def trade_columns(trades: pd.DataFrame) -> dict[str, list]:
    """Columns of the backtest's entry and exit markers on the z-score chart."""
    times = pd.concat([trades["entry_time"], trades["exit_time"]])
    zs = pd.concat([trades["entry_z"], trades["exit_z"]])
    kinds = ["entry"] * len(trades) + ["exit"] * len(trades)
    return {"t": (pd.DatetimeIndex(times).as_unit("ms").asi8).astype(float).tolist(),
            "z": [float(z) if math.isfinite(z) else 0.0 for z in zs],
            "kind": kinds, "color": ["#d62728" if k == "entry" else "#2ca02c" for k in kinds]}


def live_point(preview: dict | None, t_ms: float) -> dict[str, list]:
    """The z-score dot of the forming bar (``PairState.preview``); empty when undefined."""
    if preview is None or not math.isfinite(preview.get("zscore", math.nan)):
        return {"t": [], "z": []}
    return {"t": [float(t_ms)], "z": [float(preview["zscore"])]}


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


def connection_text(conn: dict | None) -> str | None:
    """The status line for a feed that is not connected (``BinanceFutures.connection_status``):
    which host, what failed, when the next try is; None while the connection is open."""
    if not conn or conn.get("state") in ("open", "idle", "stopped"):
        return None
    text = f"{conn['state']} to {conn.get('host')}"
    if conn.get("last_error"):
        text += f": {conn['last_error']}"
    if conn.get("retry_in_s") is not None:
        text += f" — retrying in {conn['retry_in_s']:.0f} s"
    return text


def _duration(ms: float) -> str:
    s = max(0, int(ms // 1000))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def funding_rows(premium: Mapping[str, Mapping | None], now_ms: int) -> list[tuple[str, str]]:
    """The stats table's funding rows, one per leg, from Binance ``/fapi/v1/premiumIndex``
    entries (``symbol → entry``, None while not fetched yet): the funding rate
    (``lastFundingRate``, in % per funding interval, positive: longs pay shorts), the time to the
    next settlement (``nextFundingTime − now_ms``, h:mm:ss) and the mark–index premium
    (``(markPrice − indexPrice) / indexPrice``, in basis points)."""
    rows = []
    for sym, e in premium.items():
        label = f"{sym} funding rate / next in / mark–index"
        if not e:
            rows.append((label, "–"))
            continue
        rate = float(e["lastFundingRate"]) * 100
        mark, index = float(e["markPrice"]), float(e["indexPrice"])
        prem = f"{(mark - index) / index * 1e4:+.2f} bp" if index > 0 else "–"
        nxt = int(e["nextFundingTime"])
        rows.append((label, f"{rate:+.4f} % / {_duration(nxt - now_ms) if nxt else '–'} / "
                            f"{prem}"))
    return rows
