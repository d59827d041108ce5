"""The simulated exchange's Algo Order API: ``/fapi/v1/algoOrder`` (POST places a conditional
order, GET queries it, DELETE cancels it), ``openAlgoOrders``, ``allAlgoOrders`` and
``algoOpenOrders`` (DELETE: cancel all of a symbol) — Binance's paths, parameters, answers
(:mod:`qdash.binance.algo_orders`) and codes. A new conditional order counts against the
account's order limits and waits the order latency, as a new order does
(:func:`qdash.sim.orders_rest.count_and_delay`); the desk is :mod:`qdash.sim.algo_desk`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..binance import algo_orders as A
from ..binance import limits as L
from ..binance import order_fields as F
from ..binance.orders import Rejected
from .orders_rest import SignedHandler, count_and_delay
from .rest import ApiError

if TYPE_CHECKING:
    from .accounts import Account
    from .context import TradingContext


class AlgoHandler(SignedHandler):
    """Shared: the answer shape and the reference of one conditional order."""

    def fmt_algo(self, a: A.AlgoOrder, view: str) -> dict:
        f = self.sim.trading.filters[a.symbol]
        return A.algo_json(a, f.price_decimals, f.qty_decimals, view=view)

    def algo_ref(self) -> tuple[int | None, str | None]:
        """(algoId, clientAlgoId) of GET/DELETE; one of the two."""
        aid, cid = self.int_arg("algoId"), self.get_argument("clientAlgoId", "") or None
        if aid is None and cid is None:
            raise Rejected(-1102, name="algoId")
        return aid, cid


class AlgoOrderHandler(AlgoHandler):
    """``/fapi/v1/algoOrder``: POST places, GET queries, DELETE cancels."""

    path = L.ALGO_ORDER

    async def on_post(self, acc: Account) -> dict:
        P = A.ALGO_PARAMS
        algo_type = self.get_argument(P["algo_type"], "")
        if algo_type != A.CONDITIONAL:
            raise Rejected(-1130 if algo_type else -1102, name=P["algo_type"])
        sym = self.symbol()
        side, otype = self.required(P["side"]), self.required(P["type"])
        if side not in F.SIDES:
            raise Rejected(-1117)
        if otype not in A.CONDITIONAL_TYPES:
            raise Rejected(-1116)
        working = self.get_argument(P["working_type"], "") or A.CONTRACT_PRICE
        if working not in A.WORKING_TYPES:
            raise Rejected(-1130, name=P["working_type"])
        tif = self.get_argument(P["time_in_force"], "") or F.GTC
        if tif not in F.TIME_IN_FORCE:
            raise Rejected(-1115)
        if self.get_argument(P["position_side"], "") not in ("", F.POSITION_SIDE):
            raise ApiError(400, -4061, "Order's position side does not match user's setting.")
        if self.flag(P["price_protect"]):
            raise ApiError(400, -1130, "The simulator does not take priceProtect=true.")
        trigger = self.number(P["trigger_price"], required=False)
        qty = self.number(P["qty"], required=False)
        price = self.number(P["price"], required=False)
        await count_and_delay(self, acc)
        a = self.sim.algo_desk.place(acc, sym, side, otype, qty, price, trigger, working, tif,
                                     self.flag(P["close_position"]),
                                     self.flag(P["reduce_only"]),
                                     self.get_argument(P["client_id"], "") or None,
                                     self.number(P["activate_price"], required=False),
                                     self.number(P["callback_rate"], required=False))
        return self.fmt_algo(a, "new")

    def on_get(self, acc: Account) -> dict:
        a = self.sim.algo_desk.find(acc, *self.algo_ref())
        if a is None:
            raise Rejected(-2013)
        return self.fmt_algo(a, "query")

    def on_delete(self, acc: Account) -> dict:
        return A.cancel_json(self.sim.algo_desk.cancel(acc, *self.algo_ref()))


class OpenAlgoOrdersHandler(AlgoHandler):
    """The account's waiting and triggering conditional orders (one symbol or all)."""

    path = L.OPEN_ALGO_ORDERS

    def request_weight(self) -> int:
        return L.OPEN_ORDERS_WEIGHTS[0 if self.get_argument("symbol", "") else 1]

    def on_get(self, acc: Account) -> list:
        sym = self.symbol(required=False)
        return [self.fmt_algo(a, "list") for a in acc.algo_orders.values()
                if a.is_open and (sym is None or a.symbol == sym)]


class AllAlgoOrdersHandler(AlgoHandler):
    """Conditional orders of one symbol, ascending ``algoId`` (paged by ``algoId``)."""

    path = L.ALL_ALGO_ORDERS

    def on_get(self, acc: Account) -> list:
        sym = self.symbol()
        rows = self.history([a for a in acc.algo_orders.values() if a.symbol == sym], "algoId",
                            lambda a: (a.algo_id, a.time))
        return [self.fmt_algo(a, "list") for a in rows]


class AlgoOpenOrdersHandler(AlgoHandler):
    """``DELETE /fapi/v1/algoOpenOrders``: cancel every waiting conditional order of a
    symbol."""

    path = L.ALGO_OPEN_ORDERS

    def on_delete(self, acc: Account) -> dict:
        self.sim.algo_desk.cancel_all(acc, self.symbol())
        return {"code": 200, "msg": "The operation of cancel all open order is done."}


def algo_routes(sim: TradingContext) -> list:
    """Tornado routes of the Algo Order API."""
    kw = {"sim": sim}
    return [(L.ALGO_ORDER, AlgoOrderHandler, kw), (L.OPEN_ALGO_ORDERS, OpenAlgoOrdersHandler, kw),
            (L.ALL_ALGO_ORDERS, AllAlgoOrdersHandler, kw),
            (L.ALGO_OPEN_ORDERS, AlgoOpenOrdersHandler, kw)]
