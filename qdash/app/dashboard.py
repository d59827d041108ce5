"""The pairs dashboard: a thin view of widgets over a :class:`~qdash.app.monitor.PairMonitor`.

``Dashboard(...).show()`` in a JupyterLab cell, or ``qdash/server/pairs.ipynb`` under Voila, which
only builds one (:meth:`Dashboard.from_env`). The model is the monitor (``d.monitor``: session,
stores, alerts, funding, backtest, files — no widgets); this module holds the controls, the
status line, the tabs and the render loop. After panel's ``Viewer``: a model, and a view built
by one method (:attr:`Dashboard.widget`).

Rendering: ONE loop at ``fps`` frames per second (:class:`~qdash.periodic.PeriodicTask`:
non-overlapping, a slow frame delays the next instead of piling up) pulls what is new from the
session by cursor and sends it to the browser as one Bokeh patch message set per view
(:class:`~qdash.app.charts.PairCharts`), so the kernel sends a few tens of comm messages per
second whatever the tick rate. The z-score's live point (the forming bar) moves every frame;
candle panels change when a candle does.

Widget callbacks (maybe on another thread: ipykernel subshells) go through the
:class:`~qdash.app.dispatch.Dispatcher` onto the loop captured at construction.

First paint: a page's widget manager creates every widget the kernel holds before it shows any,
so the tabs after the first are built when first opened or used from code (``d.bt``, ...): 240
widgets at first paint become 96. Each tab is a panel given the monitor and the dispatcher.
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections.abc import Callable
from functools import cached_property

import ipywidgets as w

from ..config import Settings
from ..defaults import DEFAULT_TIMEFRAME
from ..errors import QdashError
from ..periodic import PeriodicTask
from .alerts_panel import AlertsPanel
from .backtest_panel import BacktestPanel
from .bokeh_widget import load_bokehjs
from .book_panel import BookPanel
from .charts import PairCharts
from .controls import MarketControls
from .dispatch import Dispatcher
from .files_panel import FilesPanel
from .monitor import PairMonitor
from .page_snapshot import HEAD_PX, PageSnapshot
from .scanner import ScannerPanel
from .stats_table import live_status, stats_history_html, stats_html, stored_stats_html
from .trade_panel import TradePanel

log = logging.getLogger(__name__)

STATS_EVERY_S = 1.0       # stats table refresh
HEAT_EVERY_S = 5.0        # correlation heatmap refresh
STATS_HISTORY_EVERY_S = 60.0  # one row of the per-minute stats time series
LEVEL_COLORS = {"info": "#555", "ok": "#1b7f3b", "warn": "#b36b00", "error": "#c62828"}
RESTART_SETTINGS = ("source", "y", "x", "timeframe", "window", "method")


def _monitor_attr(name: str, doc: str) -> property:
    """A read-only attribute of the dashboard's monitor, on the dashboard."""
    return property(lambda self: getattr(self.monitor, name), doc=doc)


