"""The signed REST endpoints of the simulated exchange: orders, account, positions, leverage,
margin type, brackets, commission, listen keys — Binance's paths, parameters, answers, weights
and error codes (:mod:`qdash.binance.orders`, :mod:`qdash.binance.limits`).

Every request is checked as Binance checks it (API key, then ``timestamp``/``recvWindow`` and
the signature; listen keys need the key only), charged its IP weight, and new orders count
against the account's order limits (``X-MBX-ORDER-COUNT-10S``/``-1M`` on every order answer;
over a limit: 429, -1015, ``Retry-After``). A new order waits the exchange's order latency
before it is matched. Times are int ms UTC; numbers are strings.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from ..binance import limits as L
from ..binance import order_fields as F
from ..binance.algo_orders import CONDITIONAL_TYPES
from ..binance.orders import Rejected, ack_json, order_json
from ..binance.signing import API_KEY_HEADER
from . import account_views as views
from .margin import brackets
from .rest import ApiError, RestHandler, now_ms

if TYPE_CHECKING:
    from ..binance.orders import Order
    from .accounts import Account
    from .context import TradingContext

MAX_BATCH = 5
_QTY_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"


class SignedHandler(RestHandler):
    """Signed endpoints: subclasses define ``on_get``/``on_post``/``on_put``/``on_delete``
    ``(account) -> body``; ``path`` names the endpoint in :mod:`qdash.binance.limits`."""

    path = ""
    signed = True
    sim: TradingContext

    def request_weight(self) -> int:
        return L.ORDER_WEIGHTS.get(self.path, 1)

    async def _serve(self, method: str):
        used = self.admit()
        if used is None:
            return
        self.headers: dict[str, str] = {}
        handler = getattr(self, f"on_{method}", None)
        try:
            if handler is None:
                raise ApiError(404, -5000, f"Path {self.request.path}, Method "
                                           f"{self.request.method} is invalid")
            acc = self.account()
            body = handler(acc)
            if asyncio.iscoroutine(body):
                body = await body
        except ApiError as e:
            self._reply(e.status, {"code": e.code, "msg": e.msg}, used, headers=self.headers)
            return
        except Rejected as e:
            retry = self.headers.pop("Retry-After", None)
            self._reply(e.status, e.body(), used, retry, headers=self.headers)
            return
        self.sim.stats["rest_ok"] += 1
        self._reply(200, body, used, headers=self.headers)

    async def get(self, *args):
        await self._serve("get")

    async def post(self, *args):
        await self._serve("post")

    async def put(self, *args):
        await self._serve("put")

    async def delete(self, *args):
        await self._serve("delete")

    def account(self) -> Account:
        accounts = self.sim.accounts
        key = self.request.headers.get(API_KEY_HEADER)
        if not self.signed:
            return accounts.by_api_key(key)
        params = {k: self.get_argument(k, "") for k in ("timestamp", "recvWindow", "signature")}
        body = self.request.body.decode("utf-8", "replace") if self.request.body else ""
        return accounts.authenticate(key, self.request.query, body, params, now_ms())

    # parameters -------------------------------------------------------------------------------
    def required(self, name: str) -> str:
        v = self.get_argument(name, "")
        if not v:
            raise Rejected(-1102, name=name)
        return v

    def number(self, name: str, required: bool = True) -> float | None:
        v = self.get_argument(name, "")
        if not v:
            if required:
                raise Rejected(-1102, name=name)
            return None
        try:
            return float(v)
        except ValueError:
            raise Rejected(-1100, name=name, range=_QTY_RANGE) from None

    def flag(self, name: str) -> bool:
        return self.get_argument(name, "false").lower() == "true"

    def order_ref(self) -> tuple[str, int | None, str | None]:
        """(symbol, orderId, origClientOrderId) of GET/DELETE order; one of the two ids."""
        sym = self.symbol()
        oid, cid = self.int_arg("orderId"), self.get_argument("origClientOrderId", "") or None
        if oid is None and cid is None:
            raise Rejected(-1102, name="orderId")
        return sym, oid, cid

    def history(self, rows: list, id_param: str, key) -> list:
        """Binance's paging of a history (``key(row)`` → (id, time ms), ascending): the first
        ``limit`` (default 500, at most 1000) from ``id_param`` on or within
        ``startTime``/``endTime``, else the last ``limit``."""
        limit = self.int_arg("limit", 500, 1, 1000)
        first = self.int_arg(id_param)
        start, end = self.time_window()
        rows = [r for r in rows if (first is None or key(r)[0] >= first) and
                (start is None or key(r)[1] >= start) and (end is None or key(r)[1] <= end)]
        return rows[:limit] if first is not None or start is not None else rows[-limit:]

    def fmt(self, o: Order) -> dict:
        f = self.sim.trading.filters[o.symbol]
        return order_json(o, f.price_decimals, f.qty_decimals)


class OrderHandler(SignedHandler):
    """``/fapi/v1/order``: POST places, GET queries, DELETE cancels."""

    path = L.ORDER

    async def on_post(self, acc: Account) -> dict:
        args = {k: self.get_argument(k, "") for k in F.ORDER_PARAMS.values()}
        return await place(self, acc, args)

    def on_get(self, acc: Account) -> dict:
        o = acc.find(*self.order_ref())
        if o is None:
            raise Rejected(-2013)
        return self.fmt(o)

    def on_delete(self, acc: Account) -> dict:
        return self.fmt(self.sim.trading.cancel(acc, *self.order_ref()))


async def count_and_delay(h: SignedHandler, acc: Account) -> None:
    """Count a new order against the account's order limits (headers on the answer; over a
    limit: -1015 with ``Retry-After``), then wait the exchange's order latency."""
    sim = h.sim
    counts, refusal = sim.order_counter.admit(acc.key)
    for (_, _, _, header), n in zip(L.ORDER_COUNT_LIMITS, counts):
        h.headers[header] = str(n)
    if refusal is not None:
        limit, i, retry = refusal
        h.headers["Retry-After"] = str(retry)
        raise Rejected(-1015, limit=limit, interval=L.ORDER_COUNT_LIMITS[i][2])
    delay = sim.order_latency.draw()
    if delay > 0:
        await asyncio.sleep(delay)


