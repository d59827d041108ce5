"""``BinanceFutures``: a resilient consumer of Binance USDⓈ-M trade streams.

* Streams: ``<symbol>@trade`` on the **/public** route (default) or ``<symbol>@aggTrade`` on
  **/market**, as combined streams, at most 200 streams per connection. ``ws_url`` / ``rest_url``
  point at Binance by default and at the simulated exchange (:mod:`qdash.sim`), a testnet or a
  proxy otherwise.
* Ticks: the canonical tick batch of :mod:`qdash.model` on trade time ``T``; only ``X == MARKET``
  trades are kept, the rest are counted by type (``stats()["dropped"]``). With ``stream="aggTrade"``
  a tick is one aggregate trade and ``trade_id`` is the aggregate id ``a`` (keep such ticks in a
  store of their own).
* Resilience (modelled on cryptofeed's ``ConnectionHandler``): each connection runs a reconnect
  loop with exponential backoff and jitter (``backoff_initial`` doubling up to ``backoff_max``,
  each wait drawn uniformly from [½, 1] of the current step); a watchdog reconnects a connection
  when any of its streams has been silent for ``stale_timeout`` seconds (a stall with the socket
  open, or a stream subscribed on the wrong route) or when its exchange lag exceeds ``max_lag``;
  connections are rotated after ``rotate_after`` seconds (Binance's limit is 24 h) by opening the
  successor first and closing the old one ``rotate_overlap`` seconds later.
* Exactly once, in order: per symbol the consumer delivers ticks in id order, drops ids already
  delivered (overlap, replayed or duplicated frames) and, when ids jump, holds the later ticks,
  waits ``gap_grace`` seconds for late frames and then backfills the hole from REST before
  resuming: ``/fapi/v1/trades`` (exact) when the hole is among the last 1,000 trades, otherwise
  ``/fapi/v1/aggTrades`` by time range (< 1 h a request; an aggregate covering several trades is
  split into equal parts — exact prices, ids and volume, approximate per-trade sizes, source
  ``"<source>:rest-agg"``). For ``@aggTrade`` holes, ``/fapi/v1/aggTrades?fromId`` (exact).
  HTTP 429 / 418 stop every REST call for ``Retry-After`` seconds; a hole that cannot be filled
  within ``max_backfill_wait`` seconds is given up (``gaps_unfilled``) and the held ticks flow on.
  Ids consumed by non-market frames (``NA``, ``INSURANCE_FUND``) count as seen, so they are not
  gaps.
* Counters for dashboards: :meth:`stats` (messages/s, ticks/s, per-symbol last message age and
  lag, reconnects, gaps found/filled, frames dropped by type). Lag is *arrival time − trade time
  T* in ms (the decoder does not keep the event time ``E``; on Binance ``E − T`` is about 1 ms).

Kernel use: ``feed = BinanceFutures(["BTCUSDT", "ETHUSDT"]); feed.start()`` in a cell returns at
once; ``await feed.stop()`` ends it. ``add_symbols`` / ``remove_symbols`` may be called from any
thread (widget callbacks); ``await feed.subscribe(...)`` / ``unsubscribe(...)`` from the loop.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import websockets
from websockets.asyncio.client import connect

from ..errors import QdashError
from ..model import normalize_symbol, tick_frame
from .base import TickFeed
from .decode import decode_frames, decode_payloads

log = logging.getLogger(__name__)

DEFAULT_WS_URL = "wss://fstream.binance.com"
DEFAULT_REST_URL = "https://fapi.binance.com"
MAX_STREAMS_PER_CONNECTION = 200
CONTROL_INTERVAL_S = 0.25  # ≤ 4 control messages/s per connection; Binance closes above 10/s
STREAMS_PER_CONTROL = 50
RECENT_TRADES_LIMIT = 1000
AGG_WINDOW_MS = 3_599_000  # aggTrades time ranges must be under 1 h

_ID_RE = re.compile(rb'"t":(\d+)')
_SYM_RE = re.compile(rb'"s":"([A-Z0-9_\-]+)"')


class BackfillError(QdashError):
    """A REST backfill request failed for good (after retries or a long ban)."""


@dataclass(eq=False)
class _Group:
    """Up to 200 streams served by one connection (two while rotating)."""

    index: int
    streams: dict = field(default_factory=dict)  # ordered set of stream names
    ws: object | None = None
    task: asyncio.Task | None = None
    connected_at: float = 0.0
    last_control: float = 0.0
    next_id: int = 1
    replies: dict = field(default_factory=dict)  # request id -> Future
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    reconnect_reason: str | None = None


@dataclass(eq=False)
class _SymbolState:
    """Delivery state of one symbol: ids up to ``last_id`` are delivered or known non-market."""

    last_id: int | None = None
    last_ts: int | None = None
    held: list = field(default_factory=list)  # DataFrames waiting behind a gap
    held_other: list = field(default_factory=list)  # non-market ids waiting behind a gap
    gap: tuple[int, int] | None = None
    gap_task: asyncio.Task | None = None
    ticks: int = 0
    last_seen: float = 0.0  # monotonic time of the last frame (any type)
    lag_ms: float | None = None


class BinanceFutures(TickFeed):
    """Live Binance USDⓈ-M trades for any number of symbols (see the module docstring).

    Times in seconds unless named ``_ms``. ``source`` is written in the tick ``source`` column.
    """

    def __init__(self, symbols, *, stream: str = "trade", ws_url: str = DEFAULT_WS_URL,
                 rest_url: str = DEFAULT_REST_URL, source: str = "binance",
                 max_streams: int = MAX_STREAMS_PER_CONNECTION, flush_interval: float = 0.1,
                 stale_timeout: float = 30.0, max_lag: float | None = 30.0,
                 rotate_after: float = 23.5 * 3600, rotate_overlap: float = 5.0,
                 backoff_initial: float = 0.5, backoff_max: float = 30.0,
                 gap_grace: float = 0.5, backfill: bool = True,
                 max_backfill_wait: float = 60.0, open_timeout: float = 10.0):
        super().__init__(name=f"BinanceFutures({stream})")
        if stream not in ("trade", "aggTrade"):
            raise ValueError(f"stream must be 'trade' or 'aggTrade', got {stream!r}")
        if not 1 <= max_streams <= MAX_STREAMS_PER_CONNECTION:
            raise ValueError(f"max_streams must be 1..{MAX_STREAMS_PER_CONNECTION}")
        self.stream = stream
        self.route = "public" if stream == "trade" else "market"
        self.ws_url = ws_url.rstrip("/")
        self.rest_url = rest_url.rstrip("/")
        self.source = source
        self.max_streams = max_streams
        self.flush_interval = flush_interval
        self.stale_timeout = stale_timeout
        self.max_lag = max_lag
        self.rotate_after, self.rotate_overlap = rotate_after, rotate_overlap
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.gap_grace, self.backfill = gap_grace, backfill
        self.max_backfill_wait = max_backfill_wait
        self.open_timeout = open_timeout
        self._groups: list[_Group] = []
        self._symbols: dict[str, _SymbolState] = {}
        self._pending: list = []
        self._tasks: list[asyncio.Task] = []
        self._rest_blocked_until = 0.0
        self.counters: collections.Counter = collections.Counter()
        self.dropped: collections.Counter = collections.Counter()
        self._rate_samples: collections.deque = collections.deque(maxlen=64)
        self.rest_weight_used: int | None = None
        for s in symbols:
            self._add_stream(normalize_symbol(s))

    # --- symbols and streams -----------------------------------------------------------------
    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    def _stream_name(self, symbol: str) -> str:
        return f"{symbol.lower()}@{self.stream}"

    def _add_stream(self, symbol: str) -> _Group | None:
        if symbol in self._symbols:
            return None
        self._symbols[symbol] = _SymbolState(last_seen=time.monotonic())
        stream = self._stream_name(symbol)
        for g in self._groups:
            if len(g.streams) < self.max_streams:
                g.streams[stream] = None
                return g
        g = _Group(len(self._groups), {stream: None})
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
                g.task = self.loop.create_task(self._run_group(g))

    async def unsubscribe(self, symbols) -> None:
        """Remove symbols while running (UNSUBSCRIBE); their held ticks are discarded."""
        by_group: dict[int, list[str]] = collections.defaultdict(list)
        for s in [normalize_symbol(x) for x in symbols]:
            st = self._symbols.pop(s, None)
            if st is None:
                continue
            if st.gap_task is not None:
                st.gap_task.cancel()
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
            elif g.ws is not None:
                g.reconnect_reason = "empty"
                await g.ws.close()

    def add_symbols(self, symbols) -> None:
        """Thread-safe :meth:`subscribe` (e.g. from an ipywidgets callback); returns at once."""
        self._threadsafe(self.subscribe(list(symbols)))

    def remove_symbols(self, symbols) -> None:
        """Thread-safe :meth:`unsubscribe`; returns at once."""
        self._threadsafe(self.unsubscribe(list(symbols)))

    def _threadsafe(self, coro) -> None:
        if self.loop is None:
            raise QdashError(f"{self.name}: start() the feed before changing symbols live")
        asyncio.run_coroutine_threadsafe(coro, self.loop)

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
                try:
                    await ws.send(json.dumps({"method": method,
                                              "params": streams[i:i + STREAMS_PER_CONTROL],
                                              "id": rid}))
                    reply = await asyncio.wait_for(fut, 10.0)
                except (websockets.ConnectionClosed, TimeoutError) as e:
                    log.warning("%s: %s %s got no reply (%s); the reconnect will carry it",
                                self.name, method, streams, e)
                    return
                finally:
                    g.replies.pop(rid, None)
                if reply.get("code") is not None:
                    log.error("%s: %s rejected: %s", self.name, method, reply)
                for s in streams[i:i + STREAMS_PER_CONTROL]:
                    st = self._symbols.get(s.split("@")[0].upper())
                    if st is not None:
                        st.last_seen = time.monotonic()

    # --- lifecycle ---------------------------------------------------------------------------
    def _run_tasks(self) -> None:
        for g in self._groups:
            g.task = self.loop.create_task(self._run_group(g))
        self._tasks = [self.loop.create_task(self._flush_loop()),
                       self.loop.create_task(self._watchdog())]

    async def _shutdown(self) -> None:
        tasks = [g.task for g in self._groups if g.task is not None] + self._tasks
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for st in self._symbols.values():
            if st.gap_task is not None:
                st.gap_task.cancel()
        gaps = [st.gap_task for st in self._symbols.values() if st.gap_task is not None]
        await asyncio.gather(*gaps, return_exceptions=True)
        self._flush()
        # deliver what waited behind unfilled gaps: it was received, so it is not lost
        out = []
        for st in self._symbols.values():
            if st.held:
                df = pd.concat(st.held, ignore_index=True)
                df = df[df["trade_id"] > (st.last_id if st.last_id is not None else -2**62)]
                df = df.drop_duplicates("trade_id").sort_values("trade_id", kind="stable")
                st.held, st.held_other, st.gap = [], [], None
                if len(df):
                    st.last_id = int(df["trade_id"].iloc[-1])
                    out.append(df)
        self._deliver(out)

    # --- connections ---------------------------------------------------------------------------
    def _url(self, g: _Group) -> str:
        base = self.ws_url
        if not base.endswith(("/public", "/market")):
            base = f"{base}/{self.route}"
        return f"{base}/stream?streams={'/'.join(g.streams)}"

    async def _open(self, g: _Group, first: bool):
        """Connect with exponential backoff + jitter until it works (or the feed stops)."""
        delay = self.backoff_initial
        while self.running and g.streams:
            try:
                ws = await connect(self._url(g), open_timeout=self.open_timeout,
                                   close_timeout=2, max_size=1 << 22, max_queue=4096,
                                   ping_interval=20, ping_timeout=20)
            except (OSError, TimeoutError, websockets.InvalidHandshake) as e:
                self.counters["connect_failures"] += 1
                wait = delay * random.uniform(0.5, 1.0)
                log.warning("%s: connect to %s failed (%s); retrying in %.2fs", self.name,
                            self.ws_url, e, wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, self.backoff_max)
                continue
            now = time.monotonic()
            for s in g.streams:
                st = self._symbols.get(s.split("@")[0].upper())
                if st is not None:
                    st.last_seen = max(st.last_seen, now)
            if not first:
                log.info("%s: connection %d open", self.name, g.index)
            return ws
        return None

    async def _run_group(self, g: _Group) -> None:
        """Reconnect loop of one connection (cryptofeed's ConnectionHandler, plus rotation)."""
        first = True
        delay = self.backoff_initial
        cur = None  # (ws, reader task, opened at)
        try:
            while self.running and g.streams:
                if cur is None:
                    ws = await self._open(g, first)
                    if ws is None:
                        break
                    if not first:
                        self.counters["reconnects"] += 1
                    first = False
                    cur = (ws, self.loop.create_task(self._read(g, ws)), time.monotonic())
                    g.ws, g.connected_at = ws, cur[2]
                ws, reader, opened = cur
                remaining = opened + self.rotate_after - time.monotonic()
                done, _ = await asyncio.wait({reader}, timeout=max(0.0, remaining))
                if reader in done:  # the connection ended
                    try:
                        got_data = reader.result()
                    except Exception:
                        log.exception("%s: reader of connection %d failed", self.name, g.index)
                        got_data = 0
                    reason = g.reconnect_reason or _close_reason(ws)
                    g.reconnect_reason, g.ws, cur = None, None, None
                    if not self.running:
                        break
                    log.warning("%s: connection %d closed (%s); reconnecting", self.name,
                                g.index, reason)
                    if got_data:
                        delay = self.backoff_initial
                    if reason not in ("stale", "lag"):
                        await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                        delay = min(delay * 2, self.backoff_max)
                    continue
                # rotation: open the successor, overlap, then close the old one
                new_ws = await self._open(g, first=False)
                if new_ws is None:
                    break
                new_reader = self.loop.create_task(self._read(g, new_ws))
                g.ws, g.connected_at = new_ws, time.monotonic()
                await asyncio.sleep(self.rotate_overlap)
                await ws.close()
                await asyncio.gather(reader, return_exceptions=True)
                self.counters["rotations"] += 1
                cur = (new_ws, new_reader, g.connected_at)
        finally:
            if cur is not None:
                cur[1].cancel()
                await cur[0].close()
                await asyncio.gather(cur[1], return_exceptions=True)
            g.ws = None

    async def _read(self, g: _Group, ws) -> int:
        """Append frames to the pending list until the socket closes; returns frames read."""
        n = 0
        try:
            async for msg in ws:
                if type(msg) is str and (msg.startswith('{"result"') or
                                         msg.startswith('{"code"')):
                    self._on_reply(g, msg)
                    continue
                self._pending.append(msg)
                n += 1
        except websockets.ConnectionClosed:
            pass
        return n

    def _on_reply(self, g: _Group, msg: str) -> None:
        try:
            reply = json.loads(msg)
        except ValueError:
            self.dropped["malformed"] += 1
            return
        fut = g.replies.get(reply.get("id"))
        if fut is not None and not fut.done():
            fut.set_result(reply)
        elif reply.get("code") is not None:
            log.error("%s: exchange error %s", self.name, reply)

    async def _watchdog(self) -> None:
        """Reconnect connections whose streams went silent (or lag too much)."""
        period = min(1.0, self.stale_timeout / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for g in self._groups:
                if g.ws is None or g.reconnect_reason:
                    continue
                states = [self._symbols.get(s.split("@")[0].upper()) for s in g.streams]
                states = [st for st in states if st is not None]
                silent = [st for st in states
                          if now - max(st.last_seen, g.connected_at) > self.stale_timeout]
                lagging = self.max_lag is not None and states and all(
                    st.lag_ms is not None and st.lag_ms > self.max_lag * 1000 for st in states)
                if silent or lagging:
                    reason = "stale" if silent else "lag"
                    self.counters[f"{reason}_reconnects"] += 1
                    log.warning("%s: connection %d %s; reconnecting", self.name, g.index,
                                "has a silent stream" if silent else "lags")
                    g.reconnect_reason = reason
                    for st in states:
                        st.lag_ms = None
                    self.loop.create_task(g.ws.close())

    # --- decoding, ordering, gaps ----------------------------------------------------------------
    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                self._flush()
            except Exception:
                log.exception("%s: flush failed", self.name)

    def _flush(self) -> None:
        frames, self._pending = self._pending, []
        now = time.monotonic()
        self._rate_samples.append((now, self.counters["messages"], self.counters["ticks"]))
        if not frames:
            return
        self.counters["messages"] += len(frames)
        res = decode_frames(frames, self.source, first_line=0)
        for k, v in res.counts.items():
            if k.startswith(("filtered:", "skipped:")) or k == "malformed":
                self.dropped[k] += v
        if res.errors:
            log.debug("%s: undecodable frames: %s", self.name, res.errors[:3])
        other = _nonmarket_ids(frames, res) if any(
            k.startswith("filtered:") for k in res.counts) else {}
        ticks = res.ticks
        now_ms = time.time() * 1000.0
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
            got = self._accept(sym, st, df, other.get(sym, []))
            if got is not None and len(got):
                out.append(got)
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

    def _accept(self, sym: str, st: _SymbolState, df: pd.DataFrame | None,
                other: list[int]) -> pd.DataFrame | None:
        """Drop delivered ids; deliver in order up to the first hole; hold the rest."""
        if df is None:
            df = tick_frame([], [], [], [], [], [], self.source)
        floor = st.last_id if st.last_id is not None else -2**62
        n0 = len(df)
        df = df[df["trade_id"].to_numpy() > floor]
        df = df.drop_duplicates("trade_id")
        self.counters["duplicates"] += n0 - len(df)
        other = [i for i in other if i > floor]
        if st.gap is not None:
            st.held.append(df)
            st.held_other += other
            return None
        return self._advance(sym, st, df, other)

    def _advance(self, sym: str, st: _SymbolState, df: pd.DataFrame,
                 other: list[int]) -> pd.DataFrame:
        df = df.sort_values("trade_id", kind="stable")
        ids = df["trade_id"].to_numpy()
        all_ids = np.union1d(ids, np.asarray(other, dtype=np.int64))
        if len(all_ids) == 0:
            return df
        if st.last_id is None:
            st.last_id = int(all_ids[0]) - 1
        expected = st.last_id + 1 + np.arange(len(all_ids))
        breaks = np.flatnonzero(all_ids != expected)
        if len(breaks) == 0 or not self.backfill:
            st.last_id = int(all_ids[-1])
            if len(df):
                st.last_ts = int(df["ts"].iloc[-1])
            return df
        k = int(breaks[0])
        lo, hi = st.last_id + 1 + k, int(all_ids[k]) - 1
        ready = df[ids < lo]
        later = df[ids > hi]
        if len(ready):
            st.last_ts = int(ready["ts"].iloc[-1])
        st.last_id = lo - 1
        st.held = [later]
        st.held_other = [i for i in other if i > hi]
        st.gap = (lo, hi)
        t_after = int(later["ts"].iloc[0]) if len(later) else int(time.time() * 1000)
        t_before = st.last_ts if st.last_ts is not None else t_after - 60_000
        self.counters["gaps_found"] += 1
        log.info("%s: %s trade ids %d..%d missing; backfilling", self.name, sym, lo, hi)
        st.gap_task = self.loop.create_task(self._fill_gap(sym, st, lo, hi, t_before, t_after))
        return ready

    async def _fill_gap(self, sym: str, st: _SymbolState, lo: int, hi: int, t_before: int,
                        t_after: int) -> None:
        await asyncio.sleep(self.gap_grace)  # late, out-of-order frames may close the hole
        have = np.concatenate([np.asarray(st.held_other, dtype=np.int64)]
                              + [h["trade_id"].to_numpy() for h in st.held])
        have = np.unique(have[(have >= lo) & (have <= hi)])
        filled = None
        if len(have) < hi - lo + 1:
            try:
                filled = await self._backfill(sym, lo, hi, t_before, t_after)
                self.counters["gaps_filled"] += 1
                self.counters["backfilled_ticks"] += len(filled)
            except (BackfillError, OSError, ValueError) as e:
                self.counters["gaps_unfilled"] += 1
                log.error("%s: could not backfill %s ids %d..%d: %s", self.name, sym, lo, hi, e)
        else:
            self.counters["gaps_closed_by_late_frames"] += 1
        if self._symbols.get(sym) is not st:
            return  # unsubscribed meanwhile
        parts = st.held + ([filled] if filled is not None else [])  # stream rows win
        other = st.held_other
        st.held, st.held_other, st.gap, st.gap_task = [], [], None, None
        df = pd.concat(parts, ignore_index=True) if parts else None
        if df is None or len(df) == 0:
            st.last_id = max(st.last_id, hi)
            return
        df = df[df["trade_id"].to_numpy() > st.last_id].drop_duplicates("trade_id")
        df = df.sort_values("trade_id", kind="stable")
        inside = df[df["trade_id"].to_numpy() <= hi]
        rest = df[df["trade_id"].to_numpy() > hi]
        st.last_id = hi  # the hole is settled: REST is authoritative for it
        if len(inside):
            st.last_ts = int(inside["ts"].iloc[-1])
        out = [inside, self._advance(sym, st, rest, [i for i in other if i > hi])]
        self._deliver(out)

    # --- REST -------------------------------------------------------------------------------
    async def _backfill(self, sym: str, lo: int, hi: int, t_before: int,
                        t_after: int) -> pd.DataFrame:
        """Market ticks of ``sym`` with ids in [lo, hi] from REST (see module docstring)."""
        if self.stream == "aggTrade":
            rows, start = [], lo
            while start <= hi:
                page = await self._rest_get("/fapi/v1/aggTrades",
                                            {"symbol": sym, "fromId": start, "limit": 1000})
                rows += [r for r in page if r["a"] <= hi]
                if len(page) < 1000 or page[-1]["a"] >= hi:
                    break
                start = page[-1]["a"] + 1
            return _select(decode_payloads(rows, self.source + ":rest", symbol=sym).ticks, lo, hi)
        recent = await self._rest_get("/fapi/v1/trades",
                                      {"symbol": sym, "limit": RECENT_TRADES_LIMIT})
        if recent and recent[0]["id"] <= lo:
            ticks = decode_payloads(recent, self.source + ":rest", symbol=sym).ticks
            return _select(ticks, lo, hi)
        rows: list[dict] = []
        start = t_before
        while start <= t_after:
            end = min(t_after, start + AGG_WINDOW_MS)
            page = await self._rest_get("/fapi/v1/aggTrades", {
                "symbol": sym, "startTime": start, "endTime": end, "limit": 1000})
            rows += page
            if len(page) == 1000:
                start = page[-1]["T"]  # same-ms rows repeat; dropped below by agg id
            else:
                start = end + 1
        return _expand_aggs(rows, sym, lo, hi, self.source + ":rest-agg")

    async def _rest_get(self, path: str, params: dict) -> list:
        """GET with 429/418/Retry-After handling shared by every backfill of this feed."""
        url = f"{self.rest_url}{path}?{urllib.parse.urlencode(params)}"
        deadline = time.monotonic() + self.max_backfill_wait
        attempt = 0
        while True:
            wait = self._rest_blocked_until - time.monotonic()
            if wait > 0:
                if time.monotonic() + wait > deadline:
                    raise BackfillError(f"REST blocked for {wait:.0f}s more (rate limit) "
                                        f"for {path}; giving up this gap")
                await asyncio.sleep(wait)
            status, headers, body = await asyncio.to_thread(_http_get, url)
            used = headers.get("x-mbx-used-weight-1m")
            if used is not None:
                self.rest_weight_used = int(used)
            if status == 200:
                return json.loads(body)
            attempt += 1
            if status in (429, 418):
                self.counters[f"rest_{status}"] += 1
                retry = float(headers.get("retry-after") or (60 if status == 429 else 120))
                self._rest_blocked_until = time.monotonic() + retry
                log.warning("%s: REST %s answered %d; pausing REST for %.0fs", self.name, path,
                            status, retry)
                continue
            if status >= 500 and attempt < 5 and time.monotonic() < deadline:
                await asyncio.sleep(min(2 ** attempt * 0.2, 5))
                continue
            raise BackfillError(f"GET {path} {params} failed: HTTP {status} {body[:200]!r}")

    # --- counters --------------------------------------------------------------------------
    def stats(self) -> dict:
        """Live counters (rates over the last few seconds; ages in s, lag in ms)."""
        now = time.monotonic()
        msg_rate = tick_rate = 0.0
        samples = [s for s in self._rate_samples if now - s[0] <= 5.0]
        if len(samples) >= 2 and samples[-1][0] > samples[0][0]:
            dt = samples[-1][0] - samples[0][0]
            msg_rate = (samples[-1][1] - samples[0][1]) / dt
            tick_rate = (samples[-1][2] - samples[0][2]) / dt
        return {
            "running": self.running,
            "connections": sum(1 for g in self._groups if g.ws is not None),
            "messages": self.counters["messages"], "messages_per_s": msg_rate,
            "ticks": self.counters["ticks"], "ticks_per_s": tick_rate,
            "reconnects": self.counters["reconnects"],
            "rotations": self.counters["rotations"],
            "stale_reconnects": self.counters["stale_reconnects"],
            "lag_reconnects": self.counters["lag_reconnects"],
            "connect_failures": self.counters["connect_failures"],
            "gaps_found": self.counters["gaps_found"],
            "gaps_filled": self.counters["gaps_filled"],
            "gaps_unfilled": self.counters["gaps_unfilled"],
            "backfilled_ticks": self.counters["backfilled_ticks"],
            "duplicates": self.counters["duplicates"],
            "rest_429": self.counters["rest_429"], "rest_418": self.counters["rest_418"],
            "rest_weight_used": self.rest_weight_used,
            "dropped": dict(self.dropped),
            "symbols": {s: {"last_message_age_s": now - st.last_seen, "lag_ms": st.lag_ms,
                            "ticks": st.ticks, "last_id": st.last_id,
                            "backfilling": st.gap is not None}
                        for s, st in self._symbols.items()},
        }


def _close_reason(ws) -> str:
    code = ws.close_code
    return "1006 abnormal closure" if code in (None, 1006) else f"{code} {ws.close_reason}".strip()


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


def _select(ticks: pd.DataFrame, lo: int, hi: int) -> pd.DataFrame:
    ids = ticks["trade_id"].to_numpy()
    return ticks[(ids >= lo) & (ids <= hi)]


def _expand_aggs(rows: list[dict], sym: str, lo: int, hi: int, source: str) -> pd.DataFrame:
    """aggTrades rows → one tick per trade id in [lo, hi] (qty split equally within a row)."""
    seen, ts, ids, price, qty, side = set(), [], [], [], [], []
    for r in rows:
        if r["a"] in seen or r["l"] < lo or r["f"] > hi:
            continue
        seen.add(r["a"])
        n = r["l"] - r["f"] + 1
        for t in range(max(r["f"], lo), min(r["l"], hi) + 1):
            ts.append(r["T"])
            ids.append(t)
            price.append(float(r["p"]))
            qty.append(float(r["q"]) / n)
            side.append(1 if r["m"] else 0)
    return tick_frame(sym, ts, ids, price, qty, side, source)


def _http_get(url: str) -> tuple[int, dict, bytes]:
    """Blocking GET (run it with ``asyncio.to_thread``): status, headers (lower-case names),
    body."""
    req = urllib.request.Request(url, headers={"User-Agent": "qdash"})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            status, headers, body = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, e.headers, e.read()
    return status, {k.lower(): v for k, v in (headers or {}).items()}, body
