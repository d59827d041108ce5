"""Widget callbacks onto the event loop: the dashboard's one way from a control to an action.

ipywidgets may call ``observe``/``on_click`` handlers on another thread (ipykernel subshells):
every handler is handed to the loop captured at construction with ``call_soon_threadsafe``, so
widgets change only on the loop. A handler may be a plain function or return a coroutine (it
then runs as a task); an exception never escapes into the widget machinery, it is reported to
``on_error``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Dispatcher:
    """``dispatch(fn, *args)`` runs ``fn(*args)`` on ``loop`` from any thread; :meth:`on` and
    :meth:`click` wire controls through it."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 on_error: Callable[[BaseException], None]):
        self.loop = loop
        self.on_error = on_error

    def __call__(self, fn: Callable, *args) -> None:
        self.loop.call_soon_threadsafe(self._guard, fn, *args)

    def _guard(self, fn: Callable, *args) -> None:
        try:
            result = fn(*args)
            if asyncio.iscoroutine(result):
                self.spawn(result)
        except Exception as e:  # never let a control kill the session
            self.on_error(e)

    def spawn(self, coro) -> asyncio.Task:
        """Run ``coro`` as a task on the loop (from the loop); its failure is reported."""
        task = self.loop.create_task(coro)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.on_error(task.exception())

    def on(self, widget, handler: Callable[[dict], object], names="value") -> None:
        """``handler(change)`` on the loop whenever ``widget``'s trait ``names`` changes."""
        widget.observe(lambda change: self(handler, change), names=names)

    def click(self, button, handler: Callable[[], object]) -> None:
        """``handler()`` on the loop on every click of ``button``."""
        button.on_click(lambda _b: self(handler))
