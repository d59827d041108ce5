"""Synthetic universes for the scan tests: planted cointegrated pairs among independent walks."""

import numpy as np
import pandas as pd
from scipy.signal import lfilter

T0 = 1_704_067_200_000  # 2024-01-01 UTC
BAR = 300_000           # 5 minutes


def planted_universe(seed: int, n_walks: int = 24, n_pairs: int = 8, n: int = 2000,
                     phi: float = 0.8, sd_spread: float = 0.001, sd_walk: float = 0.01):
    """A long bar table (symbol, open_time ms, close, quote_volume) and the truth.

    Symbols ``S000USDT``...: pair p has x = ``S{2p}`` (a Gaussian random walk of log prices, step
    sd ``sd_walk``) and y = ``S{2p+1}`` with ``log y = beta·log x + alpha + s``, s an AR(1)
    (coefficient ``phi``, innovation sd ``sd_spread``); the other ``n_walks`` symbols are
    independent walks. Returns ``(table, [(y, x, beta), ...])``.
    """
    rng = np.random.default_rng(seed)
    k = n_walks + 2 * n_pairs
    lp = np.cumsum(rng.normal(0, sd_walk, (n, k)), axis=0) + rng.uniform(0, 5, k)
    truth = []
    for p in range(n_pairs):
        xi, yi = 2 * p, 2 * p + 1
        beta = rng.uniform(0.5, 2.0)
        s = lfilter([1.0], [1.0, -phi], rng.normal(0, sd_spread, n))
        lp[:, yi] = beta * lp[:, xi] + rng.uniform(-1, 1) + s
        truth.append((f"S{yi:03d}USDT", f"S{xi:03d}USDT", beta))
    syms = [f"S{i:03d}USDT" for i in range(k)]
    times = T0 + np.arange(n, dtype=np.int64) * BAR
    table = pd.DataFrame({"symbol": np.repeat(syms, n), "open_time": np.tile(times, k),
                          "close": np.exp(lp.T.ravel()),
                          "quote_volume": np.repeat(rng.uniform(1e6, 1e8, k) / 288, n)})
    return table, truth