async def place(h: SignedHandler, acc: Account, args: dict) -> dict:
    """Check, count, delay and place one new order given as Binance's parameters (strings)."""
    sim, P = h.sim, F.ORDER_PARAMS
    for name in (P["symbol"], P["side"], P["type"], P["qty"]):
        if not args.get(name):
            raise Rejected(-1102, name=name)
    sym, side, otype = args[P["symbol"]], args[P["side"]], args[P["type"]]
    if sym not in sim.instruments:
        raise ApiError(400, -1121, "Invalid symbol.")
    if side not in F.SIDES:
        raise Rejected(-1117)
    if otype in CONDITIONAL_TYPES:
        raise Rejected(-4120)
    if otype not in F.ORDER_TYPES:
        raise Rejected(-1116)
    tif = args.get(P["time_in_force"]) or (F.GTC if otype == F.MARKET else "")
    if otype == F.LIMIT:
        for name in (P["price"], P["time_in_force"]):
            if not args.get(name):
                raise Rejected(-1102, name=name)
    if tif not in F.TIME_IN_FORCE:
        raise Rejected(-1115)
    if args.get(P["position_side"]) not in (None, "", F.POSITION_SIDE):
        raise ApiError(400, -4061, "Order's position side does not match user's setting.")
    try:
        qty = float(args[P["qty"]])
        price = float(args[P["price"]]) if otype == F.LIMIT else None
    except ValueError:
        raise Rejected(-1100, name="quantity/price", range=_QTY_RANGE) from None
    await count_and_delay(h, acc)
    o = sim.trading.place(acc, sym, side, otype, qty, price, tif,
                          str(args.get(P["reduce_only"], "")).lower() == "true",
                          args.get(P["client_id"]) or None)
    f = sim.trading.filters[sym]
    if args.get(P["resp_type"]) == F.RESULT:
        return order_json(o, f.price_decimals, f.qty_decimals, with_time=False)
    return ack_json(o, f.price_decimals, f.qty_decimals)


