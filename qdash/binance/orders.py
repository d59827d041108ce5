"""Binance USDⓈ-M orders as data: error codes and messages, the filter checks an order must pass,
and the JSON shapes of orders, user trades and user-data stream events.

One definition for the simulator that enforces and emits them and the traders that read them
(see ``shared/reference/binance-usdm.md``, "Orders, accounts, the user-data stream"). Prices and
quantities are floats in quote (USDT) and base units, printed as strings with the symbol's
price/quantity decimals; times are int ms UTC; sides ``BUY``/``SELL``; one-way mode (position
side ``BOTH``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from . import order_fields as F
from .filters import SymbolFilters

# --- errors (HTTP 400 unless stated) -----------------------------------------------------------
MESSAGES = {
    -1015: "Too many new orders; current limit is {limit} orders per {interval}.",
    -1021: "Timestamp for this request is outside of the recvWindow.",
    -1022: "Signature for this request is not valid.",
    -1102: "Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
    -1111: "Precision is over the maximum defined for this asset.",
    -1116: "Invalid orderType.",
    -1117: "Invalid side.",
    -1115: "Invalid timeInForce.",
    -1130: "Data sent for parameter '{name}' is not valid.",
    -2011: "Unknown order sent.",
    -2013: "Order does not exist.",
    -2014: "API-key format invalid.",
    -2015: "Invalid API-key, IP, or permissions for action.",
    -2019: "Margin is insufficient.",
    -2021: "Order would immediately trigger.",
    -2022: "ReduceOnly Order is rejected.",
    -4003: "Quantity less than or equal to zero.",
    -4004: "Quantity less than min quantity.",
    -4005: "Quantity greater than max quantity.",
    -4013: "Price less than min price.",
    -4002: "Price greater than max price.",
    -4014: "Price not increased by tick size.",
    -4015: "Client order id is not valid.",
    -4116: "ClientOrderId is duplicated.",
    -4016: "Limit price can't be higher than {limit}.",
    -4024: "Limit price can't be lower than {limit}.",
    -4023: "Quantity not increased by step size.",
    -4028: "Leverage {leverage} is not valid",
    -4046: "No need to change margin type.",
    -4131: "The counterparty's best price does not meet the PERCENT_PRICE filter limit.",
    -4164: "Order's notional must be no smaller than {limit} (unless you choose reduce only).",
    -5022: "Due to the order could not be executed as maker, the Post Only order will be "
           "rejected.",
    -1100: "Illegal characters found in parameter '{name}'; legal range is '{range}'.",
    -1106: "Parameter '{name}' sent when not required.",
    -4045: "Reach max stop order limit.",
    -4120: "Order type not supported for this endpoint. Please use the Algo Order API "
           "endpoints instead.",
}
STATUS = {-2014: 401, -2015: 401, -1015: 429}
CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
"""Binance's rule for a client id (``newClientOrderId``, ``clientAlgoId``); else -4015."""


class Rejected(Exception):
    """A request Binance refuses: HTTP ``status``, ``code`` (negative) and ``msg``."""

    def __init__(self, code: int, **fmt):
        msg = MESSAGES[code].format(**fmt)
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, STATUS.get(code, 400)

    def body(self) -> dict:
        return {"code": self.code, "msg": self.msg}


def _multiple(value: float, unit: float) -> bool:
    return abs(value / unit - round(value / unit)) < 1e-6


def _decimals(value: float) -> int:
    """Decimals of the shortest text that reads back as ``value`` (``58011.1`` → 1)."""
    return max(0, -Decimal(repr(float(value))).normalize().as_tuple().exponent)


def check_price(f: SymbolFilters, price: float) -> None:
    """Raise :class:`Rejected` when ``price`` breaks the PRICE_FILTER: precision (-1111), below
    min / above max (-4013/-4002), off the tick (-4014)."""
    if _decimals(price) > f.price_decimals:
        raise Rejected(-1111)
    if price < f.min_price:
        raise Rejected(-4013)
    if price > f.max_price:
        raise Rejected(-4002)
    if not _multiple(price, f.tick_size):
        raise Rejected(-4014)


