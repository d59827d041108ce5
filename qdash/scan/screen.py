"""Stage 1 of the scan: the Engle–Granger test on every directed pair, from cross-products.

For a pair (y, x) of aligned series of ``n`` bars, :func:`engle_granger_all` returns what
``statsmodels.tsa.stattools.coint(y, x, trend="c", maxlag=L, autolag=None)`` returns (t and p to
~1e-9), for every ordered pair of columns at once and without a regression per pair:

- step 1, ``y = beta·x + alpha`` by OLS over all bars. With full-sample centred series ``ỹ, x̃``,
  ``beta = ỹ'x̃ / x̃'x̃``, ``alpha = ȳ − beta·x̄`` and the residual is ``e = ỹ − beta·x̃`` (the
  intercept disappears);
- step 2, the ADF regression of ``Δe_t`` on ``e_{t−1}, Δe_{t−1}, …, Δe_{t−L}`` with no constant,
  over ``t = L+1 … n−1`` (statsmodels' ``adfuller(e, maxlag=L, regression="n", autolag=None)``
  trimming: ``n − 1 − L`` rows). Every regressor is ``a_y − beta·a_x`` for a block ``a`` of the
  series (lagged centred levels, lagged differences), so every entry of its normal equations is a
  quadratic form ``G_ab[y,y] − beta·(G_ab[y,x] + G_ab[x,y]) + beta²·G_ab[x,x]`` in one cross-product
  matrix ``G = Z'Z`` of ``Z = [levels_{t−1}, Δ_{t−1}, …, Δ_{t−L}, Δ_t]`` (all symbols side by
  side). The ``(L+1)×(L+1)`` systems are then solved for all pairs with batched numpy.

p-values: MacKinnon (1994/2010) surface for N = 2 variables with a constant, vectorised from
statsmodels' own tables (:func:`mackinnon_p`). Nearly collinear legs (R² ≥ 1 − 100·√eps) get
t = −inf, p = 0, as statsmodels does. ``q``: Benjamini–Hochberg adjusted p-values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import AnalyticsError

_COLLINEAR_R2 = 1.0 - 100.0 * math.sqrt(np.finfo(np.float64).eps)  # statsmodels' coint cut-off


def mackinnon_p(stat: np.ndarray, regression: str = "c", n_vars: int = 2) -> np.ndarray:
    """MacKinnon's approximate p-values, elementwise: ``statsmodels.tsa.adfvalues.mackinnonp``
    (same tables, same branches) for an array of test statistics. NaN stays NaN."""
    from scipy.stats import norm
    from statsmodels.tsa import adfvalues as av

    t = np.asarray(stat, dtype=np.float64)
    k = n_vars - 1
    small = np.asarray(av._tau_smallps[regression][k], dtype=np.float64)
    large = np.asarray(av._tau_largeps[regression][k], dtype=np.float64)
    finite = np.where(np.isfinite(t), t, 0.0)
    poly = np.where(finite <= av._tau_stars[regression][k],
                    np.polynomial.polynomial.polyval(finite, small),
                    np.polynomial.polynomial.polyval(finite, large))
    p = norm.cdf(poly)
    p = np.where(t > av._tau_maxs[regression][k], 1.0, p)
    p = np.where(t < av._tau_mins[regression][k], 0.0, p)
    return np.where(np.isnan(t), np.nan, p)


def bh_qvalues(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values) of the finite entries of ``p``.

    ``q_(i) = min_{j >= i} p_(j)·m/j`` over the sorted p-values, capped at 1; ``m`` is the number
    of finite p-values (NaN entries are not tests and stay NaN). Rejecting ``q <= level`` is the
    BH step-up procedure at FDR ``level``.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return q
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q


def _design(w: np.ndarray, lags: int) -> np.ndarray:
    """``Z = [w̃_{t−1}, Δw_{t−1}, …, Δw_{t−L}, Δw_t]`` over ``t = L+1 … n−1`` (``w̃``: centred on
    the full-sample mean), blocks of ``N`` columns side by side."""
    n, k = w.shape
    d = np.diff(w, axis=0)                              # d[s] = w[s+1] − w[s]
    m = n - 1 - lags
    z = np.empty((m, (lags + 2) * k))
    z[:, :k] = w[lags:n - 1] - w.mean(axis=0)
    for j in range(1, lags + 1):
        z[:, j * k:(j + 1) * k] = d[lags - j:n - 1 - j]
    z[:, (lags + 1) * k:] = d[lags:n - 1]
    return z


@dataclass(frozen=True)
class CrossProducts:
    """The cross-product matrices every pair statistic comes from (see the module docstring).

    ``gram``: ``Z'Z`` of the ADF design of all series (``(L+2)·N`` square); ``levels``: ``W̃'W̃``
    of the full-sample centred levels; ``diffs``: the centred first differences' cross-products;
    ``mean``: the full-sample means; ``n``: bars; ``lags``: L.
    """

    gram: np.ndarray
    levels: np.ndarray
    diffs: np.ndarray
    mean: np.ndarray
    n: int
    lags: int

    @property
    def nobs(self) -> int:
        """Rows of each pair's ADF regression: ``n − 1 − L``."""
        return self.n - 1 - self.lags

    def block(self, a: int, c: int) -> np.ndarray:
        k = len(self.mean)
        return self.gram[a * k:(a + 1) * k, c * k:(c + 1) * k]


