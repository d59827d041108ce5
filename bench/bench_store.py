"""Store write throughput vs a bare ``sqlite3.executemany`` of the same rows into the same schema.

Both sides use the same file settings (WAL, synchronous=FULL: durability on) and the same batch
size; the reference does nothing but BEGIN / executemany / COMMIT on pre-built tuples, so the
ratio is what ``Store.write_ticks`` (DataFrame → rows, validation, idempotent insert, commit)
keeps of SQLite's own ceiling: the ratio is executemany's time / Store's. Target: >= 0.6.
The last line is ``RESULT {json}`` of the figures.

Run: python bench/bench_store.py [--ticks 1000000] [--batch 5000] [--quick]
(--quick: 20,000 ticks in batches of 1,000, a smoke run)
"""

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from qdash.model import tick_frame
from qdash.store import Store
from qdash.store.schema import SCHEMA
from qdash.store.ticks import TICK_INSERT, tick_rows


def batches(n: int, size: int):
    rng = np.random.default_rng(7)
    t0 = 1_721_347_200_000
    out = []
    for start in range(0, n, size):
        k = min(size, n - start)
        out.append(tick_frame(np.where(rng.random(k) < 0.5, "BTCUSDT", "ETHUSDT"),
                              t0 + np.arange(start, start + k) * 3,
                              np.arange(start, start + k) + 1, rng.normal(60_000, 50, k).round(1),
                              rng.uniform(0.001, 2, k).round(3), rng.integers(0, 2, k), "bench"))
    return out


def run_reference(path: Path, rows_batches) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(SCHEMA)
    t = time.perf_counter()
    for rows in rows_batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(TICK_INSERT, rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t
    conn.close()
    return elapsed


def run_store(path: Path, frames) -> float:
    store = Store(path)
    t = time.perf_counter()
    for df in frames:
        store.write_ticks(df)
    elapsed = time.perf_counter() - t
    store.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--quick", action="store_true", help="20,000 ticks in batches of 1,000")
    args = ap.parse_args()
    if args.quick:
        args.ticks, args.batch = 20_000, 1_000
    frames = batches(args.ticks, args.batch)
    rows = [tick_rows(df) for df in frames]  # the reference gets its tuples for free
    best_ref = best_store = float("inf")
    with tempfile.TemporaryDirectory() as d:
        for i in range(3):  # interleave to share the machine's noise fairly
            best_ref = min(best_ref, run_reference(Path(d) / f"ref{i}.db", rows))
            best_store = min(best_store, run_store(Path(d) / f"store{i}.db", frames))
        with Store(Path(d) / "store0.db") as store:
            stored = store.tick_count()
    print(f"bare executemany : {args.ticks / best_ref:12,.0f} ticks/s")
    print(f"Store.write_ticks: {args.ticks / best_store:12,.0f} ticks/s "
          f"(batches of {args.batch}, synchronous=FULL)")
    print(f"ratio Store / bare executemany: {best_ref / best_store:.2f} (target >= 0.6)")
    print("RESULT " + json.dumps({"ticks": args.ticks, "stored": stored,
                                  "executemany_per_s": args.ticks / best_ref,
                                  "store_per_s": args.ticks / best_store,
                                  "ratio": best_ref / best_store}))


if __name__ == "__main__":
    main()
