"""Full PairAnalytics.from_bars refresh on 86,400 aligned 1 s bars vs plain library calls.

The reference does the same work with statsmodels / scikit-learn / scipy / pandas / filterpy:
OLS, Huber (same 5,000-point subsample), Theil-Sen (same 1,000-point subsample), ADF (AIC) on the
OLS spread, Engle-Granger coint, half-life, Hurst, rolling OLS, rolling z-score and correlations,
Kalman filter. The target is for the default settings (ADF lag search up to statsmodels' default
maxlag, 58 on 86,400 points); statsmodels needs minutes for that search, so the ratio is measured
with maxlag=12 on both sides: the ratio is the library calls' time / from_bars' time with
maxlag=12. The last line is ``RESULT {json}`` of the figures.

Run: python bench/bench_pair_refresh.py [--quick]   (--quick: 6,000 bars, a smoke run)
"""

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from filterpy.kalman import KalmanFilter
from scipy.stats import theilslopes
from sklearn.linear_model import HuberRegressor
from statsmodels.regression.rolling import RollingOLS
from statsmodels.tsa.stattools import adfuller, coint

from qdash.analytics import PairAnalytics
from qdash.analytics.estimators import subsample

N = 86_400
N_QUICK = 6_000  # above both subsample sizes, so both subsample as in the full run
W = 300
MAXLAG = 12


def bars(n: int = N):
    rng = np.random.default_rng(0)
    x = 3400 + np.cumsum(rng.normal(0, 0.5, n))
    s = np.zeros(n)
    e = rng.normal(0, 1, n)
    for i in range(1, n):
        s[i] = 0.999 * s[i - 1] + e[i]
    y = 18.7 * x + 3 * s + 100
    idx = pd.date_range("2024-07-18", periods=n, freq="1s", tz="UTC", name="open_time")
    mk = lambda p: pd.DataFrame({"close": p, "trades": rng.integers(1, 30, n),  # noqa: E731
                                 "quote_volume": rng.uniform(0, 1e5, n)}, index=idx)
    return mk(y), mk(x)


def reference(by, bx):
    y, x = by["close"].to_numpy(), bx["close"].to_numpy()
    n = len(y)
    ols = sm.OLS(y, sm.add_constant(x)).fit()
    spread = ols.resid
    i = subsample(n, 5_000)
    HuberRegressor(max_iter=1000).fit((x[i] - x[i].mean())[:, None], y[i] - y[i].mean())
    j = subsample(n, 1_000)
    theilslopes(y[j], x[j])
    adfuller(spread, maxlag=MAXLAG, autolag="AIC")
    coint(y, x, maxlag=MAXLAG)
    sm.OLS(np.diff(spread), sm.add_constant(spread[:-1])).fit()
    for k in np.unique(np.geomspace(2, 100, 20).astype(int)):
        np.std(spread[k:] - spread[:-k])
    roll = RollingOLS(y, sm.add_constant(x), window=W).fit().params
    sp = pd.Series(y - (roll[:, 1] * x + roll[:, 0]))
    (sp - sp.rolling(W).mean()) / sp.rolling(W).std()
    py, px = pd.Series(y), pd.Series(x)
    py.rolling(W).corr(px)
    np.log(py).diff().rolling(W).corr(np.log(px).diff())
    kf = KalmanFilter(dim_x=2, dim_z=1)
    kf.F, kf.Q, kf.R = np.eye(2), 1e-4 / (1 - 1e-4) * np.eye(2), np.array([[1e-3]])
    for k in range(n):
        kf.predict()
        kf.update(np.array([[y[k]]]), H=np.array([[x[k], 1.0]]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"{N_QUICK:,} bars (a smoke run)")
    n = N_QUICK if ap.parse_args().quick else N
    by, bx = bars(n)
    PairAnalytics.from_bars(by.iloc[:2000], bx.iloc[:2000])        # JIT warm-up, imports
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        pa = PairAnalytics.from_bars(by, bx, beta_window=W, z_window=W, corr_window=W)
        times.append(time.perf_counter() - t0)
    ours = float(np.median(times))
    times12 = []
    for _ in range(3):
        t0 = time.perf_counter()
        PairAnalytics.from_bars(by, bx, beta_window=W, z_window=W, corr_window=W,
                                adf_maxlag=MAXLAG)
        times12.append(time.perf_counter() - t0)
    ours12 = float(np.median(times12))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        reference(by, bx)
        ref = time.perf_counter() - t0
    m = pa.summary
    print(f"bars: {n:,}; coint_p={m['coint_p']:.3g} adf lags used via AIC; "
          f"half-life={m['half_life_bars']:.0f} bars; betas: "
          + ", ".join(f"{k}={v:.4f}" for k, v in pa.estimators["beta"].items()))
    print(f"PairAnalytics.from_bars: median {ours * 1e3:.0f} ms, min {min(times) * 1e3:.0f} ms "
          f"over {len(times)} runs (target <= 250 ms)")
    print(f"with adf maxlag={MAXLAG}: from_bars {ours12 * 1e3:.0f} ms; plain "
          f"statsmodels/sklearn/scipy/pandas/filterpy: {ref * 1e3:,.0f} ms")
    print(f"ratio vs plain library calls: {ref / ours12:.0f}x "
          f"(default from_bars {ours * 1e3:.0f} ms, target <= 250 ms)")
    print("RESULT " + json.dumps({"bars": n, "from_bars_ms": ours * 1e3,
                                  "from_bars_maxlag_ms": ours12 * 1e3, "reference_ms": ref * 1e3,
                                  "coint_p": float(m["coint_p"]), "ratio": ref / ours12}))


if __name__ == "__main__":
    main()
