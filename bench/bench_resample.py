"""Candle building speed.

1. ``qdash.resample`` vs plain pandas ``resample("1m").agg(...)`` on the same 5M ticks computing
   the same columns (open, high, low, close, volume, trades, buy_volume, quote_volume, vwap).
   Target: ratio >= 1.0 (qdash at least as fast).
2. ``BarBuilder`` fed the same ticks in batches of 1,000: ticks/s. Target: >= 1,000,000.

The ratio is pandas' time / qdash.resample's on the same ticks (the candles are checked equal).
The last line is ``RESULT {json}`` of the figures.

Run: python bench/bench_resample.py [--ticks 5000000] [--quick]   (--quick: 50,000 ticks)
"""

import argparse
import json
import time

import numpy as np
import pandas as pd

from qdash.bars import BarBuilder, resample
from qdash.model import tick_frame


def make_ticks(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    ts = 1_721_347_200_000 + np.cumsum(rng.integers(0, 30, n))
    price = 60_000 + np.cumsum(rng.normal(0, 0.5, n)).round(1)
    return tick_frame("BTCUSDT", ts, np.arange(1, n + 1), price,
                      rng.uniform(0.001, 2, n).round(3), rng.integers(0, 2, n), "bench")


def pandas_reference(ticks: pd.DataFrame, rule: str) -> pd.DataFrame:
    df = ticks.set_index(pd.to_datetime(ticks["ts"], unit="ms", utc=True))
    df = df.assign(buy=df["qty"].where(df["is_buyer_maker"] == 0, 0.0),
                   quote=df["price"] * df["qty"])
    r = df.resample(rule, label="left", closed="left")
    out = r.agg({"price": ["first", "max", "min", "last", "count"], "qty": "sum",
                 "buy": "sum", "quote": "sum"})
    out.columns = ["open", "high", "low", "close", "trades", "volume", "buy_volume",
                   "quote_volume"]
    out = out[out["trades"] > 0]
    out["vwap"] = out["quote_volume"] / out["volume"]
    return out


def best_of(fn, repeat=3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=5_000_000)
    ap.add_argument("--quick", action="store_true", help="50,000 ticks (a smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.ticks = 50_000
    ticks = make_ticks(args.ticks)

    ours = resample(ticks, "1m")
    ref = pandas_reference(ticks, "1min")
    assert np.array_equal(ours["close"].to_numpy(), ref["close"].to_numpy())
    assert np.array_equal(ours["trades"].to_numpy(), ref["trades"].to_numpy())

    t_pandas = best_of(lambda: pandas_reference(ticks, "1min"))
    t_ours = best_of(lambda: resample(ticks, "1m"))

    n_builder = min(len(ticks), 1_000_000)
    chunks = [ticks.iloc[i:i + 1000] for i in range(0, n_builder, 1000)]

    def build():
        builder = BarBuilder("1m")
        for chunk in chunks:
            builder.update(chunk)
        builder.flush()

    t_builder = best_of(build, repeat=2)

    print(f"pandas resample().agg(): {t_pandas * 1e3:8.0f} ms for {args.ticks:,} ticks")
    print(f"qdash.resample         : {t_ours * 1e3:8.0f} ms")
    print(f"BarBuilder (batches of 1,000): {n_builder / t_builder:,.0f} ticks/s "
          "(target >= 1,000,000)")
    print(f"ratio qdash.resample vs pandas: {t_pandas / t_ours:.2f}x (target >= 1.0x)")
    print("RESULT " + json.dumps({"ticks": args.ticks, "candles": len(ours),
                                  "pandas_ms": t_pandas * 1e3, "ours_ms": t_ours * 1e3,
                                  "builder_ticks_per_s": n_builder / t_builder,
                                  "ratio": t_pandas / t_ours}))


if __name__ == "__main__":
    main()
