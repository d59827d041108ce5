"""A 1,216-combination grid (16 entry × 4 exit × 19 window) through ``qdash.backtest.sweep`` and
through vectorbt on the same 10,000 one-minute bars; target >= 1x vectorbt's speed.

Both sides do the whole job per window: rolling-OLS hedge ratio and rolling z-score (qdash:
qdash.analytics; vectorbt: its compiled rolling means/stds), then every entry × exit rule with
next-bar fills, 4 bps fees and hedge-adjusted leg sizes, then total return, Sharpe and max
drawdown per combination. vectorbt runs one ``Portfolio.from_signals`` per window with the 64
rules as 64 two-leg groups (cash shared within each pair), sized by value at the decision bar's
beta. vectorbt is the reference, installed by the ``bench`` extra (``pip install -e '.[bench]'``;
not a qdash dependency); without it the bench says so and times qdash alone.

The ratio is vectorbt's time / qdash's for the whole grid (> 1: qdash is faster). The last line
is ``RESULT {json}`` of the figures.

Run: python bench/bench_sweep.py [--quick]   (--quick: 2,000 bars, a 2 × 2 × 2 grid)
"""

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from qdash.backtest import sweep

N = 10_000
ENTRY = np.round(np.arange(1.0, 2.55, 0.1), 2)  # 16
EXIT = np.array([-0.5, 0.0, 0.25, 0.5])  # 4
WINDOW = np.arange(100, 1001, 50)  # 19
CAPITAL, ALLOC, FEE = 10_000.0, 0.95, 4e-4


def data(n: int = N, seed: int = 1):
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-08-01", periods=n, freq="1min", tz="UTC")
    x = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    y = 1.5 * x + 5 + lfilter([1.0], [1.0, -0.98], rng.normal(0, 0.05, n))
    return pd.Series(y, index=idx), pd.Series(x, index=idx)


N_QUICK = 2_000
QUICK = dict(entry=ENTRY[[5, 10]], exit=EXIT[[1, 3]], window=WINDOW[[0, 2]])  # 2 × 2 × 2


def qdash_grid(y, x, entry=ENTRY, exit=EXIT, window=WINDOW) -> pd.DataFrame:
    return sweep(y, x, entry=entry, exit=exit, window=window, hedge="rolling-ols",
                 fee_bps=FEE * 1e4, progress=False)


