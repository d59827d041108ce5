"""Synthetic long bar tables for the book's tests: random walks and planted pairs, in-process."""

from __future__ import annotations

import numpy as np
import pandas as pd

START_MS = 1_717_200_000_000  # 2024-06-01 UTC
HOUR_MS = 3_600_000


def _ar1(rng, n: int, phi: float, sd: float) -> np.ndarray:
    e = rng.normal(0.0, sd * np.sqrt(1 - phi * phi), n)
    out = np.empty(n)
    out[0] = e[0]
    for i in range(1, n):
        out[i] = phi * out[i - 1] + e[i]
    return out


def planted(days: int = 120, bar_ms: int = HOUR_MS, seed: int = 0, walks: int = 4,
            halves: bool = True, cluster: int = 3) -> tuple[pd.DataFrame, dict]:
    """A long table (``symbol, open_time, close, quote_volume``) of ``walks`` unrelated random
    walks, a cluster of ``cluster`` symbols cointegrated all along (``CLU0..``), and with
    ``halves`` a pair cointegrated only in the first half (``FH_Y``/``FH_X``) and one only in
    the second (``SH_Y``/``SH_X``). Returns the table and ``{"mid": Timestamp, ...}``."""
    rng = np.random.default_rng(seed)
    n = days * 86_400_000 // bar_ms
    vol = 0.01 * np.sqrt(bar_ms / 86_400_000) * 3     # ~3 % daily
    series: dict[str, np.ndarray] = {}
    for i in range(walks):
        series[f"RW{i}"] = np.cumsum(rng.normal(0, vol, n))
    common = np.cumsum(rng.normal(0, vol, n))
    for i in range(cluster):
        series[f"CLU{i}"] = (0.8 + 0.2 * i) * common + _ar1(rng, n, 0.9, 0.01)
    mid = n // 2
    if halves:
        fx = np.cumsum(rng.normal(0, vol, n))
        own = np.cumsum(rng.normal(0, 4 * vol, n))
        fy = np.where(np.arange(n) < mid, fx + _ar1(rng, n, 0.9, 0.01),
                      fx[mid - 1] + 0.15 + own - own[mid - 1])   # a jump, then its own walk
        series["FH_X"], series["FH_Y"] = fx, fy
        sx = np.cumsum(rng.normal(0, vol, n))
        own2 = np.cumsum(rng.normal(0, 2 * vol, n))
        res = _ar1(rng, n, 0.9, 0.01)
        jump = own2[mid - 1] - (sx[mid] + res[mid])       # continuous at the switch
        sy = np.where(np.arange(n) < mid, own2, sx + res + jump)
        series["SH_X"], series["SH_Y"] = sx, sy
    times = START_MS + np.arange(n, dtype=np.int64) * bar_ms
    frames = []
    for k, (name, logp) in enumerate(series.items()):
        price = 100.0 * (1 + k) * np.exp(logp)
        qv = rng.lognormal(np.log(5e6 * bar_ms / 86_400_000), 0.3, n)
        frames.append(pd.DataFrame({"symbol": name, "open_time": times, "close": price,
                                    "quote_volume": qv}))
    table = pd.concat(frames, ignore_index=True)
    info = {"mid": pd.Timestamp(times[mid], unit="ms", tz="UTC"), "bar_ms": bar_ms}
    return table, info


def funding_rates(table: pd.DataFrame, rate: float = 1e-4, every_h: int = 8,
                  seed: int = 1) -> dict[str, pd.Series]:
    """Funding every ``every_h`` hours for each symbol: random signed rates around ``rate``."""
    rng = np.random.default_rng(seed)
    t0, t1 = int(table["open_time"].min()), int(table["open_time"].max())
    times = pd.to_datetime(np.arange(t0, t1, every_h * HOUR_MS), unit="ms", utc=True)
    return {s: pd.Series(rng.normal(rate, 2 * rate, len(times)), index=times)
            for s in table["symbol"].unique()}
