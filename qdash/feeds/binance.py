"""``BinanceFutures``: a resilient consumer of Binance USDⓈ-M trade streams.

It composes three parts, each with one job:

* :class:`~qdash.feeds.connection.ConnectionLoop` per connection: connect, backoff with jitter,
  the watchdog, rotation before Binance's 24 h cut, close reasons;
* :class:`~qdash.feeds.sequencer.Sequencer`: per-symbol id order, de-duplication, gap holding;
* :func:`~qdash.feeds.backfill.fetch_hole`: the missing trades from REST.

What stays here is Binance's protocol:

* Streams: ``<symbol>@trade`` on the **/public** route (default) or ``<symbol>@aggTrade`` on
  **/market**, as combined streams, at most 200 streams per connection (more symbols: more
  connections). SUBSCRIBE / UNSUBSCRIBE go out in chunks of 50 streams, at most 4 control
  messages a second per connection (Binance closes a connection above 10), each awaiting its
  reply. ``ws_url`` / ``rest_url`` point at Binance by default and at the simulated exchange
  (:mod:`qdash.sim`), a testnet or a proxy otherwise.
* Ticks: the canonical tick batch of :mod:`qdash.model` on trade time ``T``, decoded by
  :func:`~qdash.binance.decode.decode_frames`; only ``X == MARKET`` trades are kept, the rest are
  counted by type (``stats()["dropped"]``) and their ids count as seen. With ``stream="aggTrade"``
  a tick is one aggregate trade and ``trade_id`` is the aggregate id ``a`` (keep such ticks in a
  store of their own).
* Watchdog: a connection is reopened when any of its streams has been silent for
  ``stale_timeout`` seconds (a stall with the socket open, or a stream subscribed on the wrong
  route) or when every stream lags more than ``max_lag`` seconds; rotation after
  ``rotate_after`` seconds with ``rotate_overlap`` seconds of overlap.
* Gaps: ``gap_grace`` seconds for late frames, then REST through one
  :class:`~qdash.binance.rest.RestClient` (rate limits and bans are honoured there, for every
  backfill of the feed); a hole whose request would wait more than ``max_backfill_wait`` seconds
  is given up (``gaps_unfilled``) and the held ticks flow on.
* Resume (:meth:`BinanceFutures.resume`): start each symbol after its last stored trade; the
  outage is backfilled like any gap while the stream's ticks are held, if it is younger than
  ``resume_horizon`` seconds (older: a warning says so and the symbol starts from the stream).
* Counters for dashboards: :meth:`stats` (messages/s, ticks/s, per-symbol last message age and
  lag, connection state and last error, reconnects, gaps found/filled, frames dropped by type).
  Lag is *arrival time − trade time T* in ms.

Kernel use: ``feed = BinanceFutures(["BTCUSDT", "ETHUSDT"]); feed.start()`` in a cell returns at
once; ``await feed.stop()`` ends it. ``add_symbols`` / ``remove_symbols`` may be called from any
thread (widget callbacks); ``await feed.subscribe(...)`` / ``unsubscribe(...)`` from the loop.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
import websockets
from websockets.asyncio.client import connect

from ..binance.decode import decode_frames
from ..binance.limits import (
    DEFAULT_REST_URL,
    DEFAULT_WS_URL,
    MAX_STREAMS_PER_CONNECTION,
    STREAM_ROUTES,
)
from ..binance.rest import RestClient, RestError
from ..model import VENUE_SOURCES, normalize_symbol
from ..periodic import PeriodicTask
from ..retry import Backoff
from .backfill import fetch_hole
from .base import TickFeed
from .connection import ConnectionLoop
from .sequencer import Gap, Sequencer

log = logging.getLogger(__name__)

CONTROL_INTERVAL_S = 0.25  # ≤ 4 control messages/s per connection (Binance closes above
# limits.MAX_CONTROL_MESSAGES_PER_S)
STREAMS_PER_CONTROL = 50
DEFAULT_RESUME_HORIZON_S = 3600.0

_ID_RE = re.compile(rb'"t":(\d+)')
_SYM_RE = re.compile(rb'"s":"([A-Z0-9_\-]+)"')


@dataclass(eq=False)
class _Group:
    """Up to 200 streams served by one connection (two while rotating)."""

    index: int
    streams: dict = field(default_factory=dict)  # ordered set of stream names
    conn: ConnectionLoop | None = None
    task: asyncio.Task | None = None
    last_control: float = 0.0
    next_id: int = 1
    replies: dict = field(default_factory=dict)  # request id -> Future
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def ws(self):
        return None if self.conn is None else self.conn.ws


@dataclass(eq=False)
class _SymbolStats:
    ticks: int = 0
    last_seen: float = 0.0  # monotonic time of the last frame (any type)
    lag_ms: float | None = None


class BinanceFutures(TickFeed):
    """Live Binance USDⓈ-M trades for any number of symbols (see the module docstring).

    Times in seconds unless named ``_ms``. ``source`` is written in the tick ``source`` column:
    when not given, the venue's (:data:`qdash.model.VENUE_SOURCES`: ``binance`` or ``sim``,
    ``-agg`` appended for aggregate trades) as the REST API's exchangeInfo names it
    (:meth:`RestClient.venue <qdash.binance.rest.RestClient.venue>`), asked once
    (:meth:`resolve_source`).
    """

    resumable = True

    def __init__(self, symbols, *, stream: str = "trade", ws_url: str = DEFAULT_WS_URL,
                 rest_url: str = DEFAULT_REST_URL, source: str | None = None,
                 max_streams: int = MAX_STREAMS_PER_CONNECTION, flush_interval: float = 0.1,
                 stale_timeout: float = 30.0, max_lag: float | None = 30.0,
                 rotate_after: float = 23.5 * 3600, rotate_overlap: float = 5.0,
                 backoff_initial: float = 0.5, backoff_max: float = 30.0,
                 gap_grace: float = 0.5, backfill: bool = True,
                 max_backfill_wait: float = 60.0, open_timeout: float = 10.0,
                 resume_horizon: float | None = DEFAULT_RESUME_HORIZON_S):
        super().__init__(name=f"BinanceFutures({stream})")
        if stream not in ("trade", "aggTrade"):
            raise ValueError(f"stream must be 'trade' or 'aggTrade', got {stream!r}")
        if not 1 <= max_streams <= MAX_STREAMS_PER_CONNECTION:
            raise ValueError(f"max_streams must be 1..{MAX_STREAMS_PER_CONNECTION}")
        self.stream = stream
        self.route = STREAM_ROUTES[stream]
        self.ws_url = ws_url.rstrip("/")
        self.rest_url = rest_url.rstrip("/")
        self._source = source
        self.max_streams = max_streams
        self.flush_interval = flush_interval
        self.stale_timeout = stale_timeout
        self.max_lag = max_lag
        self.rotate_after, self.rotate_overlap = rotate_after, rotate_overlap
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.gap_grace, self.backfill = gap_grace, backfill
        self.max_backfill_wait = max_backfill_wait
        self.open_timeout = open_timeout
        self.resume_horizon = resume_horizon
        self._groups: list[_Group] = []
        self._symbols: dict[str, _SymbolStats] = {}
        self._seq = Sequencer(source or "", fill_gaps=backfill)
        self._gap_tasks: dict[str, asyncio.Task] = {}
        self._pending: list = []
        self._resolver: asyncio.Task | None = None
        self._flusher = PeriodicTask(self._flush, flush_interval, name=f"{self.name} flush",
                                     delay_first=True)
        self.rest_client = RestClient(self.rest_url, max_wait=max_backfill_wait)
        self.counters: collections.Counter = collections.Counter()
        self.dropped: collections.Counter = collections.Counter()
        self._rate_samples: collections.deque = collections.deque(maxlen=64)
        for s in symbols:
            self._add_stream(normalize_symbol(s))

    # --- the venue ----------------------------------------------------------------------------
    @property
    def source(self) -> str:
        """The tick ``source`` label (see the class docstring). Before it is known this asks the
        REST API, a blocking request: on a loop, call :meth:`resolve_source` in a thread first
        (:meth:`start` does so itself and holds the frames until it is known)."""
        return self._source if self._source is not None else self.resolve_source()

    def resolve_source(self) -> str:
        """The tick ``source`` label, asking the REST API's exchangeInfo for the venue the first
        time (blocking; raises :class:`~qdash.binance.rest.RestError` or ``OSError`` when it
        cannot tell)."""
        if self._source is None:
            venue = self.rest_client.venue()
            self._source = VENUE_SOURCES[venue] + ("" if self.stream == "trade" else "-agg")
            self._seq.source = self._source
            log.info("%s: %s serves %s data: ticks are labelled %r", self.name, self.rest_url,
                     venue, self._source)
        return self._source

    async def _resolve_source_until_known(self) -> None:
        """Ask for the venue until the REST API answers (frames wait in ``_pending``)."""
        backoff = Backoff(self.backoff_initial, self.backoff_max)
        while self._source is None:
            try:
                await asyncio.to_thread(self.resolve_source)
            except (RestError, OSError, ValueError, KeyError) as e:
                self.counters["venue_failures"] += 1
                wait = backoff.next()
                log.warning("%s: cannot tell the venue of %s (%s): ticks wait; retrying in "
                            "%.1f s", self.name, self.rest_url, e, wait)
                await asyncio.sleep(wait)

    # --- symbols and streams -----------------------------------------------------------------
    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    def resume(self, positions: Mapping[str, tuple[int, int]],
               now_ms: int | None = None) -> dict[str, tuple[int, int]]:
        """Start each symbol after its stored trade ``(trade_id, ts_ms)``: the outage since then
        is backfilled over REST (as a gap) when the stream's first ticks arrive, if it is younger
        than ``resume_horizon`` seconds; older outages are logged and left alone. Call before any
        tick of the symbol arrived (before :meth:`start`). Returns the positions taken."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        taken = {}
        for sym, (last_id, last_ts) in positions.items():
            sym = normalize_symbol(sym)
            if sym not in self._symbols:
                continue
            age_s = (now_ms - last_ts) / 1000
            if self.resume_horizon is not None and age_s > self.resume_horizon:
                self.counters["resumes_beyond_horizon"] += 1
                log.warning("%s: %s's last stored trade (id %d, %s) is %s old, beyond the "
                            "resume horizon of %s: recording restarts from the live stream and "
                            "that outage stays missing (raise the horizon, e.g. qdash record "
                            "--resume-horizon %d, to backfill it over REST)", self.name, sym,
                            last_id, pd.Timestamp(last_ts, unit="ms", tz="UTC"),
                            _duration(age_s), _duration(self.resume_horizon), int(age_s) + 60)
                continue
            self._seq.add(sym, last_id, last_ts)
            self.counters["resumed"] += 1
            taken[sym] = (last_id, last_ts)
            log.info("%s: %s resumes after stored trade id %d (%s ago)", self.name, sym, last_id,
                     _duration(age_s))
        return taken

    def _stream_name(self, symbol: str) -> str:
        return f"{symbol.lower()}@{self.stream}"

    def _add_stream(self, symbol: str) -> _Group | None:
        if symbol in self._symbols:
            return None
        self._symbols[symbol] = _SymbolStats(last_seen=time.monotonic())
        self._seq.add(symbol)
        stream = self._stream_name(symbol)
        for g in self._groups:
            if len(g.streams) < self.max_streams:
                g.streams[stream] = None
                return g
        g = _Group(len(self._groups), {stream: None})
        g.conn = self._connection(g)
        self._groups.append(g)
        return g

    async def subscribe(self, symbols) -> None:
        """Add symbols while running (SUBSCRIBE on a connection with room, or a new one)."""
        by_group: dict[int, list[str]] = collections.defaultdict(list)
        new_groups = []
        for s in [normalize_symbol(x) for x in symbols]:
            known = {id(g) for g in self._groups}
            g = self._add_stream(s)
            if g is None:
                continue
            if id(g) not in known:
                new_groups.append(g)
            elif g.ws is not None:
                by_group[g.index].append(self._stream_name(s))
        for gi, streams in by_group.items():
            await self._control(self._groups[gi], "SUBSCRIBE", streams)
        if self.running:
            for g in new_groups:
                g.task = self.loop.create_task(g.conn.run())

    async def unsubscribe(self, symbols) -> None:
        """Remove symbols while running (UNSUBSCRIBE); their held ticks are discarded."""
        by_group: dict[int, list[str]] = collections.defaultdict(list)
        for s in [normalize_symbol(x) for x in symbols]:
            if self._symbols.pop(s, None) is None:
                continue
            self._seq.remove(s)
            task = self._gap_tasks.pop(s, None)
            if task is not None:
                task.cancel()
            stream = self._stream_name(s)
            for g in self._groups:
                if stream in g.streams:
                    del g.streams[stream]
                    if g.ws is not None:
                        by_group[g.index].append(stream)
        for gi, streams in by_group.items():
            g = self._groups[gi]
            if g.streams:
                await self._control(g, "UNSUBSCRIBE", streams)
            else:
                g.conn.close("requested: no streams left")

    async def _control(self, g: _Group, method: str, streams: list[str]) -> None:
        """Send SUBSCRIBE/UNSUBSCRIBE in chunks, throttled, and wait for each reply."""
        async with g.lock:
            for i in range(0, len(streams), STREAMS_PER_CONTROL):
                ws = g.ws
                if ws is None:
                    return  # the next connection URL carries the current streams
                wait = g.last_control + CONTROL_INTERVAL_S - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                rid = g.next_id
                g.next_id += 1
                fut = self.loop.create_future()
                g.replies[rid] = fut
                g.last_control = time.monotonic()
                chunk = streams[i:i + STREAMS_PER_CONTROL]
                try:
                    await ws.send(json.dumps({"method": method, "params": chunk, "id": rid}))
                    reply = await asyncio.wait_for(fut, 10.0)
                except (websockets.ConnectionClosed, TimeoutError) as e:
                    log.warning("%s: %s %s got no reply (%s); the reconnect will carry it",
                                self.name, method, chunk, e)
                    return
                finally:
                    g.replies.pop(rid, None)
                if reply.get("code") is not None or reply.get("error") is not None:
                    log.error("%s: %s rejected: %s", self.name, method, reply)
                for s in chunk:
                    st = self._symbols.get(s.split("@")[0].upper())
                    if st is not None:
                        st.last_seen = time.monotonic()

    # --- connections ---------------------------------------------------------------------------
    def _url(self, g: _Group) -> str:
        base = self.ws_url
        if not base.endswith(("/public", "/market")):
            base = f"{base}/{self.route}"
        return f"{base}/stream?streams={'/'.join(g.streams)}"

    def _connection(self, g: _Group) -> ConnectionLoop:
        return ConnectionLoop(
            f"{self.name} connection {g.index}", partial(self._url, g),
            partial(self._on_frame, g), keep_going=lambda: self.running and bool(g.streams),
            connect=partial(connect, open_timeout=self.open_timeout, close_timeout=2,
                            max_size=1 << 22, max_queue=4096, ping_interval=20, ping_timeout=20),
            on_open=partial(self._on_open, g), health=partial(self._health, g),
            watch_every=min(1.0, self.stale_timeout / 4),
            backoff_initial=self.backoff_initial, backoff_max=self.backoff_max,
            rotate_after=self.rotate_after, rotate_overlap=self.rotate_overlap)

    def _streams_of(self, g: _Group) -> list[_SymbolStats]:
        states = [self._symbols.get(s.split("@")[0].upper()) for s in g.streams]
        return [st for st in states if st is not None]

    def _on_open(self, g: _Group, ws) -> None:
        now = time.monotonic()
        for st in self._streams_of(g):
            st.last_seen = max(st.last_seen, now)

    def _health(self, g: _Group, now: float, connected_at: float) -> str | None:
        """Watchdog check of one connection: ``stale`` when a stream is silent, ``lag`` when
        every stream lags beyond ``max_lag``."""
        states = self._streams_of(g)
        if any(now - max(st.last_seen, connected_at) > self.stale_timeout for st in states):
            return "stale"
        if self.max_lag is not None and states and all(
                st.lag_ms is not None and st.lag_ms > self.max_lag * 1000 for st in states):
            for st in states:
                st.lag_ms = None
            return "lag"
        return None

    def _on_frame(self, g: _Group, msg) -> None:
        if type(msg) is str and msg.startswith(('{"result"', '{"code"', '{"error"')):
            self._on_reply(g, msg)
        else:
            self._pending.append(msg)

    def _on_reply(self, g: _Group, msg: str) -> None:
        try:
            reply = json.loads(msg)
        except ValueError:
            self.dropped["malformed"] += 1
            return
        fut = g.replies.get(reply.get("id"))
        if fut is not None and not fut.done():
            fut.set_result(reply)
        elif reply.get("code") is not None or reply.get("error") is not None:
            log.error("%s: exchange error %s", self.name, reply)

    # --- lifecycle ---------------------------------------------------------------------------
    def _run_tasks(self) -> None:
        if self._source is None:
            self._resolver = self.loop.create_task(self._resolve_source_until_known())
        for g in self._groups:
            g.task = self.loop.create_task(g.conn.run())
        self._flusher.start()

    async def _shutdown(self) -> None:
        await self._flusher.wait_stopped()
        tasks = [g.task for g in self._groups if g.task is not None]
        if self._resolver is not None:
            tasks.append(self._resolver)
            self._resolver = None
        tasks += list(self._gap_tasks.values())
        self._gap_tasks.clear()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._source is not None:
            self._flush()
        elif self._pending:
            log.warning("%s: %d frames not delivered: the venue of %s never became known",
                        self.name, len(self._pending), self.rest_url)
        # deliver what waited behind unfilled gaps: it was received, so it is not lost
        self._deliver(self._seq.release_all())

    # --- decoding, ordering, gaps ----------------------------------------------------------------
    def _flush(self) -> None:
        now = time.monotonic()
        self._rate_samples.append((now, self.counters["messages"], self.counters["ticks"]))
        if not self._pending or self._source is None:  # unlabelled frames wait for the venue
            return
        frames, self._pending = self._pending, []
        self.counters["messages"] += len(frames)
        res = decode_frames(frames, self.source, first_line=0)
        for k, v in res.counts.items():
            if k.startswith(("filtered:", "skipped:")) or k == "malformed":
                self.dropped[k] += v
        if res.errors:
            log.debug("%s: undecodable frames: %s", self.name, [str(e) for e in res.errors[:3]])
        other = _nonmarket_ids(frames, res) if any(
            k.startswith("filtered:") for k in res.counts) else {}
        ticks = res.ticks
        now_ms = int(time.time() * 1000)
        out = []
        by_symbol = dict(tuple(ticks.groupby("symbol", sort=False))) if len(ticks) else {}
        for sym in set(by_symbol) | set(other):
            st = self._symbols.get(sym)
            if st is None:
                continue  # unsubscribed meanwhile
            st.last_seen = now
            df = by_symbol.get(sym)
            if df is not None:
                st.lag_ms = now_ms - float(df["ts"].max())
            ready, gap = self._seq.accept(sym, df, other.get(sym, []), now_ms)
            out.append(ready)
            if gap is not None:
                self._start_gap(gap)
        self._deliver(out)

    def _deliver(self, parts: list[pd.DataFrame]) -> None:
        parts = [p for p in parts if len(p)]
        if not parts:
            return
        batch = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
        batch = batch.sort_values(["ts", "trade_id"], kind="stable", ignore_index=True)
        self.counters["ticks"] += len(batch)
        for sym, n in batch["symbol"].value_counts().items():
            st = self._symbols.get(sym)
            if st is not None:
                st.ticks += int(n)
        self._emit(batch)

    def _start_gap(self, gap: Gap) -> None:
        log.info("%s: %s trade ids %d..%d missing; backfilling", self.name, gap.symbol, gap.lo,
                 gap.hi)
        self._gap_tasks[gap.symbol] = self.loop.create_task(self._fill_gap(gap))

    async def _fill_gap(self, gap: Gap) -> None:
        await asyncio.sleep(self.gap_grace)  # late, out-of-order frames may close the hole
        filled = None
        if self._seq.missing(gap):
            try:
                filled = await fetch_hole(self.rest_client.aget, gap.symbol, gap.lo, gap.hi,
                                          gap.t_before, gap.t_after, stream=self.stream,
                                          source=self.source)
                self.counters["gaps_filled"] += 1
                self.counters["backfilled_ticks"] += len(filled)
            except (RestError, OSError, ValueError, KeyError, TypeError) as e:
                self.counters["gaps_unfilled"] += 1
                log.error("%s: could not backfill %s ids %d..%d: %s", self.name, gap.symbol,
                          gap.lo, gap.hi, e)
        else:
            self.counters["gaps_closed_by_late_frames"] += 1
        if self._gap_tasks.get(gap.symbol) is asyncio.current_task():
            del self._gap_tasks[gap.symbol]
        ready, nxt = self._seq.settle(gap, filled, int(time.time() * 1000))
        self._deliver([ready])
        if nxt is not None:
            self._start_gap(nxt)

    # --- counters --------------------------------------------------------------------------
    def _connection_counts(self) -> collections.Counter:
        total: collections.Counter = collections.Counter()
        for g in self._groups:
            total.update(g.conn.counters)
        return total

    def connection_status(self) -> dict:
        """The worst connection's state: ``state`` (open / connecting / backing off / idle /
        stopped), ``last_error`` and ``retry_in_s`` (None unless backing off), and the host."""
        now = time.monotonic()
        rank = {"backing off": 0, "connecting": 1, "idle": 2, "stopped": 3, "open": 4}
        conns = [g.conn for g in self._groups if g.streams] or [g.conn for g in self._groups]
        if not conns:
            return {"state": "idle", "last_error": None, "retry_in_s": None,
                    "host": self.ws_url}
        worst = min(conns, key=lambda c: rank.get(c.state, 0))
        return {"state": worst.state, "last_error": worst.last_error,
                "retry_in_s": None if worst.retry_at is None else max(0.0, worst.retry_at - now),
                "host": self.ws_url}

    def stats(self) -> dict:
        """Live counters (rates over the last few seconds; ages in s, lag in ms)."""
        now = time.monotonic()
        msg_rate = tick_rate = 0.0
        samples = [s for s in self._rate_samples if now - s[0] <= 5.0]
        if len(samples) >= 2 and samples[-1][0] > samples[0][0]:
            dt = samples[-1][0] - samples[0][0]
            msg_rate = (samples[-1][1] - samples[0][1]) / dt
            tick_rate = (samples[-1][2] - samples[0][2]) / dt
        conn = self._connection_counts()
        return {
            "running": self.running,
            "connections": sum(1 for g in self._groups if g.ws is not None),
            "connection": self.connection_status(),
            "messages": self.counters["messages"], "messages_per_s": msg_rate,
            "ticks": self.counters["ticks"], "ticks_per_s": tick_rate,
            "reconnects": conn["reconnects"],
            "rotations": conn["rotations"],
            "stale_reconnects": conn["stale_reconnects"],
            "lag_reconnects": conn["lag_reconnects"],
            "connect_failures": conn["connect_failures"],
            "gaps_found": self._seq.gaps_found,
            "gaps_filled": self.counters["gaps_filled"],
            "gaps_unfilled": self.counters["gaps_unfilled"],
            "backfilled_ticks": self.counters["backfilled_ticks"],
            "duplicates": self._seq.duplicates,
            "resumed": self.counters["resumed"],
            "rest_429": self.rest_client.counters["http_429"],
            "rest_418": self.rest_client.counters["http_418"],
            "rest_weight_used": self.rest_client.last_used_weight,
            "dropped": dict(self.dropped),
            "symbols": {s: {"last_message_age_s": now - st.last_seen, "lag_ms": st.lag_ms,
                            "ticks": st.ticks, "last_id": self._seq.last_id(s),
                            "backfilling": self._seq.gap(s) is not None}
                        for s, st in self._symbols.items()},
        }


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _nonmarket_ids(frames: list, res) -> dict[str, list[int]]:
    """Ids consumed by frames that produced no tick (NA, INSURANCE_FUND...), per symbol.

    Only the few frames that the decoder filtered are scanned (for ``"s"`` and ``"t"``)."""
    used = np.zeros(len(frames), dtype=bool)
    used[res.lines] = True
    out: dict[str, list[int]] = collections.defaultdict(list)
    for i in np.flatnonzero(~used).tolist():
        f = frames[i]
        b = f.encode() if type(f) is str else f
        if b'"X":"' not in b or b'"X":"MARKET"' in b:
            continue
        m_id, m_sym = _ID_RE.search(b), _SYM_RE.search(b)
        if m_id and m_sym:
            out[m_sym.group(1).decode()].append(int(m_id.group(1)))
    return out
