"""THE periodic loop: a callback every ``period_s`` seconds on the running event loop.

One helper for every repeating job (the dashboard's render frames, the funding poll, the pair
refresh, the recorder's flush, the simulator's publishing), after panel's ``PeriodicCallback``:
one call at a time (never overlapping), fixed rate (the next call starts ``period_s`` after the
previous one *started*, at once when a call overran), a failing call reported and the loop kept
going. The callback may be a plain function or a coroutine function; blocking work belongs in
``asyncio.to_thread`` inside it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class PeriodicTask:
    """Call ``callback()`` every ``period_s`` seconds once :meth:`start` ed (on the running loop).

    ``delay_first``: wait one period before the first call (else the first call is at once).
    ``on_error(exc)``: told of an exception a call raised (default: logged); the loop goes on.
    ``name``: the asyncio task's name, for logs and debugging.
    """

    def __init__(self, callback: Callable[[], object | Awaitable[object]], period_s: float, *,
                 name: str = "periodic", delay_first: bool = False,
                 on_error: Callable[[BaseException], None] | None = None):
        if not period_s > 0:
            raise ValueError(f"{name}: period_s must be > 0 seconds, got {period_s!r}")
        self.callback = callback
        self.period_s = float(period_s)
        self.name = name
        self.delay_first = delay_first
        self.on_error = on_error
        self.calls = 0
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> PeriodicTask:
        """Start calling on the running event loop (no-op when already running)."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)
        return self

    def stop(self) -> None:
        """Stop after the call in progress, if any (a coroutine in progress is cancelled)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def wait_stopped(self) -> None:
        """:meth:`stop`, then wait until the loop has ended."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def call_now(self) -> None:
        """One call outside the schedule, with the same error handling."""
        await self._call()

    async def _call(self) -> None:
        try:
            result = self.callback()
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a failing call never ends the loop
            if self.on_error is not None:
                self.on_error(e)
            else:
                log.exception("%s: periodic call failed", self.name)
        finally:
            self.calls += 1

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self.delay_first:
            await asyncio.sleep(self.period_s)
        while True:
            started = loop.time()
            await self._call()
            await asyncio.sleep(max(0.0, self.period_s - (loop.time() - started)))
