"""The common face of every live tick source: batches, subscriptions, callbacks, start/stop.

A feed hands out **tick batches** (canonical DataFrames, see :mod:`qdash.model`), never single
ticks. Consumers take them in one of two ways:

* ``async for batch in feed.batches():`` — an async iterator (:class:`Subscription`);
* ``feed.on_ticks(fn)`` — a callback per batch. A plain function runs inline on the event loop
  and must be quick; an ``async def`` callback runs in its own task, one call at a time, and is
  fed through a :class:`Subscription` like an iterator.

Slow-consumer policy: each subscription buffers at most ``maxsize`` ticks (default 1,000,000).
When a new batch would exceed that, the **oldest** buffered batches are dropped (never the feed,
never other consumers), counted in ``Subscription.dropped_batches`` / ``dropped_ticks`` and logged
as a warning: a dashboard wants fresh data more than complete data. A consumer that must lose
nothing (the recorder) drains its subscription whole at every wake-up (:meth:`Subscription.drain`)
and uses a large ``maxsize``; it reports any drop as an error.

Lifecycle (kernel-friendly): ``feed.start()`` returns at once, the work runs in tasks on the
running loop (the kernel's, in Jupyter); ``await feed.stop()`` ends it and delivers every tick
already received. Nothing here calls ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
from collections.abc import Callable

import pandas as pd

from ..errors import QdashError

log = logging.getLogger(__name__)

DEFAULT_MAXSIZE = 1_000_000


class Subscription:
    """A bounded buffer of tick batches read as an async iterator (policy: drop oldest)."""

    def __init__(self, maxsize: int = DEFAULT_MAXSIZE, name: str = "subscription"):
        self.maxsize = int(maxsize)
        self.name = name
        self._batches: collections.deque[pd.DataFrame] = collections.deque()
        self._size = 0
        self._wakeup = asyncio.Event()
        self.closed = False
        self.received_ticks = 0
        self.dropped_batches = 0
        self.dropped_ticks = 0

    def put(self, batch: pd.DataFrame) -> None:
        """Buffer one batch (called by the feed on the loop); drops the oldest when full."""
        if self.closed or len(batch) == 0:
            return
        self._batches.append(batch)
        self._size += len(batch)
        self.received_ticks += len(batch)
        while self._size > self.maxsize and len(self._batches) > 1:
            old = self._batches.popleft()
            self._size -= len(old)
            self.dropped_batches += 1
            self.dropped_ticks += len(old)
            log.warning("%s: consumer too slow, dropped a batch of %d ticks (%d dropped so far)",
                        self.name, len(old), self.dropped_ticks)
        self._wakeup.set()

    def close(self) -> None:
        """End the iteration once the buffered batches are consumed."""
        self.closed = True
        self._wakeup.set()

    def __len__(self) -> int:
        """Ticks currently buffered."""
        return self._size

    def drain(self) -> pd.DataFrame | None:
        """Every buffered batch concatenated into one (None when empty), without waiting."""
        if not self._batches:
            return None
        batches = list(self._batches)
        self._batches.clear()
        self._size = 0
        return batches[0] if len(batches) == 1 else pd.concat(batches, ignore_index=True)

    async def wait(self) -> bool:
        """Wait until a batch is buffered; False once closed and empty."""
        while not self._batches:
            if self.closed:
                return False
            self._wakeup.clear()
            await self._wakeup.wait()
        return True

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> pd.DataFrame:
        if not await self.wait():
            raise StopAsyncIteration
        batch = self._batches.popleft()
        self._size -= len(batch)
        return batch


class TickFeed:
    """Base class of live feeds: fan-out of tick batches to subscriptions and callbacks.

    Subclasses implement ``_run_tasks()`` (create their tasks) and ``_shutdown()`` (stop them and
    flush), and call :meth:`_emit` with each batch, on the loop.

    What a consumer (:class:`~qdash.live.LiveSession`, the recorder, the dashboard) reads from
    any feed is declared here, with the values of a feed that has none of it; a subclass that
    has more overrides them.
    """

    #: REST base URL of the same exchange (history bootstrap, gap backfill, funding); None: none
    rest_url: str | None = None
    #: the tick ``source`` column this feed writes (``binance``, ``sim``; ``""``: as received)
    source: str = ""
    #: the exchange stream behind the ticks: ``trade`` or ``aggTrade``
    stream: str = "trade"
    #: whether :meth:`resume` can continue each symbol after a stored trade
    resumable: bool = False
    #: seconds of outage a resume backfills over REST (None: any)
    resume_horizon: float | None = None
    #: seconds a resumed symbol's backfill may take before bars close without it
    max_backfill_wait: float = 60.0

    def resolve_source(self) -> str:
        """The ``source`` label, once it is known (a feed that learns it from its exchange asks
        here, blocking: call it in a thread from a loop)."""
        return self.source

    def __init__(self, name: str = "feed"):
        self.name = name
        self._subscriptions: list[Subscription] = []
        self._callbacks: list[Callable] = []
        self._callback_tasks: list[asyncio.Task] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.running = False
        self.callback_errors = 0

    # --- consumers ---------------------------------------------------------------------------
    def batches(self, maxsize: int = DEFAULT_MAXSIZE) -> Subscription:
        """A new subscription receiving every batch emitted from now on."""
        sub = Subscription(maxsize, name=f"{self.name} subscriber {len(self._subscriptions)}")
        self._subscriptions.append(sub)
        return sub

    def __aiter__(self) -> Subscription:
        return self.batches()

    def unsubscribe_batches(self, sub: Subscription) -> None:
        """Stop feeding ``sub`` and end its iteration."""
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)
        sub.close()

    def on_ticks(self, fn: Callable[[pd.DataFrame], object],
                 maxsize: int = DEFAULT_MAXSIZE) -> Callable[[], None]:
        """Call ``fn(batch)`` for every batch; returns a function that removes the callback.

        Sync ``fn`` runs inline (keep it short; exceptions are logged and counted). ``async def``
        ``fn`` runs in a task, one call at a time; batches that arrive meanwhile are merged into
        the next call (bounded by ``maxsize`` ticks, oldest dropped).
        """
        if inspect.iscoroutinefunction(fn):
            sub = self.batches(maxsize)

            async def pump():
                while await sub.wait():
                    batch = sub.drain()
                    try:
                        await fn(batch)
                    except Exception:
                        self.callback_errors += 1
                        log.exception("%s: async tick callback %r failed", self.name, fn)

            task = asyncio.get_running_loop().create_task(pump())
            self._callback_tasks.append(task)

            def remove():
                self.unsubscribe_batches(sub)
            return remove
        self._callbacks.append(fn)
        return lambda: self._callbacks.remove(fn) if fn in self._callbacks else None

    # --- symbols --------------------------------------------------------------------------------
    async def subscribe(self, symbols) -> None:
        """Add symbols while running (on the loop)."""
        raise NotImplementedError

    async def unsubscribe(self, symbols) -> None:
        """Remove symbols while running (on the loop)."""
        raise NotImplementedError

    def add_symbols(self, symbols) -> None:
        """Thread-safe :meth:`subscribe` (e.g. from an ipywidgets callback); returns at once."""
        self._threadsafe(self.subscribe(list(symbols)))

    def remove_symbols(self, symbols) -> None:
        """Thread-safe :meth:`unsubscribe`; returns at once."""
        self._threadsafe(self.unsubscribe(list(symbols)))

    def _threadsafe(self, coro) -> None:
        if self.loop is None:
            coro.close()
            raise QdashError(f"{self.name}: start() the feed before changing symbols live")
        asyncio.run_coroutine_threadsafe(coro, self.loop)

    def _emit(self, batch: pd.DataFrame) -> None:
        if len(batch) == 0:
            return
        for sub in self._subscriptions:
            sub.put(batch)
        for fn in list(self._callbacks):
            try:
                fn(batch)
            except Exception:
                self.callback_errors += 1
                log.exception("%s: tick callback %r failed", self.name, fn)

    # --- what consumers read ----------------------------------------------------------------
    def resume(self, positions, now_ms: int | None = None) -> dict[str, tuple[int, int]]:
        """Continue each symbol after its stored trade ``{symbol: (trade_id, ts_ms)}`` (only
        feeds that are :attr:`resumable`); returns the positions taken."""
        raise QdashError(f"{self.name}: this feed cannot resume after stored trades")

    def stats(self) -> dict:
        """Live counters (see ``BinanceFutures.stats``); empty for a feed that keeps none."""
        return {}

    def connection_status(self) -> dict | None:
        """The connection's ``state``, ``last_error``, ``retry_in_s`` and ``host`` (see
        ``BinanceFutures.connection_status``); None for a feed without a connection to watch."""
        return None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> TickFeed:
        """Start on the running loop and return at once (call from a cell or a coroutine)."""
        if self.running:
            return self
        self.loop = asyncio.get_running_loop()
        self.running = True
        self._run_tasks()
        return self

    async def stop(self) -> None:
        """Stop, deliver every tick already received, end subscriptions and callback tasks."""
        if not self.running:
            return
        self.running = False
        await self._shutdown()
        for sub in list(self._subscriptions):
            sub.close()
        if self._callback_tasks:
            await asyncio.gather(*self._callback_tasks, return_exceptions=True)
            self._callback_tasks.clear()

    async def __aenter__(self) -> TickFeed:
        return self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def _run_tasks(self) -> None:
        raise NotImplementedError

    async def _shutdown(self) -> None:
        raise NotImplementedError
