"""A local Binance USDⓈ-M compatible exchange: WebSocket streams and REST on one Tornado port.

:class:`SimExchange` is the facade: it builds the market (model or replay, the past, the
instruments), owns the publishing loop and composes the parts, each in its own module:

* WebSocket (:mod:`qdash.sim.sockets`): Binance's routes (``/public``, ``/market``,
  ``/private``, the unrouted ``/ws`` and ``/stream`` served as ``/public``), control messages,
  the 10 messages/s limit (1008) and the connection lifetime (1001); the server pings every
  ``ping_interval`` seconds. Streams: ``@trade``, ``@aggTrade`` (:mod:`qdash.sim.trade_frames`)
  and every kline, mark price, book ticker, depth and ticker stream of Binance
  (:mod:`qdash.sim.streams`, one emitter for all).
* REST (:mod:`qdash.sim.rest`, base ``http://HOST:PORT``): ping, time, exchangeInfo, aggTrades,
  trades, klines, continuousKlines, markPriceKlines, indexPriceKlines, premiumIndexKlines,
  premiumIndex, fundingRate, fundingInfo, ticker/24hr, ticker/price (v1 and v2),
  ticker/bookTicker, depth, openInterest under ``/fapi/v1`` — Binance's field names, types and
  weights; ``X-MBX-USED-WEIGHT-1M`` on every answer; over ``weight_limit`` per minute → 429 +
  ``Retry-After``; another request before that → 418 (banned ``ban_seconds``)
  (:mod:`qdash.sim.limiter`); errors as ``{"code", "msg"}`` JSON, unknown paths 404 / -5000.
* Bulk archive (:mod:`qdash.sim.archive`): ``http://HOST:PORT`` also stands for
  ``https://data.binance.vision``: ``/data/futures/um/{daily,monthly}/{klines,aggTrades,trades,
  markPriceKlines,indexPriceKlines,premiumIndexKlines,fundingRate}/...zip`` (+ ``.CHECKSUM``)
  for every closed day or month of the past, Binance's names and CSV columns.
* Trading (signed, ``X-MBX-APIKEY`` + HMAC-SHA256): paper accounts (``accounts=[(key, secret,
  balance)]`` or :meth:`SimExchange.open_account`; :mod:`qdash.sim.accounts`), the order,
  account and listen-key endpoints (:mod:`qdash.sim.orders_rest`), orders matched on the
  synthetic book with taken liquidity and queue positions (:mod:`qdash.sim.matching`), fees,
  positions, funding and liquidation (:mod:`qdash.sim.trading`, :mod:`qdash.sim.margin`), the
  user-data stream (:mod:`qdash.sim.user_stream`); every fill is published as a trade.
  Conditional orders (STOP, STOP_MARKET, TAKE_PROFIT, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET)
  on Binance's Algo Order API (:mod:`qdash.sim.algo_rest`), held until their trigger
  (:mod:`qdash.sim.algo_desk`).
* Faults (:mod:`qdash.sim.faults`) and test controls (:mod:`qdash.sim.control`, not part of
  Binance's API): ``/sim/fault/<name>?...``, ``/sim/pause``, ``/sim/resume``,
  ``/sim/ledger_summary``, ``/sim/stats``. Replay of recorded ticks: :mod:`qdash.sim.replay`.

The handlers see the exchange through :class:`qdash.sim.context.ExchangeContext` and never
import this module.

The past (:mod:`qdash.sim.past`): every symbol has a deterministic history from its listing up
to ``warmup_s`` before the start (rounded down to the minute): klines at every interval, funding
every 8 h, mark/index/premium prices and trades; the live model continues it (same price, ids
above the past's) and trades that last stretch before the start as if the exchange had been
running, so the recent past a client fetches is as dense as the live stream (the past's trades
expand 1-minute klines: a few a second, with empty seconds a sub-minute bar would carry over).
``universe=N`` adds N synthetic perpetuals (:mod:`qdash.sim.universe`); live, each symbol's share
of ``rate`` follows its quote volume but is at least the past's 4 trades a minute on average.
Every trade is recorded in :attr:`SimExchange.ledger`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import time

import numpy as np
import tornado.httpserver
import tornado.netutil
import tornado.web

from ..binance.filters import SymbolFilters
from ..periodic import PeriodicTask
from .accounts import MAKER_FEE, TAKER_FEE, Account, Accounts
from .algo_desk import AlgoDesk
from .algo_rest import algo_routes
from .archive import Archive, ArchiveHandler
from .control import ControlHandler
from .faults import FaultInjection
from .latency import Latency
from .ledger import Ledger
from .limiter import OrderCounter, WeightLimiter
from .listing import continue_past, list_instruments, market_model
from .market import X_MARKET
from .orders_rest import order_routes
from .past import Past
from .replay import Replay, load_replay
from .rest import NotFoundHandler, rest_routes, symbol_info
from .sockets import Connection, Connections, socket_routes
from .state import MarketState
from .streams import StreamEngine
from .trade_frames import agg_trade_frames, trade_frames
from .trading import Trading
from .universe import MINUTE_MS, make_universe
from .user_stream import UserStreams

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


DEMO_WEIGHT_LIMIT = 1_000_000
"""The weight limit of a simulator started for one user (``qdash demo``, a dashboard's own): it
does not hold them to Binance's 2,400 a minute, or bootstrapping 1s history from aggTrades for
three symbols, the live backfill and the funding panel's polls would wait minutes behind a 429
before the first chart appears. ``qdash sim`` keeps Binance's limit."""


class SimExchange(MarketState, FaultInjection):
    """The simulated exchange. ``await start()`` binds ``host:port`` (0 = any free port) and
    starts publishing; ``await stop()`` ends it. Runs on the current asyncio loop.

    Market: ``symbols``, ``rate`` (trades/s in total), ``seed``, ``start_ms`` (sim clock origin;
    default: now, so trade times track the wall clock) and ``market_kwargs`` for
    :class:`MarketModel`; ``warmup_s``: seconds before ``start_ms`` traded by the live model at
    construction (its trades are in the ledger; see the module doc). Replay: ``replay`` (a tick
    DataFrame or a path any qdash reader accepts) at ``speed`` × real time (0 = as fast as
    possible); recorded ids and times are kept, fills take ids between them
    (:mod:`qdash.sim.replay`). Faults: the methods of :class:`FaultInjection`.
    """

    def __init__(self, symbols: list[str] | None = None, *, rate: float = 50.0, seed: int = 0,
                 host: str = "127.0.0.1", port: int = 0, start_ms: int | None = None,
                 chunk_ms: int = 50, replay=None, speed: float = 1.0,
                 ping_interval: float = 180.0, ping_timeout: float | None = None,
                 max_connection_age: float = 24 * 3600.0, weight_limit: int = 2400,
                 ban_seconds: int = 120, retention_s: float | None = None,
                 market_kwargs: dict | None = None, universe: int = 0,
                 universe_rate_share: float = 0.1, warmup_s: float = 300.0,
                 accounts: list[tuple[str | None, str | None, float]] | None = None,
                 order_latency_ms: str | float = 0, maker_fee: float = MAKER_FEE,
                 taker_fee: float = TAKER_FEE,
                 order_limits: tuple[tuple[int, int], ...] = ((300, 10_000), (1200, 60_000))):
        self.host, self.port = host, port
        self.chunk_ms = chunk_ms
        ticks = load_replay(replay, symbols) if replay is not None else None
        self.replay = Replay(ticks, speed) if ticks is not None else None
        if ticks is not None:
            symbols = symbols or sorted(ticks["symbol"].unique())
        builtin = [s.upper() for s in (symbols or ["BTCUSDT", "ETHUSDT"])]
        synthetic = make_universe(universe, seed) if universe else []
        self.symbols = builtin + [u.symbol for u in synthetic if u.symbol not in builtin]
        # on the wall clock (no start given, no replay), trades are stamped with the wall time
        # they are published at; a given start runs a deterministic clock of its own
        self._wall_clock = start_ms is None and ticks is None
        start_ms = _now_ms() if start_ms is None else int(start_ms)
        if ticks is not None and len(ticks):
            start_ms = int(ticks["ts"].iloc[0])
        self.seed = seed
        past_end = (start_ms - int(warmup_s * 1000)) // MINUTE_MS * MINUTE_MS
        self.model, specs = None, {}
        if ticks is None:
            self.model, specs = market_model(builtin, synthetic, rate=rate, seed=seed,
                                             start_ms=past_end,
                                             universe_rate_share=universe_rate_share,
                                             market_kwargs=market_kwargs)
        listed = list_instruments(self.symbols, synthetic, specs, self.model)
        self.instruments = {i.symbol: i for i in listed}
        self.past = Past(listed, past_end if self.model else start_ms, seed)
        self.start_ms = start_ms
        if self.model is not None:
            continue_past(self.model, self.past)
        # Binance drops a client after 10 min without a pong; Tornado caps the timeout at the
        # ping interval, so the default is the interval itself.
        self.ping_interval = ping_interval
        self.ping_timeout = ping_interval if ping_timeout is None else ping_timeout
        self.limiter = WeightLimiter(weight_limit, ban_seconds)
        self.ledger = Ledger(None if retention_s is None else int(retention_s * 1000))
        self.stats: collections.Counter = collections.Counter()
        self.minutes: dict = {}
        self.books: dict = {}
        self.last_trade: dict[str, tuple[float, float, int]] = {}
        self.market_last: dict[str, float] = {}  # the market's own last price: the book's centre
        self.streams = StreamEngine(self)
        self.sockets = Connections(self.instruments, self.streams, self.stats,
                                   max_connection_age)
        self.archive = Archive(self)
        self.servers: list[tornado.httpserver.HTTPServer] = []
        self._publisher = PeriodicTask(self._publish_step, chunk_ms / 1000.0,
                                       name="qdash-sim-publish", delay_first=True,
                                       on_error=self._publish_failed)
        self._paused = False
        self._open_trading(accounts or [], order_latency_ms, maker_fee, taker_fee, order_limits)
        self.app = self._make_app()
        if self.model is not None:
            self._advance_to(start_ms, 1000)  # the warm-up: before anyone can connect
        # trades at or after this time (int64 ms) were published live, to connected clients
        self.live_from_ms = int(self.model.t_ms) if self.model is not None else start_ms

    # --- market state (REST and streams) ----------------------------------------------------
    def now_ms(self) -> int:
        """The exchange clock: the model's time, or the replay's (the time of the last
        recorded trade published)."""
        return int(self.model.t_ms) if self.model is not None else self.replay.clock_ms

    def key_clock_ms(self) -> int:
        """The clock listen keys expire by: the exchange's, but the wall's in a replay (played
        faster than real time, it would expire a key between a client's keep-alives)."""
        return self.now_ms() if self.model is not None else _now_ms()

    @property
    def replaying(self) -> bool:
        """True when recorded ticks play instead of the market model."""
        return self.replay is not None

    @property
    def connections(self) -> set[Connection]:
        """The open WebSocket connections."""
        return self.sockets.open

    # --- trading ---------------------------------------------------------------------------
    def _open_trading(self, accounts, latency, maker_fee, taker_fee, order_limits) -> None:
        self.maker_fee, self.taker_fee = maker_fee, taker_fee
        self.accounts = Accounts()
        for key, secret, balance in accounts:
            self.open_account(key, secret, balance)
        self.order_latency = Latency(latency, self.seed)
        self.order_counter = OrderCounter(tuple(order_limits))
        self.user_streams = UserStreams()
        self.sockets.user_streams = self.user_streams
        filters = {s: SymbolFilters.from_exchange_info(symbol_info(self, s))
                   for s in self.symbols}
        self.trading = Trading(self, self.accounts, filters, self.user_streams.emit)
        self.algo_desk = AlgoDesk(self.trading, self.last_price, self.user_streams.emit)

    def open_account(self, key: str | None = None, secret: str | None = None,
                     balance: float = 100_000.0) -> Account:
        """Open a paper account funded with ``balance`` USDT (a key or secret not given is
        drawn); its API key and secret are ``account.key`` and ``account.secret``."""
        return self.accounts.open(key, secret, balance, self.maker_fee, self.taker_fee)

    def funding_rate(self, symbol: str, t_ms: int) -> float:
        """The funding rate settled at the funding time ``t_ms``."""
        rate = self.past.funding(symbol, t_ms, t_ms)["funding_rate"]
        return float(rate.iloc[0]) if len(rate) else 0.0

    def publish_fills(self, symbol: str, prices: list[float], qtys: list[float],
                      taker_sell: bool) -> list[int]:
        """Publish the fills of one taker order as trades of the exchange (one aggregate
        trade); returns their trade ids."""
        n = len(prices)
        i = self.symbols.index(symbol)
        if self.model is not None:
            first, agg = int(self.model.next_id[i]), int(self.model.next_agg[i])
            self.model.next_id[i] += n
            self.model.next_agg[i] += 1
            ids = np.arange(first, first + n, dtype=np.int64)
        else:  # ids the replay's recorded trades make room for (qdash.sim.replay)
            ids, agg = self.replay.fill_ids(symbol, n)
        ts = np.full(n, self.now_ms(), np.int64)
        self._publish(np.full(n, i, np.int64), ts, ids,
                      np.asarray(prices, np.float64), np.asarray(qtys, np.float64),
                      np.full(n, int(taker_sell), np.int8), np.full(n, X_MARKET, np.int8),
                      np.full(n, agg, np.int64), event_ts=None if self.model else ts, own=True)
        return ids.tolist()

    def _reach_resting(self, sym, price, qty, m, x) -> None:
        """The market's own MARKET trades reach the resting orders of the accounts."""
        for i in np.unique(sym).tolist():
            symbol = self.symbols[i]
            matcher = self.trading.matchers.get(symbol)
            if matcher is None or not matcher.resting:
                continue
            sel = (sym == i) & (x == X_MARKET)
            for p, q, mm in zip(price[sel].tolist(), qty[sel].tolist(), m[sel].tolist()):
                self.trading.on_trade(symbol, p, q, bool(mm))

    # --- lifecycle -------------------------------------------------------------------------
    def _make_app(self) -> tornado.web.Application:
        kw = {"sim": self}
        routes = socket_routes(self.sockets)
        routes += [(r"/data/(.*)", ArchiveHandler, {"archive": self.archive})]
        routes += rest_routes(self) + order_routes(self) + algo_routes(self)
        routes += [(r"/sim/(.+)", ControlHandler, kw)]
        return tornado.web.Application(routes, websocket_ping_interval=self.ping_interval,
                                       websocket_ping_timeout=self.ping_timeout,
                                       websocket_max_message_size=1 << 20,
                                       default_handler_class=NotFoundHandler,
                                       default_handler_args=kw)

    def listen(self) -> None:
        """Bind ``host:port`` (again, after :meth:`refuse`) and serve."""
        socks = tornado.netutil.bind_sockets(self.port, self.host, family=socket.AF_INET)
        self.port = socks[0].getsockname()[1]
        server = tornado.httpserver.HTTPServer(self.app)
        server.add_sockets(socks)
        self.servers.append(server)

    async def start(self) -> SimExchange:
        """Bind and start publishing; returns self (``ws_url``/``rest_url`` are then valid)."""
        self.listen()
        if self._wall_clock:  # building the exchange took time: trade it up to now, unseen
            self._advance_to(_now_ms(), self.chunk_ms)
            self.live_from_ms = int(self.model.t_ms)
        self._restart_clock()
        self._publisher.start()
        log.info("sim exchange on %s (%s)", self.ws_url,
                 "replay" if self.replay is not None else f"symbols {self.symbols}")
        return self

    async def stop(self) -> None:
        """Stop publishing, close every connection and the listening sockets."""
        await self._publisher.wait_stopped()
        self.sockets.close_all(1001, "server shutting down")
        for server in self.servers:
            server.stop()
        await asyncio.sleep(0.05)
        for server in self.servers:
            await server.close_all_connections()
        self.servers.clear()
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
            self._restart_clock()
        self._paused = False

    def _restart_clock(self) -> None:
        """Trades due from now on continue from the model's time or the replay's position."""
        self._t0_wall = time.monotonic()
        if self.model is not None:
            if self._wall_clock:  # after a pause: no trades in it, the clock is the wall's
                self.model.t_ms = max(self.model.t_ms, float(_now_ms()))
            self._t0_sim = self.model.t_ms
        else:
            self.replay.restart(self._t0_wall)

    @property
    def replay_done(self) -> bool:
        return self.replay is not None and self.replay.done

    # --- publishing ------------------------------------------------------------------------
    def _publish_step(self) -> None:
        """One step of the publishing loop (every ``chunk_ms``): trades due, then the other
        streams' events, then the connection lifetime limit."""
        if not self._paused:
            self._publish_due()
            self.sockets.broadcast(self.streams.tick(_now_ms()))
            self.trading.step()
            self.algo_desk.step()
        self.user_streams.expire(self.key_clock_ms())
        self.sockets.enforce_age()

    @staticmethod
    def _publish_failed(exc: BaseException) -> None:
        log.error("sim publish step failed", exc_info=exc)  # the exchange keeps running

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

    def _publish_replay(self) -> None:
        part = self.replay.due(time.monotonic())
        if part is None:
            return
        sym_index = {s: i for i, s in enumerate(self.symbols)}
        sym = part["symbol"].map(sym_index).to_numpy(np.int64)
        ts = part["ts"].to_numpy(np.int64)
        self._publish(sym, ts, part["trade_id"].to_numpy(np.int64), part["price"].to_numpy(),
                      part["qty"].to_numpy(), part["is_buyer_maker"].to_numpy(np.int8),
                      np.zeros(len(part), np.int8), part["agg"].to_numpy(np.int64),
                      event_ts=ts)

    def _publish(self, sym, ts, ids, price, qty, m, x, agg, event_ts=None, own=False) -> None:
        """Record trades (column arrays, id order per symbol) in the ledger, the minute books
        and the last trade, and send them to the ``@trade``/``@aggTrade`` subscribers; the
        market's own trades (not ``own``, the accounts' fills) then reach resting orders."""
        self._send_trades(sym, ts, ids, price, qty, m, x, agg, event_ts, own)
        if self.algo_desk.watched:  # conditional orders see every trade price
            for i in np.unique(sym).tolist():
                p = price[sym == i]
                self.algo_desk.traded(self.symbols[i], float(p.min()), float(p.max()))
        if not own and self.trading.resting:
            self._reach_resting(sym, price, qty, m, x)

    def _send_trades(self, sym, ts, ids, price, qty, m, x, agg, event_ts, own) -> None:
        now = _now_ms()
        if event_ts is None:
            event_ts = np.maximum(ts, now)
        wanted = self.sockets.ever_streams
        frames: list[tuple[int, str, str]] = []  # (trade time, stream, payload)
        for i in np.unique(sym).tolist():
            symbol = self.symbols[i]
            sel = sym == i
            t, e, tid, p, q, mm, xx, a = (v[sel] for v in (ts, event_ts, ids, price, qty, m, x,
                                                            agg))
            self.ledger.append(symbol, t, e, tid, p, q, mm, xx, a)
            self.stats["published"] += len(t)
            mk = xx == X_MARKET
            self.stats["published_market"] += int(mk.sum())
            if mk.any():
                self.minutes_of(symbol).append(t[mk], tid[mk], p[mk], q[mk], mm[mk])
                j = int(np.flatnonzero(mk)[-1])
                self.last_trade[symbol] = (float(p[j]), float(q[j]), int(tid[j]))
                if not own:  # the accounts' fills take liquidity, they do not move the book
                    self.market_last[symbol] = float(p[j])
            ins = self.instruments[symbol]
            decimals = (ins.price_decimals, ins.qty_decimals) if self.model is not None else None
            lower = symbol.lower()
            if f"{lower}@trade" in wanted:
                frames += trade_frames(symbol, t, e, tid, p, q, mm, xx, decimals)
            if f"{lower}@aggTrade" in wanted:
                frames += agg_trade_frames(symbol, t, e, tid, p, q, mm, xx, a, decimals)
        if not frames:
            return
        if len(self.symbols) > 1:
            frames.sort(key=_first)
        for _, stream, payload in frames:
            self.sockets.recent[stream].append(payload)
        self.sockets.broadcast([(s, p) for _, s, p in frames])


def _first(item):
    return item[0]