def cross_products(w: np.ndarray, lags: int = 1) -> CrossProducts:
    """All cross-products of ``w`` (``n`` bars × ``N`` series, float64, no NaN) for ``lags``."""
    w = np.asarray(w, dtype=np.float64)
    n = w.shape[0]
    if lags < 0:
        raise AnalyticsError(f"lags must be >= 0, got {lags}")
    if lags > n // 2 - 1:
        raise AnalyticsError(f"lags={lags} needs at least {2 * (lags + 1)} bars "
                             f"(statsmodels' maxlag <= nobs/2 - 1), have {n}")
    from threadpoolctl import threadpool_limits

    mean = w.mean(axis=0)
    z = _design(w, lags)
    centred = w - mean
    d = np.diff(w, axis=0)
    dc = d - d.mean(axis=0)
    with threadpool_limits(1):  # one core: predictable on a shared machine, and the rate quoted
        return CrossProducts(z.T @ z, centred.T @ centred, dc.T @ dc, mean, n, lags)


PAIR_STATS = ("beta", "alpha", "coint_t", "coint_p", "r2", "corr")


def pair_stats(cp: CrossProducts, ys: np.ndarray) -> dict[str, np.ndarray]:
    """Engle–Granger statistics of the pairs ``(y, x)`` for ``y`` in ``ys`` and every ``x``.

    Returns ``len(ys)×N`` arrays (:data:`PAIR_STATS`): ``beta``, ``alpha`` (of ``y = beta·x +
    alpha``), ``coint_t``, ``coint_p``, ``r2`` (of that regression), ``corr`` (of the first
    differences: log returns when the series are log prices). Entries with ``x == y`` are NaN.
    """
    ys = np.asarray(ys, dtype=np.int64)
    k, lags = len(cp.mean), cp.lags
    s = cp.levels
    sxx = np.diag(s)
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = s[ys] / sxx[None, :]                       # [y, x]: y on x
        r2 = s[ys] ** 2 / (sxx[ys, None] * sxx[None, :])
        ad = np.diag(cp.diffs)
        corr = cp.diffs[ys] / np.sqrt(ad[ys, None] * ad[None, :])

    def quad(a: int, c: int) -> np.ndarray:
        g = cp.block(a, c)
        diag = np.diag(g)
        return diag[ys, None] - beta * (g[ys] + g.T[ys]) + beta * beta * diag[None, :]

    kk = lags + 1                                         # regressors: level + lags
    xtx = np.empty((len(ys), k, kk, kk))
    xty = np.empty((len(ys), k, kk))
    for a in range(kk):
        for c in range(a, kk):
            xtx[:, :, a, c] = xtx[:, :, c, a] = quad(a, c)
        xty[:, :, a] = quad(a, kk)
    yty = quad(kk, kk)
    same = ys[:, None] == np.arange(k)[None, :]
    collinear = (r2 >= _COLLINEAR_R2) & ~same
    skip = same | collinear | ~np.isfinite(beta)
    xtx[skip] = np.eye(kk)
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.linalg.inv(xtx)
        theta = np.einsum("pqij,pqj->pqi", inv, xty)
        rss = yty - np.einsum("pqi,pqi->pq", theta, xty)
        t = theta[..., 0] / np.sqrt(rss / (cp.nobs - kk) * inv[..., 0, 0])
    t = np.where(collinear, -np.inf, np.where(skip, np.nan, t))
    out = {"beta": beta, "alpha": cp.mean[ys, None] - beta * cp.mean[None, :], "coint_t": t,
           "coint_p": mackinnon_p(t), "r2": r2, "corr": corr}
    return {name: np.where(same, np.nan, v) for name, v in out.items()}


def engle_granger_all(w: np.ndarray, lags: int = 1) -> dict[str, np.ndarray]:
    """:func:`pair_stats` for every ordered pair of the columns of ``w``: ``N×N`` arrays indexed
    ``[y, x]``."""
    cp = cross_products(w, lags)
    return pair_stats(cp, np.arange(w.shape[1]))
