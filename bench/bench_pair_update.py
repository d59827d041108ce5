"""Live PairState.update: bar updates per second for one pair (target >= 50,000/s).

Reference in the same run: the same per-bar work done the plain way (filterpy predict/update plus
numpy recomputation of the rolling OLS, z-score and correlation windows on every bar), timed
on fewer bars (it is slow). The ratio is PairState's updates/s / the reference's. The last line
is ``RESULT {json}`` of the figures.

Run: python bench/bench_pair_update.py [--quick]   (--quick: 5,000 bars, 600 for the reference)
"""

import argparse
import json
import time

import numpy as np
from filterpy.kalman import KalmanFilter

from qdash.analytics import PairState

N = 200_000
N_REF = 3_000
N_QUICK, N_REF_QUICK = 5_000, 600  # the reference needs 2·W bars for its z-score window
W = 300


def prices(n):
    rng = np.random.default_rng(0)
    x = 3400 + np.cumsum(rng.normal(0, 0.5, n))
    y = 18.7 * x + np.cumsum(rng.normal(0, 1, n)) * 0.3
    return y, x


def ours(y, x):
    st = PairState(beta_window=W, z_window=W, corr_window=W, window=W, history=W)
    t0_ms = 1_721_347_200_000
    upd = st.update
    t0 = time.perf_counter()
    for i in range(len(y)):
        upd(y[i], x[i], t0_ms + 1000 * i)
    elapsed = time.perf_counter() - t0
    return elapsed, st


def reference(y, x):
    kf = KalmanFilter(dim_x=2, dim_z=1)
    kf.F, kf.Q, kf.R = np.eye(2), 1e-4 / (1 - 1e-4) * np.eye(2), np.array([[1e-3]])
    spreads = []
    t0 = time.perf_counter()
    for i in range(len(y)):
        kf.predict()
        kf.update(np.array([[y[i]]]), H=np.array([[x[i], 1.0]]))
        if i >= W:
            ys, xs = y[i - W + 1:i + 1], x[i - W + 1:i + 1]
            b, a = np.polyfit(xs, ys, 1)
            spreads.append(y[i] - b * x[i] - a)
            if len(spreads) >= W:
                s = np.asarray(spreads[-W:])
                (s[-1] - s.mean()) / s.std(ddof=1)
            np.corrcoef(xs, ys)
            np.corrcoef(np.diff(np.log(xs)), np.diff(np.log(ys)))
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"{N_QUICK:,} bars (a smoke run)")
    n, n_ref = (N_QUICK, N_REF_QUICK) if ap.parse_args().quick else (N, N_REF)
    y, x = prices(n)
    ours(y[:1000], x[:1000])                                  # JIT warm-up (cached on disk)
    elapsed, st = ours(y, x)
    rate = n / elapsed
    t0 = time.perf_counter()
    m = st.metrics()
    t_metrics = time.perf_counter() - t0
    ref = reference(y[:n_ref], x[:n_ref])
    ref_rate = n_ref / ref
    print(f"PairState.update: {n:,} bars in {elapsed:.2f} s = {rate:,.0f} updates/s "
          f"(target >= 50,000/s); metrics() {t_metrics * 1e6:.0f} µs, zscore={m['zscore']:.3f}")
    print(f"plain per-bar filterpy + numpy windows: {ref_rate:,.0f} updates/s")
    print(f"ratio vs plain per-bar recompute: {rate / ref_rate:.0f}x "
          f"({rate:,.0f} updates/s, target >= 50,000/s)")
    print("RESULT " + json.dumps({"bars": n, "reference_bars": n_ref, "updates_per_s": rate,
                                  "reference_per_s": ref_rate, "zscore": float(m["zscore"]),
                                  "ratio": rate / ref_rate}))


if __name__ == "__main__":
    main()