class Dashboard:
    """Live pair dashboard. Parameters are the controls' initial values (see
    :class:`~qdash.app.monitor.PairMonitor`; ``fps``: frames per second of the render loop).

    ``source``: ``"sim"`` (the simulated exchange: ``sim_ws_url``/``sim_rest_url``, else one
    started inside this kernel), ``"binance"``, ``"hub"`` (ticks pushed to the qdash server) or
    ``"store"`` (recorded data only). ``db``: the store; by default the user's store for
    exchange data and the simulator's own store for ``sim``: the two never mix (switching source
    switches store). ``book``: the Book tab's run (a ``BookResult`` or a ``--out`` directory).
    """

    def __init__(self, source: str = "sim", symbols=("BTCUSDT", "ETHUSDT"), y: str | None = None,
                 x: str | None = None, timeframe: str = DEFAULT_TIMEFRAME,
                 window: int | None = None, method: str = "rolling-ols", entry: float = 2.0,
                 exit: float = 0.0, stop: float = 4.0,
                 db: str | None = None, fps: float = 10.0, sim_ws_url: str | None = None,
                 sim_rest_url: str | None = None, sim_rate: float = 200.0, book=None):
        self._book = book
        self.monitor = mon = PairMonitor(
            source, symbols, y, x, timeframe, window, method, entry, exit, stop, db=db,
            sim_ws_url=sim_ws_url, sim_rest_url=sim_rest_url, sim_rate=sim_rate,
            on_status=self.say)  # the history bootstrap's progress
        self.loop = asyncio.get_event_loop()
        self.dispatch = Dispatcher(self.loop, self._error)
        self.fps = float(fps)
        self.frames = 0
        self.errors: list[str] = []
        self._renderer = PeriodicTask(self.render_frame, 1.0 / self.fps, name="dashboard render",
                                      on_error=self._error)
        self._last = {"stats": 0.0, "heat": 0.0, "history": 0.0}
        self._notice_until = 0.0
        self._alerts_seen = -1
        self.market = MarketControls(source, mon.symbols, mon.y, mon.x, timeframe, mon.window,
                                     method, entry, exit, stop)
        self.status = w.HTML(layout=w.Layout(min_height="22px"))
        self.page_snapshot: PageSnapshot | None = None  # written while a page is on its way
        self.stats = w.HTML()
        self.charts = PairCharts(mon)
        self.figures = self.charts.figures
        self._wire()
        self.say("ready: press “start live”, or pick “stored data”")

    @classmethod
    def from_env(cls, **overrides) -> Dashboard:
        """A Dashboard configured by the ``QDASH_*`` settings :class:`qdash.config.Settings`
        reads (source, symbols, pair, timeframe, window, store: what ``qdash dashboard`` and
        ``qdash demo`` set; a running simulator's URLs are read by the monitor)."""
        env = Settings.from_env()
        kw: dict = {"source": env.source or "sim",
                    "symbols": list(env.symbols or ("BTCUSDT", "ETHUSDT")),
                    "timeframe": env.timeframe or DEFAULT_TIMEFRAME, "db": env.db}
        if env.window:
            kw["window"] = env.window
        if env.pair:
            kw["y"], kw["x"] = env.pair
        kw.update(overrides)
        return cls(**kw)

    # --- the monitor's state, for cells ---------------------------------------------------------
    y = _monitor_attr("y", "The pair's dependent leg.")
    x = _monitor_attr("x", "The pair's independent leg.")
    symbols = _monitor_attr("symbols", "The watched symbols.")
    session = _monitor_attr("session", "The live :class:`~qdash.live.LiveSession` or None.")
    last_backtest = _monitor_attr("last_backtest", "The last backtest's result.")
    store = _monitor_attr("store", "The store of the current source.")
    alerts = _monitor_attr("alerts", "The :class:`~qdash.alerts.AlertManager`.")

    # --- the tabs after the first: built when first opened (or used from code; see above) -------
    def _built(self, name: str) -> bool:
        """Whether the lazily built part ``name`` (a cached property below) exists yet."""
        return name in self.__dict__

    @cached_property
    def bt(self) -> BacktestPanel:
        """The backtest tab."""
        return BacktestPanel(self.monitor, self.dispatch, self.say, self.charts)

    @cached_property
    def alert_ui(self) -> AlertsPanel:
        """The alerts tab: rule editor, active rules, firing history."""
        return AlertsPanel(self.monitor, self.dispatch, self.say)

    @cached_property
    def data(self) -> FilesPanel:
        """The files tab: uploads and CSV downloads."""
        return FilesPanel(self.monitor, self.dispatch, self.say)

    @cached_property
    def stats_history(self) -> w.HTML:
        """The stats-over-time tab's table."""
        return w.HTML(stats_history_html(self.monitor.stats_history_frame()))

    @cached_property
    def scanner(self) -> ScannerPanel:
        """The scanner tab."""
        return ScannerPanel(self.monitor, self.dispatch, open_pair=self.open_pair,
                            send=self.charts.send)

    @cached_property
    def book_ui(self) -> BookPanel:
        """The Book tab: a book run's latest window against live closes."""
        return BookPanel(self.monitor, self.dispatch, open_pair=self.open_pair, book=self._book)

    @cached_property
    def trade(self) -> TradePanel:
        """The trade tab: the paper trader on the live session (off until armed)."""
        return TradePanel(self.monitor, self.dispatch, self.say)

    def _tab_builders(self) -> list[tuple[str, Callable[[], w.Widget]]]:
        return [
            ("backtest", lambda: self.bt.widget()),
            ("trade", lambda: self.trade.widget()),
            ("alerts", lambda: self.alert_ui.widget()),
            ("stats over time", lambda: w.VBox([w.HTML("<b>per-minute statistics</b>"),
                                                self.stats_history])),
            ("files & downloads", lambda: self.data.widget()),
            ("scanner", lambda: self.scanner.widget()),
            ("book", lambda: self.book_ui.widget()),
        ]

    @cached_property
    def widget(self) -> w.Widget:
        """The whole dashboard as one widget."""
        builders = self._tab_builders()
        tabs = w.Tab(children=[
            w.HBox([w.VBox([self.charts.heat_view]),
                    w.VBox([w.HTML("<b>statistics</b>"), self.stats])]),
            *[w.VBox() for _ in builders]])
        for i, title in enumerate(["stats & heatmap", *[t for t, _ in builders]]):
            tabs.set_title(i, title)

        def open_tab(change) -> None:
            index = change["new"]
            if index and not tabs.children[index].children:
                tabs.children[index].children = [builders[index - 1][1]()]

        self.dispatch.on(tabs, open_tab, names="selected_index")
        # the header's height is fixed, so the page snapshot puts the market view where it lands
        head = w.VBox([w.HTML("<h3 style='margin:4px 0'>qdash — pair monitor</h3>"),
                       self.market.widget(), self.status],
                      layout=w.Layout(height=f"{HEAD_PX}px", overflow="auto", flex="none"))
        market = w.VBox([self.charts.market_view])
        head.add_class("qdash-head")
        market.add_class("qdash-market")
        return w.VBox([head, market, tabs], layout=w.Layout(width="100%"))

    def show(self) -> Dashboard:
        """Display in the current cell (JupyterLab) or page (Voila), BokehJS loaded by
        :func:`~qdash.app.bokeh_widget.load_bokehjs`."""
        from IPython.display import display

        load_bokehjs()
        display(self.widget)
        self.page_snapshot = PageSnapshot.for_page(self)
        return self

    # --- controls → monitor ----------------------------------------------------------------------
    def _wire(self) -> None:
        m, on = self.market, self.dispatch.on
        on(m.live, lambda c: self.start() if c["new"] else self.stop())
        for control in (m.y, m.x, m.timeframe, m.window, m.method, m.source):
            on(control, lambda c: self._settings_changed())
        on(m.symbols, lambda c: self.set_symbols(c["new"]))
        for control in (m.entry, m.exit, m.stop, *m.filters.values()):
            on(control, lambda c: self._read_controls())
        self.dispatch.click(m.run_tests, self.run_tests)

    def _read_controls(self) -> bool:
        """Copy the controls into the monitor; True when a setting that needs a restart
        (source, pair, timeframe, window, method) changed."""
        m, mon = self.market, self.monitor
        before = [getattr(mon, k) for k in RESTART_SETTINGS]
        mon.source, mon.y, mon.x = m.source.value, m.y.value, m.x.value
        if m.timeframe.value != mon.timeframe:  # the window box shows the timeframe's default
            m.window.value = mon.set_timeframe(m.timeframe.value)
        elif m.window.value != mon.window:
            mon.set_window(m.window.value)
        mon.method = m.method.value
        mon.entry_z, mon.exit_z, mon.stop_z = m.entry.value, m.exit.value, m.stop.value
        mon.filters = {name: box.value for name, box in m.filters.items()}
        self.figures.set_levels(mon.entry_z, mon.exit_z)
        return before != [getattr(mon, k) for k in RESTART_SETTINGS]

    def _settings_changed(self) -> None:
        if self._read_controls():
            self.restart()

    def _show_pair(self) -> None:
        """The monitor's watch list and pair in the pair's controls (their observers then find
        nothing changed)."""
        m, mon = self.market, self.monitor
        with m.y.hold_trait_notifications(), m.x.hold_trait_notifications():
            m.y.options, m.x.options = mon.symbols, mon.symbols
        m.y.value, m.x.value = mon.y, mon.x  # options reset the selection when set

    # --- status --------------------------------------------------------------------------------
    def say(self, text: str, level: str = "info", hold_s: float | None = None) -> None:
        """Show ``text`` in the status line; it stays ``hold_s`` seconds (errors 15 s, others 5 s)
        before the live summary takes the line back."""
        color = LEVEL_COLORS[level]
        hold = hold_s if hold_s is not None else (15.0 if level == "error" else 5.0)
        self._notice_until = time.monotonic() + hold
        if "\n" in text:  # a parser error with its caret line
            self.status.value = (f"<pre style='color:{color};margin:0'>{html.escape(text)}"
                                 "</pre>")
        else:
            self.status.value = f"<span style='color:{color}'>{html.escape(text)}</span>"

    def _error(self, e: BaseException) -> None:
        msg = f"{type(e).__name__}: {e}" if not isinstance(e, QdashError) else str(e)
        self.errors.append(msg)
        log.warning("dashboard: %s", msg)
        self.say(msg, "error")

    # --- live ----------------------------------------------------------------------------------
    def start(self) -> Dashboard:
        """Start the live session (or show stored data) and the render loop; returns at once."""
        self.dispatch.spawn(self._start())
        return self

    async def ready(self, timeout_s: float = 30.0) -> Dashboard:
        """Wait (at most ``timeout_s``) until the live session has its history and is streaming,
        then draw it; returns self. The published notebook awaits this before its cell ends, so
        Voila's preheated kernel hands the page its history already drawn (the z-score, every β
        and the cointegration test at first paint, its Bokeh documents already serialized); on a
        timeout the status area says why."""
        deadline = self.loop.time() + timeout_s
        while self.session is None or not self.session.ready.is_set():
            if self.loop.time() >= deadline:
                return self
            await asyncio.sleep(0.05)
        self.render_frame()
        self.charts.snapshot()
        if self.page_snapshot is not None:  # the page that takes this kernel shows it at once
            self.page_snapshot.write()
        return self

    async def _start(self) -> None:
        m = self.market
        if m.live.value is False:
            m.live.value = True  # keeps the button in step when started from code
            return  # the observer calls start() again
        self._read_controls()
        if await self.monitor.start() is None:  # stored data: nothing live
            self._show_stored()
            m.live.value = False
            return
        m.live.description, m.live.button_style = "stop live", "danger"
        self.say(f"live: {self.monitor.source}, {', '.join(self.monitor.watched())}, "
                 f"{self.monitor.timeframe} bars", "ok")
        self._renderer.start()

    def stop(self) -> Dashboard:
        """Stop the live session (the render loop keeps showing what was received)."""
        self.dispatch.spawn(self._stop())
        return self

    async def _stop(self) -> None:
        was_live = self.session is not None
        await self.monitor.stop()
        m = self.market
        m.live.description, m.live.button_style = "start live", "success"
        if m.live.value:
            m.live.value = False
        if was_live:  # (a switch to stored data stopped the session already and says so)
            self.say("stopped; recorded data stays in the store", "info")

    async def close(self) -> None:
        """Stop everything this dashboard started (session, render loop, own simulator)."""
        for tab in ("scanner", "book_ui"):  # the tabs with live streams of their own
            if self._built(tab):
                await getattr(self, tab).stop()
        if self.page_snapshot is not None:
            self.page_snapshot.stop()
        self._renderer.stop()
        await self.monitor.close()

    def restart(self) -> None:
        """Empty the views for new controls (pair, timeframe, window, method, source) and
        start again from history."""
        self._read_controls()
        if self.y == self.x:
            self.say("pick two different symbols for y and x", "warn")
            return
        self.charts.reset()
        if self.session is not None:
            self.dispatch.spawn(self._start())
        elif self.monitor.source == "store":
            self._show_stored()

    async def open_pair(self, y: str, x: str) -> None:
        """Show ``y``/``x`` in the pair monitor (the scanner's “open”): both join the watch list
        and the monitor starts live on them, from their history (the live bootstrap)."""
        await self.monitor.stop()
        self.monitor.watch_pair(y, x)
        self._show_pair()
        self.market.symbols.value = ",".join(self.monitor.symbols)
        self.charts.reset()
        self.dispatch(self.start)    # after the observers those changes queued

    def set_symbols(self, text: str) -> None:
        """Watch the symbols in ``text`` (comma- or space-separated); the pair stays when both
        legs remain, else it becomes the second and first symbol."""
        try:
            self.monitor.set_symbols([s for s in text.replace(" ", ",").split(",") if s])
        except (QdashError, ValueError) as e:
            self.say(str(e), "warn" if isinstance(e, QdashError) else "error")
            return
        self._show_pair()
        self.restart()

    async def run_tests(self) -> None:
        """Recompute ADF / cointegration / robust betas now."""
        if self.session is None:
            self.say("start live (or pick stored data) first", "warn")
            return
        ok = await self.session.refresh()
        self.render_stats(self.session)
        self.say("statistics refreshed" if ok else "; ".join(self.session.waiting_for()),
                 "ok" if ok else "warn")

    async def run_backtest(self):
        """Backtest the rule on the candles on screen (:meth:`BacktestPanel.run_backtest`)."""
        self._read_controls()
        return await self.bt.run_backtest()

    # --- drawing -------------------------------------------------------------------------------
    def render_frame(self) -> None:
        """Push what is new since the last frame to the browser (one patch set per view)."""
        s = self.session
        if s is not None:
            self.charts.draw_live(s)
            now = time.monotonic()
            if now - self._last["stats"] >= STATS_EVERY_S:
                self._last["stats"] = now
                self.render_stats(s)
                self._render_alerts()
            if now - self._last["heat"] >= HEAT_EVERY_S:
                self._last["heat"] = now
                self.charts.draw_heat({sym: s.candles[sym].frame() for sym in s.symbols})
            if now - self._last["history"] >= STATS_HISTORY_EVERY_S:
                self._last["history"] = now
                self.monitor.record_stats()
                if self._built("stats_history"):
                    self.stats_history.value = stats_history_html(
                        self.monitor.stats_history_frame())
        self.charts.flush()
        self.frames += 1

    def render_stats(self, s) -> None:
        """The statistics table and, unless a notice holds it, the live status line."""
        m = s.metrics()
        self.stats.value = stats_html(s, m, self.monitor, comm_messages=self.charts.comm_messages,
                                      frames=self.frames)
        if time.monotonic() < self._notice_until:
            return
        text, level = live_status(s, m, self.monitor.source)
        self.status.value = f"<span style='color:{LEVEL_COLORS[level]}'>{html.escape(text)}</span>"

    def _render_alerts(self) -> None:
        """The firing history (when the alerts tab exists) and the newest firing, in the status
        line."""
        recent = list(self.monitor.alerts.recent)
        if self._alerts_seen == len(recent):
            return
        self._alerts_seen = len(recent)
        if self._built("alert_ui"):
            self.alert_ui.show_history(recent)
        if recent:
            self.say(f"ALERT {recent[-1].rule}: {recent[-1].message}", "warn")

    def _show_stored(self) -> None:
        """Static view of the recorded data (no live source)."""
        mon = self.monitor
        candles, pa = mon.stored_pair()
        if pa is None:
            self.say(f"stored data: {len(candles[mon.y])} {mon.y} and {len(candles[mon.x])} "
                     f"{mon.x} candles of {mon.timeframe}; need 10 each — record or load "
                     "files first", "warn")
            return
        bars = self.charts.draw_stored(candles, pa)
        self.stats.value = stored_stats_html(pa)
        self.charts.flush()
        self.say(f"stored data: {bars:,} aligned {mon.timeframe} bars", "ok")
