"""PairMonitor: the pair dashboard's model — no widgets, plain data out.

It holds what the dashboard shows and does: the pair and its settings, the stores (the user's,
and the simulator's own: the two never mix, :attr:`qdash.Store.venue`), the
:class:`~qdash.live.LiveSession`, the :class:`~qdash.alerts.AlertManager`, each leg's funding
(:class:`~qdash.app.funding.FundingPoller`), the per-minute stats history and the last backtest.
Its actions return plain data: :meth:`start` (a session), :meth:`run_backtest` (a
:class:`~qdash.backtest.BacktestResult`), :meth:`load_files` (load reports), :meth:`export`
(frames by file name). A notebook can drive it without a dashboard; the dashboard
(:class:`~qdash.app.dashboard.Dashboard`) is a view of one, after panel's ``Viewer``.

Everything here runs on the kernel's event loop; blocking work goes to a thread.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..alerts import AlertManager, WebhookSink
from ..alerts.schedule import next_evaluation_ms
from ..analytics import LIQUIDITY_FILTERS, PairConfig
from ..bars import stored_candles
from ..config import Settings
from ..defaults import DEFAULT_TIMEFRAME, defaults_for
from ..errors import QdashError
from ..live import LiveSession
from ..model import normalize_symbol, pair_legs, timeframe_ms
from ..store import Store, resolve_db_path
from .feed_factory import FeedFactory
from .funding import FundingPoller

if TYPE_CHECKING:
    from ..scan.live import LiveScanner

ROLLOVER = 2_000          # points kept per time-series (the browser's sources, the pair history)
HEAT_BARS = 1_000         # bars of returns behind the correlation heatmap
STATS_HISTORY_COLUMNS = ("ts_ms", "bars", "zscore", "beta_ols", "beta_rolling", "beta_kalman",
                         "beta_huber", "beta_theil_sen", "adf_p", "coint_p", "half_life_s",
                         "corr", "liquidity_pair")
MIN_STORED_BARS = 10      # per leg, for the stored-data view


class PairMonitor:
    """The live monitor of a pair ``(y, x)`` among ``symbols``; parameters as the dashboard's.

    ``source``: ``sim``, ``binance``, ``hub`` or ``store`` (recorded data only, nothing live);
    ``db``: the store (default: the user's store for exchange data, the simulator's own store
    for ``sim``); ``timeframe``: the bar length (default
    :data:`qdash.defaults.DEFAULT_TIMEFRAME`); ``window``: bars of the rolling β and z (default:
    the timeframe's, :mod:`qdash.defaults`, which follows the timeframe: :meth:`set_timeframe`);
    ``method``: the hedge estimator;
    ``entry``/``exit``/``stop``: z levels of the backtest rule (attributes ``entry_z``,
    ``exit_z``, ``stop_z``; stop 0: none). ``sim_ws_url``/``sim_rest_url``: a running simulated
    exchange (default: ``$QDASH_SIM_WS_URL``/``$QDASH_SIM_REST_URL``, else one started in this
    kernel). ``on_status(text, level)``: told of the history bootstrap's progress. Settings are
    plain attributes: change them, then :meth:`start` again.
    """

    def __init__(self, source: str = "sim", symbols=("BTCUSDT", "ETHUSDT"), y: str | None = None,
                 x: str | None = None, timeframe: str = DEFAULT_TIMEFRAME,
                 window: int | None = None,
                 method: str = "rolling-ols", entry: float = 2.0, exit: float = 0.0,
                 stop: float = 4.0, db: str | None = None, sim_ws_url: str | None = None,
                 sim_rest_url: str | None = None, sim_rate: float = 200.0, on_status=None):
        self.symbols = [normalize_symbol(s) for s in symbols]
        if len(self.symbols) < 2:
            raise QdashError("a pair dashboard needs at least two symbols")
        self.y, self.x = pair_legs(y or self.symbols[1], x or self.symbols[0])
        self.window_is_default = window is None  # the window follows the timeframe's default
        if window is None:
            window = defaults_for(timeframe).beta_window
        self.source, self.timeframe, self.window, self.method = source, timeframe, window, method
        self.entry_z, self.exit_z, self.stop_z = entry, exit, stop
        self.filters = {f.name: f.default for f in LIQUIDITY_FILTERS}
        self._db = db
        self._stores: dict[str, Store] = {}
        self.store = self.store_for(source)
        self.alerts = AlertManager(self.store)
        env = Settings.from_env()
        self.feeds = FeedFactory(sim_ws_url or env.sim_ws_url, sim_rest_url or env.sim_rest_url,
                                 sim_rate)
        self.funding = FundingPoller()
        self.on_status = on_status
        self.session: LiveSession | None = None
        self.heat_history: dict[str, pd.DataFrame] = {}  # stored candles behind the heatmap
        self.stats_history: list[dict] = []
        self.last_backtest = None

    # --- settings ------------------------------------------------------------------------------
    def set_timeframe(self, timeframe: str) -> int:
        """Switch to ``timeframe``; the window becomes that timeframe's default
        (:func:`qdash.defaults.defaults_for`) unless it is the user's own (given, or set by
        :meth:`set_window`). Returns the window."""
        self.timeframe = timeframe
        if self.window_is_default:
            self.window = defaults_for(timeframe).beta_window
        return self.window

    def set_window(self, window: int) -> None:
        """The user's window: kept across timeframe changes (unless it is the timeframe's
        default, which then follows the timeframe again)."""
        self.window = int(window)
        self.window_is_default = self.window == defaults_for(self.timeframe).beta_window

    def watched(self) -> list[str]:
        """The pair's legs first, then the other symbols."""
        return list(dict.fromkeys([self.y, self.x, *self.symbols]))

    def pair_config(self) -> PairConfig:
        """The pair's analytics and THE signal (charts, table, alerts and the backtest all use
        it): the chosen hedge method on log prices, β and z over ``window`` bars."""
        wnd = int(self.window)
        return PairConfig(symbol_y=self.y, symbol_x=self.x, hedge=self.method, log=True,
                          beta_window=wnd, z_window=wnd, corr_window=wnd,
                          window=max(wnd * 10, 2_000), history=max(ROLLOVER, wnd * 2))

    def store_for(self, source: str) -> Store:
        """The store of ``source``: the one named at construction, else the simulator's own
        store for ``sim`` and the user's store for every other source."""
        path = resolve_db_path(self._db, simulated=self._db is None and source == "sim")
        if path not in self._stores:
            self._stores[path] = Store(path)
        return self._stores[path]

    def set_symbols(self, symbols: list[str]) -> tuple[str, str]:
        """Watch ``symbols`` (at least two); the pair stays when both legs are still watched,
        else it becomes the second and first symbol. Returns the pair ``(y, x)``."""
        symbols = [normalize_symbol(s) for s in symbols]
        if len(symbols) < 2:
            raise QdashError("watch at least two symbols")
        self.symbols = symbols
        if self.y not in symbols or self.x not in symbols or self.y == self.x:
            self.y, self.x = symbols[1], symbols[0]
        return self.y, self.x

    def watch_pair(self, y: str, x: str) -> None:
        """Make ``y``/``x`` the pair (two different symbols); both join the watch list."""
        self.y, self.x = pair_legs(y, x)
        self.symbols = list(dict.fromkeys([self.y, self.x, *self.symbols]))

    # --- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> LiveSession | None:
        """(Re)start on the current settings: a new live session from history, streaming, with
        the alerts and the funding poll; returns it (None for ``store``: nothing is live)."""
        await self.stop()
        self.store = self.store_for(self.source)
        if self.source == "store":
            return None
        feed = await self.feeds.make(self.source, self.watched())
        self.heat_history = await asyncio.to_thread(self.stored_history, HEAT_BARS)
        self.session = LiveSession(feed, y=self.y, x=self.x, symbols=self.watched(),
                                   timeframe=self.timeframe, store=self.store,
                                   alerts=self.alerts, pair_config=self.pair_config(),
                                   on_status=self.on_status)
        if not self.alerts.running:
            self.alerts.start()
        self.session.start()
        self.funding.start(feed.rest_url, (self.y, self.x))
        return self.session

    async def open_pair(self, y: str, x: str) -> LiveSession | None:
        """Watch ``y``/``x`` and start live on them, from their history."""
        self.watch_pair(y, x)
        return await self.start()

    async def live_scanner(self, symbols, **options) -> LiveScanner:
        """A started :class:`~qdash.scan.live.LiveScanner` of ``symbols`` on this monitor's source
        (its kline streams: ``sim``, whose own simulator this starts, or ``binance``) and store;
        ``options`` (timeframe, lookback, on_result, on_status, ...) go to it."""
        if self.source not in ("sim", "binance"):
            raise QdashError(f"live scans read Binance kline streams: pick the simulated exchange "
                             f"or Binance live as source, not {self.source!r}")
        from ..scan.live import LiveScanner  # the scan stack loads when a scan first runs

        feed = await self.feeds.make(self.source, self.watched())
        return LiveScanner(symbols, store=self.store, rest_url=feed.rest_url, ws_url=feed.ws_url,
                           clock=self.feeds.clock, **options).start()

    async def stop(self) -> None:
        """Stop the live session (recorded data stays in the store)."""
        self.funding.stop()
        if self.session is not None:
            session, self.session = self.session, None
            await session.stop()

    async def close(self) -> None:
        """Stop everything this monitor started (session, alerts, its own simulator)."""
        await self.stop()
        if self.alerts.running:
            await self.alerts.stop()
        await self.feeds.close()

    # --- stored data ---------------------------------------------------------------------------
    def stored_candles(self) -> dict[str, pd.DataFrame]:
        """Every watched symbol's stored candles at the timeframe."""
        return {s: stored_candles(self.store, s, self.timeframe) for s in self.watched()}

    def stored_history(self, bars: int) -> dict[str, pd.DataFrame]:
        """The last ``bars`` stored candles of every watched symbol at the timeframe."""
        start = (pd.Timestamp.now(tz="UTC")
                 - pd.Timedelta(milliseconds=timeframe_ms(self.timeframe) * bars))
        return {s: stored_candles(self.store, s, self.timeframe, start) for s in self.watched()}

    def stored_pair(self):
        """``(candles, analytics)`` of the stored data: every watched symbol's candles and the
        pair's :class:`~qdash.analytics.PairAnalytics` (None with fewer than
        :data:`MIN_STORED_BARS` candles per leg)."""
        from ..analytics import PairAnalytics

        candles = self.stored_candles()
        by, bx = candles[self.y], candles[self.x]
        if min(len(by), len(bx)) < MIN_STORED_BARS:
            return candles, None
        return candles, PairAnalytics.from_bars(by, bx, self.pair_config(),
                                                timeframe_ms=timeframe_ms(self.timeframe))

    def record_stats(self) -> dict | None:
        """Append the session's metrics now to the stats history; returns the row, or None (and
        appends nothing) before the pair's first bar: a row then would be all NaN at 1970."""
        m = self.session.metrics()
        if not m.get("bars") or not m.get("ts_ms"):
            return None
        row = {k: m.get(k) for k in STATS_HISTORY_COLUMNS}
        row["time"] = pd.Timestamp(m["ts_ms"], unit="ms", tz="UTC")
        self.stats_history.append(row)
        return row

    def stats_history_frame(self) -> pd.DataFrame:
        """The stats history, indexed by time (empty before the first row)."""
        if not self.stats_history:
            return pd.DataFrame()
        return pd.DataFrame(self.stats_history).set_index("time")

    # --- backtest ------------------------------------------------------------------------------
    def backtest_candles(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The legs' candles: the session's when live (fetched history + live bars), else the
        stored ones."""
        s = self.session
        if s is not None and min(len(s.candles[self.y].frame()), len(s.candles[self.x].frame())):
            return s.candles[self.y].frame(), s.candles[self.x].frame()
        candles = self.stored_candles()
        return candles[self.y], candles[self.x]

    def stored_funding(self, by: pd.DataFrame, bx: pd.DataFrame):
        """Both legs' stored funding over their bars: USDⓈ-M perpetuals pay it."""
        from ..backtest.funding import stored_funding

        tf = timeframe_ms(self.timeframe)
        return (stored_funding(self.store, self.y, by, tf),
                stored_funding(self.store, self.x, bx, tf))

    async def run_backtest(self, *, fee_bps: float = 4.0, slippage_bps: float = 1.0,
                           max_hold: int | None = None, candles=None):
        """Backtest the rule (``entry_z``/``exit_z``/``stop_z``, the pair's signal) on ``candles``
        ``(bars_y, bars_x)`` (default :meth:`backtest_candles`) with both legs' stored funding;
        fees and slippage in basis points per leg, ``max_hold`` in bars (None: no limit).
        Returns the result (also kept as ``last_backtest``)."""
        from ..backtest import run
        from ..backtest.funding import funding_note

        by, bx = candles if candles is not None else self.backtest_candles()
        if min(len(by), len(bx)) < 2:
            raise QdashError(f"backtest needs stored bars of both legs, have {len(by)} / "
                             f"{len(bx)}")
        fy, fx = await asyncio.to_thread(self.stored_funding, by, bx)
        result = await asyncio.to_thread(
            run, by, bx, self.pair_config().signal(), entry=self.entry_z, exit=self.exit_z,
            stop=self.stop_z or None, max_hold=max_hold, fee_bps=fee_bps,
            slippage_bps=slippage_bps, funding_y=fy, funding_x=fx)
        result.notes.append(funding_note(result, fy, fx, (self.y, self.x)))
        self.last_backtest = result
        return result

    # --- alerts --------------------------------------------------------------------------------
    def add_rule(self, expression: str, *, name: str | None = None, severity: str = "warning",
                 cooldown_s: float = 60.0, webhook: tuple[str, str] | None = None):
        """Add an alert rule (text syntax); ``webhook``: ``(format, url)`` of a webhook the rule
        posts to (``slack``, ``discord`` or ``json``). Returns the rule."""
        actions = []
        if webhook is not None:
            sink = WebhookSink(webhook[1], format=webhook[0])
            if sink.name not in self.alerts.sinks:
                self.alerts.add_sink(sink)
            actions = [sink.name]
        return self.alerts.add(expression, name=name, severity=severity, cooldown_s=cooldown_s,
                               actions=actions)

    def next_rule_evaluation_ms(self) -> int | None:
        """Epoch ms UTC of the rules' next evaluation: the close of the bar forming now
        (:func:`~qdash.alerts.schedule.next_evaluation_ms`, on the exchange's clock when live);
        None when nothing is live (``source="store"`` or not started)."""
        s = self.session
        if s is None:
            return None
        now = s.exchange_now_ms or int(pd.Timestamp.now(tz="UTC").value // 1_000_000)
        return next_evaluation_ms(now, timeframe_ms(self.timeframe), s.tolerance_ms)

    def rules_frame(self) -> pd.DataFrame:
        """The active rules, one row each."""
        return pd.DataFrame([{"name": r.name, "condition": str(r.condition),
                              "severity": r.severity, "enabled": r.enabled,
                              "cooldown_s": r.cooldown_s} for r in self.alerts.rules])

    # --- files ---------------------------------------------------------------------------------
    async def load_files(self, files: Iterable[tuple[str, bytes]], progress=None) -> list:
        """Load ``(file name, content)`` pairs into the store (:func:`qdash.io.load`, in a worker
        thread; ``progress`` as there); returns one :class:`~qdash.io.load.LoadReport` per file
        (a rejected file stored nothing)."""
        from ..io import load

        reports = []
        with tempfile.TemporaryDirectory() as tmp:
            for name, content in files:
                path = Path(tmp) / Path(name).name
                path.write_bytes(bytes(content))
                reports.append(await asyncio.to_thread(
                    load, [path], self.store, progress=progress or False,
                    raise_on_error=False))
        return reports

    def export(self) -> dict[str, pd.DataFrame]:
        """What can be downloaded, by file name: both legs' candles, the pair's analytics (when
        live), the stats history, the last backtest's trades, the alert history."""
        s = self.session
        candles = ({sym: s.candles[sym].frame() for sym in (self.y, self.x)}
                   if s is not None else self.stored_candles())
        out = {f"candles_{sym}.csv": candles[sym] for sym in (self.y, self.x)}
        if s is not None:
            out["analytics.csv"] = s.state.frame()
        if self.stats_history:
            out["stats_over_time.csv"] = self.stats_history_frame()
        if self.last_backtest is not None:
            out["backtest_trades.csv"] = self.last_backtest.trades
        out["alert_history.csv"] = self.alerts.history()
        return out
