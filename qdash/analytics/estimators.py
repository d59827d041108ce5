"""THE registry of hedge-ratio estimators: every method's name, label, kind, fit and validation.

Model: ``y_t = beta·x_t + alpha + spread_t`` on aligned float64 arrays (prices, or log prices).
Every estimator has the same contract, so the methods are interchangeable and listed once
(arbitragelab's ``hedge_ratios`` is the model):

* ``validate(p, intercept) -> FitParams``: the parameters with this method's defaults filled
  in; raises :class:`~qdash.errors.AnalyticsError` naming the first bad one;
* ``fit(y, x, intercept, p) -> Fit``: the estimate. A static fit gives one ``beta``/``alpha``; a
  time-varying one (``kind`` ``rolling``, ``expanding``, ``recursive``) gives per-bar arrays
  whose value at bar t uses bars <= t only.

Where a name is used: :func:`~qdash.analytics.hedge.hedge_ratio` fits every method that has a
``fit`` (:data:`FIT_METHODS`); the pair signal (:class:`~qdash.analytics.signal.SignalSpec`)
takes the methods with ``signal`` set (:data:`SIGNAL_METHODS`): the pair kernel computes
``rolling-ols`` and ``kalman`` itself; a static method is refitted on the β window every
``refit_every`` bars; ``fixed`` (kind ``given``) is a β the user gives. The dashboard offers the
signal methods that need no given value (:data:`DASHBOARD_METHODS`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import AnalyticsError
from . import _kernels as K


@dataclass(frozen=True)
class FitParams:
    """Every estimator's parameters (each method reads its own; see :data:`ESTIMATORS`).

    ``window``/``min_periods`` in bars; ``epsilon``, ``alpha``, ``max_iter``: the Huber loss,
    its L2 penalty on β and iteration cap (scikit-learn's meanings); ``max_points``/``seed``: the
    subsample of the robust fits; ``delta``/``r``: the Kalman discount and observation
    variance (None: defaults)."""

    window: int | None = None
    min_periods: int | None = None
    epsilon: float = 1.35
    alpha: float = 1e-4
    max_iter: int = 1000
    max_points: int | None = None
    seed: int = 0
    delta: float | None = None
    r: float | None = None


@dataclass(frozen=True)
class Fit:
    """An estimate: ``beta``/``alpha`` (floats, or per-bar arrays for a time-varying method),
    ``params`` actually used, and method-specific per-bar ``extra`` arrays."""

    beta: Any
    alpha: Any
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Estimator:
    """One hedge method. ``kind``: ``static`` (one fit of the sample), ``rolling``,
    ``expanding``, ``recursive`` (a filter) or ``given``. ``signal``: usable as the pair
    signal's hedge; ``kernel``: where the pair kernel gets that β (``K.M_*``). ``fit`` is None
    for a given β."""

    name: str
    label: str
    kind: str
    fit: Callable[[np.ndarray, np.ndarray, bool, FitParams], Fit] | None
    validate: Callable[[FitParams, bool], FitParams]
    signal: bool = False
    kernel: int = K.M_GIVEN


def ols(y: np.ndarray, x: np.ndarray, intercept: bool = True) -> tuple[float, float]:
    """Least-squares (beta, alpha) of y on x, from centred sums (equals statsmodels OLS)."""
    if not intercept:
        return float(np.dot(x, y) / np.dot(x, x)), 0.0
    mx, my = x.mean(), y.mean()
    dx = x - mx
    sxx = np.dot(dx, dx)
    if sxx <= 0:
        raise AnalyticsError("x is constant over the sample: no hedge ratio can be estimated")
    beta = np.dot(dx, y - my) / sxx
    return float(beta), float(my - beta * mx)


def subsample(n: int, max_points: int, seed: int = 0) -> np.ndarray | None:
    """Sorted indices of ``max_points`` of ``n`` rows drawn by ``default_rng(seed)``; None = all."""
    if n <= max_points:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def _points(y, x, p: FitParams):
    idx = subsample(len(y), p.max_points, p.seed)
    return (y, x) if idx is None else (y[idx], x[idx])


def _fit_ols(y, x, intercept, p):
    return Fit(*ols(y, x, intercept))


def _fit_huber(y, x, intercept, p):
    from sklearn.linear_model import HuberRegressor

    ys, xs = _points(y, x, p)
    # With an intercept, fit on centred data: the same optimum (the Huber loss depends on
    # residuals only, alpha penalises the slope only), but L-BFGS no longer stalls on the
    # intercept of price levels in the thousands.
    mx, my = (xs.mean(), ys.mean()) if intercept else (0.0, 0.0)
    # Without a penalty (alpha == 0) the Huber M-estimate is scale-equivariant, so fit on data
    # scaled to unit spread and scale β back: on log prices over a short window (x varying by
    # ~1e-5) L-BFGS otherwise stops at its starting point β = 0. With alpha > 0 the penalty is
    # not scale-free, so the data are fitted as given (scikit-learn's meaning of alpha).
    sx, sy = 1.0, 1.0
    if p.alpha == 0:
        sx = float(np.std(xs - mx)) or 1.0
        sy = float(np.std(ys - my)) or 1.0
    model = HuberRegressor(epsilon=p.epsilon, alpha=p.alpha, fit_intercept=intercept,
                           max_iter=p.max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: n_iter is reported in params
        model.fit(((xs - mx) / sx)[:, None], (ys - my) / sy)
    beta = float(model.coef_[0]) * sy / sx
    params = {"epsilon": p.epsilon, "alpha": p.alpha, "max_iter": p.max_iter,
              "max_points": p.max_points, "seed": p.seed, "n_fit": len(ys),
              "n_iter": int(model.n_iter_), "scale": float(model.scale_) * sy}
    return Fit(beta, float(model.intercept_ * sy + my - beta * mx) if intercept else 0.0, params)


def _fit_theil_sen(y, x, intercept, p):
    from scipy.stats import theilslopes

    ys, xs = _points(y, x, p)
    params = {"max_points": p.max_points, "seed": p.seed, "n_fit": len(ys)}
    if intercept:
        with np.errstate(invalid="ignore"):    # CI variance on tiny samples; slope unaffected
            res = theilslopes(ys, xs)
        return Fit(float(res.slope), float(res.intercept), params)
    # through the origin: the median of each point's slope to (0, 0)
    ok = xs != 0
    return Fit(float(np.median(ys[ok] / xs[ok])), 0.0, params)


def _fit_kalman(y, x, intercept, p):
    b, a, e, s, st = K.kalman_run(y, x, p.window, 1.0 / (1.0 - p.delta),
                                  np.nan if p.r is None else float(p.r))
    return Fit(b, a, {"delta": p.delta, "window": p.window, "r": float(st[6]),
                      "x_ref": float(st[5]), "P": st[2:5].copy()},
               {"innovation": e, "innovation_var": s, "innovation_z": e / np.sqrt(s)})


def _fit_rolling(y, x, intercept, p):
    b, a = K.rolling_ols_run(y, x, int(p.window or 0), float(p.min_periods), intercept)
    return Fit(b, a, {"window": p.window, "min_periods": p.min_periods})


def _no_params(p: FitParams, intercept: bool) -> FitParams:
    return p


def _robust_points(default: int):
    def validate(p: FitParams, intercept: bool) -> FitParams:
        return p if p.max_points is not None else replace(p, max_points=default)
    return validate


def _check_kalman(p: FitParams, intercept: bool) -> FitParams:
    if not intercept:
        raise AnalyticsError("the Kalman hedge ratio is fitted with an intercept")
    window = 120 if p.window is None else int(p.window)
    if window < 3:
        raise AnalyticsError(f"kalman warm-up window must be >= 3 bars, got {window}")
    delta = 1.0 / window if p.delta is None else float(p.delta)
    if not 0 < delta < 1:
        raise AnalyticsError(f"kalman delta must be in (0, 1), got {delta}")
    if p.r is not None and not p.r > 0:
        raise AnalyticsError(f"kalman r must be > 0, got {p.r}")
    return replace(p, window=window, delta=delta)


def _check_rolling(p: FitParams, intercept: bool) -> FitParams:
    if p.window is None or p.window < 2:
        raise AnalyticsError(f"rolling hedge ratio needs window >= 2, got {p.window}")
    return replace(p, min_periods=p.window)


def _check_expanding(p: FitParams, intercept: bool) -> FitParams:
    mp = 2 if p.min_periods is None else max(int(p.min_periods), 1)
    return replace(p, window=None, min_periods=mp)


_REGISTRY = (
    Estimator("rolling-ols", "rolling OLS", "rolling", _fit_rolling, _check_rolling,
              signal=True, kernel=K.M_ROLLING),
    Estimator("huber", "Huber", "static", _fit_huber, _robust_points(5_000), signal=True),
    Estimator("theil-sen", "Theil–Sen", "static", _fit_theil_sen, _robust_points(1_000),
              signal=True),
    Estimator("kalman", "Kalman", "recursive", _fit_kalman, _check_kalman, signal=True,
              kernel=K.M_KALMAN),
    Estimator("fixed", "fixed β", "given", None, _no_params, signal=True),
    Estimator("ols", "OLS", "static", _fit_ols, _no_params),
    Estimator("expanding-ols", "expanding OLS", "expanding", _fit_rolling, _check_expanding),
)

ESTIMATORS: dict[str, Estimator] = {e.name: e for e in _REGISTRY}
"""Every hedge method by name, in the order the lists below show them."""

FIT_METHODS: tuple[str, ...] = tuple(e.name for e in _REGISTRY if e.fit is not None)
"""The methods :func:`~qdash.analytics.hedge.hedge_ratio` fits."""

SIGNAL_METHODS: tuple[str, ...] = tuple(e.name for e in _REGISTRY if e.signal)
"""The methods a pair signal can use (``SignalSpec.hedge``, the CLI's ``--hedge``)."""

DASHBOARD_METHODS: tuple[tuple[str, str], ...] = tuple(
    (e.label, e.name) for e in _REGISTRY if e.signal and e.kind != "given")
"""(label, name) of the signal methods the dashboard offers (a given β has no box there)."""


def estimator(name: str, among: tuple[str, ...] = FIT_METHODS) -> Estimator:
    """The estimator called ``name``; :class:`AnalyticsError` listing ``among`` when it is not
    one of them."""
    if name not in among:
        raise AnalyticsError(f"unknown hedge method {name!r}: use one of {', '.join(among)}")
    return ESTIMATORS[name]
