"""One trading account on an exchange that speaks Binance USDⓈ-M (the simulator, or Binance):
the signed REST calls the trader makes and its user-data stream.

REST goes through THE client, :class:`qdash.binance.rest.RestClient`, signed by
:func:`qdash.binance.signing.signer`; calls run in worker threads (``asyncio.to_thread``) so two
legs' orders go out at once. Orders are sent without retries in transit (an order may have
reached the exchange: the trader reconciles by client order id). The user-data stream is read
from ``<ws_url>/private/ws/<listenKey>`` (the legacy ``/ws/<listenKey>`` when the private route
is refused), its key kept alive every 30 minutes.

The API secret is held by the signer alone: it is in no attribute, message or log line of this
module, and the key appears only in the request header.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import orjson

from ..binance import limits as L
from ..binance.filters import SymbolFilters, filters_by_symbol
from ..binance.order_updates import OrderUpdate, Position
from ..binance.rest import RestClient
from ..binance.signing import API_KEY_HEADER, signer
from ..config import var_name
from ..errors import QdashError

log = logging.getLogger(__name__)

KEEPALIVE_S = 30 * 60
POOL_THREADS = 4  # two legs' orders at once, and a cancel or a query beside them


class Account:
    """The account of ``api_key`` at ``rest_url``/``ws_url``."""

    def __init__(self, rest_url: str, ws_url: str, api_key: str, api_secret: str, *,
                 recv_window_ms: int | None = None):
        if not api_key or not api_secret:
            raise QdashError(f"trading needs an API key and secret: set ${var_name('api_key')}"
                             f" and ${var_name('api_secret')} (the simulator prints its "
                             "account's at start)")
        self.rest_url, self.ws_url = rest_url.rstrip("/"), ws_url.rstrip("/")
        self.key_hint = f"{api_key[:4]}…{api_key[-2:]}" if len(api_key) > 8 else "…"
        self.signed = RestClient(rest_url, sign=signer(api_key, api_secret, recv_window_ms),
                                 max_wait=5.0)
        self.keyed = RestClient(rest_url, sign=lambda q: (q, {API_KEY_HEADER: api_key}),
                                max_wait=5.0)
        self.listen_key: str | None = None
        # the order threads, each with its kept-alive connection (warmed by :meth:`warm`)
        self._pool = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="qdash-orders")

    def __repr__(self) -> str:
        return f"Account({self.rest_url!r}, key {self.key_hint})"

    # --- signed REST -------------------------------------------------------------------------
    async def _call(self, method: str, path: str, params: dict | None = None,
                    signed: bool = True):
        client = self.signed if signed else self.keyed
        call = functools.partial(client.request, method, path, params,
                                 weight=L.ORDER_WEIGHTS.get(path, 1))
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def warm(self) -> None:
        """Open every order thread's connection now, not on the first order."""
        def ping():
            self.signed.request("GET", L.PING)
            time.sleep(0.02)                     # hold the thread: the next ping takes another
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._pool, ping)
                               for _ in range(POOL_THREADS)))

    async def new_order(self, params: dict) -> OrderUpdate:
        """``POST /fapi/v1/order`` (RESULT response): the order's state after it."""
        return OrderUpdate.from_rest(await self._call("POST", L.ORDER, params))

    async def query_order(self, symbol: str, client_id: str) -> OrderUpdate:
        return OrderUpdate.from_rest(await self._call(
            "GET", L.ORDER, {"symbol": symbol, "origClientOrderId": client_id}))

    async def cancel_order(self, symbol: str, client_id: str) -> OrderUpdate:
        return OrderUpdate.from_rest(await self._call(
            "DELETE", L.ORDER, {"symbol": symbol, "origClientOrderId": client_id}))

    async def cancel_all(self, symbol: str) -> None:
        await self._call("DELETE", L.ALL_OPEN_ORDERS, {"symbol": symbol})

    async def open_orders(self, symbol: str) -> list[OrderUpdate]:
        rows = await self._call("GET", L.OPEN_ORDERS, {"symbol": symbol})
        return [OrderUpdate.from_rest(r) for r in rows]

    async def all_orders(self, symbol: str, limit: int = 1000) -> list[OrderUpdate]:
        rows = await self._call("GET", L.ALL_ORDERS, {"symbol": symbol, "limit": limit})
        return [OrderUpdate.from_rest(r) for r in rows]

    async def user_trades(self, symbol: str, start_ms: int | None = None) -> list[dict]:
        return await self._call("GET", L.USER_TRADES, {"symbol": symbol, "startTime": start_ms,
                                                       "limit": 1000})

    async def positions(self) -> list[Position]:
        """Every position of the account (``positionRisk``), zero ones included."""
        rows = await self._call("GET", L.POSITION_RISK_V2)
        return [Position.from_position_risk(r) for r in rows]

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        await self._call("POST", L.LEVERAGE, {"symbol": symbol, "leverage": int(leverage)})

    async def filters(self, symbols) -> dict[str, SymbolFilters]:
        """The trading filters of ``symbols`` from ``exchangeInfo``."""
        info = await asyncio.to_thread(self.keyed.exchange_info)
        every = filters_by_symbol(info)
        missing = [s for s in symbols if s not in every]
        if missing:
            raise QdashError(f"{', '.join(missing)} not listed by {self.rest_url}")
        return {s: every[s] for s in symbols}

    async def touch(self, symbol: str) -> tuple[float, float]:
        """The best bid and ask of ``symbol`` now (``bookTicker``)."""
        d = await self._call("GET", L.BOOK_TICKER, {"symbol": symbol}, signed=False)
        return float(d["bidPrice"]), float(d["askPrice"])

    # --- user-data stream --------------------------------------------------------------------
    async def new_listen_key(self) -> str:
        d = await self._call("POST", L.LISTEN_KEY, signed=False)
        self.listen_key = d["listenKey"]
        return self.listen_key

    async def close_listen_key(self) -> None:
        """``DELETE /fapi/v1/listenKey``: the stream's events stop."""
        await self._call("DELETE", L.LISTEN_KEY, signed=False)
        self.listen_key = None

    async def stream(self, on_event: Callable[[dict], None],
                     on_connect: Callable[[bool], Awaitable[None]],
                     running: Callable[[], bool]) -> None:
        """Read the user-data stream until ``running()`` is false, reconnecting with a new
        listen key after a drop. ``on_event(event)`` gets every decoded event;
        ``await on_connect(reconnected)`` runs once each connection is open (after a drop:
        the time to reconcile and fetch what was missed by REST)."""
        from websockets.asyncio.client import connect

        reconnected, last_keepalive = False, time.monotonic()
        while running():
            try:
                key = await self.new_listen_key()
                ws = await self._connect(connect, key)
            except Exception as e:  # the exchange is away: try again shortly
                log.warning("user-data stream: cannot connect (%s)", type(e).__name__)
                await asyncio.sleep(0.5)
                reconnected = True
                continue
            try:
                await on_connect(reconnected)
                async for raw in ws:
                    event = orjson.loads(raw)
                    if event.get("e") == "listenKeyExpired":
                        break
                    on_event(event)
                    if time.monotonic() - last_keepalive > KEEPALIVE_S:
                        last_keepalive = time.monotonic()
                        await self._call("PUT", L.LISTEN_KEY, signed=False)
            except Exception as e:  # a drop: reconnect and reconcile
                log.warning("user-data stream dropped (%s); reconnecting", type(e).__name__)
            finally:
                await ws.close()
            reconnected = True

    async def _connect(self, connect, key: str):
        try:
            return await connect(f"{self.ws_url}/private/ws/{key}", open_timeout=5)
        except Exception:
            return await connect(f"{self.ws_url}/ws/{key}", open_timeout=5)

    def close(self) -> None:
        self.signed.close()
        self.keyed.close()
        self._pool.shutdown(wait=False)
