"""Kalman hedge-ratio filter: qdash (numba kernel) vs filterpy predict/update on 100k bars.

The ratio is filterpy's time / qdash's on the same model and data (target >= 50x); the betas are
compared too. The last line is ``RESULT {json}`` of the figures.

Run: python bench/bench_kalman.py [--quick]   (--quick: 5,000 bars, a smoke run)
"""

import argparse
import json
import time

import numpy as np
from filterpy.kalman import KalmanFilter

from qdash.analytics import _kernels as K

N = 100_000
N_QUICK = 5_000
WINDOW, DELTA = 120, 1 / 120


def data(n: int = N):
    rng = np.random.default_rng(0)
    x = np.log(3400) + np.cumsum(rng.normal(0, 1e-4, n))
    y = 1.2 * x + 1.3 + np.cumsum(rng.normal(0, 2e-5, n)) + rng.normal(0, 5e-5, n)
    return y, x


def ours(y, x):
    return K.kalman_run(y, x, WINDOW, 1.0 / (1.0 - DELTA), np.nan)


def reference(y, x):
    """filterpy on qdash's model: started from the first window's OLS, centred observation
    row [x − x_ref, 1], process noise δ/(1−δ)·P each bar."""
    xw, yw = x[:WINDOW], y[:WINDOW]
    x_ref = xw.mean()
    sxx = ((xw - x_ref) ** 2).sum()
    b0 = ((xw - x_ref) * (yw - yw.mean())).sum() / sxx
    resid = yw - yw.mean() - b0 * (xw - x_ref)
    r = resid @ resid / (WINDOW - 2)
    kf = KalmanFilter(dim_x=2, dim_z=1)
    kf.x = np.array([[b0], [yw.mean()]])
    kf.P = r * np.diag([1 / sxx, 1 / WINDOW])
    kf.F = np.eye(2)
    kf.R = np.array([[r]])
    beta = np.full(len(y), np.nan)
    beta[WINDOW - 1] = b0
    h = np.array([[0.0, 1.0]])
    z = np.empty((1, 1))
    for i in range(WINDOW, len(y)):
        kf.Q = DELTA / (1 - DELTA) * kf.P
        kf.predict()
        h[0, 0] = x[i] - x_ref
        z[0, 0] = y[i]
        kf.update(z, H=h)
        beta[i] = kf.x[0, 0]
    return beta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"{N_QUICK:,} bars (a smoke run)")
    n = N_QUICK if ap.parse_args().quick else N
    y, x = data(n)
    ours(y[:100], x[:100])                                   # JIT warm-up (cached on disk)
    t_ours = min(_timed(ours, y, x) for _ in range(5))
    t0 = time.perf_counter()
    ref_beta = reference(y, x)
    t_ref = time.perf_counter() - t0
    err = np.nanmax(np.abs(ours(y, x)[0] - ref_beta))
    print(f"bars: {n:,}")
    print(f"qdash kalman_run: {t_ours * 1e3:.2f} ms ({n / t_ours:,.0f} steps/s)")
    print(f"filterpy predict/update loop: {t_ref * 1e3:.0f} ms ({n / t_ref:,.0f} steps/s)")
    print(f"max |beta - filterpy beta|: {err:.2e}")
    print(f"ratio vs filterpy: {t_ref / t_ours:.1f}x (target >= 50x)")
    print("RESULT " + json.dumps({"bars": n, "ours_ms": t_ours * 1e3, "filterpy_ms": t_ref * 1e3,
                                  "max_beta_diff": float(err), "ratio": t_ref / t_ours}))


def _timed(f, *a):
    t0 = time.perf_counter()
    f(*a)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
