"""Recording live ticks into the Store (the ``qdash record`` command is :mod:`qdash.cli.record`).

:class:`Recorder` drains a feed subscription whole at every wake-up and writes it with one
``Store.write_ticks`` call in a worker thread (``asyncio.to_thread``), so SQLite never blocks the
event loop and writes never fall behind by more than one batch per commit. On ``stop()`` it
writes everything still buffered: what the feed received is stored.

Order books: when the feed keeps them (``feed.depth``), every snapshot it records (top 20
levels, every ``QDASH_DEPTH_INTERVAL`` seconds) is written with ``Store.write_depth`` in a worker
thread too (counters ``depth_stored``, ``depth_failed``).

Restart without holes: a Recorder created before its feed starts resumes each symbol after its
last stored trade of the feed's source (:func:`stored_positions`, :meth:`BinanceFutures.resume`):
the outage — a crash, a ``kill -9``, a reboot — is backfilled over REST while the stream's ticks
wait, up to the feed's ``resume_horizon``; an older last trade is reported and left alone.
"""

from __future__ import annotations

import asyncio
import logging

import pandas as pd

from ..errors import StoreError
from ..model import source_venue
from ..store import Store
from .base import TickFeed

log = logging.getLogger(__name__)

RECORDER_MAXSIZE = 50_000_000  # ticks buffered before the recorder must drop (it logs an error)


class Recorder:
    """Writes every tick batch of ``feed`` into ``store``, off the loop, in arrival order.

    Counters: ``received`` (ticks taken from the feed), ``stored`` (new rows), ``duplicates``
    (rows already in the store), ``writes`` (transactions), ``failed`` (ticks a write could not
    store after retries; logged as errors). With ``resume`` (default) and a feed that can resume
    (``feed.resumable``) and has not started, the feed continues after the stored trades
    (``resumed_from``: symbol → (trade id, ts ms)).
    """

    def __init__(self, feed: TickFeed, store: Store, *, retries: int = 3, resume: bool = True):
        self.feed, self.store, self.retries = feed, store, retries
        self.sub = feed.batches(RECORDER_MAXSIZE)
        self.sub.name = "recorder"
        self.received = self.stored = self.duplicates = self.writes = self.failed = 0
        self.resumed_from: dict[str, tuple[int, int]] = {}
        self._task: asyncio.Task | None = None
        self.depth_stored = self.depth_failed = 0
        self._depth_writes: set[asyncio.Task] = set()
        if feed.depth is not None:
            feed.depth.on_snapshots = self._on_depth
        if resume and feed.resumable and not feed.running:
            self.resumed_from = feed.resume(stored_positions(store, feed.symbols, feed.source))

    def start(self) -> Recorder:
        """Start writing on the running loop; returns at once."""
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def _run(self) -> None:
        while await self.sub.wait():
            batch = self.sub.drain()
            if batch is None:
                continue
            self.received += len(batch)
            for attempt in range(self.retries + 1):
                try:
                    res = await asyncio.to_thread(self.store.write_ticks, batch)
                except StoreError as e:
                    if attempt == self.retries:
                        self.failed += len(batch)
                        log.error("recorder: %d ticks could not be stored: %s", len(batch), e)
                    else:
                        await asyncio.sleep(0.5 * (attempt + 1))
                    continue
                self.stored += res.stored
                self.duplicates += res.duplicates
                self.writes += 1
                break

    def _on_depth(self, symbol: str, frame: pd.DataFrame) -> None:
        task = asyncio.get_running_loop().create_task(self._write_depth(symbol, frame))
        self._depth_writes.add(task)
        task.add_done_callback(self._depth_writes.discard)

    async def _write_depth(self, symbol: str, frame: pd.DataFrame) -> None:
        try:
            res = await asyncio.to_thread(self.store.write_depth, symbol, frame,
                                          venue=source_venue(self.feed.source))
        except StoreError as e:
            self.depth_failed += len(frame)
            log.error("recorder: %d depth snapshots of %s could not be stored: %s", len(frame),
                      symbol, e)
            return
        self.depth_stored += res.stored

    @property
    def dropped(self) -> int:
        """Ticks the recorder's buffer had to drop (0 unless the disk cannot keep up)."""
        return self.sub.dropped_ticks

    async def stop(self) -> None:
        """Write everything buffered, then end (stop the feed first to include its last ticks)."""
        self.feed.unsubscribe_batches(self.sub)
        if self.feed.depth is not None and self.feed.depth.on_snapshots == self._on_depth:
            self.feed.depth.on_snapshots = None
        if self._task is not None:
            await self._task
            self._task = None
        if self._depth_writes:
            await asyncio.gather(*self._depth_writes, return_exceptions=True)


def stored_positions(store: Store, symbols, source: str) -> dict[str, tuple[int, int]]:
    """The last stored exchange trade ``(trade_id, ts ms)`` of each symbol among ticks whose
    source is ``source`` or ``source:...`` (its REST backfills); symbols without one are absent
    (see :meth:`Store.last_trade <qdash.store.ticks.TickTable.last_trade>`)."""
    out = {}
    for sym in symbols:
        if (last := store.last_trade(sym, source)) is not None:
            out[sym] = last
    return out

