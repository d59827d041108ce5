"""``ConnectionLoop``: keep one WebSocket connection up — the reconnect loop of every live feed.

Modelled on cryptofeed's ``ConnectionHandler`` (connect, read until the socket ends, back off,
reconnect), plus what a 24/7 Binance consumer needs:

* **Backoff with jitter** (:class:`qdash.retry.Backoff`): after a failed connect or an
  unexpected close the loop waits ``step × U(½, 1)``; the step starts at ``backoff_initial``
  and doubles up to ``backoff_max``;
  it goes back to the start once a connection has delivered a message.
* **Watchdog**: every ``watch_every`` seconds the connection is checked; it is closed and
  reopened at once (no backoff) when no message arrived for ``stale_timeout`` seconds, or when
  the owner's ``health(now, connected_at)`` callback names a reason (a silent stream on a busy
  connection, lag beyond a limit).
* **Rotation**: ``rotate_after`` seconds after opening (Binance closes connections at 24 h), a
  successor is opened first, both read for ``rotate_overlap`` seconds, then the old one is closed;
  the owner drops what the overlap delivered twice.
* **Close reasons**, counted in :attr:`ConnectionLoop.counters` (``closed:<reason>``): ``stale``,
  ``lag`` and other watchdog reasons, ``requested: ...`` (:meth:`ConnectionLoop.close`, e.g. the
  symbol set changed — reconnects at once), or the server's close code and reason
  (``1006 abnormal closure`` for a dropped socket).

The loop owns no protocol: ``on_message`` receives every frame, ``on_open`` / ``on_close`` see the
socket come and go, ``url()`` is asked before every connect (so a reconnect carries the current
subscriptions). Time is injected (``clock``, ``sleep``, ``rng``), so the loop is tested
deterministically with a fake clock and fake sockets. Times are seconds of ``clock``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from collections.abc import Awaitable, Callable

import websockets

from ..retry import Backoff

log = logging.getLogger(__name__)

# what a failed connect raises (websockets' handshake errors are WebSocketException)
CONNECT_ERRORS = (OSError, TimeoutError, websockets.WebSocketException)


def close_reason(ws) -> str:
    """The server's close code and reason, ``1006 abnormal closure`` for a dropped socket."""
    code = getattr(ws, "close_code", None)
    if code in (None, 1006):
        return "1006 abnormal closure"
    return f"{code} {getattr(ws, 'close_reason', '') or ''}".strip()


