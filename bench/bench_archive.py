"""Reading history back: the Parquet archive vs SQLite, in the same run, through ``Store.ticks`` and
``Store.bars`` (the frames a notebook gets).

1M ticks of one symbol over 10 days and 3M 1m candles (10 symbols × 300,000) are written to
SQLite and read back (the reference), then ``qdash archive`` moves them and they are read back
from Parquet. Best of 2 reads from SQLite and 7 from the archive; prints rows/s and the
archive/SQLite ratio (SQLite's read time / the archive's: > 1, the archive is faster). Target:
≥ 20M rows/s from the archive. The last line is ``RESULT {json}`` of the figures.

Run: python bench/bench_archive.py [--ticks 1000000] [--candles 3000000] [--symbols 10] [--quick]
(--quick: 20,000 ticks and 30,000 candles of 3 symbols, a smoke run)
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from qdash.model import tick_frame
from qdash.store import Store
from qdash.store.parquet import archive

DAY = 86_400_000
T0 = 1_719_792_000_000  # 2024-07-01 UTC


def realistic_ticks(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    ts = T0 + np.sort(rng.integers(0, 10 * DAY, n))
    price = np.round(60_000 + np.cumsum(rng.choice([-0.1, 0.0, 0.0, 0.1], n)), 1)
    qty = np.round(np.maximum(0.001, rng.lognormal(-5, 1.5, n)), 3)
    return tick_frame("BTCUSDT", ts, np.arange(n) + 4_000_000_000, price, qty,
                      rng.integers(0, 2, n), "binance")


def candles(n: int, seed: int, tick: float = 0.01, lot: float = 0.001) -> pd.DataFrame:
    """1m candles as Binance's klines have them: open, high, low and close on the price grid
    (open = the previous close), volumes on the lot grid, VWAP anywhere between low and high."""
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n))) / tick) * tick
    open_ = np.r_[close[0], close[:-1]]
    wick = np.abs(rng.normal(0, 5e-4, (2, n))) * close
    high = np.round((np.maximum(open_, close) + wick[0]) / tick) * tick
    low = np.round((np.minimum(open_, close) - wick[1]) / tick) * tick
    vol = np.round(rng.lognormal(3, 1, n) / lot) * lot
    vwap = low + (high - low) * rng.uniform(0, 1, n)
    idx = pd.DatetimeIndex(pd.to_datetime(T0 + np.arange(n) * 60_000, unit="ms", utc=True),
                           name="open_time")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": vol,
                         "trades": rng.integers(1, 500, n),
                         "buy_volume": np.round(vol * rng.uniform(0, 1, n) / lot) * lot,
                         "quote_volume": vol * vwap, "vwap": vwap}, index=idx)


def best(f, k=3):
    times = []
    for _ in range(k):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=1_000_000)
    ap.add_argument("--candles", type=int, default=3_000_000)
    ap.add_argument("--symbols", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="20,000 ticks, 30,000 candles, 3 symbols")
    a = ap.parse_args()
    if a.quick:
        a.ticks, a.candles, a.symbols = 20_000, 30_000, 3
    syms = [f"SYM{i:03d}USDT" for i in range(a.symbols)]
    per = a.candles // a.symbols
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "bench.db", synchronous="OFF")
        t = time.perf_counter()
        store.write_ticks(realistic_ticks(a.ticks))
        for i, s in enumerate(syms):
            store.write_bars(candles(per, i), s, "1m")
        print(f"setup: wrote {a.ticks:,} ticks and {per * len(syms):,} candles to SQLite in "
              f"{time.perf_counter() - t:.1f} s")

        sql_ticks, (n_ticks, _) = best(lambda: (len(store.ticks("BTCUSDT")), 0), k=2)
        sql_bars, (n_bars, _) = best(lambda: (sum(len(store.bars(s, "1m")) for s in syms), 0),
                                     k=2)
        t = time.perf_counter()
        rep = archive(store, before="2100-01-01", progress=False)
        print(f"archive: {rep} in {time.perf_counter() - t:.1f} s")
        assert store.tick_count() == 0 and rep.ticks == n_ticks and rep.candles == n_bars
        arc_ticks, (m_ticks, _) = best(lambda: (len(store.ticks("BTCUSDT")), 0), k=7)
        arc_bars, (m_bars, _) = best(lambda: (sum(len(store.bars(s, "1m")) for s in syms), 0),
                                     k=7)
        assert (m_ticks, m_bars) == (n_ticks, n_bars)
        size = sum(p.stat().st_size for p in Path(store.archive.root).rglob("*.parquet"))
        print(f"archive size on disk: {size / 1e6:.1f} MB")
    result = {"ticks": n_ticks, "candles": n_bars, "archived_ticks": rep.ticks,
              "archived_candles": rep.candles, "size_mb": size / 1e6}
    for what, n, sql, arc in (("ticks", n_ticks, sql_ticks, arc_ticks),
                              ("candles", n_bars, sql_bars, arc_bars)):
        print(f"{what:>8}: {n:>10,} rows  SQLite {n / sql / 1e6:6.2f} M rows/s  archive "
              f"{n / arc / 1e6:6.2f} M rows/s  ratio {sql / arc:6.1f}x")
        result[f"{what}_ratio"] = sql / arc
    total = (n_ticks + n_bars) / (arc_ticks + arc_bars)
    print(f"archive overall: {total / 1e6:.1f} M rows/s (target >= 20)")
    print("RESULT " + json.dumps(result | {"archive_rows_per_s": total}))


if __name__ == "__main__":
    main()
