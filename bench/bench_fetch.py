"""History fetch against the weight limit: ``qdash fetch all --kind klines --timeframe 5m`` for 30
days of a universe of perpetuals served by the simulator (in a child process), the weight limit
enforced by the simulator (429 / ban above it) and respected by the client.

The reference measured in the same run is the rate-limit floor: the weight the fetch spent ÷ the
limit per minute — no client can fetch the same pages faster without being refused. The fetch
starts on a minute boundary (Binance's windows are fixed UTC minutes, so a run starting late in a
minute would get a free extra window). Prints wall time, floor, their ratio (target ≤ 1.15), the
requests and weight, 429s, and the peak memory the fetch added (bounded by a few pages, not by the
history).

The simulator enforces Binance's own limit, 2,400 weight a minute, by default: 400 symbols × 30
days is ~14,400 weight, a floor of about 6 minutes. Raising ``--limit`` shortens the run but
measures something else: at 15,000 the whole fetch fits in one minute's budget, and the wall time
is the CPU of the simulator (generating and encoding klines) and of the client (decoding and
storing them) sharing two cores — 1.55× that "floor" on a 2-core machine, with both processes at
100% CPU — not how well the client uses the weight budget.

The last line is ``RESULT {json}`` of the figures.

Run: python bench/bench_fetch.py [--symbols 400] [--days 30] [--limit 2400] [--workers 8] [--quick]
(--quick: 5 symbols × 2 days, well inside one minute's weight, not aligned to a minute window:
a smoke run of the same fetch, whose wall / floor says nothing about the limit)
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qdash.binance.rest import RestClient
from qdash.history import fetch
from qdash.store import Store

REPO = Path(__file__).resolve().parents[1]

SIM = """
import asyncio, sys
from qdash.sim.exchange import SimExchange
n, limit = int(sys.argv[1]), int(sys.argv[2])
async def main():
    sim = SimExchange(["BTCUSDT"], port=0, weight_limit=limit, rate=5, universe=n)
    await sim.start()
    print(sim.rest_url, flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=400)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--limit", type=int, default=2_400, help="simulator weight limit / minute")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--quick", action="store_true",
                    help="5 symbols x 2 days, no wait for a minute window (a smoke run)")
    a = ap.parse_args()
    if a.quick:
        a.symbols, a.days = 5, 2
    env = dict(os.environ, PYTHONPATH=str(REPO))
    sim = subprocess.Popen([sys.executable, "-c", SIM, str(a.symbols), str(a.limit)], env=env,
                           stdout=subprocess.PIPE, text=True)
    try:
        url = sim.stdout.readline().strip()
        client = RestClient(url, max_wait=120)
        symbols = client.perpetuals()
        print(f"simulator at {url}: {len(symbols)} perpetuals, weight limit "
              f"{client.weight_limit}/min")
        with tempfile.TemporaryDirectory() as d:
            store = Store(Path(d) / "fetch.db", synchronous="NORMAL")
            end = int(time.time() // 300 * 300 * 1000)
            start = end - a.days * 86_400_000
            if not a.quick:
                time.sleep(60 - time.time() % 60 + 0.05)  # start on a fresh minute window
            base_weight = client.stats().get("weight", 0)
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            t = time.perf_counter()
            rep = fetch(symbols, "klines", "5m", start, end, store, client=client,
                        workers=a.workers, progress=False)
            wall = time.perf_counter() - t
            peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
            stats = client.stats()
            weight = stats["weight"] - base_weight
            floor = weight / client.weight_limit * 60
            print(f"fetched {rep.rows:,} klines ({rep.stored:,} stored) of {len(symbols)} "
                  f"symbols × {a.days} days in {wall:.1f} s; {stats['requests']:,} requests, "
                  f"weight {weight:,}, {stats.get('http_429', 0)} × 429, "
                  f"{stats.get('retries', 0)} retries")
            print(f"rate-limit floor {floor:.1f} s; wall / floor = {wall / floor:.3f} "
                  f"(target <= 1.15)")
            print(f"peak memory added by the fetch: {max(peak_mb, 0):.1f} MB "
                  f"(store file {os.path.getsize(store.path) / 1e6:.1f} MB)")
            print("RESULT " + json.dumps({
                "symbols": len(symbols), "days": a.days, "rows": rep.rows, "stored": rep.stored,
                "requests": stats["requests"], "weight": weight,
                "http_429": stats.get("http_429", 0), "wall_s": wall, "floor_s": floor,
                "ratio": wall / floor}))
    finally:
        sim.terminate()
        sim.wait(10)


if __name__ == "__main__":
    main()