def check_order(f: SymbolFilters, *, order_type: str, qty: float, price: float | None,
                mark: float, reduce_only: bool) -> None:
    """Raise :class:`Rejected` with Binance's code when the order breaks a filter: precision
    (-1111), quantity ≤ 0 / below min / above max / off the step (-4003/-4004/-4005/-4023), price
    below min / above max / off the tick (-4013/-4002/-4014), PERCENT_PRICE of the mark
    (-4016/-4024), notional under MIN_NOTIONAL unless reduce-only (-4164). ``price`` None for a
    MARKET order (its notional is taken at ``mark``)."""
    market = order_type == F.MARKET
    if _decimals(qty) > f.qty_decimals or (price is not None and _decimals(price) >
                                           f.price_decimals):
        raise Rejected(-1111)
    if qty <= 0:
        raise Rejected(-4003)
    lo, hi, step = ((f.market_min_qty, f.market_max_qty, f.market_step_size) if market
                    else (f.min_qty, f.max_qty, f.step_size))
    if qty < lo - 1e-12:
        raise Rejected(-4004)
    if qty > hi + 1e-12:
        raise Rejected(-4005)
    if not _multiple(qty, step):
        raise Rejected(-4023)
    if price is not None:
        check_price(f, price)
        up, down = mark * f.percent_up, mark * f.percent_down
        if price > up:
            raise Rejected(-4016, limit=f"{up:.{f.price_decimals}f}")
        if price < down:
            raise Rejected(-4024, limit=f"{down:.{f.price_decimals}f}")
    notional = qty * (mark if price is None else price)
    if not reduce_only and notional < f.min_notional - 1e-9:
        raise Rejected(-4164, limit=f"{f.min_notional:g}")


# --- payload shapes ----------------------------------------------------------------------------
@dataclass
class Order:
    """An order as Binance reports it (quote/base units, ms; ``price`` 0 for MARKET);
    ``ticks``/``lots`` are its price and quantity in the symbol's ticks and lot steps (the
    simulator's matching units)."""

    order_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    tif: str
    qty: float
    price: float
    reduce_only: bool
    time: int
    lots: int = 0
    ticks: int = 0
    status: str = F.NEW
    executed: float = 0.0
    cum_quote: float = 0.0
    update_time: int = 0

    @property
    def avg_price(self) -> float:
        return self.cum_quote / self.executed if self.executed else 0.0

    @property
    def is_open(self) -> bool:
        return self.status in F.OPEN_STATUSES

    @property
    def sign(self) -> float:
        return 1.0 if self.side == F.BUY else -1.0


def order_json(o: Order, pdec: int, qdec: int, *, with_time: bool = True) -> dict:
    """An order as ``POST/GET/DELETE /fapi/v1/order`` answer it (RESULT response type)."""
    out = F.keyed(F.ORDER_KEYS, order_id=o.order_id, symbol=o.symbol, status=o.status,
                  client_id=o.client_id, price=f"{o.price:.{pdec}f}",
                  avg_price=f"{o.avg_price:.{pdec + 2}f}", qty=f"{o.qty:.{qdec}f}",
                  filled=f"{o.executed:.{qdec}f}", cumQty=f"{o.executed:.{qdec}f}",
                  cumQuote=f"{o.cum_quote:.{pdec + qdec}f}", time_in_force=o.tif,
                  type=o.type, reduce_only=o.reduce_only, closePosition=False, side=o.side,
                  positionSide=F.POSITION_SIDE, stopPrice="0", workingType="CONTRACT_PRICE",
                  priceProtect=False, origType=o.type, priceMatch="NONE",
                  selfTradePreventionMode="EXPIRE_MAKER", goodTillDate=0,
                  time_ms=o.update_time)
    if with_time:
        out[F.ORDER_TIME_KEY] = o.time
    return out


def ack_json(o: Order, pdec: int, qdec: int) -> dict:
    """The ACK response of a new order: the order as accepted, before matching."""
    out = order_json(o, pdec, qdec, with_time=False)
    k = F.ORDER_KEYS
    out.update({k["status"]: F.NEW, k["filled"]: f"{0:.{qdec}f}", "cumQty": f"{0:.{qdec}f}",
                "cumQuote": f"{0:.{pdec + qdec}f}", k["avg_price"]: f"{0:.{pdec + 2}f}"})
    return out