def vectorbt_grid(y, x, entry=ENTRY, exit=EXIT, window=WINDOW) -> pd.DataFrame:
    import vectorbt as vbt
    from vectorbt.generic import nb

    yv, xv = y.to_numpy(), x.to_numpy()
    n = len(yv)
    n_rules = len(entry) * len(exit)
    e_col = np.repeat(entry, len(exit))[None, :]
    x_col = np.tile(exit, len(entry))[None, :]
    idx = y.index
    closes = np.tile(np.column_stack([yv, xv]), (1, n_rules))  # columns y, x, y, x, ...
    closes = pd.DataFrame(closes, index=idx)
    group = np.repeat(np.arange(n_rules), 2)
    rows = []
    for w in window:
        w = int(w)
        m = nb.rolling_mean_nb(np.column_stack([xv, yv, xv * yv, xv * xv]), w, minp=w)
        beta = (m[:, 2] - m[:, 0] * m[:, 1]) / (m[:, 3] - m[:, 0] ** 2)
        alpha = m[:, 1] - beta * m[:, 0]
        spread = (yv - beta * xv - alpha)[:, None]
        z = (spread - nb.rolling_mean_nb(spread, w, minp=w)) / \
            nb.rolling_std_nb(spread, w, minp=w, ddof=1)
        long_in, long_out = z <= -e_col, z >= -x_col
        short_in, short_out = z >= e_col, z <= x_col

        def legs(a, b):  # interleave y-leg and x-leg columns: pair k -> columns 2k, 2k+1
            out = np.empty((n, 2 * n_rules), dtype=bool)
            out[:, 0::2], out[:, 1::2] = a, b
            # decided at t, filled at t+1
            out = np.roll(out, 1, axis=0)
            out[0] = False
            return pd.DataFrame(out, index=idx)

        q = ALLOC * CAPITAL / (yv + np.abs(beta) * xv)
        size = np.empty((n, 2 * n_rules))
        size[:, 0::2] = (q * yv)[:, None]
        size[:, 1::2] = (q * np.abs(beta) * xv)[:, None]
        size = np.roll(size, 1, axis=0)
        pf = vbt.Portfolio.from_signals(
            closes, entries=legs(long_in, short_in), exits=legs(long_out, short_out),
            short_entries=legs(short_in, long_in), short_exits=legs(short_out, long_out),
            size=np.nan_to_num(size), size_type="value", fees=FEE, init_cash=CAPITAL,
            group_by=group, cash_sharing=True, freq="1min")
        trades = pf.trades.count(group_by=False).to_numpy()
        res = pd.DataFrame({"window": w, "entry": e_col[0], "exit": x_col[0],
                            "total_return": pf.total_return().to_numpy(),
                            "sharpe": pf.sharpe_ratio().to_numpy(),
                            "max_drawdown": -pf.max_drawdown().to_numpy(),
                            "trades": trades[0::2]})
        rows.append(res)
    return pd.concat(rows, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"{N_QUICK:,} bars, a 2 x 2 x 2 grid (a smoke run)")
    quick = ap.parse_args().quick
    n, grid = (N_QUICK, QUICK) if quick else (N, dict(entry=ENTRY, exit=EXIT, window=WINDOW))
    size = len(grid["entry"]) * len(grid["exit"]) * len(grid["window"])
    y, x = data(n)
    try:
        import vectorbt as vbt
    except ImportError:
        vbt = None
        print("vectorbt is not installed (pip install -e '.[bench]' installs it): timing qdash "
              "alone, no ratio")
    # warm-up both (numba compilation) on a short slice
    ys, xs = y.iloc[:n * 3 // 10], x.iloc[:n * 3 // 10]
    sweep(ys, xs, entry=[2.0], exit=[0.0], window=[100], progress=False)
    t = time.perf_counter()
    ours = qdash_grid(y, x, **grid)
    t_ours = time.perf_counter() - t
    assert len(ours) == size, (len(ours), size)
    print(f"qdash sweep: {t_ours:6.2f} s for {n:,} bars, {len(ours):,} combinations")
    result = {"bars": n, "combinations": len(ours), "qdash_s": t_ours}
    if vbt is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vectorbt_grid(ys, xs, entry=grid["entry"], exit=grid["exit"], window=[100])
            t = time.perf_counter()
            ref = vectorbt_grid(y, x, **grid)
            t_vbt = time.perf_counter() - t
        assert len(ref) == size, (len(ref), size)
        # how close are the two implementations (sizing differs: vectorbt sizes on initial
        # capital, qdash on current equity; both decide at t and fill at t+1's close)
        key = ["window", "entry", "exit"]
        both = ours.merge(ref, on=key, suffixes=("", "_vbt"))
        same_trades = (both["trades"] == both["trades_vbt"]).mean()
        corr = np.corrcoef(both["total_return"], both["total_return_vbt"])[0, 1]
        print(f"vectorbt {vbt.__version__}: {t_vbt:6.2f} s on the same grid")
        print(f"agreement: same trade count in {same_trades:.0%} of combinations, "
              f"total-return correlation {corr:.4f}")
        print(f"ratio vs vectorbt: {t_vbt / t_ours:.1f}x (target >= 1x)")
        result |= {"vectorbt": vbt.__version__, "vectorbt_s": t_vbt, "matched": len(both),
                   "same_trades": same_trades, "ratio": t_vbt / t_ours}
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
