"""Depth in qdash's own feed, end to end on loopback against the simulated exchange: the local
books rebuilt from ``@depth@100ms`` and a REST snapshot equal the exchange's REST depth at the
same update id; an injected gap in ``pu`` (the ``depth_gap`` fault) makes the book resync; the
feed records top-20 snapshots that the store reads back."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from qdash.binance.rest import RestClient
from qdash.feeds.binance import BinanceFutures
from qdash.feeds.depth import DepthBooks
from qdash.feeds.record import Recorder
from qdash.model import DEPTH_LEVELS, depth_levels
from qdash.sim.exchange import SimExchange
from qdash.store import Store

pytestmark = pytest.mark.integration

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


async def _until(cond, timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.05)


def _applied_after(books: DepthBooks, n: int) -> bool:
    return all(b.synced and b.applied >= n for b in books.books.values())


async def _assert_equals_rest(sim: SimExchange, books: DepthBooks) -> None:
    """For every book: pause the exchange (its book stops moving), let the last events arrive,
    take ``/fapi/v1/depth?limit=1000``; when its ``lastUpdateId`` is the book's last ``u`` (the
    exchange may have moved its book after its last depth event), the two must be equal level
    for level. Tried until each symbol was compared once."""
    todo = set(books.books)
    for _ in range(30):
        sim.pause()
        try:
            before = None
            while before != (now := {s: b.last_update_id for s, b in books.books.items()}):
                before = now
                await asyncio.sleep(0.3)
            for symbol in list(todo):
                book, rest = books.books[symbol], sim.depth(symbol, 1000)
                if rest["lastUpdateId"] != book.last_update_id:
                    continue
                bids, asks = book.top(1000)
                assert len(bids) == len(rest["bids"]) == 1000 and len(book.bids) == 1000
                np.testing.assert_array_equal(bids, np.array(rest["bids"], dtype=float))
                np.testing.assert_array_equal(asks, np.array(rest["asks"], dtype=float))
                todo.discard(symbol)
        finally:
            sim.resume()
        if not todo:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"no REST depth at the books' update ids for {sorted(todo)}")


def test_local_books_equal_rest_depth_and_a_pu_gap_resyncs():
    async def main():
        async with SimExchange(SYMBOLS, rate=100, seed=11, weight_limit=100_000) as sim:
            rest = RestClient(sim.rest_url)
            books = DepthBooks(SYMBOLS, ws_url=sim.ws_url, rest=rest).start()
            try:
                await _until(lambda: _applied_after(books, 5), 20, "synced books")
                assert books.stats()["resyncs"] == 0
                await _assert_equals_rest(sim, books)

                applied = {s: b.applied for s, b in books.books.items()}
                sim.depth_gap()
                await _until(lambda: all(b.resyncs == 1 for b in books.books.values()), 10,
                             "a resync per book")
                await _until(lambda: all(b.synced and b.applied > applied[s] + 3
                                         for s, b in books.books.items()), 20, "synced again")
                st = books.stats()
                assert st["resyncs"] == 2 and st["synced"] == 2 and st["snapshots"] >= 4
                assert st["symbols"]["BTCUSDT"]["resyncs"] == 1
                await _assert_equals_rest(sim, books)
            finally:
                await books.stop()
                rest.close()
    asyncio.run(main())


def test_feed_records_depth_snapshots_the_store_reloads(tmp_path):
    """BinanceFutures(depth=True) and the Recorder: depth counters in the feed's stats; the
    top-20 snapshots of synced books go to the store and read back unchanged."""
    async def main():
        store = Store(tmp_path / "d.db")
        async with SimExchange(SYMBOLS, rate=100, seed=12, weight_limit=100_000) as sim:
            feed = BinanceFutures(SYMBOLS, ws_url=sim.ws_url, rest_url=sim.rest_url,
                                  source="sim", depth=True, depth_record_every=0.2)
            rec = Recorder(feed, store, resume=False)
            feed.start()
            rec.start()
            try:
                await _until(lambda: rec.depth_stored >= 6, 30, "recorded snapshots")
                live = feed.depth.snapshot_frame("BTCUSDT")
                st = feed.stats()["depth"]
            finally:
                await feed.stop()
                await rec.stop()
            assert st["synced"] == 2 and st["resyncs"] == 0 and st["recorded"] >= 6
            assert rec.depth_failed == 0 and rec.stored > 0
            assert store.connection().execute(
                "SELECT value FROM store_meta WHERE name = 'venue'").fetchone() is not None
            back = store.depth("BTCUSDT")
            lv = depth_levels(back)
            assert (np.diff(back["update_id"].to_numpy()) >= 0).all()
            assert (lv[:, 0, 0, 0] < lv[:, 1, 0, 0]).all()  # best bid < best ask
            assert (np.diff(lv[:, 0, 0, :], axis=1) < 0).all()  # bids descending, 20 levels
            assert lv.shape[1:] == (2, 2, DEPTH_LEVELS)
            assert live is not None and live["update_id"].iloc[0] >= back["update_id"].iloc[-1]
        store.close()
    asyncio.run(main())
