"""``qdash.book`` on a 400-symbol universe, 90 days of 5-minute bars, 30-day train, 7-day windows.

The universe is the simulator's (:mod:`qdash.sim.universe`: clusters of 2–4 cointegrated
symbols among random walks), written to a Parquet long table. Measured in one run, each in a
fresh process as a user runs it (imports, numba cache loads and Dask start-up included):

- the whole book, ``qdash.book(path, train="30d", trade="7d")``, without Dask
  (``scheduler=None``) and on a 2-worker ``LocalCluster`` (``workers=2``): wall time (target
  <= 60 s) and time per window;
- the reference: one ``qdash.scan`` of one train span (the first window's 30 days, the same
  symbols, ``scheduler=None``) — the ratio ``book time per window / scan time`` says what a
  window costs beyond its scan (the book's window scan also ranks the no-coint-gate baseline's
  candidates and trades two books).

Also printed: the windows' selections against the planted clusters, and the orders' notional
against the legs' that crossed inside the book (netted, never sent). The last line is
``RESULT {json}``.

Run: python bench/bench_book.py [--symbols 400] [--days 90] [--quick]
(--quick: 16 symbols x 40 days: a smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

START_MS = 1_717_200_000_000  # 2024-06-01 UTC
DAY_MS = 86_400_000
TARGET_S = 60.0


def universe(n_symbols: int, days: int, path: str) -> set[tuple[str, str]]:
    """Write the universe's 5m long table to ``path``; return the directed cluster pairs."""
    from qdash.sim.universe import make_universe, universe_klines

    uni = make_universe(n_symbols, seed=0)
    k = universe_klines(uni, "5m", START_MS, START_MS + days * DAY_MS, seed=0)
    k[["symbol", "open_time", "close", "quote_volume"]].to_parquet(path, index=False)
    clusters: dict[int, list[str]] = {}
    for u in uni:
        if u.cluster is not None:
            clusters.setdefault(u.cluster, []).append(u.symbol)
    return {(a, b) for m in clusters.values() for a in m for b in m if a != b}


def child(path: str, what: str) -> None:
    """One timed run in this fresh process; prints ``RESULT <seconds> <json>``."""
    t = time.perf_counter()
    if what == "scan":
        import pandas as pd

        from qdash.scan import scan

        df = pd.read_parquet(path)
        df = df[df["open_time"] < START_MS + 30 * DAY_MS]
        t = time.perf_counter()
        r = scan(df, timeframe="5m", scheduler=None, progress=False)
        print(f"RESULT {time.perf_counter() - t:.3f} " + json.dumps(
            {"pass": int(r["pass"].sum()), "rows": len(r)}), flush=True)
        return
    from qdash.book import book

    res = book(path, train="30d", trade="7d", scheduler=None if what == "none" else "local",
               workers=2)
    wall = time.perf_counter() - t
    print(f"RESULT {wall:.3f} " + json.dumps({
        "windows": res.windows[["window_start", "y", "x"]].astype(str).values.tolist(),
        "n_windows": int(res.metric("windows")), "trades": len(res.trades),
        "total_return": res.metric("total_return"), "sharpe": res.metric("sharpe"),
        "turnover": res.metric("turnover"), "crossed": res.metric("crossed"),
        "baseline": res.metric("baseline_no_coint_gate_total_return"),
        "fingerprint": res.fingerprint}), flush=True)


def run_child(path: str, what: str) -> tuple[float, dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, __file__, "--child", path, what], env=env,
                         capture_output=True, text=True, check=True).stdout
    line = next(s for s in out.splitlines() if s.startswith("RESULT"))
    _, wall, js = line.split(" ", 2)
    return float(wall), json.loads(js)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=400)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="16 symbols x 40 days (a smoke run)")
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.quick:
        args.symbols, args.days = 16, 40
    warnings.simplefilter("ignore")
    print(f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
          "(wall times below are only as quiet as the machine)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bars.parquet")
        t = time.perf_counter()
        truth = universe(args.symbols, args.days, path)
        print(f"universe (qdash.sim.universe, seed 0): {args.symbols} symbols x "
              f"{args.days * 288:,} bars of 5m, generated in {time.perf_counter() - t:.1f}s; "
              f"{len(truth)} directed pairs inside its clusters")
        scan_s, scan_r = run_child(path, "scan")
        print(f"reference: qdash.scan of one 30-day train span (no Dask) {scan_s:.2f}s, "
              f"{scan_r['pass']} pairs pass")
        none_s, none_r = run_child(path, "none")
        dask_s, dask_r = run_child(path, "local")
        n = none_r["n_windows"]
        sel = none_r["windows"]
        inside = sum((y, x) in truth for _, y, x in sel)
        print(f"book without Dask: {none_s:.1f}s end to end, {n} windows, "
              f"{none_s / n:.2f}s per window = {none_s / n / scan_s:.2f}x one scan of a train "
              f"span; {none_r['trades']} trades, total return {none_r['total_return']:+.2%} "
              f"(no-coint-gate baseline {none_r['baseline']:+.2%}); orders "
              f"{none_r['turnover']:.1f}x the capital, legs crossed inside the book "
              f"{none_r['crossed']:.2f}x")
        same = dask_r["fingerprint"] == none_r["fingerprint"] and dask_r["windows"] == sel
        print(f"book on a 2-worker LocalCluster: {dask_s:.1f}s end to end, "
              f"{dask_s / n:.2f}s per window = {dask_s / n / scan_s:.2f}x one scan; "
              f"same selections as without Dask: {same}")
        print(f"selections: {len(sel)} window-pairs, {inside} inside a planted cluster "
              f"({inside / max(1, len(sel)):.0%}); target <= {TARGET_S:.0f}s: "
              f"{'met' if min(none_s, dask_s) <= TARGET_S else 'missed'}")
    print("RESULT " + json.dumps({
        "symbols": args.symbols, "days": args.days, "windows": n, "scan_s": scan_s,
        "book_s": none_s, "book_dask_s": dask_s, "per_window_s": none_s / n,
        "per_window_dask_s": dask_s / n, "ratio": none_s / n / scan_s,
        "target_ratio": TARGET_S / min(none_s, dask_s),
        "cluster_share": inside / max(1, len(sel)), "same_with_dask": same}))


if __name__ == "__main__":
    main()
