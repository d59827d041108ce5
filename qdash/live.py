"""LiveSession: history bootstrap → feed → store → candles → pair analytics → alerts, on the
running loop.

Start-up (:meth:`LiveSession.start`): with a REST URL (the feed's, e.g. Binance or the simulator)
and a store, every watched symbol is first bootstrapped from REST in a worker thread
(:func:`qdash.history.bootstrap.bootstrap_history`): the last N closed bars at the session's
timeframe (N: :func:`~qdash.history.bootstrap.bars_needed`) and funding go into the store, the
pair state is warm-started from them (:meth:`PairAnalytics.from_bars`), the candles are shown,
and only then does the stream start. The seam is exact: bar builders are sealed at the first bar
the stream owns, and the feed resumes just before the first trade of that bar (its backfill
brings the trades since), so the forming bar continues the last fetched one with no duplicate
open time and no hole. A failed bootstrap is reported (``on_status``) and the stream starts
empty. Without REST, the pair warm-starts from the candles already in the store.

Per tick batch (inline on the loop, O(batch)):

1. per-symbol counters (ticks, last trade time, ticks/s);
2. a :class:`~qdash.bars.BarBuilder` per watched symbol; candles close when exchange time (the
   newest trade time seen on ANY symbol, minus ``tolerance_ms``) passes their end, so a quiet leg
   does not hold the pair back;
3. every closed open time of the pair advances the :class:`~qdash.analytics.PairState` once
   (a leg with no trade in that interval is passed as ``None``: carried forward, "no trade");
4. the :class:`~qdash.alerts.AlertManager`, when given, evaluates its rules on the new metrics.

Off the loop: the :class:`~qdash.feeds.record.Recorder` writes ticks to the store in a thread,
and a periodic task recomputes the expensive statistics (OLS/Huber/Theil–Sen, ADF,
cointegration, half-life, liquidity) in a thread every ``refresh_every_s`` seconds.

Readers (the dashboard's render loop) pull what is new with cursors: :meth:`candles_since`,
:meth:`pair_rows_since`; nothing is pushed per tick.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import pandas as pd

from .analytics import PairAnalytics, PairConfig, PairState, compute_refresh
from .bars import BarBuilder, BarUpdate, empty_bars, stored_candles
from .defaults import DEFAULT_TIMEFRAME
from .errors import QdashError
from .model import timeframe_ms
from .periodic import PeriodicTask

if TYPE_CHECKING:
    from .feeds.base import TickFeed

log = logging.getLogger(__name__)

MIN_REFRESH_BARS = 10  # the betas of the refresh need this many aligned bars
MAX_CATCHUP_BARS = 10_000  # after a longer silence the pair skips ahead instead of stepping
RATE_HORIZON_S = 5.0  # ticks/s is measured over this many seconds


class CandleLog:
    """Closed candles of one symbol, with a cursor for readers (keeps the last ``maxlen``)."""

    def __init__(self, maxlen: int = 20_000):
        self.maxlen = maxlen
        self._frames: collections.deque[pd.DataFrame] = collections.deque()
        self._rows = 0
        self.total = 0  # candles ever appended: the cursor space

    def append(self, bars: pd.DataFrame) -> None:
        if not len(bars):
            return
        self._frames.append(bars)
        self._rows += len(bars)
        self.total += len(bars)
        while self._rows - len(self._frames[0]) >= self.maxlen:
            self._rows -= len(self._frames.popleft())

    def frame(self) -> pd.DataFrame:
        if not self._frames:
            return empty_bars()
        if len(self._frames) > 1:
            self._frames = collections.deque([pd.concat(self._frames)])
        return self._frames[0].iloc[-self.maxlen:]

    def since(self, cursor: int) -> tuple[pd.DataFrame, int]:
        """Candles appended after ``cursor`` (at most the kept ones) and the new cursor."""
        new = self.total - cursor
        if new <= 0:
            return empty_bars(), self.total
        return self.frame().iloc[-min(new, self._rows):], self.total


class LiveSession:
    """Live analytics of a pair ``(y, x)`` among ``symbols`` from one tick feed.

    ``feed``: a started-or-not :class:`~qdash.feeds.base.TickFeed`; ``store``: where ticks are
    recorded (None: not recorded); ``timeframe``: candle length (default
    :data:`qdash.defaults.DEFAULT_TIMEFRAME`, as every entry point); ``pair_config``: a
    :class:`~qdash.analytics.PairConfig` (symbols are filled in; default: the timeframe's β and z
    windows, :meth:`PairConfig.for_timeframe <qdash.analytics.SignalSpec.for_timeframe>`);
    ``alerts``: an :class:`~qdash.alerts.AlertManager` or None.

    History: with ``bootstrap`` (default), a store and a REST URL (``rest_url``, else the feed's
    ``rest_url``), :meth:`start` first fetches ``bootstrap_bars`` closed bars per symbol
    (default :func:`~qdash.history.bootstrap.bars_needed`) and funding (see the module
    docstring); ``history`` then holds what it fetched, ``bootstrap_error`` why it failed.
    Otherwise, with a store holding history for the pair, the pair state starts from the last
    ``warm_start_bars`` stored candles. ``on_status(text, level)`` (``info``/``ok``/``warn``/
    ``error``) reports the bootstrap's progress, on the loop. ``clock()``: the exchange's time
    in ms for the bootstrap (default the wall clock; a replayed or simulated exchange may run
    on its own).
    """

    def __init__(self, feed: TickFeed, *, y: str, x: str, symbols: list[str] | None = None,
                 timeframe: str = DEFAULT_TIMEFRAME, store=None,
                 pair_config: PairConfig | None = None,
                 alerts=None, refresh_every_s: float = 5.0, tolerance_ms: int | None = None,
                 warm_start_bars: int = 3_000, bootstrap: bool = True,
                 bootstrap_bars: int | None = None, rest_url: str | None = None,
                 on_status: Callable[[str, str], None] | None = None,
                 clock: Callable[[], int] | None = None):
        self.feed = feed
        self.y, self.x = y.upper(), x.upper()
        self.symbols = list(dict.fromkeys([self.y, self.x, *(s.upper() for s in symbols or [])]))
        self.timeframe = timeframe
        self.tf_ms = timeframe_ms(timeframe)
        self.tolerance_ms = (min(1_000, self.tf_ms // 4) if tolerance_ms is None
                             else int(tolerance_ms))
        self.store = store
        self.alerts = alerts
        self.refresh_every_s = refresh_every_s
        self.pair_config = replace(pair_config or PairConfig.for_timeframe(timeframe),
                                   symbol_y=self.y, symbol_x=self.x)
        self.builders = {s: BarBuilder(self.tf_ms, symbol=s, tolerance_ms=self.tolerance_ms)
                         for s in self.symbols}
        self.candles = {s: CandleLog() for s in self.symbols}
        self.state = PairState(self.pair_config, self.tf_ms)
        self.rest_url = rest_url or feed.rest_url
        self.bootstrap_bars = bootstrap_bars
        self.on_status = on_status
        self.clock = clock or (lambda: int(time.time() * 1000))
        self.history = None                       # what the bootstrap fetched
        self.bootstrap_error: str | None = None
        self._bootstrap = bool(bootstrap and self.rest_url and store is not None)
        self._resumed = False                     # the feed resumes at the seam
        self._awaiting: set[str] = set()          # resumed symbols whose backfill is pending
        self._await_deadline = 0.0
        self.ready = asyncio.Event()              # set when the stream has started
        if not self._bootstrap:
            self._warm_start(warm_start_bars)
        self._pending: dict[int, list] = {}       # open_time → [bar_y, bar_x] awaiting the pair
        self._next_pair_t: int | None = (self.state._t + self.tf_ms
                                         if self.state.bars else None)
        self.exchange_now_ms: int | None = None   # newest trade time seen on any symbol
        self.ticks = collections.Counter()
        self.last_trade_ms: dict[str, int] = {}
        self._rate = {s: collections.deque(maxlen=50) for s in self.symbols}
        self.recorder = None
        self._tasks: list[asyncio.Task] = []
        self._remove_callback = None
        self.refresh_error: str | None = None
        self._refresher = PeriodicTask(self.refresh, refresh_every_s, name="pair refresh",
                                       delay_first=True)
        self.running = False

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> LiveSession:
        """Bootstrap history (when configured), then subscribe to the feed, start recording and
        refreshing; returns at once (``await session.ready.wait()`` for the stream)."""
        if self.running:
            return self
        loop = asyncio.get_running_loop()
        self.running = True
        if self._bootstrap or self.store is not None:
            self._tasks.append(loop.create_task(self._prepare_then_stream()))
        else:
            self._start_stream()
        return self

    def _start_stream(self, labelled: bool = True) -> None:
        self._remove_callback = self.feed.on_ticks(self.on_ticks)
        if self.store is not None:
            from .feeds.record import Recorder
            self.recorder = Recorder(self.feed, self.store,
                                     resume=labelled and not self._resumed).start()
            self._awaiting.update(self.recorder.resumed_from)
        # until every resumed symbol delivered its backfill, bars close only by their own ticks
        self._await_deadline = time.monotonic() + self.feed.max_backfill_wait
        self._refresher.start()
        if not self.feed.running:
            self.feed.start()
        self.ready.set()

    async def _prepare_then_stream(self) -> None:
        """The bootstrap (when configured) and the feed's venue (its ``source`` label, which
        the recorder's resume reads), both off the loop; then the stream."""
        if self._bootstrap:
            await self.bootstrap()
        labelled = True
        if self.store is not None:
            try:
                await asyncio.to_thread(self.feed.resolve_source)
            except Exception as e:  # the feed keeps asking; its ticks are recorded once known
                labelled = False
                self._status(f"the venue of {self.feed.rest_url} is not known yet ({e}): "
                             "recording starts without resuming", "warn")
        if self.running:
            self._start_stream(labelled)

    async def stop(self) -> None:
        """Stop the feed, store what was received, end background work."""
        if not self.running:
            return
        self.running = False
        for task in self._tasks:  # a bootstrap still running ends here
            task.cancel()
        await self.feed.stop()
        if self._remove_callback is not None:
            self._remove_callback()
        if self.recorder is not None:
            await self.recorder.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._refresher.wait_stopped()

    # --- history ------------------------------------------------------------------------------
    def _status(self, text: str, level: str = "info") -> None:
        log.log(logging.WARNING if level in ("warn", "error") else logging.INFO, "%s", text)
        if self.on_status is not None:
            self.on_status(text, level)

    async def bootstrap(self):
        """Fetch history in a worker thread and warm-start from it (see the module docstring).
        Returns the :class:`~qdash.history.bootstrap.History`, or None when it failed (the
        reason is in ``bootstrap_error`` and was reported). Call before the stream starts."""
        if self.ready.is_set():
            raise QdashError("LiveSession.bootstrap() must run before the stream starts: "
                             "create the session with bootstrap=True and call start()")
        loop = asyncio.get_running_loop()

        def progress(text: str) -> None:
            loop.call_soon_threadsafe(self._status, text, "info")

        t0 = time.monotonic()
        try:
            hist, pa = await asyncio.to_thread(self._fetch_history, progress)
        except Exception as e:  # no history: the stream starts empty, the user is told why
            self.bootstrap_error = f"{type(e).__name__}: {e}"
            self._status(f"history bootstrap failed, starting from the live stream: "
                         f"{self.bootstrap_error}", "error")
            return None
        self._install(hist, pa)
        bars = self.state.bars
        text = (f"history: {bars:,} aligned {self.timeframe} bars of {self.y}/{self.x} from "
                f"REST in {time.monotonic() - t0:.1f} s"
                + "".join(f"; {n}" for n in hist.notes))
        self._status(text, "warn" if hist.notes or pa is None else "ok")
        return hist

    def _fetch_history(self, progress):
        """Worker thread: REST → store → candles, then the batch pair analytics."""
        from .binance.rest import RestClient
        from .history.bootstrap import bars_needed, bootstrap_history

        n = self.bootstrap_bars or bars_needed(self.pair_config, self.tf_ms)
        self.feed.resolve_source()  # the venue's label, which the resume at the seam reads
        client = RestClient(self.rest_url)
        try:
            hist = bootstrap_history(
                self.symbols, self.tf_ms, n, self.store, client,
                stream=self.feed.stream,
                resume_horizon_s=self.feed.resume_horizon, progress=progress,
                now_ms=self.clock())
        finally:
            client.close()
        hy, hx = hist.bars.get(self.y), hist.bars.get(self.x)
        pa = None
        if hy is not None and hx is not None and min(len(hy), len(hx)) >= MIN_REFRESH_BARS:
            try:
                pa = PairAnalytics.from_bars(hy, hx, self.pair_config, timeframe_ms=self.tf_ms)
            except Exception as e:  # history unusable for the pair: candles still shown
                hist.notes.append(f"pair analytics start fresh: {e}")
        return hist, pa

    def _install(self, hist, pa) -> None:
        """On the loop, before the stream: candles, sealed builders, pair state, resume points."""
        self.history = hist
        for s, bars in hist.bars.items():
            if s in self.candles and len(bars):
                self.candles[s].append(bars)
        if hist.source:
            for b in self.builders.values():
                b.seal(hist.seam_ms)
        if pa is not None:
            self.state = pa.state
            self._next_pair_t = self.state._t + self.tf_ms
        elif hist.source:
            self._next_pair_t = hist.seam_ms
        if hist.resume and self.feed.resumable and not self.feed.running:
            self._resume_feed(hist.resume)

    def _resume_feed(self, seam: dict[str, tuple[int, int]]) -> None:
        """Resume the feed at the seam, or earlier where the store's last recorded trade is older
        and within the feed's horizon (so the recording keeps no hole either)."""
        from .feeds.record import stored_positions

        horizon = self.feed.resume_horizon
        now = self.clock()
        stored = stored_positions(self.store, list(seam), self.feed.source)
        positions = {}
        for s, pos in seam.items():
            old = stored.get(s)
            usable = old is not None and (horizon is None or now - old[1] <= horizon * 1000)
            positions[s] = old if usable and old[0] < pos[0] else pos
        self._awaiting.update(self.feed.resume(positions, now_ms=now))
        self._resumed = True

    def _warm_start(self, bars: int) -> None:
        if self.store is None or bars <= 0:
            return
        end = None
        start = pd.Timestamp.now(tz="UTC") - pd.Timedelta(milliseconds=self.tf_ms * bars)
        hist_y = stored_candles(self.store, self.y, self.tf_ms, start, end)
        hist_x = stored_candles(self.store, self.x, self.tf_ms, start, end)
        if min(len(hist_y), len(hist_x)) < MIN_REFRESH_BARS:
            return
        try:
            pa = PairAnalytics.from_bars(hist_y, hist_x, self.pair_config,
                                         timeframe_ms=self.tf_ms)
        except Exception as e:  # history unusable: start fresh, say why
            log.warning("warm start from the store failed, starting fresh: %s", e)
            return
        self.state = pa.state
        for s, hist in ((self.y, hist_y), (self.x, hist_x)):
            self.candles[s].append(hist)

    # --- the per-batch path -------------------------------------------------------------------
    def on_ticks(self, batch: pd.DataFrame) -> None:
        """Feed callback: counters, candles, pair updates, alerts (inline, O(batch))."""
        now = time.monotonic()
        symbols = batch["symbol"].to_numpy()
        ts = batch["ts"].to_numpy()
        newest = int(ts.max())
        self.exchange_now_ms = max(self.exchange_now_ms or newest, newest)
        for s in pd.unique(symbols):
            mask = symbols == s
            n = int(mask.sum())
            self.ticks[s] += n
            self.last_trade_ms[s] = max(self.last_trade_ms.get(s, 0), int(ts[mask].max()))
            if s in self._rate:  # a backfill's older trades are history, not a rate
                recent = int((ts[mask] > self.exchange_now_ms - RATE_HORIZON_S * 1000).sum())
                self._rate[s].append((now, recent))
            builder = self.builders.get(s)
            if builder is not None:
                self._collect(s, builder.update(batch[mask]))
        self.state.note_trades(self.last_trade_ms.get(self.y), self.last_trade_ms.get(self.x))
        if self._awaiting:  # resumed symbols whose backfill is still on its way
            self._awaiting.difference_update(pd.unique(symbols))
            if now >= self._await_deadline:
                self._awaiting.clear()
        for s, builder in self.builders.items():
            if s not in self._awaiting:  # others' time must not close a backfill's bars
                self._collect(s, builder.advance(self.exchange_now_ms))
        if self.y not in self._awaiting and self.x not in self._awaiting:
            self._advance_pair()

    def _collect(self, symbol: str, update: BarUpdate) -> None:
        if not update.n_closed:  # most batches close nothing: no frame is built for them
            return
        closed = update.closed
        self.candles[symbol].append(closed)
        if symbol not in (self.y, self.x):
            return
        leg = 0 if symbol == self.y else 1
        for t, row in zip(closed.index.as_unit("ms").asi8.tolist(),
                          closed.to_dict("records")):
            self._pending.setdefault(t, [None, None])[leg] = row

    def _advance_pair(self) -> None:
        """Update the pair for every interval both legs have closed (in time order)."""
        if self.exchange_now_ms is None:
            return
        closed_until = self.exchange_now_ms - self.tolerance_ms  # bars ending by now are final
        last_open = (closed_until // self.tf_ms) * self.tf_ms - self.tf_ms
        if self._next_pair_t is None:
            if not self._pending:
                return
            self._next_pair_t = min(self._pending)
        t = max(self._next_pair_t, last_open - MAX_CATCHUP_BARS * self.tf_ms)
        updated = False
        while t <= last_open:
            bar_y, bar_x = self._pending.pop(t, (None, None))
            if self.state.update(bar_y, bar_x, t):
                updated = True
            t += self.tf_ms
        self._next_pair_t = t
        for stale in [k for k in self._pending if k < t]:
            del self._pending[stale]
        if updated and self.alerts is not None:
            metrics = self.metrics()
            self.alerts.update(f"{self.y}/{self.x}", metrics, metrics["ts_ms"])

    async def refresh(self) -> bool:
        """Recompute the expensive statistics now, in a thread. False while too few bars."""
        if self.state.bars < MIN_REFRESH_BARS:
            return False
        try:
            result = await asyncio.to_thread(compute_refresh, *self.state.snapshot())
        except Exception as e:  # never kill the live session over a statistic
            self.refresh_error = f"{type(e).__name__}: {e}"
            log.warning("pair refresh failed: %s", e)
            return False
        self.state.apply_refresh(result)
        self.refresh_error = None
        return True

    # --- readers -------------------------------------------------------------------------------
    def metrics(self) -> dict:
        """The pair's flat metrics (see :meth:`PairState.metrics`), ages at exchange time now."""
        return self.state.metrics(self.exchange_now_ms)

    def forming(self, symbol: str) -> pd.DataFrame:
        """The candle(s) of ``symbol`` still forming."""
        return self.builders[symbol].forming

    def candles_since(self, symbol: str, cursor: int) -> tuple[pd.DataFrame, int]:
        return self.candles[symbol].since(cursor)

    def pair_rows_since(self, cursor: int, limit: int) -> tuple[pd.DataFrame, int]:
        """Pair series rows added after ``cursor`` (at most ``limit``), and the new cursor."""
        new = min(self.state.bars - cursor, limit)
        if new <= 0:
            return self.state.frame(last=0), self.state.bars
        return self.state.frame(last=new), self.state.bars

    def ticks_per_second(self, symbol: str, horizon_s: float = RATE_HORIZON_S) -> float:
        """Ticks/s of ``symbol`` received over the last ``horizon_s`` seconds (receive clock),
        counting only trades within ``RATE_HORIZON_S`` of the newest trade time seen when they came:
        a REST backfill of minutes of trades arriving at once is not a trade rate."""
        now = time.monotonic()
        samples = [n for t, n in self._rate.get(symbol, ()) if now - t <= horizon_s]
        return sum(samples) / horizon_s if samples else 0.0

    def last_tick_age_s(self, symbol: str) -> float:
        """Seconds of exchange time since ``symbol``'s last trade (inf before the first)."""
        last = self.last_trade_ms.get(symbol)
        if last is None or self.exchange_now_ms is None:
            return math.inf
        return (self.exchange_now_ms - last) / 1000.0

    def waiting_for(self) -> list[str]:
        """What the analytics still wait for, with exact counts (empty when all are shown):
        :meth:`PairState.waiting_for <qdash.analytics.PairState.waiting_for>`."""
        out = self.state.waiting_for()
        return [w + f" (every {self.refresh_every_s:g} s)" if w.endswith("pending") else w
                for w in out]