class ConnectionLoop:
    """One logical WebSocket connection kept open by reconnecting (see the module docstring).

    ``connect(url)`` is awaited to open a socket (an async iterable of messages with ``close()``;
    by default :func:`websockets.asyncio.client.connect`); ``keep_going()`` is asked before every
    (re)connect; ``None`` timeouts switch a check off. :attr:`state` is ``idle``, ``connecting``,
    ``open``, ``backing off`` or ``stopped``; :attr:`last_error` and :attr:`retry_at` (``clock``
    time of the next attempt) say why it is not open.
    """

    def __init__(self, name: str, url: Callable[[], str], on_message: Callable[[object], None],
                 *, connect: Callable[[str], Awaitable] | None = None,
                 keep_going: Callable[[], bool] = lambda: True,
                 on_open: Callable[[object], None] | None = None,
                 on_close: Callable[[object, str], None] | None = None,
                 health: Callable[[float, float], str | None] | None = None,
                 backoff_initial: float = 0.5, backoff_max: float = 30.0,
                 stale_timeout: float | None = None, watch_every: float | None = None,
                 rotate_after: float | None = None, rotate_overlap: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable] = asyncio.sleep,
                 rng: Callable[[], float] = random.random):
        self.name = name
        self.url, self.on_message, self.keep_going = url, on_message, keep_going
        self._connect = connect or _default_connect
        self.on_open, self.on_close, self.health = on_open, on_close, health
        self.backoff = Backoff(backoff_initial, backoff_max, rng)
        self.stale_timeout = stale_timeout
        if watch_every is None and stale_timeout is not None:
            watch_every = min(1.0, stale_timeout / 4)
        self.watch_every = watch_every if (stale_timeout is not None or health) else None
        if self.health is not None and self.watch_every is None:
            self.watch_every = 1.0
        self.rotate_after, self.rotate_overlap = rotate_after, rotate_overlap
        self.clock, self.sleep = clock, sleep
        self.counters: collections.Counter = collections.Counter()
        self.state = "idle"
        self.ws = None
        self.connected_at = 0.0
        self.last_message = 0.0
        self.last_error: str | None = None
        self.retry_at: float | None = None
        self._reason: str | None = None  # why we are closing the current socket ourselves
        self._retiring = None  # the socket being replaced during a rotation overlap

    # --- control -------------------------------------------------------------------------------
    def close(self, reason: str) -> None:
        """Close the current socket for ``reason`` and reconnect at once (no backoff)."""
        ws = self.ws
        if ws is None or self._reason is not None:
            return
        self._reason = reason
        asyncio.get_running_loop().create_task(ws.close())

    # --- the loop --------------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, read, reconnect until ``keep_going()`` is false or the task is cancelled."""
        first = True
        try:
            while self.keep_going():
                ws = await self._open()
                if ws is None:
                    break
                if not first:
                    self.counters["reconnects"] += 1
                first = False
                got, ws = await self._serve(ws)
                reason = self._reason or close_reason(ws)
                self._reason, self.ws = None, None
                self.counters[f"closed:{reason}"] += 1
                if self.on_close is not None:
                    self.on_close(ws, reason)
                if not self.keep_going():
                    break
                if got:
                    self.backoff.reset()
                if self._asked(reason):
                    log.info("%s: connection closed (%s); reconnecting", self.name, reason)
                    continue
                self.last_error = f"closed: {reason}"
                await self._wait(f"connection closed ({reason})")
        finally:
            for ws in (self.ws, self._retiring):
                if ws is not None:
                    await ws.close()
            self.ws = self._retiring = None
            self.state, self.retry_at = "stopped", None

    @staticmethod
    def _asked(reason: str) -> bool:
        """Closes we made on purpose (watchdog, request) reconnect without waiting."""
        return reason in ("stale", "lag") or reason.startswith("requested")

    async def _wait(self, why: str) -> None:
        wait = self.backoff.next()
        self.state, self.retry_at = "backing off", self.clock() + wait
        log.warning("%s: %s; retrying in %.2fs", self.name, why, wait)
        await self.sleep(wait)
        self.retry_at = None

    async def _open(self):
        """A new socket, after as many attempts (with backoff) as it takes; None once
        ``keep_going()`` is false."""
        while self.keep_going():
            self.state = "connecting"
            url = self.url()
            try:
                ws = await self._connect(url)
            except CONNECT_ERRORS as e:
                self.counters["connect_failures"] += 1
                self.last_error = f"{type(e).__name__}: {e}"
                await self._wait(f"connect to {url.split('?')[0]} failed ({self.last_error})")
                continue
            self.counters["connects"] += 1
            self.ws, self.state = ws, "open"
            self.connected_at = self.last_message = self.clock()
            if self.on_open is not None:
                self.on_open(ws)
            return ws
        return None

    async def _serve(self, ws) -> tuple[int, object]:
        """Read ``ws`` (rotating it when due) until the current socket ends; returns the number
        of messages the last socket delivered and that socket."""
        loop = asyncio.get_running_loop()
        reader = loop.create_task(self._read(ws))
        tasks = [reader]
        watchdog = loop.create_task(self._watch()) if self.watch_every else None
        try:
            while True:
                if self.rotate_after is None:
                    await asyncio.wait({reader})
                else:
                    due = self.connected_at + self.rotate_after - self.clock()
                    timer = loop.create_task(self.sleep(max(0.0, due)))
                    await asyncio.wait({reader, timer}, return_when=asyncio.FIRST_COMPLETED)
                    timer.cancel()
                if reader.done() or not self.keep_going():
                    return await _result(reader), ws
                new_ws = await self._open()  # rotation: open the successor first
                if new_ws is None:
                    return await _result(reader), ws
                new_reader = loop.create_task(self._read(new_ws))
                tasks.append(new_reader)
                self._retiring = ws
                await self.sleep(self.rotate_overlap)
                await ws.close()
                self._retiring = None
                await _result(reader)
                self.counters["rotations"] += 1
                ws, reader = new_ws, new_reader
        finally:
            for task in tasks + [watchdog]:
                if task is not None and not task.done():
                    task.cancel()
            if watchdog is not None:
                await asyncio.gather(watchdog, return_exceptions=True)

    async def _read(self, ws) -> int:
        n = 0
        try:
            async for message in ws:
                self.last_message = self.clock()
                n += 1
                try:
                    self.on_message(message)
                except Exception:
                    log.exception("%s: handling a message failed", self.name)
        except websockets.ConnectionClosed:
            pass
        return n

    async def _watch(self) -> None:
        while True:
            await self.sleep(self.watch_every)
            if self.ws is None or self._reason is not None:
                continue
            now = self.clock()
            reason = None
            if self.stale_timeout is not None and \
                    now - max(self.last_message, self.connected_at) > self.stale_timeout:
                reason = "stale"
            elif self.health is not None:
                reason = self.health(now, self.connected_at)
            if reason:
                self.counters[f"{reason}_reconnects"] += 1
                log.warning("%s: connection %s; reconnecting", self.name, reason)
                self.close(reason)


async def _result(reader: asyncio.Task) -> int:
    try:
        return await reader
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("connection reader failed")
        return 0


async def _default_connect(url: str):
    from websockets.asyncio.client import connect
    return await connect(url, open_timeout=10, close_timeout=2)