class BatchOrdersHandler(SignedHandler):
    """``/fapi/v1/batchOrders``: up to 5 orders; each answer is an order or an error."""

    path = L.BATCH_ORDERS

    async def on_post(self, acc: Account) -> list:
        try:
            batch = json.loads(self.required("batchOrders"))
        except ValueError:
            raise Rejected(-1130, name="batchOrders") from None
        if not isinstance(batch, list) or not 0 < len(batch) <= MAX_BATCH:
            raise Rejected(-1130, name="batchOrders")
        out = []
        for args in batch:
            try:
                out.append(await place(self, acc, {k: str(v) for k, v in args.items()}))
            except (Rejected, ApiError) as e:
                out.append({"code": e.code, "msg": e.msg})
        return out

    def on_delete(self, acc: Account) -> list:
        sym = self.symbol()
        ids = json.loads(self.get_argument("orderIdList", "[]") or "[]")
        cids = json.loads(self.get_argument("origClientOrderIdList", "[]") or "[]")
        out = []
        for oid, cid in [(int(i), None) for i in ids] + [(None, c) for c in cids]:
            try:
                out.append(self.fmt(self.sim.trading.cancel(acc, sym, oid, cid)))
            except Rejected as e:
                out.append(e.body())
        return out


class AllOpenOrdersHandler(SignedHandler):
    path = L.ALL_OPEN_ORDERS

    def on_delete(self, acc: Account) -> dict:
        self.sim.trading.cancel_all(acc, self.symbol())
        return {"code": 200, "msg": "The operation of cancel all open order is done."}


class OpenOrdersHandler(SignedHandler):
    path = L.OPEN_ORDERS

    def request_weight(self) -> int:
        return L.OPEN_ORDERS_WEIGHTS[0 if self.get_argument("symbol", "") else 1]

    def on_get(self, acc: Account) -> list:
        return [self.fmt(o) for o in acc.open_orders(self.symbol(required=False))]


class AllOrdersHandler(SignedHandler):
    """Orders of one symbol, ascending ``orderId`` (paged by ``orderId``)."""

    path = L.ALL_ORDERS

    def on_get(self, acc: Account) -> list:
        sym = self.symbol()
        rows = self.history([o for o in acc.orders.values() if o.symbol == sym], "orderId",
                            lambda o: (o.order_id, o.time))
        return [self.fmt(o) for o in rows]


class UserTradesHandler(SignedHandler):
    """The account's trades of one symbol, ascending id (paged by ``fromId``)."""

    path = L.USER_TRADES

    def on_get(self, acc: Account) -> list:
        sym = self.symbol()
        return self.history([t for t in acc.trades if t["symbol"] == sym], "fromId",
                            lambda t: (t["id"], t["time"]))


class VersionedHandler(SignedHandler):
    """An endpoint with a v2 and a v3 answer (``paths``: the v2 and v3 paths)."""

    paths = ("", "")

    def initialize(self, sim, version: int = 3):
        self.sim, self.version = sim, version
        self.path = self.paths[version - 2]


class AccountHandler(VersionedHandler):
    paths = (L.ACCOUNT_V2, L.ACCOUNT_V3)

    def on_get(self, acc: Account) -> dict:
        t = self.sim.trading
        return views.account(views.figures(t, acc), t, acc, now_ms(), self.version)


class BalanceHandler(VersionedHandler):
    paths = (L.BALANCE_V2, L.BALANCE_V3)

    def on_get(self, acc: Account) -> list:
        return views.balances(views.figures(self.sim.trading, acc), acc, now_ms())


class PositionRiskHandler(VersionedHandler):
    paths = (L.POSITION_RISK_V2, L.POSITION_RISK_V3)

    def on_get(self, acc: Account) -> list:
        t = self.sim.trading
        return views.position_risk(views.figures(t, acc), t, acc, self.version,
                                   self.symbol(required=False))


class LeverageHandler(SignedHandler):
    path = L.LEVERAGE

    def on_post(self, acc: Account) -> dict:
        sym = self.symbol()
        lev = self.int_arg("leverage")
        if lev is None:
            raise Rejected(-1102, name="leverage")
        table = brackets(sym)
        if not 1 <= lev <= table[0].max_leverage:
            raise Rejected(-4028, leverage=lev)
        acc.position(sym).leverage = lev
        cap = max(b.cap for b in table if b.max_leverage >= lev)
        return {"leverage": lev, "maxNotionalValue": str(int(cap)), "symbol": sym}


