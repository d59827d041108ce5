"""One pair backtest on 1,000,000 one-minute bars; target <= 100 ms after warm-up.

Timed: ``qdash.backtest.run`` with the per-bar beta and z given (the engine: alignment, the
compiled position loop, trades/positions frames and every metric). Also shown, for information:
the same with the hedge ratio and z-score computed by qdash.analytics (rolling OLS, 500 bars).
There is no reference implementation: the ratio is the 100 ms target / the engine's best time
(>= 1: the target is met). The last line is ``RESULT {json}`` of the figures.

Run: python bench/bench_backtest.py [--quick]   (--quick: 20,000 bars, a smoke run)
"""

import argparse
import json
import time

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from qdash.backtest import run

N = 1_000_000
N_QUICK = 20_000
TARGET_S = 0.100


def data(n: int = N, seed: int = 0):
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    x = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    noise = lfilter([1.0], [1.0, -0.99], rng.normal(0, 0.05, n))  # AR(1) spread
    y = 1.5 * x + 5 + noise
    return pd.Series(y, index=idx), pd.Series(x, index=idx)


def best_of(fn, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"{N_QUICK:,} bars (a smoke run)")
    n = N_QUICK if ap.parse_args().quick else N
    y, x = data(n)
    beta = np.full(n, 1.5)
    spread = y.to_numpy() - 1.5 * x.to_numpy()
    s = pd.Series(spread)
    z = ((s - s.rolling(500).mean()) / s.rolling(500).std()).to_numpy()

    def engine():
        return run(y, x, beta=beta, z=z, entry=2.0, exit=0.0, stop=4.0, fee_bps=4)

    r = engine()  # warm-up (numba compile or cache load)
    t_engine = best_of(engine)
    run(y, x, hedge="rolling-ols", window=500)
    t_full = best_of(lambda: run(y, x, hedge="rolling-ols", window=500, stop=4.0), repeat=3)
    print(f"bars: {n:,}  trades: {r.metrics['trades']:,}  final equity: "
          f"{r.metrics['final_equity']:,.2f}")
    print(f"run() with given beta/z:           {t_engine * 1e3:7.1f} ms (best of 7)")
    print(f"run() with rolling-OLS + z signals: {t_full * 1e3:7.1f} ms (best of 3, info)")
    print(f"ratio vs target: {TARGET_S / t_engine:.2f}x (target >= 1x, i.e. <= 100 ms)")
    print("RESULT " + json.dumps({"bars": n, "trades": int(r.metrics["trades"]),
                                  "final_equity": float(r.metrics["final_equity"]),
                                  "engine_ms": t_engine * 1e3, "signals_ms": t_full * 1e3,
                                  "ratio": TARGET_S / t_engine}))


if __name__ == "__main__":
    main()
