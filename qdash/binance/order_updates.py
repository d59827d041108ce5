"""Binance USDⓈ-M order and account payloads as a client reads them: order responses
(``POST/GET/DELETE /fapi/v1/order``, ``openOrders``, ``allOrders``), ``ORDER_TRADE_UPDATE`` and
``ACCOUNT_UPDATE`` events of the user-data stream, and ``positionRisk`` rows.

One normal form, :class:`OrderUpdate`, whatever carried it (a REST answer or a stream event), so
that a trader handles both the same way. Prices and quantities parse from Binance's strings to
float; times are int ms UTC. Statuses, sides, types and every payload key are those of
:mod:`qdash.binance.order_fields` (:data:`~qdash.binance.order_fields.FINAL_STATUSES` end an
order), the same the simulator writes with.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields

from . import order_fields as F
from .order_fields import FINAL_STATUSES, USER_EVENTS  # noqa: F401  (re-exported)


def _float(v) -> float:
    return float(v or 0)


def _int(v) -> int:
    return int(v or 0)


@functools.cache
def _types(cls) -> dict[str, type]:
    """Attribute name → its type, of dataclass ``cls`` (annotations are strings here)."""
    names = {"str": str, "int": int, "float": float, "bool": bool}
    return {f.name: names[f.type] for f in fields(cls)}


def _read(d: dict, keys: dict[str, str], types: dict[str, type], **fallback) -> dict:
    """The fields of ``keys`` found in payload ``d``, converted by their attribute's type
    (``float``/``int`` from Binance's strings, empty as 0); ``fallback``: a value per attribute
    when its key is absent."""
    conv = {float: _float, int: _int, bool: bool, str: lambda v: v or ""}
    out = {}
    for name, key in keys.items():
        if name in types:
            if key in d:
                out[name] = conv[types[name]](d[key])
            elif name in fallback:
                out[name] = fallback[name]
    return out


@dataclass(frozen=True)
class OrderUpdate:
    """The state of one order after an event: ``status``, cumulative ``filled`` (base units,
    >= 0) at average price ``avg_price``; for a fill event also ``last_qty``/``last_price``, its
    ``commission`` (in ``commission_asset``), ``trade_id``, ``maker`` and ``realized`` PnL.
    ``time_ms``: the exchange's time of the event (its transaction time)."""

    symbol: str
    client_id: str
    order_id: int
    side: str
    type: str
    status: str
    qty: float
    price: float
    filled: float
    avg_price: float
    time_ms: int
    reduce_only: bool = False
    last_qty: float = 0.0
    last_price: float = 0.0
    commission: float = 0.0
    commission_asset: str = ""
    trade_id: int = 0
    maker: bool = False
    realized: float = 0.0
    execution: str = ""

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def is_fill(self) -> bool:
        """Whether this update reports a fill (a stream TRADE execution)."""
        return self.execution == F.TRADE and self.last_qty > 0

    @classmethod
    def from_rest(cls, d: dict) -> OrderUpdate:
        """An order object of a REST answer (new order with RESULT/ACK, query, cancel, lists)."""
        return cls(**_read(d, F.ORDER_KEYS, _types(cls), client_id="", order_id=0, side="",
                           type=d.get(F.ORDER_ORIG_TYPE_KEY, ""), status=F.NEW, qty=0.0,
                           price=0.0, filled=0.0, avg_price=0.0,
                           time_ms=_int(d.get(F.ORDER_TIME_KEY)), reduce_only=False))

    @classmethod
    def from_event(cls, event: dict) -> OrderUpdate:
        """An ``ORDER_TRADE_UPDATE`` event (``{"e","E","T","o":{...}}``)."""
        o = event["o"]
        return cls(**_read(o, F.EVENT_ORDER_KEYS, _types(cls), client_id="", order_id=0,
                           side="", type="", status="", qty=0.0, price=0.0, filled=0.0,
                           avg_price=0.0, time_ms=_int(event.get("T"))))


@dataclass(frozen=True)
class Fill:
    """One fill of an order (a ``userTrades`` row or a stream TRADE): signed by ``side``."""

    symbol: str
    order_id: int
    trade_id: int
    side: str
    price: float
    qty: float
    commission: float
    commission_asset: str
    realized: float
    maker: bool
    time_ms: int

    @classmethod
    def from_user_trade(cls, d: dict) -> Fill:
        """A ``GET /fapi/v1/userTrades`` row."""
        return cls(**_read(d, F.USER_TRADE_KEYS, _types(cls), commission=0.0,
                           commission_asset="", realized=0.0, maker=False))

    @classmethod
    def from_update(cls, u: OrderUpdate) -> Fill:
        """The fill a stream TRADE update reports."""
        return cls(symbol=u.symbol, order_id=u.order_id, trade_id=u.trade_id, side=u.side,
                   price=u.last_price, qty=u.last_qty, commission=u.commission,
                   commission_asset=u.commission_asset, realized=u.realized, maker=u.maker,
                   time_ms=u.time_ms)


@dataclass(frozen=True)
class Position:
    """One symbol's position (one-way mode): signed ``amount`` (base units), ``entry_price``,
    ``mark_price``, ``unrealized`` PnL (quote)."""

    symbol: str
    amount: float
    entry_price: float
    mark_price: float = 0.0
    unrealized: float = 0.0

    @classmethod
    def from_position_risk(cls, d: dict) -> Position:
        """A ``GET /fapi/v2|v3/positionRisk`` row."""
        return cls(**_read(d, F.POSITION_RISK_KEYS, _types(cls), amount=0.0,
                           entry_price=0.0, mark_price=0.0, unrealized=0.0))

    @classmethod
    def from_account_update(cls, p: dict) -> Position:
        """One ``P`` entry of an ``ACCOUNT_UPDATE`` event."""
        return cls(**_read(p, F.ACCOUNT_POSITION_KEYS, _types(cls), amount=0.0,
                           entry_price=0.0, unrealized=0.0))


def order_params(symbol: str, side: str, qty: float, qty_decimals: int, *,
                 type: str = F.MARKET, price: float | None = None,
                 price_decimals: int = 8, time_in_force: str | None = None,
                 reduce_only: bool = False, client_id: str | None = None,
                 resp_type: str = F.RESULT) -> dict:
    """The parameters of ``POST /fapi/v1/order``: quantity and price written with the symbol's
    decimals (Binance refuses more, -1111)."""
    k = F.ORDER_PARAMS
    p = {k["symbol"]: symbol, k["side"]: side, k["type"]: type,
         k["qty"]: f"{qty:.{qty_decimals}f}", k["resp_type"]: resp_type}
    if type == F.LIMIT:
        p[k["price"]] = f"{price:.{price_decimals}f}"
        p[k["time_in_force"]] = time_in_force or F.GTC
    if reduce_only:
        p[k["reduce_only"]] = "true"
    if client_id:
        p[k["client_id"]] = client_id
    return p
