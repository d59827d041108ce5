"""Tick server ingestion: batch REST throughput with 4 concurrent clients, and single-tick latency.

A real ``qdash serve`` process on 127.0.0.1 (default durability: SQLite WAL, synchronous=FULL) is
fed by 4 client threads, each POSTing pre-encoded JSON arrays of canonical ticks (with trade ids)
over a keep-alive connection. Throughput is end to end: from the first request until the last
2xx (each 2xx means committed), checked against the store's row count afterwards. The reference,
in the same run, is ``Store.write_ticks`` called directly on the same batches (no HTTP, no JSON):
the ratio says how much of SQLite's own ingest rate the server keeps.
Then 1,000 single-tick POSTs one after another give the p50/p99 latency.

Target: >= 100,000 ticks/s end to end. The ratio is the server's end-to-end rate / the direct
writes' rate. The last line is ``RESULT {json}`` of the figures.

Run: python bench/bench_ingest.py [--ticks 1000000] [--batch 5000] [--clients 4] [--quick]
(--quick: 20,000 ticks in batches of 1,000, 50 single-tick POSTs, a smoke run)
"""

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import orjson

from qdash.model import tick_frame
from qdash.store import Store

T0 = 1_721_347_200_000
TOKEN = "bench-token"


def make_batches(n: int, size: int, first_id: int = 1) -> list[list[dict]]:
    rng = np.random.default_rng(11)
    out = []
    for start in range(0, n, size):
        k = min(size, n - start)
        ids = np.arange(first_id + start, first_id + start + k)
        sym = np.where(rng.random(k) < 0.5, "BTCUSDT", "ETHUSDT")
        price = np.round(60_000 + rng.normal(0, 50, k), 1)
        qty = np.round(rng.exponential(0.05, k) + 0.001, 3)
        side = rng.random(k) < 0.5
        out.append([{"symbol": s, "ts": T0 + int(i) * 3, "trade_id": int(i), "price": float(p),
                     "qty": float(q), "is_buyer_maker": bool(m)}
                    for s, i, p, q, m in zip(sym, ids, price, qty, side)])
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "qdash", "serve", "--port", str(port),
                             "--db", str(db), "--token", TOKEN], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/qdash/api/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> dict:
    conn.request("POST", path, body, {"Authorization": f"Bearer {TOKEN}",
                                      "Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise SystemExit(f"POST {path}: HTTP {resp.status} {data[:200]!r}")
    return json.loads(data)


def run_clients(port: int, bodies: list[bytes], clients: int) -> float:
    chunks = [bodies[i::clients] for i in range(clients)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(clients + 1)

    def client(mine):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        barrier.wait()
        try:
            for body in mine:
                post(conn, "/qdash/api/ticks/batch", body)
        except BaseException as e:  # reported below
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"client failed: {errors[0]}")
    return elapsed


def direct_reference(batches: list[list[dict]], db: Path) -> float:
    frames = [tick_frame([t["symbol"] for t in b], [t["ts"] for t in b],
                         [t["trade_id"] for t in b], [t["price"] for t in b],
                         [t["qty"] for t in b], [int(t["is_buyer_maker"]) for t in b], "ingest")
              for b in batches]
    with Store(db) as store:
        t0 = time.perf_counter()
        for f in frames:
            store.write_ticks(f)
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--single", type=int, default=1000, help="single-tick POSTs for latency")
    ap.add_argument("--quick", action="store_true",
                    help="20,000 ticks in batches of 1,000, 50 single-tick POSTs")
    args = ap.parse_args()
    if args.quick:
        args.ticks, args.batch, args.single = 20_000, 1_000, 50

    batches = make_batches(args.ticks, args.batch)
    bodies = [orjson.dumps(b) for b in batches]
    mb = sum(map(len, bodies)) / 2**20
    with tempfile.TemporaryDirectory() as tmp:
        ref_s = direct_reference(batches, Path(tmp) / "direct.db")
        ref_rate = args.ticks / ref_s
        print(f"reference: Store.write_ticks directly, {args.ticks:,} ticks in batches of "
              f"{args.batch}: {ref_rate:,.0f} ticks/s")

        db, port = Path(tmp) / "served.db", free_port()
        proc = start_server(db, port)
        try:
            elapsed = run_clients(port, bodies, args.clients)
            rate = args.ticks / elapsed
            with Store(db) as s:
                stored = s.tick_count()
            assert stored == args.ticks, f"stored {stored} of {args.ticks}"
            print(f"server: {args.clients} clients POST {len(bodies)} batches ({mb:.0f} MiB "
                  f"JSON) in {elapsed:.2f} s: {rate:,.0f} ticks/s end to end, all {stored:,} "
                  "in the store")

            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            single = make_batches(args.single, 1, first_id=10**9)
            lat = []
            for b in single:
                body = orjson.dumps(b[0])
                t0 = time.perf_counter()
                post(conn, "/qdash/api/tick", body)
                lat.append(time.perf_counter() - t0)
            conn.close()
            p50, p99 = np.percentile(np.array(lat) * 1000, [50, 99])
            print(f"single-tick POST /qdash/api/tick (committed, synchronous=FULL), "
                  f"{args.single} sequential: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"ratio vs direct Store.write_ticks: {rate / ref_rate:.2f}x; end to end "
          f"{rate:,.0f} ticks/s (target >= 100,000 ticks/s)")
    print("RESULT " + json.dumps({"ticks": args.ticks, "stored": stored, "ticks_per_s": rate,
                                  "direct_per_s": ref_rate, "p50_ms": p50, "p99_ms": p99,
                                  "ratio": rate / ref_rate}))


if __name__ == "__main__":
    os.environ.pop("QDASH_TOKEN", None)
    main()
