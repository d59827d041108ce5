"""A local Binance USDⓈ-M compatible exchange: WebSocket streams and REST on one Tornado port.

WebSocket (same routing rules as Binance since 2026-04):

* ``/public/ws/<stream>[/<stream>...]``, ``/public/stream?streams=a/b`` — ``@trade`` flows here;
* ``/market/ws/...``, ``/market/stream?...`` — ``@aggTrade`` flows here;
* the unrouted ``/ws/...`` and ``/stream?...`` are served as ``/public``.

A stream subscribed on the wrong route is accepted and acknowledged and then delivers nothing.
``/ws`` paths send raw payloads, ``/stream`` paths the combined envelope
``{"stream": ..., "data": ...}``. Streams: ``@trade``, ``@aggTrade`` and every kline, mark price,
book ticker, depth and ticker stream of Binance (:mod:`qdash.sim.streams`, one emitter for all).
Control messages SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS get Binance's replies
(``{"result": null, "id": N}``) and errors (``{"error": {"code": 2, "msg": ...}, "id": N}``); an
unknown or malformed stream name is such an error (in the URL: the error frame, ``id`` null,
then the valid streams); more than 10 incoming messages in one second close the connection with
1008. The server pings
every ``ping_interval`` seconds and closes connections older than ``max_connection_age`` (1001).

``/private/ws`` and ``/private/stream`` are accepted too (the route of user-data streams: market
streams subscribed there stay silent, as on Binance).

REST (:mod:`qdash.sim.rest`, base ``http://HOST:PORT``): ping, time, exchangeInfo, aggTrades,
trades, klines, continuousKlines, markPriceKlines, indexPriceKlines, premiumIndexKlines,
premiumIndex, fundingRate, fundingInfo, ticker/24hr, ticker/price (v1 and v2),
ticker/bookTicker, depth, openInterest under ``/fapi/v1`` — Binance's field names, types and
weights; ``X-MBX-USED-WEIGHT-1M`` on every answer; over ``weight_limit`` per minute → 429 +
``Retry-After``; another request before that → 418 (banned ``ban_seconds``); errors as
``{"code", "msg"}`` JSON, unknown paths 404 / -5000.

Bulk archive (:mod:`qdash.sim.archive`): ``http://HOST:PORT`` also stands for
``https://data.binance.vision``: ``/data/futures/um/{daily,monthly}/{klines,aggTrades,trades,
markPriceKlines,indexPriceKlines,premiumIndexKlines,fundingRate}/...zip`` (+ ``.CHECKSUM``) for
every closed day or month of the past, Binance's names and CSV columns.

The past (:mod:`qdash.sim.past`): every symbol has a deterministic history from its listing up
to ``warmup_s`` before the start (rounded down to the minute): klines at every interval, funding
every 8 h, mark/index/premium prices and trades; the live model continues it (same price, ids
above the past's) and trades that last stretch before the start as if the exchange had been
running, so the recent past a client fetches is as dense as the live stream (the past's trades
expand 1-minute klines: a few a second, with empty seconds a sub-minute bar would carry over).
``universe=N`` adds N synthetic perpetuals (:mod:`qdash.sim.universe`); live, each symbol's share
of ``rate`` follows its quote volume but is at least the past's 4 trades a minute on average.

Test and bench control (not part of Binance's API): ``/sim/fault/<name>?...``, ``/sim/pause``,
``/sim/resume``, ``/sim/ledger_summary``, ``/sim/stats``. Fault injection methods on
:class:`SimExchange` are documented one by one below; every trade is recorded in
:attr:`SimExchange.ledger`.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
import socket
import struct
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

from .archive import Archive, ArchiveHandler
from .ledger import Ledger
from .market import KNOWN_SYMBOLS, X_MARKET, X_NAMES, MarketModel, SymbolSpec, symbol_spec
from .past import IDS_PER_DAY, Instrument, Past
from .rest import NotFoundHandler, rest_routes
from .state import MarketState
from .streams import INVALID_STREAM, StreamEngine, error_reply, parse_stream, stream_route
from .universe import (
    DAY_MS,
    MIN_TRADES_PER_MINUTE,
    MINUTE_MS,
    UniverseSymbol,
    make_universe,
    step_size,
    tick_size,
)

log = logging.getLogger(__name__)

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
MAX_STREAMS = 1024
MAX_INCOMING_PER_S = 10
# daily quote volume (USDT) and listing date of the built-in symbols' pasts
_BUILTIN_VOLUME = {"BTCUSDT": 1.5e10, "ETHUSDT": 8e9, "SOLUSDT": 2e9, "BNBUSDT": 6e8,
                   "XRPUSDT": 1.5e9}
_BUILTIN_ONBOARD = {"BTCUSDT": 1569398400000, "ETHUSDT": 1569398400000,
                    "SOLUSDT": 1600300800000, "BNBUSDT": 1581292800000,
                    "XRPUSDT": 1578441600000}
_BUILTIN_CLUSTER = 1000  # cluster id of the built-in group (universe clusters count from 0)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


DEMO_WEIGHT_LIMIT = 1_000_000
"""The weight limit of a simulator started for one user (``qdash demo``, a dashboard's own): it
does not hold them to Binance's 2,400 a minute, or bootstrapping 1s history from aggTrades for
three symbols, the live backfill and the funding panel's polls would wait minutes behind a 429
before the first chart appears. ``qdash sim`` keeps Binance's limit."""


@dataclass(eq=False)
class _Conn:
    handler: StreamSocket
    route: str
    combined: bool
    streams: dict = field(default_factory=dict)  # ordered set
    stalled: bool = False
    opened: float = field(default_factory=time.monotonic)
    incoming: collections.deque = field(default_factory=collections.deque)

    def wants(self, stream: str) -> bool:
        return stream in self.streams and stream_route(stream) == self.route


class StreamSocket(tornado.websocket.WebSocketHandler):
    """One client WebSocket connection (routes and control messages as on Binance)."""

    def initialize(self, sim: SimExchange, route: str, combined: bool):
        self.sim, self.route, self.combined = sim, route, combined
        self.conn: _Conn | None = None

    def check_origin(self, origin: str) -> bool:
        return True

    def open(self, path: str = ""):
        names = [s for s in path.split("/") if s] if not self.combined else \
            [s for s in self.get_argument("streams", "").split("/") if s]
        valid = [s for s in names if parse_stream(s, self.sim.instruments) is not None]
        self.conn = _Conn(self, self.route, self.combined, dict.fromkeys(valid))
        self.sim._on_open(self.conn)
        if len(valid) < len(names):  # the valid streams flow; the rest is answered, not ignored
            self._send(json.dumps(error_reply(INVALID_STREAM, None), separators=(",", ":")))

    def on_message(self, message):
        conn = self.conn
        now = time.monotonic()
        conn.incoming.append(now)
        while conn.incoming and now - conn.incoming[0] > 1.0:
            conn.incoming.popleft()
        if len(conn.incoming) > MAX_INCOMING_PER_S:
            self.sim.stats["closed_1008"] += 1
            self.close(1008, "Too many requests")
            return
        reply = self.sim._control(conn, message)
        if reply is not None:
            self._send(json.dumps(reply, separators=(",", ":")))

    def on_pong(self, data):
        self.sim.stats["pongs"] += 1

    def on_close(self):
        if self.conn is not None:
            self.sim._on_close(self.conn)

    def _send(self, frame) -> None:
        try:
            self.write_message(frame, binary=isinstance(frame, bytes))
        except tornado.websocket.WebSocketClosedError:
            pass


class ControlHandler(tornado.web.RequestHandler):
    """``/sim/<action>``: faults, pause/resume, stats and a ledger summary (tests, benches)."""

    def initialize(self, sim: SimExchange):
        self.sim = sim

    def get(self, action: str):
        sim = self.sim
        args = {k: v[-1].decode() for k, v in self.request.arguments.items()}
        if action == "stats":
            body = dict(sim.stats) | {"connections": len(sim.connections),
                                      "ledger_rows": len(sim.ledger)}
        elif action == "ledger_summary":
            body = sim.ledger_summary()
        elif action == "pause":
            sim.pause()
            body = {"paused": True}
        elif action == "resume":
            sim.resume()
            body = {"paused": False}
        elif action.startswith("fault/"):
            name = action.split("/", 1)[1]
            method = getattr(sim, name, None)
            if name not in sim.FAULTS or method is None:
                raise tornado.web.HTTPError(404, f"unknown fault {name}")
            kwargs = {k: float(v) if "." in v else int(v) for k, v in args.items()}
            method(**kwargs)
            body = {"fault": name, "args": kwargs}
        else:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    post = get


class SimExchange(MarketState):
    """The simulated exchange. ``await start()`` binds ``host:port`` (0 = any free port) and
    starts publishing; ``await stop()`` ends it. Runs on the current asyncio loop.

    Market: ``symbols``, ``rate`` (trades/s in total), ``seed``, ``start_ms`` (sim clock origin;
    default: now, so trade times track the wall clock) and ``market_kwargs`` for
    :class:`MarketModel`; ``warmup_s``: seconds before ``start_ms`` traded by the live model at
    construction (its trades are in the ledger; see the module doc). Replay: ``replay`` (a tick
    DataFrame or a path any qdash reader accepts) at ``speed`` × real time (0 = as fast as
    possible); ids and times are preserved.
    """

    FAULTS = ("drop", "close", "stall", "garbage", "duplicate_on_reconnect", "refuse",
              "force_rotation", "rest_throttle")

    def __init__(self, symbols: list[str] | None = None, *, rate: float = 50.0, seed: int = 0,
                 host: str = "127.0.0.1", port: int = 0, start_ms: int | None = None,
                 chunk_ms: int = 50, replay=None, speed: float = 1.0,
                 ping_interval: float = 180.0, ping_timeout: float | None = None,
                 max_connection_age: float = 24 * 3600.0, weight_limit: int = 2400,
                 ban_seconds: int = 120, retention_s: float | None = None,
                 market_kwargs: dict | None = None, universe: int = 0,
                 universe_rate_share: float = 0.1, warmup_s: float = 300.0):
        self.host, self.port = host, port
        self.chunk_ms = chunk_ms
        self.replay_ticks = _load_replay(replay, symbols) if replay is not None else None
        if self.replay_ticks is not None:
            symbols = symbols or sorted(self.replay_ticks["symbol"].unique())
        builtin = [s.upper() for s in (symbols or ["BTCUSDT", "ETHUSDT"])]
        synthetic = make_universe(universe, seed) if universe else []
        self.symbols = builtin + [u.symbol for u in synthetic if u.symbol not in builtin]
        start_ms = _now_ms() if start_ms is None else int(start_ms)
        if self.replay_ticks is not None and len(self.replay_ticks):
            start_ms = int(self.replay_ticks["ts"].iloc[0])
        self.seed = seed
        self.model = None
        past_end = (start_ms - int(warmup_s * 1000)) // MINUTE_MS * MINUTE_MS
        specs = {}
        if self.replay_ticks is None:
            kw = dict(market_kwargs or {})
            groups = kw.pop("groups", None) or [builtin]
            for c in sorted({u.cluster for u in synthetic if u.cluster is not None}):
                groups.append([u.symbol for u in synthetic if u.cluster == c])
            total = sum(u.quote_volume_per_day for u in synthetic) or 1.0
            share = universe_rate_share * sum(KNOWN_SYMBOLS.get(b, (0, 0, 0, 0.3))[3]
                                              for b in builtin)
            for u in synthetic:
                specs[u.symbol] = SymbolSpec(u.symbol, u.base_price, tick_size(u.base_price),
                                             step_size(u.base_price),
                                             share * u.quote_volume_per_day / total)
            kw.setdefault("min_rate", MIN_TRADES_PER_MINUTE / 60.0)  # as dense as the past
            self.model = MarketModel(self.symbols, rate=rate, seed=seed, start_ms=past_end,
                                     specs=specs, groups=groups, **kw)
            for u in synthetic:
                if u.cluster is not None:
                    self.model.beta[self.symbols.index(u.symbol)] = u.beta
        # the past: built-in symbols form one cointegrated cluster with the live model's betas
        instruments = []
        for i, sym in enumerate(self.symbols):
            sp = specs.get(sym) or symbol_spec(sym)
            u = next((u for u in synthetic if u.symbol == sym), None)
            if u is None:
                beta = float(self.model.beta[i]) if self.model is not None else 1.0
                u = UniverseSymbol(sym, sp.price, _BUILTIN_VOLUME.get(sym, 2e8), _BUILTIN_CLUSTER,
                                   beta, _BUILTIN_ONBOARD.get(sym, 1609459200000))
            cap = 0.003 if u.quote_volume_per_day >= 5e9 else 0.0075 if \
                u.quote_volume_per_day >= 5e8 else 0.02
            instruments.append(Instrument(u, sp.tick_size, sp.step_size, cap))
        self.instruments = {i.symbol: i for i in instruments}
        self.past = Past(instruments, past_end if self.model else start_ms, seed)
        self.start_ms = start_ms
        if self.model is not None:
            self._continue_past()
        self.speed = speed
        # Binance drops a client after 10 min without a pong; Tornado caps the timeout at the
        # ping interval, so the default is the interval itself.
        self.ping_interval = ping_interval
        self.ping_timeout = ping_interval if ping_timeout is None else ping_timeout
        self.max_connection_age = max_connection_age
        self.weight_limit, self.ban_seconds = weight_limit, ban_seconds
        self.ledger = Ledger(None if retention_s is None else int(retention_s * 1000))
        self.connections: set[_Conn] = set()
        self.stats: collections.Counter = collections.Counter()
        self.minutes: dict = {}
        self.books: dict = {}
        self.last_trade: dict[str, tuple[float, float, int]] = {}
        self.streams = StreamEngine(self)
        self.archive = Archive(self)
        self.recent: dict[str, collections.deque] = collections.defaultdict(
            lambda: collections.deque(maxlen=1000))
        self._servers: list[tornado.httpserver.HTTPServer] = []
        self._task: asyncio.Task | None = None
        self._paused = False
        self._dup_next = 0
        self._rest_forced: list[tuple[int, int]] = []
        self._ever_streams: set[str] = set()
        self._weights: dict[tuple[str, int], int] = collections.Counter()
        self._retry_until: dict[str, float] = {}
        self._ban_until: dict[str, float] = {}
        self._replay_pos = 0
        self._replay_base = (int(self.replay_ticks["ts"].iloc[0])
                             if self.replay_ticks is not None and len(self.replay_ticks) else 0)
        self.app = self._make_app()
        if self.model is not None:
            self._advance_to(start_ms, 1000)  # the warm-up: before anyone can connect
        # trades at or after this time (int64 ms) were published live, to connected clients
        self.live_from_ms = int(self.model.t_ms) if self.model is not None else start_ms

    def _continue_past(self) -> None:
        """Start the live model where the past ends: same price, trade and aggregate ids above
        every past id."""
        m = self.model
        end = self.past.end_ms
        base = (end // DAY_MS + 1) * IDS_PER_DAY
        for i, sym in enumerate(self.symbols):
            bars = self.past.minutes(sym, end - MINUTE_MS, end)
            if len(bars["close"]):
                m.log_p0[i] = np.log(bars["close"][-1]) - m.spread[i]
        m.size_median = 2_000.0 / np.exp(m.log_p0)
        m.last_log_price = m.log_prices()
        m.next_id = base + np.arange(len(self.symbols), dtype=np.int64) * IDS_PER_DAY
        m.next_agg = m.next_id.copy()

    # --- market state (REST and streams) ----------------------------------------------------
    def now_ms(self) -> int:
        """The exchange clock: the model's time (wall clock for a replay)."""
        return int(self.model.t_ms) if self.model is not None else _now_ms()

    # --- lifecycle -------------------------------------------------------------------------
    def _make_app(self) -> tornado.web.Application:
        routes = []
        for prefix, route in (("/public", "public"), ("/market", "market"),
                              ("/private", "private"), ("", "public")):
            kw = {"sim": self, "route": route}
            routes += [(prefix + r"/ws/?(.*)", StreamSocket, kw | {"combined": False}),
                       (prefix + r"/stream/?", StreamSocket, kw | {"combined": True})]
        kw = {"sim": self}
        routes += [(r"/data/(.*)", ArchiveHandler, {"archive": self.archive})]
        routes += rest_routes(self) + [(r"/sim/(.+)", ControlHandler, kw)]
        return tornado.web.Application(routes, websocket_ping_interval=self.ping_interval,
                                       websocket_ping_timeout=self.ping_timeout,
                                       websocket_max_message_size=1 << 20,
                                       default_handler_class=NotFoundHandler,
                                       default_handler_args=kw)

    def _listen(self) -> None:
        socks = tornado.netutil.bind_sockets(self.port, self.host, family=socket.AF_INET)
        self.port = socks[0].getsockname()[1]
        server = tornado.httpserver.HTTPServer(self.app)
        server.add_sockets(socks)
        self._servers.append(server)

    async def start(self) -> SimExchange:
        """Bind and start publishing; returns self (``ws_url``/``rest_url`` are then valid)."""
        self._listen()
        self._t0_wall = time.monotonic()
        self._t0_sim = self.model.t_ms if self.model is not None else None
        self._task = asyncio.get_running_loop().create_task(self._run())
        log.info("sim exchange on %s (%s)", self.ws_url,
                 "replay" if self.replay_ticks is not None else f"symbols {self.symbols}")
        return self

    async def stop(self) -> None:
        """Stop publishing, close every connection and the listening sockets."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for conn in list(self.connections):
            conn.handler.close(1001, "server shutting down")
        for server in self._servers:
            server.stop()
        await asyncio.sleep(0.05)
        for server in self._servers:
            await server.close_all_connections()
        self._servers.clear()
        self.archive.close()

    async def __aenter__(self) -> SimExchange:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def archive_url(self) -> str:
        """Stands for ``https://data.binance.vision`` (files under ``/data/futures/um/``)."""
        return f"http://{self.host}:{self.port}"

    def pause(self) -> None:
        """Stop generating trades (connections stay open)."""
        self._paused = True

    def resume(self) -> None:
        """Generate again, from the current wall time on (the paused interval has no trades;
        a replay continues where it stopped)."""
        if self._paused:
            self._t0_wall = time.monotonic()
            if self.model is not None:
                self._t0_sim = self.model.t_ms
            elif self._replay_pos < len(self.replay_ticks):
                self._replay_base = int(self.replay_ticks["ts"].iloc[self._replay_pos])
        self._paused = False

    @property
    def replay_done(self) -> bool:
        return self.replay_ticks is not None and self._replay_pos >= len(self.replay_ticks)

    # --- publishing ------------------------------------------------------------------------
    async def _run(self) -> None:
        interval = self.chunk_ms / 1000.0
        while True:
            await asyncio.sleep(interval)
            try:
                if not self._paused:
                    self._publish_due()
                    self._emit_streams()
                self._enforce_age()
            except Exception:  # keep the exchange alive, but say so
                log.exception("sim publish step failed")

    def _publish_due(self) -> None:
        if self.model is None:
            self._publish_replay()
            return
        self._advance_to(self._t0_sim + (time.monotonic() - self._t0_wall) * 1000.0,
                         self.chunk_ms)

    def _advance_to(self, target_ms: float, step_ms: int) -> None:
        """Run the model in steps of ``step_ms`` up to ``target_ms`` and publish its trades."""
        while self.model.t_ms + step_ms <= target_ms:
            batch = self.model.advance(step_ms)
            if len(batch):
                self._publish(batch.sym, batch.ts, batch.trade_id, batch.price, batch.qty,
                              batch.m, batch.x, batch.agg)

    def _emit_streams(self) -> None:
        """Push the due events of every subscribed non-trade stream (one emitter for all)."""
        frames = self.streams.tick(_now_ms())
        if not frames:
            return
        for conn in list(self.connections):
            if not conn.stalled:
                self._send_frames(conn, [(s, p) for s, p in frames if conn.wants(s)])

    def _publish_replay(self) -> None:
        df = self.replay_ticks
        if self._replay_pos >= len(df):
            return
        ts = df["ts"].to_numpy()
        if self.speed <= 0:
            end = min(self._replay_pos + 5000, len(df))
        else:
            due = self._replay_base + (time.monotonic() - self._t0_wall) * 1000.0 * self.speed
            end = int(np.searchsorted(ts, due, side="right"))
        if end <= self._replay_pos:
            return
        part = df.iloc[self._replay_pos:end]
        self._replay_pos = end
        sym_index = {s: i for i, s in enumerate(self.symbols)}
        sym = part["symbol"].map(sym_index).to_numpy(np.int64)
        ids = part["trade_id"].to_numpy(np.int64)
        self._publish(sym, part["ts"].to_numpy(np.int64), ids, part["price"].to_numpy(),
                      part["qty"].to_numpy(), part["is_buyer_maker"].to_numpy(np.int8),
                      np.zeros(len(part), np.int8), ids, event_ts=part["ts"].to_numpy(np.int64))

    def _publish(self, sym, ts, ids, price, qty, m, x, agg, event_ts=None) -> None:
        now = _now_ms()
        if event_ts is None:
            event_ts = np.maximum(ts, now)
        wanted = self._ever_streams
        frames: list[tuple[int, str, str]] = []  # (trade time, stream, payload)
        for i in np.unique(sym).tolist():
            symbol = self.symbols[i]
            sel = sym == i
            self.ledger.append(symbol, ts[sel], event_ts[sel], ids[sel], price[sel], qty[sel],
                               m[sel], x[sel], agg[sel])
            self.stats["published"] += int(sel.sum())
            mk = sel & (x == X_MARKET)
            self.stats["published_market"] += int(mk.sum())
            if mk.any():
                self.minutes_of(symbol).append(ts[mk], ids[mk], price[mk], qty[mk], m[mk])
                j = int(np.flatnonzero(mk)[-1])
                self.last_trade[symbol] = (float(price[j]), float(qty[j]), int(ids[j]))
            lower = symbol.lower()
            if f"{lower}@trade" in wanted:
                frames += self._trade_frames(symbol, sel, ts, event_ts, ids, price, qty, m, x)
            if f"{lower}@aggTrade" in wanted:
                frames += self._agg_frames(symbol, sel, ts, event_ts, ids, price, qty, m, x, agg)
        if not frames:
            return
        if len(self.symbols) > 1:
            frames.sort(key=_first)
        for _, stream, payload in frames:
            self.recent[stream].append(payload)
        for conn in list(self.connections):
            if conn.stalled:
                continue
            self._send_frames(conn, [(s, p) for _, s, p in frames if conn.wants(s)])

    def _trade_frames(self, symbol, sel, ts, event_ts, ids, price, qty, m, x):
        ins = self.instruments[symbol]
        pd_, qd = ins.price_decimals, ins.qty_decimals
        stream = f"{symbol.lower()}@trade"
        out = []
        for e, t, i, p, q, mm, xx in zip(event_ts[sel].tolist(), ts[sel].tolist(),
                                         ids[sel].tolist(), price[sel].tolist(),
                                         qty[sel].tolist(), m[sel].tolist(), x[sel].tolist()):
            side = ',"m":true' if mm == 1 else ',"m":false' if mm == 0 else ""
            ps = "0" if p == 0 else (f"{p:.{pd_}f}" if self.model is not None else repr(p))
            qs = "0" if q == 0 else (f"{q:.{qd}f}" if self.model is not None else repr(q))
            out.append((t, stream, f'{{"e":"trade","E":{e},"T":{t},"s":"{symbol}","t":{i},'
                                f'"p":"{ps}","q":"{qs}","X":"{X_NAMES[xx]}"{side}}}'))
        return out

    def _agg_frames(self, symbol, sel, ts, event_ts, ids, price, qty, m, x, agg):
        ins = self.instruments[symbol]
        pd_, qd = ins.price_decimals, ins.qty_decimals
        stream = f"{symbol.lower()}@aggTrade"
        mk = sel & (x == X_MARKET) & (agg >= 0)
        a = agg[mk]
        if len(a) == 0:
            return []
        starts = np.r_[0, np.flatnonzero(np.diff(a)) + 1]
        ends = np.r_[starts[1:], len(a)]
        q = np.add.reduceat(qty[mk], starts)
        out = []
        for aid, e, t, f, ll, p, qq, mm in zip(
                a[starts].tolist(), event_ts[mk][starts].tolist(), ts[mk][starts].tolist(),
                ids[mk][starts].tolist(), ids[mk][ends - 1].tolist(),
                price[mk][starts].tolist(), q.tolist(), m[mk][starts].tolist()):
            ps = f"{p:.{pd_}f}" if self.model is not None else repr(p)
            qs = f"{qq:.{qd}f}" if self.model is not None else repr(qq)
            out.append((t, stream, f'{{"e":"aggTrade","E":{e},"a":{aid},"s":"{symbol}","p":"{ps}",'
                                f'"q":"{qs}","nq":"{qs}","f":{f},"l":{ll},"T":{t},'
                                f'"m":{"true" if mm == 1 else "false"}}}'))
        return out

    def _send_frames(self, conn: _Conn, frames) -> None:
        """Send text frames in one socket write (unmasked server frames, RFC 6455 §5.2);
        Tornado's per-message path costs several times more at 20,000 frames/s."""
        if not frames:
            return
        if conn.combined:
            texts = [f'{{"stream":"{stream}","data":{payload}}}' for stream, payload in frames]
        else:
            texts = [payload for _, payload in frames]
        ws = conn.handler.ws_connection
        if ws is None or ws.is_closing() or ws.stream.closed():
            return
        buf = bytearray()
        for text in texts:
            data = text.encode()
            n = len(data)
            if n < 126:
                buf += bytes((0x81, n))
            elif n < 65536:
                buf += b"\x81\x7e" + n.to_bytes(2, "big")
            else:
                buf += b"\x81\x7f" + n.to_bytes(8, "big")
            buf += data
        ws.stream.write(bytes(buf))
        self.stats["frames_sent"] += len(frames)

    def _enforce_age(self) -> None:
        now = time.monotonic()
        for conn in list(self.connections):
            if now - conn.opened > self.max_connection_age:
                self.stats["closed_age"] += 1
                conn.handler.close(1001, "connection lifetime limit reached")
                self.connections.discard(conn)

    # --- connections and control messages ---------------------------------------------------
    def _on_open(self, conn: _Conn) -> None:
        self.connections.add(conn)
        self._ever_streams.update(conn.streams)
        self.streams.add(conn.streams)
        self.stats["connections_opened"] += 1
        if self._dup_next:
            n, self._dup_next = self._dup_next, 0
            old = [(s, p) for s in conn.streams if conn.wants(s) for p in list(self.recent[s])[-n:]]
            random.Random(n).shuffle(old)
            self.stats["duplicates_sent"] += len(old)
            self._send_frames(conn, old)

    def _on_close(self, conn: _Conn) -> None:
        self.connections.discard(conn)
        self.streams.remove(conn.streams)

    def _control(self, conn: _Conn, message) -> dict | None:
        """The reply to one control message: ``{"result": ..., "id": N}`` or Binance's error
        ``{"error": {"code": C, "msg": ...}, "id": N}``."""
        try:
            req = json.loads(message)
        except (ValueError, UnicodeDecodeError) as e:
            return error_reply(f"Invalid JSON: {e}", None, 3)
        if not isinstance(req, dict):
            return error_reply("Invalid request: request must be a JSON object", None)
        rid = req.get("id")
        if "method" not in req:
            return error_reply("Invalid request: missing field `method`", rid)
        if "id" not in req:
            return error_reply("Invalid request: missing field `id`", None)
        if not (isinstance(rid, int) and rid >= 0) and not isinstance(rid, str):
            return error_reply("Invalid request: request ID must be an unsigned integer", None)
        method = req["method"]
        if method not in METHODS:
            return error_reply(f"Invalid request: unknown variant `{method}`, expected one of "
                               "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, "
                               "`SET_PROPERTY`, `GET_PROPERTY`", rid)
        params = req.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(conn.streams), "id": rid}
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return {"result": False if method == "GET_PROPERTY" else None, "id": rid}
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return error_reply("Invalid value type: expected an array of strings", rid, 1)
        if any(parse_stream(p, self.instruments) is None for p in params):
            return error_reply(INVALID_STREAM, rid)
        if method == "SUBSCRIBE":
            if len(set(conn.streams) | set(params)) > MAX_STREAMS:
                return error_reply(f"Invalid request: too many streams, at most {MAX_STREAMS} "
                                   "per connection", rid)
            added = [p for p in dict.fromkeys(params) if p not in conn.streams]
            conn.streams.update(dict.fromkeys(added))
            self._ever_streams.update(added)
            self.streams.add(added)
        else:
            removed = [p for p in dict.fromkeys(params) if p in conn.streams]
            for p in removed:
                conn.streams.pop(p)
            self.streams.remove(removed)
        return {"result": None, "id": rid}

    # --- REST rate limits -----------------------------------------------------------------
    def _weight_used(self, ip: str) -> int:
        return self._weights[(ip, int(time.time() // 60))]

    def _admit_rest(self, ip: str, weight: int) -> tuple[int, int, int] | None:
        """None to serve the request, else (status, retry_after_s, used_weight)."""
        now = time.time()
        minute = int(now // 60)
        used = self._weights[(ip, minute)]
        if self._rest_forced:
            status, retry = self._rest_forced.pop(0)
            return status, retry, used
        if self._ban_until.get(ip, 0) > now:
            return 418, int(self._ban_until[ip] - now) + 1, used
        if self._retry_until.get(ip, 0) > now:
            self._ban_until[ip] = now + self.ban_seconds
            return 418, self.ban_seconds, used
        if used + weight > self.weight_limit:
            retry = int((minute + 1) * 60 - now) + 1
            self._retry_until[ip] = now + retry
            return 429, retry, used
        self._weights[(ip, minute)] = used + weight
        return None

    # --- fault injection --------------------------------------------------------------------
    def drop(self) -> None:
        """Abruptly drop every connection (TCP reset, no close frame: the client sees 1006)."""
        for conn in list(self.connections):
            stream = conn.handler.ws_connection.stream if conn.handler.ws_connection else None
            if stream is not None and stream.socket is not None:
                stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                         struct.pack("ii", 1, 0))
                stream.close()
            self.connections.discard(conn)
        self.stats["fault_drop"] += 1

    def close(self, code: int = 1001, reason: str = "") -> None:
        """Close every connection cleanly with ``code`` (1001 going away, 1008, 1011, ...)."""
        reasons = {1001: "going away", 1008: "Too many requests", 1011: "keepalive ping timeout"}
        for conn in list(self.connections):
            conn.handler.close(code, reason or reasons.get(code, ""))
            self.connections.discard(conn)
        self.stats[f"fault_close_{code}"] += 1

    def stall(self) -> None:
        """Stop sending data on every open connection, keeping the sockets (and pings) alive.
        New connections are served normally."""
        for conn in self.connections:
            conn.stalled = True
        self.stats["fault_stall"] += 1

    def garbage(self, n: int = 5) -> None:
        """Send ``n`` rounds of malformed / unexpected frames to every connection."""
        junk = ["not json at all {", "[1,2,3]", '{"e":"trade","s":"BTCUSDT"}',
                '{"stream":"btcusdt@trade","data":null}', '{"e":"unknownEvent","E":1}',
                b"\x00\xff\xfebinary"]
        for conn in list(self.connections):
            for _ in range(n):
                for j in junk:
                    conn.handler._send(j)
        self.stats["fault_garbage"] += 1

    def duplicate_on_reconnect(self, n: int = 50) -> None:
        """The next connection first receives the last ``n`` frames of each of its streams again,
        shuffled (duplicates, out of order), then the live stream."""
        self._dup_next = n

    def refuse(self, seconds: float = 1.0) -> None:
        """Drop every connection and refuse TCP connections for ``seconds``."""
        for server in self._servers:
            server.stop()
        self.drop()
        self.stats["fault_refuse"] += 1

        def reopen():
            self._listen()
        asyncio.get_running_loop().call_later(seconds, reopen)

    def force_rotation(self, max_age: float = 1.0) -> None:
        """Set the connection lifetime limit to ``max_age`` seconds (Binance: 24 h)."""
        self.max_connection_age = max_age

    def rest_throttle(self, n: int = 1, status: int = 429, retry_after: int = 1) -> None:
        """Answer the next ``n`` REST data requests with ``status`` and ``Retry-After``."""
        self._rest_forced += [(status, retry_after)] * n

    def ledger_summary(self) -> dict:
        """Per symbol: MARKET trade count, first/last id, id sum and total qty (bench checks)."""
        out = {}
        for s in self.symbols:
            a = self.ledger.arrays(s)
            mk = a["x"] == X_MARKET
            ids = a["trade_id"][mk]
            out[s] = {"market": int(mk.sum()), "all": int(len(a["x"])),
                      "first_id": int(ids[0]) if len(ids) else None,
                      "last_id": int(ids[-1]) if len(ids) else None,
                      "id_sum": int(ids.sum()), "qty_sum": float(a["qty"][mk].sum())}
        return out


def _first(item):
    return item[0]


def _load_replay(replay, symbols) -> pd.DataFrame:
    if isinstance(replay, pd.DataFrame):
        df = replay
    else:
        from ..io import read_ticks
        df = read_ticks(replay)
    df = df.reset_index(drop=True)
    if symbols:
        df = df[df["symbol"].isin([s.upper() for s in symbols])]
    return df.sort_values(["ts", "symbol", "trade_id"], kind="stable", ignore_index=True)

