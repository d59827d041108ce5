"""``DepthBooks``: local order books of the watched symbols, live, by Binance's rules.

One connection (:class:`~qdash.feeds.connection.ConnectionLoop`, reconnects and the watchdog
included) carries ``<symbol>@depth@<speed>`` for every symbol on the **/public** route, as
combined streams. Each symbol's :class:`~qdash.binance.book.LocalOrderBook` buffers its
events; the first buffered event starts a REST snapshot (``/fapi/v1/depth?limit=1000``, through
the feed's one :class:`~qdash.binance.rest.RestClient`, so its weight counts with the rest);
a stale snapshot is fetched again; a gap in ``pu`` clears the book and resyncs it the same way
(counted per symbol, :meth:`DepthBooks.stats`). A new connection restarts every book from a
snapshot (not counted as a gap: the stream restarted).

Every ``record_every`` seconds the top :data:`~qdash.model.DEPTH_LEVELS` levels of each synced
book go to ``on_snapshots(symbol, frame)`` (a frame of :data:`~qdash.model.DEPTH_COLUMNS`, one
row; ``ts`` is the exchange time of the book's last update), e.g. the store's
:meth:`~qdash.store.Store.write_depth`.

Used by :class:`~qdash.feeds.binance.BinanceFutures` (``depth=True``); runs on the kernel's loop.
The book's rules are :mod:`qdash.binance.book`; this module owns the policy (when to fetch, how
often to retry, what to record).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from functools import partial

import pandas as pd
from websockets.asyncio.client import connect

from ..binance.book import GAP, STALE, LocalOrderBook
from ..binance.limits import DEPTH_SNAPSHOT_LIMIT, DEPTH_SPEEDS, STREAM_ROUTES
from ..binance.pages import query_depth
from ..binance.rest import RestClient, RestError
from ..binance.schema import depth_snapshot, depth_update
from ..model import DEPTH_LEVELS, depth_frame, normalize_symbol
from ..periodic import PeriodicTask
from .connection import ConnectionLoop

log = logging.getLogger(__name__)

SNAPSHOT_RETRY_S = 0.5  # wait before fetching another snapshot (stale one, or a failure)
MAX_SNAPSHOT_TRIES = 20


class DepthBooks:
    """Local books of ``symbols`` from ``ws_url`` (a base such as ``wss://fstream.binance.com``
    or the simulator's) and ``rest`` (see the module docstring). ``speed``: the diff stream's
    update speed (``100ms``, ``250ms``, ``500ms``); ``record_every``: seconds between recorded
    top-of-book snapshots (None: none recorded)."""

    def __init__(self, symbols, *, ws_url: str, rest: RestClient, speed: str = "100ms",
                 snapshot_limit: int = DEPTH_SNAPSHOT_LIMIT, record_every: float | None = None,
                 on_snapshots: Callable[[str, pd.DataFrame], object] | None = None,
                 stale_timeout: float = 30.0, open_timeout: float = 10.0,
                 name: str = "depth"):
        if speed not in DEPTH_SPEEDS:
            raise ValueError(f"depth speed must be one of {DEPTH_SPEEDS}, got {speed!r}")
        self.ws_url = ws_url.rstrip("/")
        self.rest, self.speed, self.snapshot_limit = rest, speed, snapshot_limit
        self.on_snapshots, self.name = on_snapshots, name
        self.books: dict[str, LocalOrderBook] = {}
        for s in symbols:
            self.add(s)
        self.counters: collections.Counter = collections.Counter()
        self._snapshots: dict[str, asyncio.Task] = {}
        self._task: asyncio.Task | None = None
        self._running = False
        self.conn = ConnectionLoop(
            f"{name} connection", self.url, self._on_frame,
            keep_going=lambda: self._running and bool(self.books),
            connect=partial(connect, open_timeout=open_timeout, close_timeout=2,
                            max_size=1 << 22, max_queue=4096, ping_interval=20, ping_timeout=20),
            on_open=self._on_open, stale_timeout=stale_timeout,
            watch_every=min(1.0, stale_timeout / 4))
        self._recorder = None if record_every is None else PeriodicTask(
            self.record, record_every, name=f"{name} recorder", delay_first=True)

    # --- symbols ---------------------------------------------------------------------------
    def stream_name(self, symbol: str) -> str:
        """The diff depth stream of ``symbol`` (``btcusdt@depth@100ms``)."""
        return f"{symbol.lower()}@depth@{self.speed}"

    def add(self, symbol: str) -> None:
        """Keep a book of ``symbol`` (the next connection carries its stream)."""
        symbol = normalize_symbol(symbol)
        self.books.setdefault(symbol, LocalOrderBook(symbol))

    def set_symbols(self, symbols) -> None:
        """Keep books of exactly ``symbols``; reconnects when the set changed."""
        want = [normalize_symbol(s) for s in symbols]
        if set(want) == set(self.books):
            return
        for s in [s for s in self.books if s not in want]:
            del self.books[s]
            task = self._snapshots.pop(s, None)
            if task is not None:
                task.cancel()
        for s in want:
            self.add(s)
        if self._running:
            self.conn.close("requested: symbols changed")
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self.conn.run())

    def url(self) -> str:
        """The combined-stream URL on the **/public** route (depth lives there), whatever
        route the feed's base URL names."""
        base = self.ws_url.removesuffix("/market").removesuffix("/public")
        streams = "/".join(self.stream_name(s) for s in self.books)
        return f"{base}/{STREAM_ROUTES['depth']}/stream?streams={streams}"

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> DepthBooks:
        """Start on the running loop (returns at once)."""
        if not self._running:
            self._running = True
            self._task = asyncio.get_running_loop().create_task(self.conn.run())
            if self._recorder is not None:
                self._recorder.start()
        return self

    async def stop(self) -> None:
        """Stop the connection, the snapshots in flight and the recorder."""
        self._running = False
        if self._recorder is not None:
            await self._recorder.wait_stopped()
        tasks = list(self._snapshots.values()) + ([self._task] if self._task else [])
        self._snapshots.clear()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- frames ----------------------------------------------------------------------------
    def _on_open(self, ws) -> None:
        for task in self._snapshots.values():  # a snapshot for the old stream's buffer
            task.cancel()
        self._snapshots.clear()
        for book in self.books.values():
            book.reset()
        self.counters["connections"] += 1

    def _on_frame(self, msg) -> None:
        self.counters["messages"] += 1
        try:
            ev = depth_update(msg)
        except (ValueError, KeyError, TypeError):
            self.counters["malformed"] += 1
            return
        if ev is None:
            self.counters["other_frames"] += 1
            return
        book = self.books.get(ev.symbol)
        if book is None:
            return
        if book.on_event(ev) == GAP:
            log.info("%s: %s depth gap (pu %d, book at %s): resync from a snapshot", self.name,
                     ev.symbol, ev.prev_id, ev.first_id)
        if book.needs_snapshot and ev.symbol not in self._snapshots:
            self._snapshots[ev.symbol] = asyncio.get_running_loop().create_task(
                self._sync(book))

    async def _sync(self, book: LocalOrderBook) -> None:
        """Fetch snapshots until ``book`` is synced (a stale one or a failure: wait, again)."""
        try:
            for attempt in range(MAX_SNAPSHOT_TRIES):
                if attempt:
                    await asyncio.sleep(SNAPSHOT_RETRY_S)
                try:
                    body = await self.rest.aget(*query_depth(book.symbol, self.snapshot_limit))
                except (RestError, OSError) as e:
                    self.counters["snapshot_errors"] += 1
                    log.warning("%s: %s depth snapshot failed: %s", self.name, book.symbol, e)
                    continue
                self.counters["snapshots"] += 1
                if book.on_snapshot(depth_snapshot(body)) not in (STALE, GAP):
                    return
            log.error("%s: %s: no usable depth snapshot in %d tries", self.name, book.symbol,
                      MAX_SNAPSHOT_TRIES)
        finally:
            if self._snapshots.get(book.symbol) is asyncio.current_task():
                del self._snapshots[book.symbol]

    # --- recording and counters ------------------------------------------------------------
    def snapshot_frame(self, symbol: str, levels: int = DEPTH_LEVELS) -> pd.DataFrame | None:
        """The top ``levels`` of ``symbol``'s book now as a one-row depth frame (None while
        the book is not synced)."""
        book = self.books.get(symbol)
        if book is None or not book.synced:
            return None
        return depth_frame([book.event_ms], [book.last_update_id], book.top_levels(levels))

    def record(self) -> None:
        """Hand the top of every synced book to ``on_snapshots``."""
        for symbol in list(self.books):
            frame = self.snapshot_frame(symbol)
            if frame is None or self.on_snapshots is None:
                continue
            self.counters["recorded"] += 1
            self.on_snapshots(symbol, frame)

    def stats(self) -> dict:
        """Totals (resyncs, snapshots fetched, recorded) and each symbol's book counters."""
        per = {s: b.stats() for s, b in self.books.items()}
        return {"resyncs": sum(p["resyncs"] for p in per.values()),
                "synced": sum(p["synced"] for p in per.values()),
                "snapshots": self.counters["snapshots"],
                "snapshot_errors": self.counters["snapshot_errors"],
                "recorded": self.counters["recorded"], "symbols": per}
