"""A local Binance USDⓈ-M compatible exchange: WebSocket streams and REST on one Tornado port.

WebSocket (same routing rules as Binance since 2026-04):

* ``/public/ws/<stream>[/<stream>...]``, ``/public/stream?streams=a/b`` — ``@trade`` flows here;
* ``/market/ws/...``, ``/market/stream?...`` — ``@aggTrade`` flows here;
* the unrouted ``/ws/...`` and ``/stream?...`` are served as ``/public``.

A stream subscribed on the wrong route is accepted and acknowledged and then delivers nothing.
``/ws`` paths send raw payloads, ``/stream`` paths the combined envelope
``{"stream": ..., "data": ...}``. Control messages SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS
get Binance's replies (``{"result": null, "id": N}``) and error objects (``{"code": 2, ...}``);
more than 10 incoming messages in one second close the connection with 1008. The server pings
every ``ping_interval`` seconds and closes connections older than ``max_connection_age`` (1001).

REST: ``/fapi/v1/aggTrades``, ``/fapi/v1/trades``, ``/fapi/v1/klines``, ``/fapi/v1/exchangeInfo``,
each with ``X-MBX-USED-WEIGHT-1M``; over ``weight_limit`` per minute → 429 + ``Retry-After``;
another request before that → 418 (banned ``ban_seconds``).

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
import re
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

from ..model import timeframe_ms
from .ledger import Ledger
from .market import X_MARKET, X_NAMES, MarketModel, symbol_spec

log = logging.getLogger(__name__)

MARKET_STREAM_SUFFIXES = ("@aggTrade", "@markPrice", "@kline_", "@ticker", "@miniTicker",
                          "@forceOrder", "@continuousKline", "@compositeIndex", "@assetIndex")
_STREAM_RE = re.compile(r"^(!?[a-z0-9_]+)@[A-Za-z0-9_@]+$")
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
MAX_STREAMS = 1024
MAX_INCOMING_PER_S = 10
KLINE_INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d",
                   "3d", "1w")


def stream_route(stream: str) -> str:
    """``"market"`` for streams Binance serves on /market, else ``"public"``."""
    return "market" if any(s in stream for s in MARKET_STREAM_SUFFIXES) else "public"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


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
        streams = [s for s in path.split("/") if s] if not self.combined else \
            [s for s in self.get_argument("streams", "").split("/") if s]
        self.conn = _Conn(self, self.route, self.combined, dict.fromkeys(streams))
        self.sim._on_open(self.conn)

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


class _RestHandler(tornado.web.RequestHandler):
    weight = 1

    def initialize(self, sim: SimExchange):
        self.sim = sim

    def _reply(self, status: int, body, weight_used: int, retry_after: int | None = None):
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("X-MBX-USED-WEIGHT-1M", str(weight_used))
        if retry_after is not None:
            self.set_header("Retry-After", str(retry_after))
        self.finish(json.dumps(body, separators=(",", ":")))

    def _error(self, code: int, msg: str, status: int = 400):
        raise _ApiError(status, code, msg)

    def get(self):
        sim = self.sim
        ip = self.request.remote_ip or "?"
        try:
            weight = self.request_weight()
        except _ApiError:
            weight = self.weight
        verdict = sim._admit_rest(ip, weight)
        if verdict is not None:
            status, retry, used = verdict
            if status == 429:
                code_msg = (f"Too many requests; current limit of IP({ip}) is "
                            f"{sim.weight_limit} requests per minute. Please use the websocket "
                            "for live updates to avoid polling the API.")
            else:
                code_msg = (f"Way too many requests; IP({ip}) banned until "
                            f"{_now_ms() + retry * 1000}. Please use the websocket for live "
                            "updates to avoid bans.")
            sim.stats[f"rest_{status}"] += 1
            self._reply(status, {"code": -1003, "msg": code_msg}, used, retry)
            return
        used = sim._weight_used(ip)
        try:
            body = self.respond()
        except _ApiError as e:
            self._reply(e.status, {"code": e.code, "msg": e.msg}, used)
            return
        sim.stats["rest_ok"] += 1
        self._reply(200, body, used)

    def request_weight(self) -> int:
        return self.weight

    def respond(self):
        raise NotImplementedError

    # parameter helpers -----------------------------------------------------------------------
    def symbol(self) -> str:
        s = self.get_argument("symbol", "")
        if not s:
            self._error(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or "
                               "malformed.")
        if s not in self.sim.symbols:
            self._error(-1121, "Invalid symbol.")
        return s

    def int_arg(self, name: str, default: int | None = None, lo: int | None = None,
                hi: int | None = None) -> int | None:
        v = self.get_argument(name, None)
        if v is None or v == "":
            return default
        try:
            x = int(v)
        except ValueError:
            self._error(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                               "'^[0-9]{1,20}$'.")
        if (lo is not None and x < lo) or (hi is not None and x > hi):
            self._error(-1130, f"Data sent for parameter '{name}' is not valid.")
        return x


class _ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str):
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


class AggTradesHandler(_RestHandler):
    weight = 20

    def respond(self):
        sym = self.symbol()
        limit = self.int_arg("limit", 500, 1, 1000)
        from_id = self.int_arg("fromId")
        start, end = self.int_arg("startTime"), self.int_arg("endTime")
        if start is not None and end is not None and end - start >= 3_600_000:
            self._error(-1127, "More than 1 hours between startTime and endTime.")
        spec = symbol_spec(sym)
        agg = self.sim.ledger.aggregates(sym)
        sel = np.ones(len(agg), dtype=bool)
        if from_id is not None:
            sel &= agg["agg_id"].to_numpy() >= from_id
        if start is not None:
            sel &= agg["ts"].to_numpy() >= start
        if end is not None:
            sel &= agg["ts"].to_numpy() <= end
        rows = agg[sel]
        rows = rows.head(limit) if (from_id is not None or start is not None) else rows.tail(limit)
        pd_, qd = spec.price_decimals, spec.qty_decimals
        return [{"a": int(r.agg_id), "p": f"{r.price:.{pd_}f}", "q": f"{r.qty:.{qd}f}",
                 "f": int(r.first_id), "l": int(r.last_id), "T": int(r.ts),
                 "m": bool(r.is_buyer_maker)} for r in rows.itertuples()]


class TradesHandler(_RestHandler):
    weight = 5

    def respond(self):
        sym = self.symbol()
        limit = self.int_arg("limit", 500, 1, 1000)
        spec = symbol_spec(sym)
        a = self.sim.ledger.arrays(sym)
        idx = np.flatnonzero(a["x"] == X_MARKET)[-limit:]
        pd_, qd = spec.price_decimals, spec.qty_decimals
        return [{"id": int(a["trade_id"][i]), "price": f"{a['price'][i]:.{pd_}f}",
                 "qty": f"{a['qty'][i]:.{qd}f}",
                 "quoteQty": f"{a['price'][i] * a['qty'][i]:.{pd_ + qd}f}",
                 "time": int(a["ts"][i]), "isBuyerMaker": bool(a["m"][i] == 1)} for i in idx]


class KlinesHandler(_RestHandler):
    def request_weight(self) -> int:
        limit = self.int_arg("limit", 500, 1, 1500)
        return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10

    def respond(self):
        sym = self.symbol()
        interval = self.get_argument("interval", "")
        if interval not in KLINE_INTERVALS:
            self._error(-1120, "Invalid interval.")
        limit = self.int_arg("limit", 500, 1, 1500)
        start, end = self.int_arg("startTime"), self.int_arg("endTime")
        return klines(self.sim.ledger.arrays(sym), timeframe_ms(interval), start, end, limit,
                      symbol_spec(sym))


def klines(a: dict, tf: int, start: int | None, end: int | None, limit: int, spec) -> list:
    """Binance kline rows built from the MARKET trades of one symbol's ledger arrays."""
    mk = a["x"] == X_MARKET
    ts, price, qty, m = a["ts"][mk], a["price"][mk], a["qty"][mk], a["m"][mk]
    if len(ts) == 0:
        return []
    df = pd.DataFrame({"open_time": ts // tf * tf, "price": price, "qty": qty,
                       "quote": price * qty, "buy": np.where(m == 0, qty, 0.0),
                       "buy_quote": np.where(m == 0, price * qty, 0.0)})
    if start is not None:
        df = df[df["open_time"] >= start // tf * tf]
    if end is not None:
        df = df[df["open_time"] <= end]
    g = df.groupby("open_time", sort=True)
    bars = g.agg(open=("price", "first"), high=("price", "max"), low=("price", "min"),
                 close=("price", "last"), volume=("qty", "sum"), quote=("quote", "sum"),
                 count=("price", "size"), buy=("buy", "sum"), buy_quote=("buy_quote", "sum"))
    bars = bars.head(limit) if start is not None else bars.tail(limit)
    pd_, qd = spec.price_decimals, spec.qty_decimals
    return [[int(t), f"{b.open:.{pd_}f}", f"{b.high:.{pd_}f}", f"{b.low:.{pd_}f}",
             f"{b.close:.{pd_}f}", f"{b.volume:.{qd}f}", int(t) + tf - 1, f"{b.quote:.8f}",
             int(b.count), f"{b.buy:.{qd}f}", f"{b.buy_quote:.8f}", "0"]
            for t, b in zip(bars.index, bars.itertuples())]


class ExchangeInfoHandler(_RestHandler):
    def respond(self):
        sim = self.sim
        return {
            "timezone": "UTC", "serverTime": _now_ms(),
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                            "intervalNum": 1, "limit": sim.weight_limit}],
            "symbols": [{
                "symbol": s, "pair": s, "contractType": "PERPETUAL", "status": "TRADING",
                "baseAsset": s[:-4] if s.endswith("USDT") else s, "quoteAsset": "USDT",
                "pricePrecision": sp.price_decimals, "quantityPrecision": sp.qty_decimals,
                "filters": [{"filterType": "PRICE_FILTER", "tickSize": repr(sp.tick_size)},
                            {"filterType": "LOT_SIZE", "stepSize": repr(sp.step_size)}],
            } for s, sp in ((s, symbol_spec(s)) for s in sim.symbols)],
        }


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