def order_trade_update(o: Order, pdec: int, qdec: int, *, execution: str, event_ms: int,
                       last_qty: float = 0.0, last_price: float = 0.0, commission: float = 0.0,
                       trade_id: int = 0, maker: bool = False, realized: float = 0.0) -> dict:
    """``ORDER_TRADE_UPDATE``: ``execution`` one of :data:`order_fields.EXECUTIONS` (NEW, TRADE,
    CANCELED, EXPIRED, or CALCULATED: a liquidation)."""
    order = F.keyed(F.EVENT_ORDER_KEYS, symbol=o.symbol, client_id=o.client_id, side=o.side,
                    type=o.type, time_in_force=o.tif, qty=f"{o.qty:.{qdec}f}",
                    price=f"{o.price:.{pdec}f}", avg_price=f"{o.avg_price:.{pdec + 2}f}",
                    sp="0", execution=execution, status=o.status, order_id=o.order_id,
                    last_qty=f"{last_qty:.{qdec}f}", filled=f"{o.executed:.{qdec}f}",
                    last_price=f"{last_price:.{pdec}f}", commission_asset="USDT",
                    commission=f"{commission:.8f}", time_ms=event_ms, trade_id=trade_id,
                    b="0", a="0", maker=maker, reduce_only=o.reduce_only,
                    wt="CONTRACT_PRICE", ot=o.type, ps=F.POSITION_SIDE, cp=False, pP=False,
                    si=0, ss=0, realized=f"{realized:.8f}", V="EXPIRE_MAKER", pm="NONE",
                    gtd=0)
    return {"e": F.ORDER_TRADE_UPDATE, "E": event_ms, "T": event_ms, "o": order}


def user_trade_json(symbol: str, trade_id: int, order_id: int, side: str, price: float,
                    qty: float, realized: float, commission: float, maker: bool, time_ms: int,
                    pdec: int, qdec: int) -> dict:
    """One row of ``GET /fapi/v1/userTrades``."""
    return F.keyed(F.USER_TRADE_KEYS, buyer=side == F.BUY, commission=f"{commission:.8f}",
                   commission_asset="USDT", trade_id=trade_id, maker=maker, order_id=order_id,
                   price=f"{price:.{pdec}f}", qty=f"{qty:.{qdec}f}",
                   quoteQty=f"{price * qty:.{pdec + qdec}f}", realized=f"{realized:.8f}",
                   side=side, positionSide=F.POSITION_SIDE, symbol=symbol, time_ms=time_ms)


def account_position(symbol: str, amount: str, entry_price: str, unrealized: str, *,
                     bep: str, cr: str, mt: str, iw: str) -> dict:
    """One ``P`` entry of ``ACCOUNT_UPDATE`` (strings): the fields a reader takes
    (:data:`order_fields.ACCOUNT_POSITION_KEYS`) and break-even price, realized PnL, margin type
    and isolated wallet."""
    return F.keyed(F.ACCOUNT_POSITION_KEYS, symbol=symbol, amount=amount,
                   entry_price=entry_price, bep=bep, cr=cr, unrealized=unrealized, mt=mt, iw=iw,
                   ps=F.POSITION_SIDE)


def position_risk_row(**fields) -> dict:
    """A ``positionRisk`` row, its fields in the order given: the reader's names of
    :data:`order_fields.POSITION_RISK_KEYS` (all of them) and Binance's own keys for the rest."""
    return F.keyed(F.POSITION_RISK_KEYS, **fields)


def account_update(reason: str, balances: list[dict], positions: list[dict],
                   event_ms: int) -> dict:
    """``ACCOUNT_UPDATE``: ``reason`` ORDER or FUNDING_FEE; ``balances`` as
    ``{"a","wb","cw","bc"}``, ``positions`` as ``{"s","pa","ep","bep","cr","up","mt","iw","ps"}``
    (strings)."""
    return {"e": F.ACCOUNT_UPDATE, "E": event_ms, "T": event_ms,
            "a": {"m": reason, "B": balances, "P": positions}}


def margin_call(cross_wallet: float, positions: list[dict], event_ms: int) -> dict:
    """``MARGIN_CALL``: positions as ``{"s","ps","pa","mt","iw","mp","up","mm"}`` (strings)."""
    return {"e": F.MARGIN_CALL, "E": event_ms, "cw": f"{cross_wallet:.8f}", "p": positions}


def listen_key_expired(listen_key: str, event_ms: int) -> dict:
    """``listenKeyExpired``."""
    return {"e": F.LISTEN_KEY_EXPIRED, "E": event_ms, "listenKey": listen_key}
