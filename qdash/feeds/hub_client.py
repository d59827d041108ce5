"""``Hub``: a kernel's subscription to the qdash server's tick hub (``/qdash/ws/ticks``).

Ticks that external producers push into the server (scripts, the browser collector, a colleague's
recorder) are stored there and published to every subscriber; ``Hub`` turns them into the same
tick batches as :class:`~qdash.feeds.binance.BinanceFutures`, with the same interface
(:class:`~qdash.feeds.base.TickFeed`: ``batches()``, ``on_ticks()``, ``start()``/``stop()``), so
analytics, alerts and plots do not care where ticks came from.

Finding the server, with no configuration inside a dashboard:

1. ``url=`` if given;
2. ``$QDASH_SERVER_URL`` (set by ``qdash serve`` and the Jupyter server extension);
3. in a Voila kernel: ``http://127.0.0.1:$VOILA_APP_PORT`` + ``$VOILA_SERVER_URL`` (or
   ``$VOILA_BASE_URL``) — the environment Voila gives each kernel;
4. ``http://127.0.0.1:5001/`` (the default of ``qdash serve``).

The token is ``token=`` or ``$QDASH_TOKEN``, which every qdash host exports to the kernels it
starts. The connection is kept by :class:`~qdash.feeds.connection.ConnectionLoop` (backoff with
jitter; a change of symbols reconnects at once); ticks published while disconnected are not
replayed (they are in the server's store: read them with ``Store.ticks``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
import urllib.parse

import orjson
import websockets
from websockets.asyncio.client import connect

from ..config import Settings
from ..errors import QdashError
from ..model import normalize_symbol, tick_frame
from .base import TickFeed
from .connection import ConnectionLoop

log = logging.getLogger(__name__)

DEFAULT_SERVER_URL = "http://127.0.0.1:5001/"
MAX_MESSAGE = 2**27


def server_url(url: str | None = None, env: dict | None = None) -> str:
    """The qdash server's HTTP base URL (ending in ``/``), found as the module docstring says."""
    env = os.environ if env is None else env
    found = url or Settings.from_env(env).server_url
    if not found and env.get("VOILA_APP_PORT"):
        path = env.get("VOILA_SERVER_URL") or env.get("VOILA_BASE_URL") or "/"
        found = f"http://127.0.0.1:{env['VOILA_APP_PORT']}/{path.strip('/')}"
    found = found or DEFAULT_SERVER_URL
    return found if found.endswith("/") else found + "/"


def ticks_ws_url(base: str, symbols) -> str:
    """``ws(s)://.../qdash/ws/ticks?symbols=A,B`` for an HTTP base URL."""
    parts = urllib.parse.urlsplit(base)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    query = urllib.parse.urlencode({"symbols": ",".join(symbols)}) if symbols else ""
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path + "qdash/ws/ticks", query,
                                    ""))


class Hub(TickFeed):
    """Live ticks from the qdash server's hub for ``symbols`` (``None``: every symbol).

    Times in seconds. ``stats()`` has the same core counters as ``BinanceFutures.stats()``.
    """

    def __init__(self, symbols=None, *, url: str | None = None, token: str | None = None,
                 backoff_initial: float = 0.25, backoff_max: float = 10.0,
                 open_timeout: float = 10.0):
        super().__init__(name="Hub")
        self._symbols = None if symbols is None else [normalize_symbol(s) for s in symbols]
        self.base_url = server_url(url)
        self.token = token or Settings.from_env().token
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.open_timeout = open_timeout
        self.counters: collections.Counter = collections.Counter()
        self.per_symbol: dict[str, dict] = {}
        self.connected = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._conn = ConnectionLoop("Hub", lambda: self.url, self._on_message,
                                    connect=self._connect, keep_going=lambda: self.running,
                                    on_open=self._on_open, on_close=self._on_close,
                                    backoff_initial=backoff_initial, backoff_max=backoff_max)

    @property
    def last_error(self) -> str | None:
        """Why the last connection attempt failed or the last connection ended."""
        return self._conn.last_error

    @property
    def symbols(self) -> list[str] | None:
        return None if self._symbols is None else list(self._symbols)

    @property
    def url(self) -> str:
        return ticks_ws_url(self.base_url, self._symbols)

    # --- symbols ---------------------------------------------------------------------------
    async def subscribe(self, symbols) -> None:
        """Add symbols (reconnects with the new set; ``None`` means all symbols already)."""
        if self._symbols is None:
            return
        new = [s for s in (normalize_symbol(x) for x in symbols) if s not in self._symbols]
        if new:
            self._symbols += new
            await self._reconnect("symbols changed")

    async def unsubscribe(self, symbols) -> None:
        """Remove symbols (reconnects with the new set)."""
        if self._symbols is None:
            raise QdashError("Hub subscribed to every symbol: create it with a symbol list to "
                             "remove some")
        drop = {normalize_symbol(x) for x in symbols}
        if drop & set(self._symbols):
            self._symbols = [s for s in self._symbols if s not in drop]
            await self._reconnect("symbols changed")

    async def _reconnect(self, reason: str) -> None:
        if self._conn.ws is not None:
            log.info("Hub: reconnecting (%s)", reason)
            self._conn.close(f"requested: {reason}")

    # --- lifecycle ---------------------------------------------------------------------------
    def _run_tasks(self) -> None:
        self._task = self.loop.create_task(self._conn.run())

    async def _shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _connect(self, url: str):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            return await connect(url, additional_headers=headers, max_size=MAX_MESSAGE,
                                 open_timeout=self.open_timeout, compression=None)
        except websockets.InvalidStatus as e:
            if e.response.status_code == 401:
                log.error("Hub: the server at %s refused the token (set QDASH_TOKEN)",
                          self.base_url)
            raise

    def _on_open(self, ws) -> None:
        self.connected.set()

    def _on_close(self, ws, reason: str) -> None:
        self.connected.clear()

    def _on_message(self, message) -> None:
        self.counters["messages"] += 1
        try:
            d = orjson.loads(message)
            if d.get("type") != "ticks":
                return
            batch = tick_frame(d["symbol"], d["ts"], d["trade_id"], d["price"], d["qty"],
                               d["is_buyer_maker"], d.get("source") or "hub")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            self.counters["malformed"] += 1
            log.warning("Hub: unreadable message skipped: %s", e)
            return
        now = time.time()
        self.counters["ticks"] += len(batch)
        last = batch.groupby("symbol", sort=False)["ts"].agg(["size", "max"])
        for sym, (n, ts_max) in zip(last.index, last.to_numpy()):
            st = self.per_symbol.setdefault(sym, {"ticks": 0})
            st["ticks"] += int(n)
            st["last_message"] = now
            st["lag_ms"] = now * 1000 - float(ts_max)
        self._emit(batch)

    # --- counters --------------------------------------------------------------------------
    def stats(self) -> dict:
        """Counters: connection state, messages, ticks, reconnects, last error, per symbol
        (ticks, last message age in s, lag = arrival − trade time in ms)."""
        now = time.time()
        return {
            "running": self.running, "url": self.url,
            "connections": int(self._conn.ws is not None),
            "messages": self.counters["messages"], "ticks": self.counters["ticks"],
            "reconnects": self._conn.counters["reconnects"],
            "connects": self._conn.counters["connects"],
            "connect_failures": self._conn.counters["connect_failures"],
            "malformed": self.counters["malformed"], "last_error": self.last_error,
            "symbols": {s: {"ticks": st["ticks"], "lag_ms": st["lag_ms"],
                            "last_message_age_s": now - st["last_message"]}
                        for s, st in self.per_symbol.items()},
        }
