"""Spread statistics: spread, rolling z-score and correlation, ADF, Engle–Granger cointegration,
OU half-life, Hurst exponent.

Conventions: rolling statistics are causal — the value at bar t uses bars t−window+1..t — and NaN
until the window holds ``window`` finite values (never a silent 0); standard deviations use
``ddof=1`` (pandas' default). :func:`adf` and :func:`coint` reproduce
``statsmodels.tsa.stattools.adfuller`` / ``coint`` (same lag selection, statistics, MacKinnon
p-values and critical values) but solve all candidate lag regressions from one Cholesky factor of
the cross-product matrix, so a day of 1 s bars (86,400 points, 51 lags) takes milliseconds instead
of seconds.

ADF on a *fitted* spread is not a cointegration test: the hedge ratio was chosen to make the spread
look stationary, so Dickey–Fuller critical values reject too often. Use :func:`coint`, whose
critical values (MacKinnon 2010, N = 2 variables) account for the estimated beta.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import AnalyticsError
from . import _kernels as K

_AIC_STOP = 1.6448536269514722  # statsmodels' t-stat stopping rule (normal 95% one-sided)


def _values(s) -> np.ndarray:
    return np.asarray(s, dtype=np.float64).ravel()


def _like(s, values: np.ndarray, name: str):
    return pd.Series(values, index=s.index, name=name) if isinstance(s, pd.Series) else values


def spread(y, x, beta, alpha=0.0):
    """``y − (beta·x + alpha)``; beta/alpha scalars or per-bar arrays/Series aligned with y, x.

    Arithmetic on what it is given, without the pair signal's alignment and gap rule: the pair's
    spread is :func:`~qdash.analytics.signal.compute_signal`'s (``qdash.spread`` is deprecated)."""
    out = _values(y) - (_values(beta) * _values(x) + _values(alpha))
    if np.ndim(beta) == 0 and np.ndim(alpha) == 0:
        out = _values(y) - (float(beta) * _values(x) + float(alpha))
    return _like(y, out, "spread")


def zscore(s, window: int, ddof: int = 1):
    """Causal rolling z-score ``(s_t − mean) / std`` over the last ``window`` values incl. t.

    NaN until ``window`` finite values are in the window, and NaN (not 0, not inf) when the window
    has no spread. Equals ``(s − s.rolling(w).mean()) / s.rolling(w).std(ddof)`` in pandas.
    A rolling z of any series, without the pair signal's gap rule: the pair's z-score is
    :func:`~qdash.analytics.signal.compute_signal`'s (``qdash.zscore`` is deprecated).
    """
    if window < 2:
        raise AnalyticsError(f"z-score window must be >= 2 bars, got {window}")
    v = _values(s)
    return _like(s, K.rolling_window_run(v, v, int(window), False, float(ddof)), "zscore")


def return_correlations(closes: dict, last: int = 1_000, min_periods: int = 30
                        ) -> pd.DataFrame:
    """Correlation matrix of log returns of several symbols' closes (``{symbol: Series indexed by
    open time}``), over their last ``last`` bars.

    Alignment: the closes are joined on open time; a return is ``ln(c_t / c_{t−1})`` between
    consecutive bars of the joined index where the symbol has both closes (nothing is carried
    across a bar it did not trade); each pair uses the bars where both have a return
    (pairwise-complete, pandas ``corr``), NaN with fewer than ``min_periods``."""
    frame = pd.DataFrame({s: c[~c.index.duplicated(keep="last")] for s, c in closes.items()})
    frame = frame.sort_index().iloc[-(last + 1):]
    return np.log(frame).diff().corr(min_periods=min_periods)


def log_returns(p) -> np.ndarray:
    """``ln(p_t / p_{t−1})``, NaN at t = 0."""
    v = _values(p)
    out = np.full(len(v), np.nan)
    out[1:] = np.log(v[1:] / v[:-1])
    return out


