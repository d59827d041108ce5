"""Orders on the simulated exchange: the matching engine's rate in process, and signed order
round trips over HTTP.

* Matching: market orders of 1 to 4 levels' size, BUY and SELL in turn, against a synthetic book
  of 1,000 levels a side (:class:`qdash.sim.matching.Matcher`, taken liquidity remembered),
  each fill booked to a position with its fee (target >= 20,000 orders/s). The reference,
  measured in the same run, is the plain way: materialise the side's 1,000 levels as a list per
  order and walk it (same fills: checked).
* HTTP: signed ``POST /fapi/v1/order`` MARKET orders on one keep-alive connection to a running
  simulator (``SimExchange`` in its own process), against ``GET /fapi/v1/ping`` on the same
  connection as the reference (the REST floor).

The last line is ``RESULT {json}`` of the figures.

Run: python bench/bench_orders.py [--quick]   (--quick: 3,000 matched orders, 100 round trips)
"""

import argparse
import asyncio
import http.client
import json
import multiprocessing
import time
import urllib.parse

import numpy as np

from qdash.binance.signing import signature
from qdash.sim.exchange import SimExchange
from qdash.sim.margin import Position
from qdash.sim.matching import ASK, BID, Matcher
from qdash.sim.orderbook import EPOCH_MS, LEVELS, SyntheticBook

N, N_QUICK = 100_000, 3_000
HTTP, HTTP_QUICK = 2_000, 100
TICK, STEP = 0.1, 0.001
GAP_MS = 1_000  # exchange time between two orders: taken liquidity refills meanwhile


def orders(n: int) -> np.ndarray:
    """Order sizes in lot steps: 1 to 4 typical levels (the book's unit is 80 lots)."""
    return np.random.default_rng(0).integers(20, 320, n)


def book() -> SyntheticBook:
    b = SyntheticBook(0, "BTCUSDT", 80, LEVELS)
    b.refresh(640_000, 1_790_000_000_000)
    return b


def ours(sizes: np.ndarray) -> tuple[float, int]:
    """Matcher + position + fee per order; returns (seconds, lots filled)."""
    b = book()
    m, pos = Matcher(b.unit), Position("BTCUSDT")
    t, wallet, filled = 1_790_000_000_000, 0.0, 0
    start = time.perf_counter()
    for i, lots in enumerate(sizes.tolist()):
        buy = i % 2 == 0
        sign = 1.0 if buy else -1.0
        for tick, q in m.walk(b, buy, lots, t + i * GAP_MS):
            price, qty = tick * TICK, q * STEP
            wallet += pos.fill(sign * qty, price) - price * qty * 0.0005
            filled += q
    return time.perf_counter() - start, filled


def reference(sizes: np.ndarray) -> tuple[float, int]:
    """The plain matcher: the side's levels as a list each order, a dict of what was taken
    (refilling as the engine's does)."""
    b, pos = book(), Position("BTCUSDT")
    refill = b.unit / EPOCH_MS
    taken: dict[tuple[int, int], tuple[float, int]] = {}
    t0, wallet, filled = 1_790_000_000_000, 0.0, 0
    start = time.perf_counter()
    for i, lots in enumerate(sizes.tolist()):
        buy, t = i % 2 == 0, t0 + i * GAP_MS
        bids, asks = b.top(LEVELS)
        side, levels = (ASK, asks) if buy else (BID, bids)
        left = lots
        for tick, q in levels:
            gone, when = taken.get((side, tick), (0.0, t))
            missing = max(0.0, gone - refill * (t - when))
            avail = max(0, int(q - missing))
            if avail <= 0:
                continue
            got = min(avail, left)
            taken[(side, tick)] = (missing + got, t)
            price, qty = tick * TICK, got * STEP
            wallet += pos.fill((1.0 if buy else -1.0) * qty, price) - price * qty * 0.0005
            filled += got
            left -= got
            if not left:
                break
    return time.perf_counter() - start, filled


def _serve(ports: multiprocessing.Queue, stop: multiprocessing.Event) -> None:
    """A simulator in its own process (as a client meets it: no shared interpreter lock)."""
    async def run():
        sim = SimExchange(["BTCUSDT"], rate=20, seed=1, weight_limit=10_000_000, warmup_s=0,
                          accounts=[("benchkey01", "benchsecret", 1e9)],
                          order_limits=((10**9, 10_000), (10**9, 60_000)))
        await sim.start()
        ports.put(sim.port)
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await sim.stop()
    asyncio.run(run())


def http_round_trips(n: int) -> dict:
    """Signed market orders and pings per second over one keep-alive connection."""
    ports, stop = multiprocessing.Queue(), multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(ports, stop), daemon=True)
    server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", ports.get(timeout=120), timeout=30)
        start = time.perf_counter()
        for _ in range(n):
            conn.request("GET", "/fapi/v1/ping")
            assert conn.getresponse().read() == b"{}"
        ping_s = time.perf_counter() - start
        statuses = []
        start = time.perf_counter()
        for i in range(n):
            q = urllib.parse.urlencode({"symbol": "BTCUSDT", "side": "BUY" if i % 2 else "SELL",
                                        "type": "MARKET", "quantity": "0.010",
                                        "newOrderRespType": "RESULT",
                                        "timestamp": int(time.time() * 1000)})
            q += "&signature=" + signature(q, "benchsecret")
            conn.request("POST", f"/fapi/v1/order?{q}", headers={"X-MBX-APIKEY": "benchkey01"})
            statuses.append(json.loads(conn.getresponse().read()).get("status"))
        order_s = time.perf_counter() - start
    finally:
        stop.set()
        server.join(30)
    return {"orders": n, "filled": statuses.count("FILLED"), "order_rt_per_s": n / order_s,
            "ping_rt_per_s": n / ping_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sizes = orders(N_QUICK if args.quick else N)
    t_ours, f_ours = ours(sizes)
    t_ref, f_ref = reference(sizes)
    assert f_ours == f_ref == int(sizes.sum()), (f_ours, f_ref)
    rate, ref_rate = len(sizes) / t_ours, len(sizes) / t_ref
    print(f"matching: {len(sizes):,} market orders on a {LEVELS}-level book: "
          f"{rate:,.0f} orders/s (target >= 20,000); plain list walk {ref_rate:,.0f} orders/s; "
          f"ratio {rate / ref_rate:.1f}x")
    h = http_round_trips(HTTP_QUICK if args.quick else HTTP)
    print(f"http: {h['orders']:,} signed market orders, {h['order_rt_per_s']:,.0f} round "
          f"trips/s ({h['filled']} filled); ping {h['ping_rt_per_s']:,.0f}/s; ratio "
          f"{h['order_rt_per_s'] / h['ping_rt_per_s']:.2f} of the REST floor")
    print("RESULT " + json.dumps({"orders": len(sizes), "lots": f_ours,
                                  "orders_per_s": rate, "reference_orders_per_s": ref_rate,
                                  "ratio": rate / ref_rate} | {f"http_{k}": v
                                                               for k, v in h.items()}))


if __name__ == "__main__":
    main()
