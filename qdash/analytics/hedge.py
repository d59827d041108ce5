"""Hedge ratios of a pair, every estimator behind one contract: :func:`hedge_ratio`.

Model: ``y_t = beta·x_t + alpha + spread_t`` (``alpha = 0`` when ``intercept=False``), on prices
or, with ``log=True``, on natural-log prices. ``y`` is the leg you hold one unit of, ``x`` the
hedge leg: a spread position is +1 y and −beta x.

Every method returns a :class:`HedgeResult` with ``beta``, ``alpha``, ``spread``; the time-varying
methods (``rolling-ols``, ``expanding-ols``, ``kalman``) also carry per-bar
``beta_series``/``alpha_series``, and their scalar ``beta``/``alpha`` are the last bar's. Their
estimate at bar t uses bars <= t only (no look-ahead), and their spread is
``y_t − (beta_t·x_t + alpha_t)``.

Alignment policy (:func:`align`), the same for every method:

* two pandas Series are joined on their index (outer join, sorted); a leg missing at a timestamp is
  forward-filled from its previous value for at most ``ffill_limit`` consecutive rows (default 0:
  no filling, i.e. an inner join); rows where a leg is still missing are dropped;
* arrays (or Series without a shared index) must have the same length and are paired by position;
* rows with a non-finite value (or a non-positive price when ``log=True``) are dropped.

Robust estimators on long inputs (a day of 1 s bars is 86,400 points): ``huber`` and
``theil-sen`` fit at most ``max_points`` points (defaults 5,000 and 1,000), drawn uniformly without
replacement by ``numpy.random.default_rng(seed)`` (default seed 0) and kept in time order, so the
result is deterministic and equals scikit-learn's ``HuberRegressor`` /
``scipy.stats.theilslopes`` on exactly those points. Theil–Sen is O(m²) in time and memory
(1,000 points → 0.5 M slopes, ~25 ms); the points used are in ``HedgeResult.params["n_fit"]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import AnalyticsError
from .estimators import FIT_METHODS, FitParams, estimator

METHODS = FIT_METHODS
"""Estimators of :func:`hedge_ratio`, from :mod:`qdash.analytics.estimators`: the static fits
(``ols``, ``huber``, ``theil-sen``) and the time-varying ones."""


@dataclass(frozen=True)
class HedgeResult:
    """The one result type of every hedge-ratio method.

    ``beta``/``alpha``: the estimate (last bar's for time-varying methods; ``alpha`` is 0 without
    intercept). ``spread``: ``y − (beta·x + alpha)`` per aligned bar (per-bar beta/alpha for
    time-varying methods). ``beta_series``/``alpha_series``: per-bar estimates (time-varying methods
    only, else None). ``extra``: method-specific series; Kalman gives ``innovation`` (``y_t`` minus
    its one-step-ahead prediction), ``innovation_var`` (its predicted variance ``S_t``) and
    ``innovation_z`` (= innovation / sqrt(S_t)), the filter's break signals. ``params``: the
    parameters used (including ``n_fit`` points for subsampled methods).
    """

    method: str
    beta: float
    alpha: float
    spread: pd.Series
    intercept: bool
    log: bool
    nobs: int
    beta_series: pd.Series | None = None
    alpha_series: pd.Series | None = None
    extra: dict[str, pd.Series] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


def align(y, x, *, ffill_limit: int = 0, log: bool = False) -> tuple[pd.Index, np.ndarray,
                                                                        np.ndarray]:
    """Apply the module's alignment policy; returns (index, y values, x values) as float64.

    The values are log prices when ``log=True``. Raises :class:`AnalyticsError` when fewer than 3
    aligned rows remain or array lengths differ.
    """
    if isinstance(y, pd.Series) and isinstance(x, pd.Series) and not y.index.equals(x.index):
        df = pd.concat({"y": y.astype("float64"), "x": x.astype("float64")}, axis=1, sort=True)
        if ffill_limit > 0:
            df = df.ffill(limit=ffill_limit)
        index, yv, xv = df.index, df["y"].to_numpy(), df["x"].to_numpy()
    else:
        yv = np.asarray(y, dtype=np.float64).ravel()
        xv = np.asarray(x, dtype=np.float64).ravel()
        if len(yv) != len(xv):
            raise AnalyticsError(f"y has {len(yv)} values and x {len(xv)}: pass arrays of equal "
                                 "length or pandas Series to be joined on their index")
        index = y.index if isinstance(y, pd.Series) else (
            x.index if isinstance(x, pd.Series) else pd.RangeIndex(len(yv)))
    ok = np.isfinite(yv) & np.isfinite(xv)
    if log:
        ok &= (yv > 0) & (xv > 0)
    if not ok.all():
        index, yv, xv = index[ok], yv[ok], xv[ok]
    if len(yv) < 3:
        raise AnalyticsError(f"only {len(yv)} aligned finite rows of y and x: need at least 3")
    if log:
        yv, xv = np.log(yv), np.log(xv)
    return index, yv, xv


def hedge_ratio(y, x, method: str = "ols", intercept: bool = True, *, log: bool = False,
                ffill_limit: int = 0, window: int | None = None, min_periods: int | None = None,
                epsilon: float = 1.35, alpha: float = 1e-4, max_iter: int = 1000,
                max_points: int | None = None, seed: int = 0, delta: float | None = None,
                r: float | None = None) -> HedgeResult:
    """Hedge ratio of ``y`` on ``x`` by ``method`` (see the module docstring for the contract).

    Methods and their parameters:

    * ``"ols"``: least squares; equals ``statsmodels.OLS`` (with ``add_constant`` iff intercept).
    * ``"huber"``: ``sklearn.linear_model.HuberRegressor(epsilon, alpha, max_iter)`` on at most
      ``max_points`` (default 5,000) points subsampled with ``seed``; with an intercept it is fit
      on mean-centred x and y (same optimum, well-conditioned) and alpha is shifted back.
    * ``"theil-sen"``: ``scipy.stats.theilslopes`` (slope = median pairwise slope, intercept =
      median(y) − slope·median(x)) on at most ``max_points`` (default 1,000) points; without
      intercept, beta = median(y_i / x_i).
    * ``"kalman"``: the filter of :mod:`qdash.analytics.signal` — observation
      ``y_t = β_t (x_t − x_ref) + a_t + v_t``, state a random walk with discount ``delta``
      (``P ← P/(1 − delta)`` per bar, default ``1/window``), started from the OLS fit of the first
      ``window`` bars (default 120; NaN before) with ``x_ref`` their mean of x and
      ``Var(v_t) = r`` (default: that fit's residual variance). Scale-free: it estimates β at any
      price level. Needs ``intercept=True``.
    * ``"rolling-ols"``: OLS over the last ``window`` bars incl. t (NaN until the window is full);
      equals ``statsmodels.regression.rolling.RollingOLS``.
    * ``"expanding-ols"``: OLS over bars 0..t, NaN until ``min_periods`` (default 2) bars.
    """
    est = estimator(method)
    p = est.validate(FitParams(window=window, min_periods=min_periods, epsilon=epsilon,
                               alpha=alpha, max_iter=max_iter, max_points=max_points, seed=seed,
                               delta=delta, r=r), intercept)
    index, yv, xv = align(y, x, ffill_limit=ffill_limit, log=log)
    fit = est.fit(yv, xv, intercept, p)
    common = {"method": method, "intercept": intercept, "log": log, "nobs": len(yv),
              "params": fit.params}
    if est.kind == "static":
        return HedgeResult(beta=fit.beta, alpha=fit.alpha, spread=pd.Series(
            yv - (fit.beta * xv + fit.alpha), index=index, name="spread"), **common)
    b, a = fit.beta, fit.alpha
    return HedgeResult(beta=float(b[-1]), alpha=float(a[-1]),
                       spread=pd.Series(yv - (b * xv + a), index=index, name="spread"),
                       beta_series=pd.Series(b, index=index, name="beta"),
                       alpha_series=pd.Series(a, index=index, name="alpha"),
                       extra={k: pd.Series(v, index=index, name=k)
                              for k, v in fit.extra.items()}, **common)