def correlation(a, b, window: int, on: str = "returns"):
    """Rolling Pearson correlation of two aligned price series over ``window`` bars incl. t.

    ``on="returns"`` correlates log returns (NaN at the first bar), ``on="prices"`` the levels.
    Equals pandas ``a.rolling(window).corr(b)`` on the same inputs.
    """
    if window < 2:
        raise AnalyticsError(f"correlation window must be >= 2 bars, got {window}")
    if on == "returns":
        va, vb = log_returns(a), log_returns(b)
    elif on == "prices":
        va, vb = _values(a), _values(b)
    else:
        raise AnalyticsError(f"correlation on={on!r}: use 'returns' or 'prices'")
    return _like(a, K.rolling_window_run(va, vb, int(window), True, 0.0), f"corr_{on}")


# -- ADF ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ADFResult:
    """Augmented Dickey–Fuller test: H0 unit root. ``critical_values`` are Dickey–Fuller's (N=1)."""

    stat: float
    pvalue: float
    usedlag: int
    nobs: int
    critical_values: dict[str, float]
    icbest: float | None
    regression: str


def _trend_columns(regression: str, n: int) -> list[np.ndarray]:
    cols = []
    if regression in ("c", "ct", "ctt"):
        cols.append(np.ones(n))
    if regression in ("ct", "ctt"):
        t = np.arange(1, n + 1, dtype=np.float64)
        cols.append(t)
        if regression == "ctt":
            cols.append(t * t)
    return cols


def _design_rows(x: np.ndarray, dx: np.ndarray, k0: int, k1: int, nlags: int, ntrend: int,
                 cx: float, cd: float, tc: float) -> np.ndarray:
    """ADF design rows for dependent Δx[k], k in k0..k1−1, shifted by constants.

    Columns: [trend (1, t − tc, (t − tc)²)…, level x[k] − cx, lags Δx[k−j] − cd (j = 1..nlags),
    dependent Δx[k] − cd]. With a constant in the model, shifting the other columns by constants
    changes no slope, t-value or SSR, and keeps the cross-product matrix well conditioned.
    """
    m = k1 - k0
    z = np.empty((m, ntrend + 2 + nlags), order="F")   # column writes are contiguous
    if ntrend:
        z[:, 0] = 1.0
        t = np.arange(k0, k1, dtype=np.float64) - tc
        if ntrend > 1:
            z[:, 1] = t
        if ntrend > 2:
            z[:, 2] = t * t
    z[:, ntrend] = x[k0:k1] - cx
    for j in range(1, nlags + 1):
        z[:, ntrend + j] = dx[k0 - j:k1 - j] - cd
    z[:, -1] = dx[k0:k1] - cd
    return z


_BLAS = None


