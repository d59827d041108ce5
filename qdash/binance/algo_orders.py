"""Binance USDⓈ-M conditional orders (the Algo Order API) as data: their types and statuses, the
trigger rule, and the JSON shapes of their REST answers and ``ALGO_UPDATE`` events.

Since 2025-12-09 Binance takes ``STOP``, ``STOP_MARKET``, ``TAKE_PROFIT``,
``TAKE_PROFIT_MARKET`` and ``TRAILING_STOP_MARKET`` orders only on ``/fapi/v1/algoOrder``
(``algoType=CONDITIONAL``);
``POST /fapi/v1/order`` refuses them with -4120. A conditional order waits outside the book
(``algoStatus`` NEW) until its working price crosses ``triggerPrice``; then it is sent to the
matching engine as a MARKET order (``*_MARKET``) or a LIMIT order at ``price`` (``STOP``,
``TAKE_PROFIT``): TRIGGERING, then TRIGGERED with the engine's order id (``actualOrderId``)
while that order is open, FINISHED once it is done; REJECTED when the engine refuses it.
``closePosition=true`` (``STOP_MARKET``, ``TAKE_PROFIT_MARKET``) closes the whole position at
trigger time, reduce only. A trailing stop has no trigger price: it activates when the working
price reaches ``activatePrice`` (default: the price at placement) and fires once the price
falls back ``callbackRate`` % from its best since (:func:`trail`); its ``triggerPrice`` shows
the level it fires at, 0 before it activates. Prices and quantities print as strings with the
symbol's decimals; times are int ms UTC.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import order_fields as F

CONDITIONAL = "CONDITIONAL"                               # algoType
STOP, STOP_MARKET = "STOP", "STOP_MARKET"
TAKE_PROFIT, TAKE_PROFIT_MARKET = "TAKE_PROFIT", "TAKE_PROFIT_MARKET"
TRAILING_STOP_MARKET = "TRAILING_STOP_MARKET"
CONDITIONAL_TYPES = (STOP, STOP_MARKET, TAKE_PROFIT, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET)
CLOSE_POSITION_TYPES = (STOP_MARKET, TAKE_PROFIT_MARKET)
CALLBACK_RATE_RANGE = (0.1, 10.0)        # percent, Binance's bounds of ``callbackRate``
CONTRACT_PRICE, MARK_PRICE = "CONTRACT_PRICE", "MARK_PRICE"     # workingType
WORKING_TYPES = (CONTRACT_PRICE, MARK_PRICE)
TRIGGERING, TRIGGERED, FINISHED = "TRIGGERING", "TRIGGERED", "FINISHED"
OPEN_ALGO_STATUSES = frozenset({F.NEW, TRIGGERING})
ALGO_UPDATE = "ALGO_UPDATE"
MAX_ALGO_ORDERS = 10            # exchangeInfo's MAX_NUM_ALGO_ORDERS per symbol and account

ALGO_PARAMS = {"algo_type": "algoType", "symbol": "symbol", "side": "side", "type": "type",
               "qty": "quantity", "price": "price", "trigger_price": "triggerPrice",
               "working_type": "workingType", "time_in_force": "timeInForce",
               "close_position": "closePosition", "reduce_only": "reduceOnly",
               "price_protect": "priceProtect", "client_id": "clientAlgoId",
               "position_side": "positionSide", "activate_price": "activatePrice",
               "callback_rate": "callbackRate"}
"""``POST /fapi/v1/algoOrder`` parameters: reader's name -> Binance's."""


def is_market(order_type: str) -> bool:
    """True for the types sent to the engine as MARKET orders when they trigger."""
    return order_type in (STOP_MARKET, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET)


def fires(order_type: str, side: str, trigger: float, price: float) -> bool:
    """Binance's trigger rule at working price ``price``: a stop buys at or above its trigger
    and sells at or below it; a take-profit buys at or below and sells at or above."""
    if order_type in (STOP, STOP_MARKET):
        return price >= trigger if side == F.BUY else price <= trigger
    return price <= trigger if side == F.BUY else price >= trigger


def trail(side: str, activate_price: float, callback_rate: float, activated: bool,
          best: float, price: float) -> tuple[bool, float, bool]:
    """A trailing stop at working price ``price``: returns (activated, best, fires). A sell
    activates once ``price >= activate_price`` and tracks the highest price since (``best``); it
    fires at ``price <= best · (1 − callback_rate/100)``. A buy mirrors it (activates at or below,
    tracks the lowest, fires at ``best · (1 + callback_rate/100)`` or above)."""
    sell = side == F.SELL
    if not activated:
        if not (price >= activate_price if sell else price <= activate_price):
            return False, best, False
        activated, best = True, price
    best = max(best, price) if sell else min(best, price)
    level = trail_level(side, callback_rate, best)
    return True, best, (price <= level) if sell else (price >= level)


def trail_level(side: str, callback_rate: float, best: float) -> float:
    """The price a trailing stop fires at, given its best price since activation."""
    r = callback_rate / 100.0
    return best * (1.0 - r) if side == F.SELL else best * (1.0 + r)


@dataclass
class AlgoOrder:
    """A conditional order (quote/base units, ms); ``qty`` 0 with ``close_position``;
    ``price`` 0 for the ``*_MARKET`` types; ``actual_id`` 0 until it triggers."""

    algo_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    tif: str
    qty: float
    price: float
    trigger_price: float
    working_type: str
    close_position: bool
    reduce_only: bool
    time: int
    status: str = F.NEW
    update_time: int = 0
    trigger_time: int = 0
    actual_id: int = 0
    actual_type: str = ""
    actual_price: float = 0.0
    actual_qty: float = 0.0
    reason: str = ""
    activate_price: float = 0.0      # trailing stops: activation, callback (%), state
    callback_rate: float = 0.0
    activated: bool = False
    best: float = 0.0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ALGO_STATUSES


def algo_json(a: AlgoOrder, pdec: int, qdec: int, *, view: str = "query") -> dict:
    """A conditional order as ``/fapi/v1/algoOrder`` answers it: ``view`` ``new`` (the answer of
    POST), ``query`` (GET, DELETE's order) or ``list`` (``openAlgoOrders``, ``allAlgoOrders``)."""
    out = {"algoId": a.algo_id, "clientAlgoId": a.client_id, "algoType": CONDITIONAL,
           "orderType": a.type, "symbol": a.symbol, "side": a.side,
           "positionSide": F.POSITION_SIDE, "timeInForce": a.tif,
           "quantity": f"{a.qty:.{qdec}f}", "algoStatus": a.status}
    if view != "new":
        out["actualOrderId"] = str(a.actual_id) if a.actual_id else ""
        out["actualPrice"] = f"{a.actual_price:.{pdec}f}"
    if view == "query":
        out["actualType"] = a.actual_type
        out["actualQty"] = f"{a.actual_qty:.{qdec}f}"
    out.update({"triggerPrice": f"{a.trigger_price:.{pdec}f}", "price": f"{a.price:.{pdec}f}",
                "icebergQuantity": None, "selfTradePreventionMode": "EXPIRE_MAKER",
                "workingType": a.working_type, "priceMatch": "NONE",
                "closePosition": a.close_position, "priceProtect": False,
                "reduceOnly": a.reduce_only})
    if view == "new" and a.type == TRAILING_STOP_MARKET:
        out.update({"activatePrice": f"{a.activate_price:.{pdec}f}",
                    "callbackRate": f"{a.callback_rate:g}"})
    out.update({"createTime": a.time, "updateTime": a.update_time,
                "triggerTime": a.trigger_time, "goodTillDate": 0})
    return out


def cancel_json(a: AlgoOrder) -> dict:
    """The answer of ``DELETE /fapi/v1/algoOrder``."""
    return {"algoId": a.algo_id, "clientAlgoId": a.client_id, "code": "200", "msg": "success"}


def algo_update(a: AlgoOrder, pdec: int, qdec: int, event_ms: int) -> dict:
    """``ALGO_UPDATE``: the order's state now (``X`` its algo status, ``ai`` the engine's order
    id once triggered, ``rm`` why it was rejected)."""
    o = {"caid": a.client_id, "aid": a.algo_id, "at": CONDITIONAL, "o": a.type, "s": a.symbol,
         "S": a.side, "ps": F.POSITION_SIDE, "f": a.tif, "q": f"{a.qty:.{qdec}f}",
         "X": a.status, "ai": str(a.actual_id) if a.actual_id else "",
         "ap": f"{a.actual_price:.{pdec}f}", "aq": f"{a.actual_qty:.{qdec}f}",
         "act": a.actual_type or "0", "tp": f"{a.trigger_price:.{pdec}f}",
         "p": f"{a.price:.{pdec}f}", "V": "EXPIRE_MAKER", "wt": a.working_type, "pm": "NONE",
         "cp": a.close_position, "pP": False, "R": a.reduce_only, "tt": a.trigger_time,
         "gtd": 0, "rm": a.reason}
    if a.type == TRAILING_STOP_MARKET:
        o["ia"] = a.activated
    return {"e": ALGO_UPDATE, "T": event_ms, "E": event_ms, "o": o}