class SimExchange:
    """The simulated exchange. ``await start()`` binds ``host:port`` (0 = any free port) and
    starts publishing; ``await stop()`` ends it. Runs on the current asyncio loop.

    Market: ``symbols``, ``rate`` (trades/s in total), ``seed``, ``start_ms`` (sim clock origin;
    default: now, so trade times track the wall clock) and ``market_kwargs`` for
    :class:`MarketModel`. Replay: ``replay`` (a tick DataFrame or a path any qdash reader accepts)
    at ``speed`` × real time (0 = as fast as possible); ids and times are preserved.
    """

    FAULTS = ("drop", "close", "stall", "garbage", "duplicate_on_reconnect", "refuse",
              "force_rotation", "rest_throttle")

    def __init__(self, symbols: list[str] | None = None, *, rate: float = 50.0, seed: int = 0,
                 host: str = "127.0.0.1", port: int = 0, start_ms: int | None = None,
                 chunk_ms: int = 50, replay=None, speed: float = 1.0,
                 ping_interval: float = 180.0, ping_timeout: float | None = None,
                 max_connection_age: float = 24 * 3600.0, weight_limit: int = 2400,
                 ban_seconds: int = 120, retention_s: float | None = None,
                 market_kwargs: dict | None = None):
        self.host, self.port = host, port
        self.chunk_ms = chunk_ms
        self.replay_ticks = _load_replay(replay, symbols) if replay is not None else None
        if self.replay_ticks is not None:
            symbols = symbols or sorted(self.replay_ticks["symbol"].unique())
        self.symbols = [s.upper() for s in (symbols or ["BTCUSDT", "ETHUSDT"])]
        self.model = None
        if self.replay_ticks is None:
            self.model = MarketModel(self.symbols, rate=rate, seed=seed,
                                     start_ms=_now_ms() if start_ms is None else start_ms,
                                     **(market_kwargs or {}))
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

    # --- lifecycle -------------------------------------------------------------------------
    def _make_app(self) -> tornado.web.Application:
        routes = []
        for prefix, route in (("/public", "public"), ("/market", "market"), ("", "public")):
            kw = {"sim": self, "route": route}
            routes += [(prefix + r"/ws/?(.*)", StreamSocket, kw | {"combined": False}),
                       (prefix + r"/stream/?", StreamSocket, kw | {"combined": True})]
        kw = {"sim": self}
        routes += [(r"/fapi/v1/aggTrades", AggTradesHandler, kw),
                   (r"/fapi/v1/trades", TradesHandler, kw),
                   (r"/fapi/v1/klines", KlinesHandler, kw),
                   (r"/fapi/v1/exchangeInfo", ExchangeInfoHandler, kw),
                   (r"/sim/(.+)", ControlHandler, kw)]
        return tornado.web.Application(routes, websocket_ping_interval=self.ping_interval,
                                       websocket_ping_timeout=self.ping_timeout,
                                       websocket_max_message_size=1 << 20)

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
                self._enforce_age()
            except Exception:  # keep the exchange alive, but say so
                log.exception("sim publish step failed")

    def _publish_due(self) -> None:
        if self.model is None:
            self._publish_replay()
            return
        target = self._t0_sim + (time.monotonic() - self._t0_wall) * 1000.0
        while self.model.t_ms + self.chunk_ms <= target:
            batch = self.model.advance(self.chunk_ms)
            if len(batch):
                self._publish(batch.sym, batch.ts, batch.trade_id, batch.price, batch.qty,
                              batch.m, batch.x, batch.agg)

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
        for i, symbol in enumerate(self.symbols):
            sel = sym == i
            if not sel.any():
                continue
            self.ledger.append(symbol, ts[sel], event_ts[sel], ids[sel], price[sel], qty[sel],
                               m[sel], x[sel], agg[sel])
            self.stats["published"] += int(sel.sum())
            self.stats["published_market"] += int((x[sel] == X_MARKET).sum())
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
        spec = symbol_spec(symbol)
        pd_, qd = spec.price_decimals, spec.qty_decimals
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
        spec = symbol_spec(symbol)
        pd_, qd = spec.price_decimals, spec.qty_decimals
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
        self.stats["connections_opened"] += 1
        if self._dup_next:
            n, self._dup_next = self._dup_next, 0
            old = [(s, p) for s in conn.streams if conn.wants(s) for p in list(self.recent[s])[-n:]]
            random.Random(n).shuffle(old)
            self.stats["duplicates_sent"] += len(old)
            self._send_frames(conn, old)

    def _on_close(self, conn: _Conn) -> None:
        self.connections.discard(conn)

    def _control(self, conn: _Conn, message) -> dict | None:
        try:
            req = json.loads(message)
        except (ValueError, UnicodeDecodeError) as e:
            return {"code": 3, "msg": f"Invalid JSON: {e}"}
        if not isinstance(req, dict):
            return {"code": 2, "msg": "Invalid request: request must be a JSON object"}
        rid = req.get("id")
        if "method" not in req:
            return {"code": 2, "msg": "Invalid request: missing field `method`", "id": rid}
        if "id" not in req:
            return {"code": 2, "msg": "Invalid request: missing field `id`"}
        if not (isinstance(rid, int) and rid >= 0) and not isinstance(rid, str):
            return {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer",
                    "id": None}
        method = req["method"]
        if method not in METHODS:
            return {"code": 2, "msg": f"Invalid request: unknown variant `{method}`, expected one "
                                      "of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, "
                                      "`SET_PROPERTY`, `GET_PROPERTY`", "id": rid}
        params = req.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(conn.streams), "id": rid}
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return {"result": False if method == "GET_PROPERTY" else None, "id": rid}
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return {"code": 1, "msg": "Invalid value type: expected an array of strings",
                    "id": rid}
        for p in params:
            if not _STREAM_RE.match(p):
                return {"code": 2, "msg": f"Invalid request: invalid stream name `{p}`",
                        "id": rid}
        if method == "SUBSCRIBE":
            if len(set(conn.streams) | set(params)) > MAX_STREAMS:
                return {"code": 2, "msg": f"Invalid request: too many streams, at most "
                                          f"{MAX_STREAMS} per connection", "id": rid}
            conn.streams.update(dict.fromkeys(params))
            self._ever_streams.update(params)
        else:
            for p in params:
                conn.streams.pop(p, None)
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