class MarginTypeHandler(SignedHandler):
    path = L.MARGIN_TYPE

    def on_post(self, acc: Account) -> dict:
        sym = self.symbol()
        kind = self.required("marginType").upper()
        kind = "CROSSED" if kind in ("CROSS", "CROSSED") else kind
        if kind not in ("CROSSED", "ISOLATED"):
            raise Rejected(-1130, name="marginType")
        pos = acc.position(sym)
        if pos.margin_type == kind:
            raise Rejected(-4046)
        if pos.amt or acc.open_orders(sym):
            raise ApiError(400, -4048, "Margin type cannot be changed if there exists "
                                       "position.")
        pos.margin_type = kind
        return {"code": 200, "msg": "success"}


class DualSideHandler(SignedHandler):
    """One-way mode only: GET says so, POST of ``true`` is refused."""

    path = L.POSITION_SIDE_DUAL

    def on_get(self, acc: Account) -> dict:
        return {"dualSidePosition": False}

    def on_post(self, acc: Account) -> dict:
        if self.flag("dualSidePosition"):
            raise ApiError(400, -4068, "The simulator trades in one-way mode only.")
        raise ApiError(400, -4059, "No need to change position side.")


class LeverageBracketHandler(SignedHandler):
    path = L.LEVERAGE_BRACKET

    def on_get(self, acc: Account):
        sym = self.symbol(required=False)
        if sym:
            return views.leverage_brackets(sym)
        return [views.leverage_brackets(s) for s in self.sim.symbols]


class CommissionRateHandler(SignedHandler):
    path = L.COMMISSION_RATE

    def on_get(self, acc: Account) -> dict:
        return {"symbol": self.symbol(), "makerCommissionRate": f"{acc.maker:.4f}",
                "takerCommissionRate": f"{acc.taker:.4f}"}


class ListenKeyHandler(SignedHandler):
    """``/fapi/v1/listenKey``: API key only, no signature."""

    path = L.LISTEN_KEY
    signed = False

    def on_post(self, acc: Account) -> dict:
        return {"listenKey": self.sim.user_streams.create(acc, self.sim.key_clock_ms())}

    def on_put(self, acc: Account) -> dict:
        key = self.sim.user_streams.keepalive(acc, self.sim.key_clock_ms())
        if key is None:
            raise ApiError(400, -1125, "This listenKey does not exist.")
        return {"listenKey": key}

    def on_delete(self, acc: Account) -> dict:
        self.sim.user_streams.close(acc)
        return {}


def order_routes(sim: TradingContext) -> list:
    """Tornado routes of the signed endpoints."""
    kw = {"sim": sim}
    plain = {L.ORDER: OrderHandler, L.BATCH_ORDERS: BatchOrdersHandler,
             L.ALL_OPEN_ORDERS: AllOpenOrdersHandler, L.OPEN_ORDERS: OpenOrdersHandler,
             L.ALL_ORDERS: AllOrdersHandler, L.USER_TRADES: UserTradesHandler,
             L.LEVERAGE: LeverageHandler, L.MARGIN_TYPE: MarginTypeHandler,
             L.POSITION_SIDE_DUAL: DualSideHandler, L.LEVERAGE_BRACKET: LeverageBracketHandler,
             L.COMMISSION_RATE: CommissionRateHandler, L.LISTEN_KEY: ListenKeyHandler}
    versioned = {L.ACCOUNT_V2: (AccountHandler, 2), L.ACCOUNT_V3: (AccountHandler, 3),
                 L.BALANCE_V2: (BalanceHandler, 2), L.BALANCE_V3: (BalanceHandler, 3),
                 L.POSITION_RISK_V2: (PositionRiskHandler, 2),
                 L.POSITION_RISK_V3: (PositionRiskHandler, 3)}
    return ([(path, h, kw) for path, h in plain.items()]
            + [(path, h, kw | {"version": v}) for path, (h, v) in versioned.items()])
