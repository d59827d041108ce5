"""Cost of keeping a local order book and of pricing slippage from recorded books.

1. :class:`~qdash.binance.book.LocalOrderBook` takes a REST snapshot and then a stream of
   diff events made by the simulator's book (:class:`~qdash.sim.orderbook.SyntheticBook`, 1,000
   levels a side, its price walking, refreshed every 100 ms as ``@depth@100ms`` is), checking the
   ``pu`` chain of every event; the reference, in the same run, applies the same level updates
   to two plain dicts with no check at all (the floor of any book). The book must end equal to
   the simulator's (``equal``). Binance sends one ``@depth@100ms`` event per symbol every 100
   ms: 10 events/s.
2. :class:`~qdash.analytics.liquidity.DepthSlippage` walks recorded top-20 snapshots for a
   notional, all at once (numpy); the reference walks them one by one with
   :func:`~qdash.analytics.liquidity.walk_book` (the same function a monitor calls live).

Ratios: time per event of the book / of the bare dicts; time per snapshot of the vectorised walk
/ of the per-snapshot walk. The last line is ``RESULT {json}``.

Run: python bench/bench_depth.py [--quick]   (--quick: 1,000 events and 5,000 snapshots
instead of 20,000 and 200,000)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from qdash.analytics.liquidity import BUY, SELL, DepthSlippage, walk_book
from qdash.binance.book import APPLIED, LocalOrderBook
from qdash.binance.schema import DepthSnapshot, DepthUpdate
from qdash.model import DEPTH_LEVELS, depth_frame, depth_levels
from qdash.sim.orderbook import SyntheticBook

TICK, STEP = 0.1, 0.001
N_EVENTS, N_EVENTS_QUICK = 20_000, 1_000
N_SNAPS, N_SNAPS_QUICK = 200_000, 5_000
REF_WALKS = 2_000  # snapshots the one-by-one reference walks (its time is per snapshot)
NOTIONAL = 50_000.0


def levels(pairs) -> list:
    return [(t * TICK, q * STEP) for t, q in pairs]


def stream(n: int) -> tuple[DepthSnapshot, list[DepthUpdate], SyntheticBook]:
    """A snapshot of the simulator's book and the next ``n`` diff events it publishes."""
    book = SyntheticBook(1, "BTCUSDT", unit_steps=500)
    rng = np.random.default_rng(3)
    bid, t = 600_000, 1_700_000_000_000
    book.refresh(bid, t)
    bids, asks = book.top(book.levels)
    snap = DepthSnapshot(book.update_id, t, levels(bids), levels(asks))
    events, prev = [], book.update_id
    while len(events) < n:
        t += 100
        bid += int(rng.integers(-2, 3))
        if not book.refresh(bid, t):
            continue
        b, a = book.diff(prev)
        events.append(DepthUpdate("BTCUSDT", t, prev + 1, book.update_id, prev, levels(b),
                                  levels(a)))
        book.forget(prev)
        prev = book.update_id
    return snap, events, book


def bench_book(n: int) -> dict:
    snap, events, sim_book = stream(n)
    changes = sum(len(e.bids) + len(e.asks) for e in events)

    def ours() -> LocalOrderBook:
        b = LocalOrderBook("BTCUSDT")
        b.on_snapshot(snap)
        for e in events:
            if b.on_event(e) != APPLIED:
                raise AssertionError("the stream broke its pu chain")
        return b

    def reference() -> tuple[dict, dict]:
        bids, asks = dict(snap.bids), dict(snap.asks)
        for e in events:
            for side, lv in ((bids, e.bids), (asks, e.asks)):
                for p, q in lv:
                    if q > 0:
                        side[p] = q
                    else:
                        side.pop(p, None)
        return bids, asks

    best_ours = best_ref = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        book = ours()
        best_ours = min(best_ours, time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref = reference()
        best_ref = min(best_ref, time.perf_counter() - t0)
    sb, sa = sim_book.top(sim_book.levels)
    equal = (book.bids, book.asks) == ref and book.bids == dict(levels(sb)) and \
        book.asks == dict(levels(sa))
    return {"events": n, "level_changes": changes, "book_us": best_ours / n * 1e6,
            "book_ref_us": best_ref / n * 1e6, "book_ratio": best_ours / best_ref,
            "equal": bool(equal)}


def snapshots(n: int):
    rng = np.random.default_rng(5)
    k = np.arange(DEPTH_LEVELS)
    mid = 60_000 + np.cumsum(rng.normal(0, 5, n))
    half = rng.uniform(0.05, 2.0, n)
    lv = np.empty((n, 2, 2, DEPTH_LEVELS))
    lv[:, 0, 0] = mid[:, None] - half[:, None] - 0.1 * k
    lv[:, 1, 0] = mid[:, None] + half[:, None] + 0.1 * k
    lv[:, :, 1] = rng.lognormal(-1.0, 1.0, (n, 2, DEPTH_LEVELS))
    return depth_frame(np.arange(n) * 1_000, np.arange(n), lv)


def bench_walk(n: int) -> dict:
    frame = snapshots(n)
    t0 = time.perf_counter()
    model = DepthSlippage({"BTCUSDT": frame}, NOTIONAL)
    ours = time.perf_counter() - t0
    lv = depth_levels(frame)
    m = min(n, REF_WALKS)
    t0 = time.perf_counter()
    ref = [(walk_book(lv[i, 0].T, lv[i, 1].T, NOTIONAL, BUY).slippage_bps
            + walk_book(lv[i, 0].T, lv[i, 1].T, NOTIONAL, SELL).slippage_bps) / 2
           for i in range(m)]
    per_ref = (time.perf_counter() - t0) / m
    got = model.bps("BTCUSDT", frame["ts"].to_numpy()[:m])
    np.testing.assert_allclose(got, ref, rtol=1e-12)  # the same walk, vectorised
    return {"snapshots": n, "walk_us": ours / n * 1e6, "walk_ref_us": per_ref * 1e6,
            "walk_ratio": (ours / n) / per_ref}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    book = bench_book(N_EVENTS_QUICK if args.quick else N_EVENTS)
    walk = bench_walk(N_SNAPS_QUICK if args.quick else N_SNAPS)
    print(f"local book: {book['events']:,} diff events ({book['level_changes']:,} level "
          f"changes) in {book['book_us']:.1f} µs/event, {1e6 / book['book_us']:,.0f} events/s "
          f"(Binance sends 10/s per symbol); equal to the simulator's book: {book['equal']}")
    print(f"reference, bare dict updates: {book['book_ref_us']:.1f} µs/event; "
          f"ratio {book['book_ratio']:.2f}x the time")
    print(f"depth walk: {walk['snapshots']:,} snapshots in {walk['walk_us']:.2f} µs each "
          f"(buy and sell, {NOTIONAL:,.0f} USDT); one by one with walk_book: "
          f"{walk['walk_ref_us']:.1f} µs each; ratio {walk['walk_ratio']:.4f}x the time")
    print("RESULT " + json.dumps(book | walk))


if __name__ == "__main__":
    main()
