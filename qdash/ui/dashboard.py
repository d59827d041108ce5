"""The pairs dashboard: controls, live Bokeh panels, stats, backtest, alerts, files — one object.

``Dashboard(...).show()`` in a JupyterLab cell, or ``dashboards/pairs.ipynb`` under Voila, which
only builds one (:meth:`Dashboard.from_env`). Everything it shows comes from the programmatic API:
:class:`~qdash.live.LiveSession` (feed → store → candles → pair state → alerts),
:func:`qdash.backtest.run`, :class:`~qdash.alerts.AlertManager`, :func:`qdash.io.load`.

Rendering: ONE loop at ``fps`` frames per second (default 10, non-overlapping: a slow frame
delays the next instead of piling up) pulls what is new from the session by cursor and sends it
to the browser as one Bokeh patch message set per view (:class:`FrameBokehModel`), so the kernel
sends a few tens of comm messages per second whatever the tick rate. The z-score's live point
(the forming bar) moves every frame; candle panels change when a candle does.

Widget callbacks may run on another thread (ipykernel subshells): every callback is handed to
the loop captured at construction with ``call_soon_threadsafe``; widgets change only on the loop.

First paint: a page's widget manager fetches and creates every widget the kernel holds before it
shows any, so the tabs after the first (backtest, alerts, stats over time, files, scanner) are
built when first opened, or first used from code (``d.bt``, ``d.scanner``, ...): 240 widgets at
first paint become 96.
"""

from __future__ import annotations

import asyncio
import base64
import html
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import ipywidgets as w
import numpy as np
import pandas as pd

from ..alerts import AlertManager, WebhookSink
from ..analytics import PairConfig, check_filters, liquidity_stats
from ..bars import stored_candles
from ..errors import QdashError
from ..live import LiveSession
from ..model import normalize_symbol, timeframe_ms
from ..server import bokehjs
from ..store import Store, resolve_db_path
from .bokeh_widget import FrameBokehModel, bokeh_resources
from .controls import AlertControls, BacktestControls, DataControls, MarketControls
from .plots import DOWN, UP, PairFigures
from .render import connection_text, funding_rows, live_point, pair_columns, signal_rows
from .render import fmt as _fmt
from .scanner import ScannerPanel

log = logging.getLogger(__name__)

ROLLOVER = 2_000          # points kept per time-series source in the browser
STATS_EVERY_S = 1.0       # stats table refresh
HEAT_EVERY_S = 5.0        # correlation heatmap refresh
STATS_HISTORY_EVERY_S = 60.0  # one row of the per-minute stats time series
HEAT_BARS = 1_000         # bars of returns behind the correlation heatmap
FUNDING_EVERY_S = 5.0     # premiumIndex (funding rate, next funding, mark/index) refresh


def _table(rows: list[tuple[str, str]], cls: str = "qdash-stats") -> str:
    body = "".join(f"<tr><th style='text-align:left;padding-right:12px'>{html.escape(k)}</th>"
                   f"<td style='text-align:right'>{v}</td></tr>" for k, v in rows)
    return f"<table class='{cls}' style='font-size:12px'>{body}</table>"


def _frame_html(df: pd.DataFrame, cls: str, max_rows: int = 50) -> str:
    if df is None or not len(df):
        return f"<div class='{cls}'><i>none yet</i></div>"
    return (f"<div class='{cls}' style='max-height:260px;overflow:auto;font-size:12px'>"
            + df.tail(max_rows).to_html(classes=cls, border=0, float_format=lambda v: f"{v:,.6g}")
            + "</div>")


def _csv_link(name: str, df: pd.DataFrame) -> str:
    from ..io import to_csv

    data = base64.b64encode((to_csv(df) or "").encode()).decode()
    return (f"<a download='{html.escape(name)}' href='data:text/csv;base64,{data}' "
            f"style='margin-right:14px'>⬇ {html.escape(name)} ({len(df):,} rows)</a>")


class _WidgetBar:
    """A byte-progress bar on a FloatProgress widget, fed from a loader thread."""

    def __init__(self, dashboard: Dashboard, total: int, desc: str):
        self.d, self.total, self.done = dashboard, max(total, 1), 0
        self.d._call(self._show, desc)

    def _show(self, desc: str) -> None:
        self.d.data.progress.description = desc[:40]
        self.d.data.progress.value = 0.0

    def update(self, n: int) -> None:
        self.done += n
        self.d._call(setattr, self.d.data.progress, "value", min(1.0, self.done / self.total))

    def close(self) -> None:
        self.d._call(setattr, self.d.data.progress, "value", 1.0)


