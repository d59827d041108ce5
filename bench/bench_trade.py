"""The paper trader beside a live session: from a closed bar to both legs' orders acknowledged
by the simulator, and the kernel's CPU while it trades one pair of a 2,000 trades/s market.

The simulator runs in its own process (as an exchange would: no shared interpreter lock) with
a paper account; this process is the kernel: the Binance feed, a
:class:`~qdash.live.LiveSession` on 1 s bars and a :class:`~qdash.trade.PaperTrader` with low
entry levels so that it trades every few bars. The latency of a decision is measured from the
moment the session took the bar to the moment both orders' REST answers are in (target p95
<= 20 ms). The reference, measured in the same run against the same simulator: two signed
market orders of the trader's sizes sent at once by the same account client, without the
trader (the REST floor), while the feed still runs.
CPU: this process's CPU seconds per wall second while trading (1.0 = one core).

The last line is ``RESULT {json}`` of the figures.

Run: python bench/bench_trade.py [--quick]   (--quick: 20 s instead of 60 s)
"""

import argparse
import asyncio
import json
import multiprocessing
import time

import numpy as np

from qdash.analytics import PairConfig
from qdash.feeds.binance import BinanceFutures
from qdash.live import LiveSession
from qdash.sim.exchange import SimExchange
from qdash.trade import PaperTrader
from qdash.trade.account import Account

KEY, SECRET = "benchtradekey0123456789", "benchtradesecret0123456789abcdef"
Y, X = "ETHUSDT", "BTCUSDT"
RATE = 2_000.0
REFERENCE_PAIRS = 30


def _serve(ports: multiprocessing.Queue, stop: multiprocessing.Event) -> None:
    async def run():
        sim = SimExchange([Y, X], rate=RATE, seed=7, weight_limit=10_000_000, warmup_s=0,
                          accounts=[(KEY, SECRET, 1e9)],
                          order_limits=((10**9, 10_000), (10**9, 60_000)))
        await sim.start()
        ports.put((sim.rest_url, sim.ws_url))
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await sim.stop()
    asyncio.run(run())


async def reference(rest: str, ws: str, qty: dict[str, str]) -> list[float]:
    """Two signed market orders of the trader's sizes (``qty``) at once, by the account client
    alone (ms each pair)."""
    acc = Account(rest, ws, KEY, SECRET)
    await acc.warm()
    out = []
    try:
        for i in range(REFERENCE_PAIRS):
            side = "BUY" if i % 2 else "SELL"
            t0 = time.perf_counter()
            await asyncio.gather(*(acc.new_order({"symbol": s, "side": side, "type": "MARKET",
                                                  "quantity": q, "newOrderRespType": "RESULT"})
                                   for s, q in qty.items()))
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        acc.close()
    return out


async def trade(rest: str, ws: str, seconds: float) -> dict:
    feed = BinanceFutures([Y, X], ws_url=ws, rest_url=rest, flush_interval=0.02)
    session = LiveSession(feed, y=Y, x=X, timeframe="1s", bootstrap=False,
                          refresh_every_s=3600.0,
                          pair_config=PairConfig(beta_window=5, z_window=5, corr_window=5,
                                                 window=2_000, history=2_000, beta_band=None))
    trader = PaperTrader(Y, X, entry=0.5, exit=0.0, capital=20_000, rest_url=rest, ws_url=ws,
                         api_key=KEY, api_secret=SECRET).attach(session)
    await trader.start()
    session.start()
    await asyncio.sleep(2.0)                     # connections open, first bars
    cpu0, wall0, ticks0 = time.process_time(), time.perf_counter(), sum(session.ticks.values())
    await asyncio.sleep(seconds)
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    ticks = (sum(session.ticks.values()) - ticks0) / (time.perf_counter() - wall0)
    trader.disarm()
    while trader.busy:
        await asyncio.sleep(0.01)
    sizes = next((r for r in trader.leggings if r.get("filled_y")), None)
    qty = ({Y: f"{abs(sizes['filled_y']):.3f}", X: f"{abs(sizes['filled_x']):.3f}"} if sizes
           else {Y: "0.050", X: "0.002"})
    ref = await reference(rest, ws, qty)         # the floor: the same orders, the same load
    await trader.flatten()
    await session.stop()
    await trader.stop()
    return {"latencies": trader.latencies_ms, "cpu": cpu, "ticks_per_s": ticks, "ref": ref,
            "leggings": len(trader.leggings), "bars": session.state.bars,
            "errors": trader.errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 s of trading instead of 60 s")
    args = ap.parse_args()
    seconds = 18.0 if args.quick else 60.0
    ports, stop = multiprocessing.Queue(), multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(ports, stop), daemon=True)
    server.start()
    try:
        rest, ws = ports.get(timeout=120)
        got = asyncio.run(trade(rest, ws, seconds))
        ref = got["ref"]
    finally:
        stop.set()
        server.join(10)
    lat = np.array(got["latencies"]) if got["latencies"] else np.array([np.nan])
    p50, p95 = float(np.percentile(lat, 50)), float(np.percentile(lat, 95))
    r50, r95 = float(np.percentile(ref, 50)), float(np.percentile(ref, 95))
    print(f"market: {got['ticks_per_s']:,.0f} trades/s received of {RATE:,.0f}; "
          f"{got['bars']} bars, {got['leggings']} entries/exits")
    print(f"closed bar -> both orders acknowledged: p50 {p50:.1f} ms, p95 {p95:.1f} ms over "
          f"{len(got['latencies'])} decisions (target p95 <= 20 ms)")
    print(f"reference, two orders at once without the trader: p50 {r50:.1f} ms, p95 "
          f"{r95:.1f} ms; ratio p95 {p95 / r95:.2f}x")
    print(f"kernel CPU while trading: {got['cpu']:.0%} of one core")
    if got["errors"]:
        print("errors:", *got["errors"], sep="\n  ")
    print("RESULT " + json.dumps({
        "decisions": len(got["latencies"]), "p50_ms": p50, "p95_ms": p95,
        "reference_p50_ms": r50, "reference_p95_ms": r95, "ratio_p95": p95 / r95,
        "kernel_cpu": got["cpu"], "ticks_per_s": got["ticks_per_s"],
        "target_met": bool(p95 <= 20.0)}))


if __name__ == "__main__":
    main()