def _gram(z: np.ndarray) -> np.ndarray:
    """zᵀz with BLAS on one thread: on a shared 2-core box, multi-threaded BLAS for this small
    product is slower and erratic (0.03–1 s) when other processes hold the cores."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    with _BLAS.limit(limits=1, user_api="blas"):
        return z.T @ z


def _cholesky_upper(g: np.ndarray) -> np.ndarray:
    """Upper R with RᵀR = g: the SSR of the model on the first k columns is Σ_{i>=k} R[i, -1]²."""
    try:
        return np.linalg.cholesky(g).T
    except np.linalg.LinAlgError as exc:
        raise AnalyticsError("ADF regressors are collinear (constant or repeated series?)") from exc


def adf(series, regression: str = "c", maxlag: int | None = None,
        autolag: str | None = "AIC") -> ADFResult:
    """Augmented Dickey–Fuller test, equal to ``statsmodels.tsa.stattools.adfuller``.

    Regression ``Δs_t = [trend] + γ·s_{t−1} + Σ_{j=1..p} φ_j Δs_{t−j} + ε_t``; the statistic is γ's
    t-value. ``regression`` in ``"c"`` (constant), ``"ct"``, ``"ctt"``, ``"n"``. ``maxlag`` default
    ``ceil(12·(nobs/100)^¼)`` capped at ``nobs//2 − ntrend − 1``. ``autolag`` ``"AIC"``/``"BIC"``
    picks p minimising the criterion over p = 0..maxlag on the common sample of
    ``nobs − maxlag − 1`` rows, then refits with p on all usable rows; ``"t-stat"`` drops lags
    from maxlag until the last one has |t| >= 1.645; ``None`` uses p = maxlag. Leading and
    trailing NaNs are dropped; inner NaNs raise :class:`AnalyticsError`.
    """
    x = _values(series)
    finite = np.flatnonzero(np.isfinite(x))
    if len(finite) == 0:
        raise AnalyticsError("ADF: the series has no finite values")
    x = x[finite[0]:finite[-1] + 1]
    if not np.isfinite(x).all():
        raise AnalyticsError("ADF: the series has NaN inside it: align or fill it first")
    if regression not in ("c", "ct", "ctt", "n"):
        raise AnalyticsError(f"ADF regression {regression!r}: use 'c', 'ct', 'ctt' or 'n'")
    method = None if autolag is None else autolag.lower()
    if method not in (None, "aic", "bic", "t-stat"):
        raise AnalyticsError(f"ADF autolag {autolag!r}: use 'AIC', 'BIC', 't-stat' or None")
    if x.max() == x.min():
        raise AnalyticsError("ADF: the series is constant")
    nobs = len(x)
    ntrend = len(regression) if regression != "n" else 0
    if maxlag is None:
        maxlag = min(nobs // 2 - ntrend - 1, int(np.ceil(12.0 * (nobs / 100.0) ** 0.25)))
        if maxlag < 0:
            raise AnalyticsError(f"ADF: {nobs} points are too few for regression {regression!r}")
    elif maxlag > nobs // 2 - ntrend - 1:
        raise AnalyticsError(f"ADF maxlag={maxlag} must be <= nobs/2 - 1 - ntrend "
                             f"= {nobs // 2 - ntrend - 1}")
    maxlag = int(maxlag)
    dx = np.diff(x)
    # One cross-product matrix of the maxlag design on the common sample serves every candidate
    # lag (nested leading columns) and, plus the few extra early rows, the final refit.
    shifted = regression != "n"
    cx, cd = (float(x.mean()), float(dx.mean())) if shifted else (0.0, 0.0)
    tc = (len(dx) - 1) / 2.0
    z = _design_rows(x, dx, maxlag, len(dx), maxlag, ntrend, cx, cd, tc)
    g = _gram(z)
    m = len(dx) - maxlag
    icbest = None
    usedlag = maxlag
    if method is not None:
        rr = _cholesky_upper(g)
        yc = rr[:-1, -1]
        tail = np.cumsum((yc * yc)[::-1])[::-1]          # tail[k] = Σ_{i>=k} R[i,-1]²
        first = ntrend + 1                               # columns of the model with 0 lags
        ks = np.arange(first, first + maxlag + 1)
        ssr = np.append(tail, 0.0)[ks] + rr[-1, -1] ** 2
        if method in ("aic", "bic"):
            llf = -m / 2.0 * (np.log(2 * np.pi) + np.log(ssr / m) + 1.0)
            ic = -2.0 * llf + (2.0 if method == "aic" else np.log(m)) * ks
            best = int(np.argmin(ic))
            icbest, usedlag = float(ic[best]), best
        else:
            for p in range(maxlag, -1, -1):
                k = first + p
                icbest = abs(rr[k - 1, -1]) / math.sqrt(ssr[p] / (m - k))
                usedlag = p
                if icbest >= _AIC_STOP:
                    break
    # final regression with usedlag lags on rows usedlag..: level column last, so its t-value is
    # R[level, dep] / sigma
    cols = [*range(ntrend), *range(ntrend + 1, ntrend + 1 + usedlag), ntrend, g.shape[0] - 1]
    gf = g[np.ix_(cols, cols)]
    if usedlag < maxlag:
        extra = _design_rows(x, dx, usedlag, maxlag, usedlag, ntrend, cx, cd, tc)
        order = [*range(ntrend), *range(ntrend + 1, ntrend + 1 + usedlag), ntrend,
                 extra.shape[1] - 1]
        extra = extra[:, order]
        gf = gf + extra.T @ extra
    m = len(dx) - usedlag
    k = len(cols) - 1
    if m <= k:
        raise AnalyticsError(f"ADF with {usedlag} lags needs more than {k} observations after "
                             f"differencing, have {m}: use a longer series or a smaller maxlag")
    rr = _cholesky_upper(gf)
    sigma = abs(rr[-1, -1]) / math.sqrt(m - k)
    stat = float(rr[k - 1, -1] / sigma)
    from statsmodels.tsa.adfvalues import mackinnoncrit, mackinnonp

    crit = mackinnoncrit(N=1, regression=regression, nobs=m)
    return ADFResult(stat=stat, pvalue=float(mackinnonp(stat, regression=regression, N=1)),
                     usedlag=int(usedlag), nobs=int(m),
                     critical_values={"1%": float(crit[0]), "5%": float(crit[1]),
                                      "10%": float(crit[2])},
                     icbest=icbest, regression=regression)


@dataclass(frozen=True)
class CointResult:
    """Engle–Granger test (H0: no cointegration), MacKinnon (2010) cointegration critical values.

    ``beta``/``alpha``: the cointegrating regression y = beta·x + alpha; ``adf``: the ADF (no
    constant) on its residuals, whose statistic is ``stat`` — but whose own p-value is *not* the
    cointegration p-value: ``pvalue`` and ``critical_values`` are for N = 2 variables. So the
    result's text (``repr``, ``str``) shows only the cointegration p-value; the residuals' ADF
    stays an attribute, for its lag choice.
    """

    stat: float
    pvalue: float
    critical_values: dict[str, float]
    beta: float
    alpha: float
    adf: ADFResult | None = field(repr=False)
    trend: str

    def __str__(self) -> str:
        return (f"Engle-Granger cointegration (H0: none; MacKinnon critical values, N=2, "
                f"trend {self.trend!r}): t = {self.stat:.4g}, p = {self.pvalue:.4g}, 5% "
                f"critical {self.critical_values['5%']:.4g}; y = {self.beta:.6g}·x + "
                f"{self.alpha:.6g}")


def coint(y, x, trend: str = "c", maxlag: int | None = None,
          autolag: str | None = "AIC") -> CointResult:
    """Engle–Granger two-step cointegration test, equal to ``statsmodels.tsa.stattools.coint``.

    Step 1: OLS of y on x (plus a constant for ``trend="c"``; ``"ct"`` adds a linear trend, ``"n"``
    nothing). Step 2: :func:`adf` of its residuals with ``regression="n"``. p-value
    ``mackinnonp(stat, trend, N=2)``, critical values ``mackinnoncrit(N=2, trend, nobs−1)`` (NaN
    for ``"n"``). Nearly collinear legs (R² >= 1 − 100·√eps) give stat −inf, p-value 0.
    """
    from statsmodels.tsa.adfvalues import mackinnoncrit, mackinnonp

    yv, xv = _values(y), _values(x)
    ok = np.isfinite(yv) & np.isfinite(xv)
    yv, xv = yv[ok], xv[ok]
    if trend not in ("c", "ct", "n"):
        raise AnalyticsError(f"coint trend {trend!r}: use 'c', 'ct' or 'n'")
    n = len(yv)
    cols = [xv, *_trend_columns(trend, n)]
    design = np.column_stack(cols)
    coef = np.linalg.lstsq(design, yv, rcond=None)[0]
    resid = yv - design @ coef
    centred_y = yv - yv.mean() if trend != "n" else yv
    r2 = 1.0 - np.dot(resid, resid) / np.dot(centred_y, centred_y)
    res_adf = None
    if r2 < 1 - 100 * np.sqrt(np.finfo(np.float64).eps):
        res_adf = adf(resid, regression="n", maxlag=maxlag, autolag=autolag)
        stat = res_adf.stat
    else:
        stat = -np.inf
    crit = [np.nan] * 3 if trend == "n" else mackinnoncrit(N=2, regression=trend, nobs=n - 1)
    return CointResult(stat=float(stat), pvalue=float(mackinnonp(stat, regression=trend, N=2)),
                       critical_values={"1%": float(crit[0]), "5%": float(crit[1]),
                                        "10%": float(crit[2])},
                       beta=float(coef[0]), alpha=float(coef[1]) if trend != "n" else 0.0,
                       adf=res_adf, trend=trend)


def half_life(s) -> float:
    """Ornstein–Uhlenbeck half-life of a spread, in bars.

    Recipe (E. P. Chan, *Quantitative Trading*, ex. 7.5): OLS with intercept of
    ``Δs_t = s_t − s_{t−1}`` on ``s_{t−1}`` over t = 1..n−1 (NaNs dropped pairwise), slope θ;
    half-life = −ln 2 / θ. Returns ``inf`` when θ >= 0 (no mean reversion). Multiply by the bar
    length for time units.
    """
    v = _values(s)
    lag, d = v[:-1], np.diff(v)
    ok = np.isfinite(lag) & np.isfinite(d)
    lag, d = lag[ok], d[ok]
    if len(d) < 3:
        raise AnalyticsError(f"half-life needs at least 4 finite spread values, got {len(d) + 1}")
    dl = lag - lag.mean()
    sxx = np.dot(dl, dl)
    if sxx <= 0:
        raise AnalyticsError("half-life: the spread is constant")
    theta = np.dot(dl, d - d.mean()) / sxx
    return float(-np.log(2.0) / theta) if theta < 0 else math.inf


def spread_break(s) -> tuple[float, float]:
    """Structural-break test of a mean-reverting spread: (statistic, p-value).

    The OLS-CUSUM test of Ploberger and Krämer (``statsmodels.stats.diagnostic.
    breaks_cusumolsresid``, ddof 2) on the residuals of the half-life regression ``Δs_t = c +
    θ s_{t−1} + e_t`` (see :func:`half_life`): the residuals of a stable Ornstein–Uhlenbeck spread
    are white noise, while a shift of the spread's mean or a loss of mean reversion inside the
    window leaves a lasting drift in their cumulative sum. Applied to the spread levels the test
    would reject on autocorrelation alone. A small p-value says the spread broke."""
    from statsmodels.stats.diagnostic import breaks_cusumolsresid

    v = _values(s)
    lag, d = v[:-1], np.diff(v)
    ok = np.isfinite(lag) & np.isfinite(d)
    lag, d = lag[ok], d[ok]
    if len(d) < 10:
        raise AnalyticsError(f"a break test needs at least 11 finite spread values, got "
                             f"{len(d) + 1}")
    dl = lag - lag.mean()
    sxx = np.dot(dl, dl)
    if sxx <= 0:
        raise AnalyticsError("break test: the spread is constant")
    theta = np.dot(dl, d - d.mean()) / sxx
    resid = (d - d.mean()) - theta * dl
    stat, p, _ = breaks_cusumolsresid(resid, ddof=2)
    return float(stat), float(p)


def hurst(s, max_lag: int = 100, min_lag: int = 2) -> float:
    """Hurst exponent by the scaling of lagged differences ("variance of increments" estimator).

    For 20 log-spaced lags τ in min_lag..max_lag (capped at n/4), σ(τ) = std(s_{t+τ} − s_t); H is
    the OLS slope of ln σ(τ) on ln τ. H ≈ 0.5 for a random walk, < 0.5 for a mean-reverting
    series, > 0.5 for a trending one.
    """
    v = _values(s)
    v = v[np.isfinite(v)]
    hi = min(int(max_lag), len(v) // 4)
    if hi <= min_lag:
        raise AnalyticsError(f"Hurst needs more points: {len(v)} finite values for lags "
                             f"{min_lag}..{max_lag}")
    lags = np.unique(np.geomspace(min_lag, hi, 20).astype(np.int64))
    sig = np.array([np.std(v[k:] - v[:-k]) for k in lags])
    ok = sig > 0
    if ok.sum() < 2:
        raise AnalyticsError("Hurst: the series has no variation")
    return float(np.polyfit(np.log(lags[ok]), np.log(sig[ok]), 1)[0])
