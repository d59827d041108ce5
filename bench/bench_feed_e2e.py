"""End to end: sim exchange at 20,000 trades/s → BinanceFutures → Recorder → SQLite store.

The simulated exchange runs in its own process (``python -m qdash sim``); this process is the
consumer: WebSocket reads, decoding, ordering/dedupe, and the store writer thread. At the end the
sim is paused, the consumer catches up, and the store is checked against the sim's ledger (count,
first/last id and id sum of MARKET trades per symbol): zero loss, zero duplicates.

Consumer CPU = this process's CPU time (all threads) / wall time, in cores.

Run: .venv/bin/python bench/bench_feed_e2e.py [--seconds 60] [--rate 20000]
(default 20 s to stay within a minute; the target is stated for 60 s).
"""

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from qdash.feeds.binance import BinanceFutures
from qdash.feeds.record import Recorder
from qdash.store import Store

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


async def consume(port: int, seconds: float, db: Path) -> dict:
    base = f"127.0.0.1:{port}"
    store = Store(db, synchronous="NORMAL")
    feed = BinanceFutures(SYMBOLS, ws_url=f"ws://{base}", rest_url=f"http://{base}",
                          max_lag=None)
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
    await asyncio.to_thread(get, f"http://{base}/sim/pause")
    summary = await asyncio.to_thread(get, f"http://{base}/sim/ledger_summary")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = feed.stats()["symbols"]
        if all((st[s]["last_id"] or 0) >= summary[s]["last_id"] for s in SYMBOLS):
            break
        await asyncio.sleep(0.1)
    await feed.stop()
    await rec.stop()
    stats = feed.stats()
    conn = store._conn()
    check = {}
    for s in SYMBOLS:
        n, lo, hi, idsum = conn.execute(
            "SELECT COUNT(*), MIN(trade_id), MAX(trade_id), SUM(trade_id) FROM tick_data "
            "WHERE symbol = ?", (s,)).fetchone()
        want = summary[s]
        check[s] = (n, lo, hi, idsum) == (want["market"], want["first_id"], want["last_id"],
                                          want["id_sum"])
        print(f"  {s}: stored {n:,}, ledger {want['market']:,} MARKET trades; ids "
              f"{lo}..{hi} vs {want['first_id']}..{want['last_id']}; match: {check[s]}")
    store.close()
    return {"cpu_cores": cpu / wall, "wall": wall, "ticks_per_s": ticks / wall,
            "ledger": sum(summary[s]["market"] for s in SYMBOLS),
            "stored": rec.stored, "duplicates": rec.duplicates, "match": all(check.values()),
            "reconnects": stats["reconnects"], "gaps": stats["gaps_found"],
            "peak_lag_ms": peak_lag}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=20_000.0)
    args = ap.parse_args()
    sim = subprocess.Popen([sys.executable, "-m", "qdash", "sim", "--port", "0", "--rate",
                            str(args.rate), "--symbols", ",".join(SYMBOLS),
                            "--burst-multiplier", "1"],  # steady rate: no bursts
                           stdout=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r":(\d+) ", sim.stdout.readline()).group(1))
        with tempfile.TemporaryDirectory() as tmp:
            r = asyncio.run(consume(port, args.seconds, Path(tmp) / "bench.db"))
    finally:
        sim.terminate()
        sim.wait(10)
    lost = r["ledger"] - r["stored"]
    print(f"sim {args.rate:,.0f} trades/s for {r['wall']:.0f} s: consumer received "
          f"{r['ticks_per_s']:,.0f} ticks/s, stored {r['stored']:,} of {r['ledger']:,} "
          f"MARKET trades, lost {lost}, reconnects {r['reconnects']}, gaps {r['gaps']}, "
          f"peak lag {r['peak_lag_ms']:.0f} ms")
    print(f"ratio vs 1-core budget: consumer used {r['cpu_cores']:.2f} cores "
          f"(target < 1), lost {lost}, ledger match {r['match']} (target 0 lost)")


if __name__ == "__main__":
    main()
