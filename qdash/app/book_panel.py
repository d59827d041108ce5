"""The dashboard's Book tab: a book run (a ``qdash book --out`` directory, or a
:class:`~qdash.book.result.BookResult` given to the dashboard) read against live closes.

The numbers come from :class:`~qdash.app.book_model.BookModel` and the HTML from
:mod:`qdash.app.book_render`; this module holds the widgets and the wiring. The live closes are
those of a :class:`~qdash.scan.live.LiveScanner` on the book's symbols and timeframe, following
their kline streams on the dashboard's source; each of its rescans (every closed bar) redraws the
tab. Each pair has a button that opens it in the pair monitor.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable

import ipywidgets as w

from ..errors import QdashError
from ..scan.live import LiveScanner
from .book_model import BookModel, no_closes
from .book_render import exposure_html, margin_html, pairs_html
from .dispatch import Dispatcher
from .monitor import PairMonitor

_DESC = {"description_width": "initial"}
COLORS = {"info": "#555", "ok": "#1b7f3b", "warn": "#b36b00", "error": "#c62828"}


class BookPanel:
    """The Book tab of ``monitor``: ``load(book)`` shows a run, ``start()`` follows its symbols
    live, the per-pair buttons call ``open_pair(y, x)`` (a coroutine)."""

    def __init__(self, monitor: PairMonitor, dispatch: Dispatcher, *,
                 open_pair: Callable[[str, str], Awaitable[None]], book=None):
        self.monitor, self.dispatch, self.open_pair = monitor, dispatch, open_pair
        self.model: BookModel | None = None
        self.scanner: LiveScanner | None = None
        self.path = w.Text(value="", description="book (--out dir)", style=_DESC,
                           placeholder="out", layout=w.Layout(width="360px"))
        self.load_button = w.Button(description="load", layout=w.Layout(width="80px"))
        self.run = w.ToggleButton(value=False, description="start live", button_style="success",
                                  layout=w.Layout(width="110px"))
        self.status = w.HTML()
        self.summary = w.HTML()
        self.pairs = w.HTML()
        self.buttons = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self.exposure = w.HTML()
        dispatch.click(self.load_button, lambda: self.load(self.path.value.strip()))
        dispatch.on(self.run, lambda c: self.start() if c["new"] else self.stop())
        if book is not None:
            self.load(book)

    def widget(self) -> w.Widget:
        return w.VBox([
            w.HBox([self.path, self.load_button, self.run]), self.status, self.summary,
            w.HTML("<b>latest window's pairs</b> (USDT, &gt; 0 long)"), self.pairs,
            self.buttons, w.HTML("<b>net exposure per symbol</b>"), self.exposure])

    def closes(self, symbol: str):
        """The live closes of ``symbol`` (none before the scanner has them)."""
        return self.scanner.closes(symbol) if self.scanner is not None else no_closes(symbol)

    # --- the book ----------------------------------------------------------------------------
    def load(self, book) -> BookModel | None:
        """Show ``book`` (a BookResult or an ``--out`` directory); a bad one is said, not raised."""
        if not book:
            self._say("name the --out directory of a `qdash book` run", "warn")
            return None
        try:
            self.model = BookModel(book)
        except (QdashError, OSError, ValueError) as e:
            self._say(str(e), "error")
            return None
        self.buttons.children = [self._open_button(y, x) for y, x in
                                 zip(self.model.latest["y"], self.model.latest["x"])]
        self.render()
        self._say(f"book: {len(self.model.latest)} pairs in the latest window, "
                  f"{self.model.timeframe} bars", "ok")
        return self.model

    def _open_button(self, y: str, x: str) -> w.Button:
        button = w.Button(description=f"open {y}/{x}", tooltip="show in the pair monitor",
                          layout=w.Layout(width="auto"))
        self.dispatch.click(button, lambda: self.open_pair(y, x))
        return button

    # --- live closes ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Follow the book's symbols' kline streams on the monitor's source (sim or binance)."""
        await self.stop()
        if self.model is None:
            self.run.value = False
            raise QdashError("load a book first")
        m = self.model
        try:
            self.scanner = await self.monitor.live_scanner(
                m.symbols(), timeframe=m.timeframe, lookback=m.lookback_bars() * m.tf_ms,
                on_result=lambda frame: self.render(), on_status=self._say)
        except QdashError:
            self.run.value = False
            raise
        self.run.description, self.run.button_style = "stop live", "danger"

    async def stop(self) -> None:
        """Close the live closes' streams."""
        scanner, self.scanner = self.scanner, None
        if scanner is not None:
            await scanner.stop()
        self.run.description, self.run.button_style = "start live", "success"

    # --- the view ----------------------------------------------------------------------------
    def render(self) -> dict | None:
        """Redraw from the model and the live closes; returns the model's snapshot."""
        if self.model is None:
            return None
        snap = self.model.snapshot(self.closes)
        self.summary.value = margin_html(snap["margin"], self.model.window_bounds())
        self.pairs.value = pairs_html(snap["pairs"])
        self.exposure.value = exposure_html(snap["exposure"])
        return snap

    def _say(self, text: str, level: str) -> None:
        self.status.value = f"<span style='color:{COLORS[level]}'>{html.escape(text)}</span>"
