"""The in-server hub: fan-out of accepted ticks to subscribers, per symbol, in order.

Each subscriber has a bounded queue of encoded messages and one sender task. :meth:`TickHub.publish`
never waits: it encodes each batch once per distinct symbol filter and puts it on the queues. A
subscriber whose queue is full (it reads slower than ticks arrive) is dropped with a close reason,
so it never slows ingestion or the other subscribers.

Message format (JSON text, one per published batch, columnar)::

    {"type": "ticks", "seq": 17, "n": 2,
     "symbol": ["BTCUSDT", "BTCUSDT"], "ts": [ms, ms], "trade_id": [..], "price": [..],
     "qty": [..], "is_buyer_maker": [1, 0], "source": ["ingest", "ingest"]}

``seq`` numbers the hub's published batches (a subscriber sees a subsequence of them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import numpy as np
import orjson
import pandas as pd

log = logging.getLogger(__name__)

DEFAULT_MAX_QUEUE = 1024
SLOW_CLOSE_CODE = 1008  # policy violation: the client did not keep up


def encode_ticks(ticks: pd.DataFrame, seq: int) -> bytes:
    """One columnar ``ticks`` message (see the module docstring)."""
    return orjson.dumps({
        "type": "ticks", "seq": seq, "n": len(ticks),
        "symbol": ticks["symbol"].tolist(),
        "ts": ticks["ts"].to_numpy(np.int64),
        "trade_id": ticks["trade_id"].to_numpy(np.int64),
        "price": ticks["price"].to_numpy(np.float64),
        "qty": ticks["qty"].to_numpy(np.float64),
        "is_buyer_maker": ticks["is_buyer_maker"].to_numpy(np.int8),
        "source": ticks["source"].tolist(),
    }, option=orjson.OPT_SERIALIZE_NUMPY)


class HubSubscriber:
    """One subscriber: symbols (``None`` = all), a bounded queue and a sender task.

    ``send(message)`` is awaited for each message in order; ``close(code, reason)`` is called once
    if the hub drops the subscriber.
    """

    def __init__(self, hub: TickHub, symbols: frozenset[str] | None,
                 send: Callable[[bytes], Awaitable[None]], close: Callable[[int, str], None],
                 max_queue: int):
        self.hub, self.symbols = hub, symbols
        self._send, self._close = send, close
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(max_queue)
        self.sent = 0
        self.dropped_reason: str | None = None
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                msg = await self.queue.get()
                await self._send(msg)
                self.sent += 1
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the connection went away under us
            log.debug("subscriber send failed: %s", e)
            self.hub.unsubscribe(self)

    def offer(self, msg: bytes) -> bool:
        """Queue a message; False (and the subscriber is dropped) when the queue is full."""
        try:
            self.queue.put_nowait(msg)
            return True
        except asyncio.QueueFull:
            self.dropped_reason = (f"too slow: {self.queue.maxsize} tick batches queued "
                                   "unread; reconnect and read faster")
            self.hub.unsubscribe(self)
            with contextlib.suppress(Exception):
                self._close(SLOW_CLOSE_CODE, self.dropped_reason)
            return False

    def cancel(self) -> None:
        self._task.cancel()


class TickHub:
    """Publishes tick batches to subscribers by symbol. Use from the event loop only."""

    def __init__(self, max_queue: int = DEFAULT_MAX_QUEUE):
        self.max_queue = int(max_queue)
        self.subscribers: set[HubSubscriber] = set()
        self.seq = 0
        self.published_ticks = 0
        self.dropped_subscribers = 0

    def subscribe(self, symbols, send: Callable[[bytes], Awaitable[None]],
                  close: Callable[[int, str], None]) -> HubSubscriber:
        """Start delivering ticks of ``symbols`` (iterable of canonical symbols, or ``None`` for
        every symbol) through ``send``."""
        sub = HubSubscriber(self, None if symbols is None else frozenset(symbols), send, close,
                           self.max_queue)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: HubSubscriber) -> None:
        if sub in self.subscribers:
            self.subscribers.discard(sub)
            if sub.dropped_reason:
                self.dropped_subscribers += 1
                log.warning("dropped a tick subscriber: %s", sub.dropped_reason)
        sub.cancel()

    def publish(self, ticks: pd.DataFrame) -> None:
        """Queue ``ticks`` (canonical batch, already stored) for every interested subscriber."""
        if len(ticks) == 0 or not self.subscribers:
            return
        self.seq += 1
        self.published_ticks += len(ticks)
        symbols = ticks["symbol"].to_numpy()
        encoded: dict[frozenset | None, bytes | None] = {}
        for sub in list(self.subscribers):
            key = sub.symbols
            if key not in encoded:
                if key is None:
                    part = ticks
                else:
                    mask = np.isin(symbols, list(key))
                    part = ticks[mask] if not mask.all() else ticks
                encoded[key] = encode_ticks(part, self.seq) if len(part) else None
            msg = encoded[key]
            if msg is not None:
                sub.offer(msg)

    def close(self) -> None:
        """Stop every sender task (subscribers' connections are closed by their handlers)."""
        for sub in list(self.subscribers):
            self.unsubscribe(sub)
