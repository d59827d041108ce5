"""End to end: sim exchange at 20,000 trades/s → BinanceFutures → Recorder → SQLite store.

The simulated exchange runs in its own process (a ``SimExchange`` as ``qdash sim`` starts it, with
a steady rate); this process is the consumer: WebSocket reads, decoding, ordering/dedupe, and the
store writer thread. At the end the sim is paused, the consumer catches up, and the store is
checked against what the sim published live (count, first/last id and id sum of MARKET trades
per symbol, from the ledger's trades at or after ``SimExchange.live_from_ms``; the ledger also
holds the warm-up the sim traded before it started, which no client was sent; the sim starts
publishing once the consumer has connected): zero loss, zero duplicates.

The ratio is the consumer's CPU against a budget of one core: this process's CPU time (all
threads) / wall time, in cores (target < 1 at 20,000 trades/s, with 0 lost). The last line is
``RESULT {json}`` of the figures.

Run: python bench/bench_feed_e2e.py [--seconds 60] [--rate 20000] [--quick]
(default 20 s to stay within a minute; the target is stated for 60 s; --quick: 2 s at 2,000
trades/s, a smoke run).
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qdash.feeds.binance import BinanceFutures
from qdash.feeds.record import Recorder
from qdash.store import Store

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
REPO = Path(__file__).resolve().parents[1]

# the exchange: prints its URLs and publishes from the consumer's first connection on; on a
# "live" line of stdin, pauses and prints the summary of the MARKET trades it published live (at
# or after live_from_ms) as one JSON line
SIM = """
import asyncio, json, sys
from qdash.sim.exchange import SimExchange

def live_summary(sim):
    out = {}
    for s in sim.symbols:
        f = sim.ledger.frame(s, market_only=True)
        ids = f.loc[f["ts"] >= sim.live_from_ms, "trade_id"]
        out[s] = {"market": len(ids), "first_id": int(ids.iloc[0]) if len(ids) else None,
                  "last_id": int(ids.iloc[-1]) if len(ids) else None, "id_sum": int(ids.sum())}
    return out

async def main():
    sim = SimExchange(sys.argv[2].split(","), rate=float(sys.argv[1]), port=0,
                      market_kwargs={"burst_multiplier": 1.0})  # steady rate: no bursts
    await sim.start()
    sim.pause()  # nothing is published live before the consumer is connected
    print(sim.ws_url, sim.rest_url, flush=True)
    while not sim.connections:
        await asyncio.sleep(0.01)
    sim.resume()
    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "live":
        sim.pause()
        print(json.dumps(live_summary(sim)), flush=True)
    await sim.stop()
asyncio.run(main())
"""


def live_summary(sim: subprocess.Popen) -> dict:
    """Pause the exchange and read its summary of the MARKET trades it published live."""
    sim.stdin.write("live\n")
    sim.stdin.flush()
    return json.loads(sim.stdout.readline())


async def consume(sim: subprocess.Popen, seconds: float, db: Path) -> dict:
    ws_url, rest_url = sim.stdout.readline().split()
    store = Store(db, synchronous="NORMAL")
    feed = BinanceFutures(SYMBOLS, ws_url=ws_url, rest_url=rest_url, max_lag=None)
    rec = Recorder(feed, store)
    feed.start()
    rec.start()
    await asyncio.sleep(1.0)  # connect and warm up, not measured
    cpu0, t0, ticks0 = time.process_time(), time.monotonic(), feed.stats()["ticks"]
    peak_lag = 0.0
    while time.monotonic() - t0 < seconds:
        await asyncio.sleep(1.0)
        lags = [v["lag_ms"] or 0 for v in feed.stats()["symbols"].values()]
        peak_lag = max(peak_lag, *lags)
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - t0
    ticks = feed.stats()["ticks"] - ticks0
    summary = await asyncio.to_thread(live_summary, sim)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = feed.stats()["symbols"]
        if all((st[s]["last_id"] or 0) >= summary[s]["last_id"] for s in SYMBOLS):
            break
        await asyncio.sleep(0.1)
    await feed.stop()
    await rec.stop()
    stats = feed.stats()
    check = {}
    for s in SYMBOLS:
        ids = store.ticks(s)["trade_id"]
        n, idsum = len(ids), int(ids.sum())
        lo, hi = (int(ids.min()), int(ids.max())) if n else (None, None)
        want = summary[s]
        check[s] = (n, lo, hi, idsum) == (want["market"], want["first_id"], want["last_id"],
                                          want["id_sum"])
        print(f"  {s}: stored {n:,}, published live {want['market']:,} MARKET trades; ids "
              f"{lo}..{hi} vs {want['first_id']}..{want['last_id']}; match: {check[s]}")
    store.close()
    return {"cpu_cores": cpu / wall, "wall": wall, "ticks_per_s": ticks / wall,
            "published": sum(summary[s]["market"] for s in SYMBOLS),
            "stored": rec.stored, "duplicates": rec.duplicates, "match": all(check.values()),
            "reconnects": stats["reconnects"], "gaps": stats["gaps_found"],
            "peak_lag_ms": peak_lag}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=20_000.0)
    ap.add_argument("--quick", action="store_true", help="2 s at 2,000 trades/s (a smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.rate = 2.0, 2_000.0
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    sim = subprocess.Popen([sys.executable, "-c", SIM, str(args.rate), ",".join(SYMBOLS)],
                           env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            r = asyncio.run(consume(sim, args.seconds, Path(tmp) / "bench.db"))
    finally:
        sim.stdin.close()  # the exchange stops at the end of its input
        try:
            sim.wait(10)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
    lost = r["published"] - r["stored"]
    print(f"sim {args.rate:,.0f} trades/s for {r['wall']:.0f} s: consumer received "
          f"{r['ticks_per_s']:,.0f} ticks/s, stored {r['stored']:,} of the {r['published']:,} "
          f"MARKET trades published live, lost {lost}, reconnects {r['reconnects']}, gaps "
          f"{r['gaps']}, peak lag {r['peak_lag_ms']:.0f} ms")
    print(f"ratio vs 1-core budget: consumer used {r['cpu_cores']:.2f} cores "
          f"(target < 1), lost {lost}, ledger match {r['match']} (target 0 lost)")
    print("RESULT " + json.dumps({"rate": args.rate, **r, "lost": lost,
                                  "ratio": r["cpu_cores"]}))


if __name__ == "__main__":
    main()