class Dashboard:
    """Live pair dashboard. Parameters are the controls' initial values.

    ``source``: ``"sim"`` (the simulated exchange: ``sim_ws_url``/``sim_rest_url`` or
    ``$QDASH_SIM_WS_URL``/``$QDASH_SIM_REST_URL``, else one started inside this kernel),
    ``"binance"``, ``"hub"`` (ticks pushed to the qdash server) or ``"store"`` (recorded data
    only). ``db``: the store; by default the user's store (``$QDASH_DB``, else ``qdash.db`` in
    the user data directory) for exchange data and the simulator's own store for ``sim``: the
    two never mix (:attr:`qdash.Store.venue`); switching source switches between them.
    """

    def __init__(self, source: str = "sim", symbols=("BTCUSDT", "ETHUSDT"), y: str | None = None,
                 x: str | None = None, timeframe: str = "1s", window: int = 120,
                 method: str = "rolling-ols", entry: float = 2.0, exit: float = 0.0,
                 stop: float = 4.0,
                 db: str | None = None, fps: float = 10.0, sim_ws_url: str | None = None,
                 sim_rest_url: str | None = None, sim_rate: float = 200.0):
        self.symbols = [normalize_symbol(s) for s in symbols]
        if len(self.symbols) < 2:
            raise QdashError("a pair dashboard needs at least two symbols")
        y = normalize_symbol(y) if y else self.symbols[1]
        x = normalize_symbol(x) if x else self.symbols[0]
        self.loop = asyncio.get_event_loop()
        self._db = db
        self._stores: dict[str, Store] = {}
        self.store = self._store_for(source)
        self.alerts = AlertManager(self.store)
        self.fps = float(fps)
        self.sim_ws_url = sim_ws_url or os.environ.get("QDASH_SIM_WS_URL")
        self.sim_rest_url = sim_rest_url or os.environ.get("QDASH_SIM_REST_URL")
        self.sim_rate = sim_rate
        self._own_sim = None
        self.session: LiveSession | None = None
        self._render_task: asyncio.Task | None = None
        self.frames = 0
        self.comm_messages = 0
        self._last = {"stats": 0.0, "heat": 0.0, "history": 0.0, "status": 0.0}
        self._stats_history: list[dict] = []
        self.last_backtest = None
        self.errors: list[str] = []

        self.market = MarketControls(source, self.symbols, y, x, timeframe, window, method,
                                     entry, exit, stop)
        self.status = w.HTML(layout=w.Layout(min_height="22px"))
        self.stats = w.HTML()
        self._build_views()
        self._wire()
        self._say("ready: press “start live”, or pick “stored data”")

    # --- construction --------------------------------------------------------------------------
    @classmethod
    def from_env(cls, **overrides) -> Dashboard:
        """A Dashboard configured by ``QDASH_SOURCE``, ``QDASH_SYMBOLS``, ``QDASH_PAIR`` (y,x),
        ``QDASH_TIMEFRAME``, ``QDASH_DB`` (what ``qdash dashboard``/``qdash demo`` set) and
        ``QDASH_WINDOW`` (rolling window in bars)."""
        env = os.environ
        kw: dict = {"source": env.get("QDASH_SOURCE", "sim"),
                    "symbols": env.get("QDASH_SYMBOLS", "BTCUSDT,ETHUSDT").split(","),
                    "timeframe": env.get("QDASH_TIMEFRAME", "1s"), "db": env.get("QDASH_DB")}
        if env.get("QDASH_WINDOW"):
            kw["window"] = int(env["QDASH_WINDOW"])
        if env.get("QDASH_PAIR"):
            kw["y"], kw["x"] = env["QDASH_PAIR"].split(",")
        kw.update(overrides)
        return cls(**kw)

    def _store_for(self, source: str) -> Store:
        """The store of ``source``: the one named at construction, else the simulator's own
        store for ``sim`` and the user's store for every other source."""
        path = resolve_db_path(self._db, simulated=self._db is None and source == "sim")
        if path not in self._stores:
            self._stores[path] = Store(path)
        return self._stores[path]

    @property
    def y(self) -> str:
        return self.market.y.value

    @property
    def x(self) -> str:
        return self.market.x.value

    def _build_views(self) -> None:
        """The Bokeh views, built once: a new pair, timeframe or source empties and relabels
        the same figures (:meth:`_reset_views`)."""
        m = self.market
        self.figures = PairFigures(self.y, self.x, entry=m.entry.value, exit=m.exit.value,
                                   stop=m.stop.value or None)
        self.market_view = FrameBokehModel(self.figures.layout())
        self.heat_view = FrameBokehModel(self.figures.heatmap)
        self._market_box = w.VBox([self.market_view])
        self._heat_box = w.VBox([self.heat_view])
        self._reset_views()

    def _reset_views(self) -> None:
        m = self.market
        self.figures.reset(self.y, self.x, stop=m.stop.value or None)
        self.figures.set_levels(m.entry.value, m.exit.value)
        self.figures.set_heat_symbols(self._watched())
        self._cursors = {"y": 0, "x": 0, "pair": 0}
        self._norm_base: tuple[float, float] | None = None

    def _views(self) -> list[FrameBokehModel]:
        return [self.market_view, self.heat_view] + (
            [self.backtest_view] if self._built("backtest_view") else [])

    # --- the tabs after the first: built when first opened (or used from code) ------------------
    # A page's widget manager fetches and creates every widget of the kernel before it shows
    # the first one: the panels nobody opened yet would cost about half of the first paint.
    def _built(self, name: str) -> bool:
        """Whether the lazily built part ``name`` (a cached property below) exists yet."""
        return name in self.__dict__

    @cached_property
    def backtest_view(self) -> FrameBokehModel:
        """The backtest tab's equity, drawdown and trade plots."""
        return FrameBokehModel(self.figures.backtest_layout())

    @cached_property
    def bt(self) -> BacktestControls:
        """The backtest tab's controls and results."""
        bt = BacktestControls()
        self._click(bt.run, self.run_backtest)
        return bt

    @cached_property
    def alert_ui(self) -> AlertControls:
        """The alerts tab: rule editor, active rules, firing history."""
        a = AlertControls()
        self._click(a.add, self.add_rule)
        a.rules.value = self._rules_html()
        a.history.value = self._alert_history_html(list(self.alerts.recent))
        return a

    @cached_property
    def data(self) -> DataControls:
        """The files tab: uploads and CSV downloads."""
        data = DataControls()
        self._on(data.upload, lambda c: self.load_uploads(c["new"]))
        self._click(data.prepare, self.prepare_downloads)
        return data

    @cached_property
    def stats_history(self) -> w.HTML:
        """The stats-over-time tab's table."""
        return w.HTML(self._stats_history_html())

    @cached_property
    def scanner(self) -> ScannerPanel:
        """The scanner tab."""
        return ScannerPanel.attach(self)

    def _tab_builders(self) -> list[tuple[str, Callable[[], w.Widget]]]:
        return [
            ("backtest", lambda: self.bt.widget(w.VBox([self.backtest_view]))),
            ("alerts", lambda: self.alert_ui.widget()),
            ("stats over time", lambda: w.VBox([w.HTML("<b>per-minute statistics</b>"),
                                                self.stats_history])),
            ("files & downloads", lambda: self.data.widget()),
            ("scanner", lambda: self.scanner.widget()),
        ]

    def _open_tab(self, tabs: w.Tab, builders: list, index: int | None) -> None:
        if index is None or index == 0:
            return
        box = tabs.children[index]
        if not box.children:
            box.children = [builders[index - 1][1]()]

    def _watched(self) -> list[str]:
        return list(dict.fromkeys([self.y, self.x, *self.symbols]))

    @property
    def widget(self) -> w.Widget:
        """The whole dashboard as one widget."""
        if not hasattr(self, "_widget"):
            builders = self._tab_builders()
            tabs = w.Tab(children=[
                w.HBox([self._heat_box, w.VBox([w.HTML("<b>statistics</b>"), self.stats])]),
                *[w.VBox() for _ in builders]])
            for i, title in enumerate(["stats & heatmap", *[t for t, _ in builders]]):
                tabs.set_title(i, title)
            self._on(tabs, lambda c: self._open_tab(tabs, builders, c["new"]),
                     names="selected_index")
            self._widget = w.VBox([
                w.HTML("<h3 style='margin:4px 0'>qdash — pair monitor</h3>"),
                self.market.widget(), self.status, self._market_box, tabs,
            ], layout=w.Layout(width="100%"))
        return self._widget

    def show(self) -> Dashboard:
        """Display in the current cell (JupyterLab) or page (Voila). BokehJS goes inline in the
        output (offline), unless the published app's page loads it itself
        (:mod:`qdash.server.bokehjs`)."""
        from bokeh.io import output_notebook
        from IPython.display import display

        if not bokehjs.page_has_bokehjs():
            output_notebook(resources=bokeh_resources(), hide_banner=True)
        display(self.widget)
        return self

    # --- wiring (callbacks hop onto the loop) --------------------------------------------------
    def _call(self, fn, *args) -> None:
        """Run ``fn(*args)`` on the dashboard's loop (from any thread)."""
        self.loop.call_soon_threadsafe(self._guard, fn, *args)

    def _guard(self, fn, *args):
        try:
            result = fn(*args)
            if asyncio.iscoroutine(result):
                task = self.loop.create_task(result)
                task.add_done_callback(self._task_done)
        except Exception as e:  # never let a control kill the session
            self._error(e)

    def _task_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._error(task.exception())

    def _on(self, widget, handler, names="value") -> None:
        widget.observe(lambda change: self._call(handler, change), names=names)

    def _click(self, button, handler) -> None:
        button.on_click(lambda _b: self._call(handler))

    def _wire(self) -> None:
        m = self.market
        self._on(m.live, lambda c: self.start() if c["new"] else self.stop())
        for control in (m.y, m.x, m.timeframe, m.window, m.method, m.source):
            self._on(control, lambda c: self.restart())
        self._on(m.symbols, lambda c: self._set_symbols(c["new"]))
        for control in (m.entry, m.exit):
            self._on(control, lambda c: self.figures.set_levels(m.entry.value, m.exit.value))
        self._click(m.run_tests, self.run_tests)

    # --- status --------------------------------------------------------------------------------
    def _say(self, text: str, level: str = "info", hold_s: float | None = None) -> None:
        """Show ``text`` in the status line; it stays ``hold_s`` seconds (errors 15 s, others 5 s)
        before the live summary takes the line back."""
        color = {"info": "#555", "ok": "#1b7f3b", "warn": "#b36b00", "error": "#c62828"}[level]
        hold = hold_s if hold_s is not None else (15.0 if level == "error" else 5.0)
        self._notice_until = time.monotonic() + hold
        if "\n" in text:  # a parser error with its caret line
            self.status.value = (f"<pre style='color:{color};margin:0'>{html.escape(text)}"
                                 "</pre>")
        else:
            self.status.value = f"<span style='color:{color}'>{html.escape(text)}</span>"

    def _render_status(self, s: LiveSession, m: dict) -> None:
        if time.monotonic() < getattr(self, "_notice_until", 0.0):
            return
        rate = sum(s.ticks_per_second(sym) for sym in s.symbols)
        text = (f"live · {self.market.source.value} · {len(s.symbols)} symbols · "
                f"{rate:,.0f} ticks/s · {m['bars']:,} aligned {s.timeframe} bars")
        level = "ok"
        conn = connection_text(s.feed.connection_status()
                               if hasattr(s.feed, "connection_status") else None)
        if conn:
            text = f"{self.market.source.value}: {conn} · {m['bars']:,} aligned bars so far"
            level = "warn"
        if s.refresh_error:
            text += f" · statistics refresh failed: {s.refresh_error}"
            level = "warn"
        if m["stale"]:
            text += (f" · a leg is stale (no trade for > {s.pair_config.stale_after_s:g} s): "
                     "z-score withheld")
            level = "warn"
        color = {"ok": "#1b7f3b", "warn": "#b36b00"}[level]
        self.status.value = f"<span style='color:{color}'>{html.escape(text)}</span>"

    def _error(self, e: BaseException) -> None:
        msg = f"{type(e).__name__}: {e}" if not isinstance(e, QdashError) else str(e)
        self.errors.append(msg)
        log.warning("dashboard: %s", msg)
        self._say(msg, "error")

    # --- live ----------------------------------------------------------------------------------
    def _pair_config(self) -> PairConfig:
        """The pair's analytics and THE signal (charts, table, alerts and the backtest button
        all use it): the chosen hedge method on log prices, β and z over ``window`` bars."""
        m = self.market
        wnd = int(m.window.value)
        return PairConfig(symbol_y=self.y, symbol_x=self.x, hedge=m.method.value, log=True,
                          beta_window=wnd, z_window=wnd, corr_window=wnd,
                          window=max(wnd * 10, 2_000), history=max(ROLLOVER, wnd * 2))

    async def _make_feed(self, source: str):
        symbols = self._watched()
        if source == "binance":
            from ..feeds.binance import BinanceFutures
            return BinanceFutures(symbols)
        if source == "hub":
            from ..feeds.hub import Hub
            return Hub(symbols)
        if source == "sim":
            from ..feeds.binance import BinanceFutures
            ws, rest = self.sim_ws_url, self.sim_rest_url
            if not ws:
                from ..sim.exchange import DEMO_WEIGHT_LIMIT, SimExchange
                if self._own_sim is None:
                    self._own_sim = SimExchange(symbols, rate=self.sim_rate,
                                                weight_limit=DEMO_WEIGHT_LIMIT)
                    await self._own_sim.start()
                ws, rest = self._own_sim.ws_url, self._own_sim.rest_url
            return BinanceFutures(symbols, ws_url=ws, rest_url=rest, source="sim")
        raise QdashError(f"unknown source {source!r}: use sim, binance, hub or store")

    def start(self) -> Dashboard:
        """Start the live session (or show stored data) and the render loop; returns at once."""
        task = self.loop.create_task(self._start())
        task.add_done_callback(self._task_done)
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
        for view in self._views():  # serialized now, not while a page waits for it
            view.snapshot()
        return self

    async def _start(self) -> None:
        m = self.market
        if m.live.value is False:
            m.live.value = True  # keeps the button in step when started from code
            return  # the observer calls start() again
        await self._stop_session()
        source = m.source.value
        self.store = self._store_for(source)
        if source == "store":
            self._show_stored()
            m.live.value = False
            return
        feed = await self._make_feed(source)
        self._heat_history = await asyncio.to_thread(self._stored_history, HEAT_BARS)
        self.session = LiveSession(feed, y=self.y, x=self.x, symbols=self._watched(),
                                   timeframe=m.timeframe.value, store=self.store,
                                   alerts=self.alerts, pair_config=self._pair_config(),
                                   on_status=self._say)  # history bootstrap progress
        if not self.alerts.running:
            self.alerts.start()
        self.session.start()
        self._start_funding(getattr(feed, "rest_url", None))
        m.live.description, m.live.button_style = "stop live", "danger"
        self._say(f"live: {source}, {', '.join(self._watched())}, {m.timeframe.value} bars", "ok")
        if self._render_task is None or self._render_task.done():
            self._render_task = self.loop.create_task(self._render_loop())

    async def _stop_session(self) -> None:
        self._stop_funding()
        if self.session is not None:
            session, self.session = self.session, None
            await session.stop()

    def stop(self) -> Dashboard:
        """Stop the live session (the render loop keeps showing what was received)."""
        task = self.loop.create_task(self._stop())
        task.add_done_callback(self._task_done)
        return self

    async def _stop(self) -> None:
        was_live = self.session is not None
        await self._stop_session()
        m = self.market
        m.live.description, m.live.button_style = "start live", "success"
        if m.live.value:
            m.live.value = False
        if was_live:  # (a switch to stored data stopped the session already and says so)
            self._say("stopped; recorded data stays in the store", "info")

    async def close(self) -> None:
        """Stop everything this dashboard started (session, render loop, own simulator)."""
        await self._stop_session()
        if self._built("scanner"):
            await self.scanner.stop()
        if self._render_task is not None:
            self._render_task.cancel()
        if self.alerts.running:
            await self.alerts.stop()
        if self._own_sim is not None:
            await self._own_sim.stop()
            self._own_sim = None

    def restart(self) -> None:
        """Empty the views for new controls (pair, timeframe, window, method, source) and
        start again from history."""
        if self.y == self.x:
            self._say("pick two different symbols for y and x", "warn")
            return
        was_live = self.session is not None
        self._reset_views()
        if was_live:
            self.loop.create_task(self._start()).add_done_callback(self._task_done)
        elif self.market.source.value == "store":
            self._show_stored()

    async def open_pair(self, y: str, x: str) -> None:
        """Show ``y``/``x`` in the pair monitor (the scanner's “open”): both join the watch list
        and the monitor starts live on them, from their history (the live bootstrap)."""
        y, x = normalize_symbol(y), normalize_symbol(x)
        await self._stop_session()   # the controls' restarts below then only rebuild views
        m = self.market
        self.symbols = list(dict.fromkeys([y, x, *self.symbols]))
        with m.y.hold_trait_notifications(), m.x.hold_trait_notifications():
            m.y.options, m.x.options = self.symbols, self.symbols
        m.y.value, m.x.value = y, x
        m.symbols.value = ",".join(self.symbols)
        self._call(self.start)       # after the restarts those changes queued

    def _set_symbols(self, text: str) -> None:
        try:
            symbols = [normalize_symbol(s) for s in text.replace(" ", ",").split(",") if s]
        except ValueError as e:
            self._say(str(e), "error")
            return
        if len(symbols) < 2:
            self._say("watch at least two symbols", "warn")
            return
        self.symbols = symbols
        m = self.market
        y, x = m.y.value, m.x.value
        if y not in symbols or x not in symbols or y == x:   # the pair left the list
            y, x = symbols[1], symbols[0]
        with m.y.hold_trait_notifications(), m.x.hold_trait_notifications():
            m.y.options, m.x.options = symbols, symbols
        m.y.value, m.x.value = y, x          # options reset the selection when set
        self.restart()

    # --- the render loop -----------------------------------------------------------------------
    async def _render_loop(self) -> None:
        period = 1.0 / self.fps
        while True:
            started = self.loop.time()
            try:
                self.render_frame()
            except Exception as e:  # a bad frame is reported, the loop goes on
                self._error(e)
            await asyncio.sleep(max(0.0, period - (self.loop.time() - started)))

    def render_frame(self) -> None:
        """Push what is new since the last frame to the browser (one patch set per view)."""
        s = self.session
        if s is not None:
            self._render_candles(s)
            self._render_pair(s)
            now = time.monotonic()
            if now - self._last["stats"] >= STATS_EVERY_S:
                self._last["stats"] = now
                self._render_stats(s)
                self._render_alert_history()
            if now - self._last["heat"] >= HEAT_EVERY_S:
                self._last["heat"] = now
                self._render_heat({sym: s.candles[sym].frame() for sym in s.symbols})
            if now - self._last["history"] >= STATS_HISTORY_EVERY_S:
                self._last["history"] = now
                self._record_stats_history(s)
        for view in self._views():
            self.comm_messages += view.flush()
        self.frames += 1

    def _candle_data(self, bars: pd.DataFrame) -> dict:
        t = bars.index.as_unit("ms").asi8.astype(float)
        tf = timeframe_ms(self.market.timeframe.value)
        up = bars["close"].to_numpy() >= bars["open"].to_numpy()
        return {"t": (t + tf / 2).tolist(), "open": bars["open"].tolist(),
                "high": bars["high"].tolist(), "low": bars["low"].tolist(),
                "close": bars["close"].tolist(), "volume": bars["volume"].tolist(),
                "color": np.where(up, UP, DOWN).tolist(), "w": [tf * 0.8] * len(bars)}

    def _render_candles(self, s: LiveSession) -> None:
        for leg, symbol in (("y", self.y), ("x", self.x)):
            new, self._cursors[leg] = s.candles_since(symbol, self._cursors[leg])
            src = self.figures.candles[leg]
            forming = s.forming(symbol)  # one candle, or more while a late-tick tolerance runs
            rows = pd.concat([new, forming]) if len(forming) else new
            if not len(rows):
                continue
            data = self._candle_data(rows.iloc[-ROLLOVER:])
            # the forming candles shown last frame (the last rows) are replaced by the first new
            # rows (the same candles, closed or grown since); the remaining rows are appended
            size = len(src.data["t"])
            before = min(getattr(src, "_n_forming", 0), size)
            shown = min(before, len(data["t"]))
            if shown:
                first = size - before
                src.patch({k: [(first + i, v[i]) for i in range(shown)] for k, v in data.items()})
            if len(data["t"]) > shown:
                src.stream({k: v[shown:] for k, v in data.items()}, rollover=ROLLOVER)
            src._n_forming = len(forming)

    def _render_pair(self, s: LiveSession) -> None:
        shown = self._cursors["pair"]
        new, self._cursors["pair"] = s.pair_rows_since(shown, ROLLOVER)
        metrics = s.metrics()
        if len(new):
            if self._norm_base is None:
                self._norm_base = (math.exp(new["y"].iloc[0]), math.exp(new["x"].iloc[0]))
            data = pair_columns(new, metrics, s.state.spec, self._norm_base,
                                continues=shown > 0)
            # NaN (not yet defined, or a break) is sent as NaN: Bokeh lifts the pen there
            self.figures.pair.stream(data, rollover=ROLLOVER)
        self._render_live_z(s)

    def _render_live_z(self, s: LiveSession) -> None:
        """The z-score the forming bar would have now (moves every frame): the pair kernel run
        on a copy of the live state (:meth:`PairState.preview`)."""
        fy, fx = s.forming(self.y), s.forming(self.x)
        if not len(fy) or not len(fx):
            self.figures.live.data = live_point(None, 0.0)
            return
        t_open = int(max(fy.index[-1].value, fx.index[-1].value) // 1_000_000)
        pv = s.state.preview(float(fy["close"].iloc[-1]), float(fx["close"].iloc[-1]), t_open)
        self.figures.live.data = live_point(pv, t_open)

    def _render_heat(self, candles: dict[str, pd.DataFrame]) -> None:
        """Correlation of returns across every watched symbol
        (:func:`~qdash.analytics.stats.return_correlations`) over the stored history of the
        timeframe and what arrived live."""
        from ..analytics import return_correlations

        history = getattr(self, "_heat_history", {})
        closes = {}
        for sym in self._watched():
            parts = [f["close"] for f in (history.get(sym), candles.get(sym))
                     if f is not None and len(f)]
            if parts:
                closes[sym] = pd.concat(parts)
        if len(closes) < 2:
            return
        corr = return_correlations(closes, last=HEAT_BARS)
        names = list(corr.columns)
        a, b, v = [], [], []
        for i in names:
            for j in names:
                a.append(i)
                b.append(j)
                v.append(float(corr.loc[i, j]) if math.isfinite(corr.loc[i, j]) else 0.0)
        self.figures.set_heat_symbols(names)
        self.figures.heat.data = {"a": a, "b": b, "corr": v, "label": [f"{c:.2f}" for c in v]}

    # --- stats ---------------------------------------------------------------------------------
    def _liquidity_rows(self, s: LiveSession) -> list[tuple[str, str]]:
        legs = {}
        for sym in (self.y, self.x):
            bars = s.candles[sym].frame().iloc[-600:]
            if len(bars) < 2:
                return [("liquidity filters", "waiting for 2 bars per leg")]
            legs[sym] = liquidity_stats(bars, sym, s.tf_ms)
        values = {name: box.value for name, box in self.market.filters.items()}
        passed = check_filters(legs[self.y], legs[self.x], **values)
        return [(f"filter {k}", "pass" if ok else "<b style='color:#c62828'>FAIL</b>")
                for k, ok in passed.items()]

    def _render_stats(self, s: LiveSession) -> None:
        m = s.metrics()
        feed = s.feed.stats() if hasattr(s.feed, "stats") else {}
        per = feed.get("symbols", {})
        waiting = s.waiting_for()
        enough = not any(w.startswith("ADF") for w in waiting)
        rows = [
            ("pair", f"{self.y} / {self.x} ({s.timeframe} bars, log prices)"),
            ("aligned bars (this segment)", f"{_fmt(m['bars'])} ({_fmt(m['segment_bars'])})"),
            *signal_rows(m, s.state.spec, waiting),
            ("ADF stat / p (stationarity of the OLS spread)",
             f"{_fmt(m['adf_stat'], 3)} / {_fmt(m['adf_p'], 3)}" if enough else "–"),
            ("Engle–Granger coint p (MacKinnon)", _fmt(m["coint_p"], 3) if enough else "–"),
            ("half-life (s)", _fmt(m["half_life_s"], 3) if enough else "–"),
            ("Hurst (std of lagged differences)", _fmt(m["hurst"], 3) if enough else "–"),
            ("correlation of returns", _fmt(m["corr"], 3)),
            ("liquidity score y / x / pair",
             f"{_fmt(m['liquidity_y'], 2)} / {_fmt(m['liquidity_x'], 2)} / "
             f"{_fmt(m['liquidity_pair'], 2)}"),
            *self._liquidity_rows(s),
            *self._funding_rows(),
        ]
        for sym in self._watched():
            st = per.get(sym, {})
            rows.append((sym, f"{s.ticks_per_second(sym):,.1f} ticks/s, last tick "
                         f"{_fmt(s.last_tick_age_s(sym), 3)} s ago, "
                         f"lag {_fmt(st.get('lag_ms'))} ms"))
        if feed:
            rows.append(("feed", f"{_fmt(feed.get('messages_per_s'), 4)} msg/s, "
                         f"{_fmt(feed.get('reconnects', 0))} reconnects, "
                         f"{_fmt(feed.get('gaps_found', 0))} gaps "
                         f"({_fmt(feed.get('gaps_filled', 0))} filled)"))
        rows.append(("kernel → browser", f"{self.comm_messages:,} comm messages in "
                     f"{self.frames:,} frames"))
        note = ("".join(f"<div style='color:#b36b00'>waiting: {html.escape(t)}</div>"
                        for t in waiting))
        self.stats.value = note + _table(rows)
        self._render_status(s, m)

    # --- funding (premiumIndex over REST, off the loop) -----------------------------------------
    def _start_funding(self, rest_url: str | None) -> None:
        """Poll each leg's premiumIndex every FUNDING_EVERY_S seconds in a worker thread."""
        self._premium = {sym: None for sym in (self.y, self.x)}
        self._premium_error = None if rest_url else "no REST source for this feed"
        if rest_url:
            self._funding_task = self.loop.create_task(self._funding_loop(rest_url))

    def _stop_funding(self) -> None:
        task = getattr(self, "_funding_task", None)
        if task is not None:
            task.cancel()
            self._funding_task = None

    async def _funding_loop(self, rest_url: str) -> None:
        from ..feeds.rest import RestClient

        client = RestClient(rest_url, retries=1, max_wait=FUNDING_EVERY_S)
        legs = list(self._premium)
        while True:
            try:
                got = await asyncio.to_thread(
                    lambda: {sym: client.get("/fapi/v1/premiumIndex", {"symbol": sym})
                             for sym in legs})
                self._premium.update(got)
                self._premium_error = None
            except Exception as e:  # shown in the table; the next poll tries again
                self._premium_error = f"{type(e).__name__}: {e}"
            await asyncio.sleep(FUNDING_EVERY_S)

    def _funding_rows(self) -> list[tuple[str, str]]:
        premium = getattr(self, "_premium", None)
        if premium is None:
            return []
        rows = funding_rows(premium, int(time.time() * 1000))
        if self._premium_error:
            rows.append(("funding", f"not available: {html.escape(self._premium_error)}"))
        return rows

    def _record_stats_history(self, s: LiveSession) -> None:
        m = s.metrics()
        keep = ("ts_ms", "bars", "zscore", "beta_ols", "beta_rolling", "beta_kalman",
                "beta_huber", "beta_theil_sen", "adf_p", "coint_p", "half_life_s", "corr",
                "liquidity_pair")
        row = {k: m.get(k) for k in keep}
        row["time"] = pd.Timestamp(m["ts_ms"] or 0, unit="ms", tz="UTC")
        self._stats_history.append(row)
        if self._built("stats_history"):
            self.stats_history.value = self._stats_history_html()

    def _stats_history_html(self) -> str:
        if not self._stats_history:
            return ""
        frame = pd.DataFrame(self._stats_history).set_index("time").drop(columns="ts_ms")
        return _frame_html(frame, "qdash-stats-history", 30)

    async def run_tests(self) -> None:
        """Recompute ADF / cointegration / robust betas now."""
        if self.session is None:
            self._say("start live (or pick stored data) first", "warn")
            return
        ok = await self.session.refresh()
        self._render_stats(self.session)
        self._say("statistics refreshed" if ok else "; ".join(self.session.waiting_for()),
                  "ok" if ok else "warn")

    # --- stored data ---------------------------------------------------------------------------
    def _stored_candles(self) -> dict[str, pd.DataFrame]:
        tf = self.market.timeframe.value
        return {s: stored_candles(self.store, s, tf) for s in self._watched()}

    def _stored_history(self, bars: int) -> dict[str, pd.DataFrame]:
        """The last ``bars`` stored candles of every watched symbol at the current timeframe."""
        tf = self.market.timeframe.value
        start = pd.Timestamp.now(tz="UTC") - pd.Timedelta(milliseconds=timeframe_ms(tf) * bars)
        return {s: stored_candles(self.store, s, tf, start) for s in self._watched()}

    def _show_stored(self) -> None:
        """Static view of the recorded data (no live source)."""
        from ..analytics import PairAnalytics

        candles = self._stored_candles()
        by, bx = candles[self.y], candles[self.x]
        if min(len(by), len(bx)) < 10:
            self._say(f"stored data: {len(by)} {self.y} and {len(bx)} {self.x} candles of "
                      f"{self.market.timeframe.value}; need 10 each — record or load files first",
                      "warn")
            return
        for leg, bars in (("y", by), ("x", bx)):
            self.figures.candles[leg].data = self._candle_data(bars.iloc[-ROLLOVER:])
        pa = PairAnalytics.from_bars(by, bx, self._pair_config(),
                                     timeframe_ms=timeframe_ms(self.market.timeframe.value))
        ser = pa.series.iloc[-ROLLOVER:]
        self.figures.pair.data = pair_columns(ser, pa.summary, pa.state.spec,
                                              (ser["price_y"].iloc[0], ser["price_x"].iloc[0]),
                                              continues=False)
        self._render_heat(candles)
        waiting = pa.state.waiting_for()
        self.stats.value = _table(signal_rows(pa.summary, pa.state.spec, waiting) + [
            (k, _fmt(v)) for k, v in pa.summary.items() if not isinstance(v, str)])
        for view in self._views():
            self.comm_messages += view.flush()
        self._say(f"stored data: {len(ser):,} aligned {self.market.timeframe.value} bars", "ok")

    # --- backtest ------------------------------------------------------------------------------
    async def run_backtest(self) -> None:
        """Backtest the rule on the candles on screen (fetched history and live bars; stored ones
        when not live), with both legs' stored funding; the panel shows the total."""
        from ..backtest import metrics as mt
        from ..backtest import run
        from ..backtest.funding import funding_note

        m, b = self.market, self.bt
        by, bx = self._backtest_candles()
        if min(len(by), len(bx)) < 2:
            self._say(f"backtest needs stored bars of both legs, have {len(by)} / {len(bx)}",
                      "warn")
            return
        self._say("backtest running…")
        fy, fx = await asyncio.to_thread(self._stored_funding, by, bx)
        result = await asyncio.to_thread(
            run, by, bx, self._pair_config().signal(), entry=m.entry.value,
            exit=m.exit.value, stop=m.stop.value or None, max_hold=b.max_hold.value or None,
            fee_bps=b.fee_bps.value, slippage_bps=b.slippage_bps.value, funding_y=fy,
            funding_x=fx)
        result.notes.append(funding_note(result, fy, fx, (self.y, self.x)))
        self.last_backtest = result
        eq = result.equity
        peak = eq.cummax()
        self.figures.equity.data = {"t": eq.index.as_unit("ms").asi8.astype(float).tolist(),
                                    "equity": eq.tolist(),
                                    "drawdown": ((eq / peak) - 1.0).tolist()}
        tr = result.trades
        if len(tr):
            times = pd.concat([tr["entry_time"], tr["exit_time"]])
            zs = pd.concat([tr["entry_z"], tr["exit_z"]])
            kinds = ["entry"] * len(tr) + ["exit"] * len(tr)
            self.figures.trades.data = {
                "t": (pd.DatetimeIndex(times).as_unit("ms").asi8).astype(float).tolist(),
                "z": [float(z) if math.isfinite(z) else 0.0 for z in zs],
                "kind": kinds, "color": ["#d62728" if k == "entry" else "#2ca02c" for k in kinds]}
        notes = "".join(f"<div style='color:#b36b00'>{html.escape(n)}</div>"
                        for n in result.notes)
        b.metrics.value = (_table([(k, "n/a" if k in mt.ANNUALISED and not result.metrics[
            "annualised"] else _fmt(v)) for k, v in result.metrics.items()],
            "qdash-backtest-metrics") + notes)
        b.trades.value = _frame_html(tr.rename(columns={"beta": "beta (log prices)"}),
                                     "qdash-backtest-trades")
        for view in self._views():
            self.comm_messages += view.flush()
        self._say(f"backtest ({result.params['hedge']}): {len(tr)} trades, total return "
                  f"{_fmt(result.metrics.get('total_return'), 3)}"
                  + (f" — {result.notes[0]}" if not len(tr) and result.notes else ""), "ok")

    def _backtest_candles(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The candles on screen when live (fetched history + live bars), else the stored ones."""
        s = self.session
        if s is not None and min(len(s.candles[self.y].frame()), len(s.candles[self.x].frame())):
            return s.candles[self.y].frame(), s.candles[self.x].frame()
        candles = self._stored_candles()
        return candles[self.y], candles[self.x]

    def _stored_funding(self, by: pd.DataFrame, bx: pd.DataFrame):
        """Both legs' stored funding over their bars (worker thread): USDⓈ-M perpetuals pay it."""
        from ..backtest.funding import stored_funding

        tf = timeframe_ms(self.market.timeframe.value)
        return (stored_funding(self.store, self.y, by, tf),
                stored_funding(self.store, self.x, bx, tf))

    # --- alerts --------------------------------------------------------------------------------
    def add_rule(self) -> None:
        """Add the rule typed in the editor (errors point at the bad token, in the status)."""
        a = self.alert_ui
        actions = []
        if a.webhook_kind.value != "none":
            sink = WebhookSink(a.webhook_url.value.strip(), format=a.webhook_kind.value)
            if sink.name not in self.alerts.sinks:
                self.alerts.add_sink(sink)
            actions = [sink.name]
        rule = self.alerts.add(a.expression.value, name=a.name.value.strip() or None,
                               severity=a.severity.value, cooldown_s=a.cooldown.value,
                               actions=actions)
        a.expression.value = ""
        a.name.value = ""
        a.rules.value = self._rules_html()
        self._say(f"rule {rule.name!r} added", "ok")

    def _rules_html(self) -> str:
        rows = [{"name": r.name, "condition": str(r.condition), "severity": r.severity,
                 "enabled": r.enabled, "cooldown_s": r.cooldown_s} for r in self.alerts.rules]
        return _frame_html(pd.DataFrame(rows), "qdash-rules")

    @staticmethod
    def _alert_history_html(recent: list) -> str:
        rows = [{"time": pd.Timestamp(al.ts, unit="ms", tz="UTC"), "rule": al.rule,
                 "pair": al.pair, "severity": al.severity, "message": al.message}
                for al in recent]
        return _frame_html(pd.DataFrame(rows), "qdash-alert-history")

    def _render_alert_history(self) -> None:
        """The firing history (when the alerts tab exists) and the newest firing, in the status
        line."""
        recent = list(self.alerts.recent)
        if getattr(self, "_alerts_seen", -1) == len(recent):
            return
        self._alerts_seen = len(recent)
        if self._built("alert_ui"):
            self.alert_ui.history.value = self._alert_history_html(recent)
        if recent:
            last = recent[-1]
            self._say(f"ALERT {last.rule}: {last.message}", "warn")

    # --- files ---------------------------------------------------------------------------------
    async def load_uploads(self, uploads) -> None:
        """Load files chosen in the upload widget into the store; show the report."""
        from ..io import load

        if not uploads:
            return
        reports = []
        with tempfile.TemporaryDirectory() as tmp:
            for item in uploads:
                path = Path(tmp) / Path(item["name"]).name
                path.write_bytes(bytes(item["content"]))
                report = await asyncio.to_thread(
                    load, [path], self.store, progress=lambda p, n, d: _WidgetBar(self, n, d),
                    raise_on_error=False)
                reports.append(str(report))
                if not report.ok:
                    self._say(f"{item['name']}: rejected, nothing stored — see the report",
                              "error")
        self.data.report.value = "".join(f"<pre style='font-size:11px'>{html.escape(r)}</pre>"
                                         for r in reports)
        if all("rejected" not in r for r in reports):
            self._say(f"loaded {len(uploads)} file(s) into {self.store.path}", "ok")

    def prepare_downloads(self) -> None:
        """CSV links for candles, analytics, stats over time, backtest trades, alert history."""
        links = []
        candles = (({s: self.session.candles[s].frame() for s in (self.y, self.x)})
                   if self.session is not None else self._stored_candles())
        for sym in (self.y, self.x):
            links.append(_csv_link(f"candles_{sym}.csv", candles[sym]))
        if self.session is not None:
            links.append(_csv_link("analytics.csv", self.session.state.frame()))
        if self._stats_history:
            links.append(_csv_link("stats_over_time.csv",
                                   pd.DataFrame(self._stats_history).set_index("time")))
        if self.last_backtest is not None:
            links.append(_csv_link("backtest_trades.csv", self.last_backtest.trades))
        links.append(_csv_link("alert_history.csv", self.alerts.history()))
        self.data.downloads.value = "".join(links)
