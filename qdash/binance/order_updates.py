"""Binance USDⓈ-M order and account payloads as a client reads them: order responses
(``POST/GET/DELETE /fapi/v1/order``, ``openOrders``, ``allOrders``), ``ORDER_TRADE_UPDATE`` and
``ACCOUNT_UPDATE`` events of the user-data stream, and ``positionRisk`` rows.

One normal form, :class:`OrderUpdate`, whatever carried it (a REST answer or a stream event), so
that a trader handles both the same way. Prices and quantities parse from Binance's strings to
float; times are int ms UTC. Binance's order statuses: NEW, PARTIALLY_FILLED, FILLED, CANCELED,
REJECTED, EXPIRED, EXPIRED_IN_MATCH (:data:`FINAL_STATUSES` end an order).
"""

from __future__ import annotations

from dataclasses import dataclass

FINAL_STATUSES = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"})
USER_EVENTS = ("ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE", "MARGIN_CALL", "listenKeyExpired")


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
        return self.execution == "TRADE" and self.last_qty > 0

    @classmethod
    def from_rest(cls, d: dict) -> OrderUpdate:
        """An order object of a REST answer (new order with RESULT/ACK, query, cancel, lists)."""
        return cls(symbol=d["symbol"], client_id=d.get("clientOrderId", ""),
                   order_id=int(d.get("orderId", 0)), side=d.get("side", ""),
                   type=d.get("type", d.get("origType", "")), status=d.get("status", "NEW"),
                   qty=float(d.get("origQty", 0) or 0), price=float(d.get("price", 0) or 0),
                   filled=float(d.get("executedQty", 0) or 0),
                   avg_price=float(d.get("avgPrice", 0) or 0),
                   time_ms=int(d.get("updateTime", d.get("time", 0)) or 0),
                   reduce_only=bool(d.get("reduceOnly", False)))

    @classmethod
    def from_event(cls, event: dict) -> OrderUpdate:
        """An ``ORDER_TRADE_UPDATE`` event (``{"e","E","T","o":{...}}``)."""
        o = event["o"]
        return cls(symbol=o["s"], client_id=o.get("c", ""), order_id=int(o.get("i", 0)),
                   side=o.get("S", ""), type=o.get("o", ""), status=o.get("X", ""),
                   qty=float(o.get("q", 0) or 0), price=float(o.get("p", 0) or 0),
                   filled=float(o.get("z", 0) or 0), avg_price=float(o.get("ap", 0) or 0),
                   time_ms=int(o.get("T", event.get("T", 0)) or 0),
                   reduce_only=bool(o.get("R", False)), last_qty=float(o.get("l", 0) or 0),
                   last_price=float(o.get("L", 0) or 0), commission=float(o.get("n", 0) or 0),
                   commission_asset=o.get("N", "") or "", trade_id=int(o.get("t", 0) or 0),
                   maker=bool(o.get("m", False)), realized=float(o.get("rp", 0) or 0),
                   execution=o.get("x", ""))


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
        return cls(symbol=d["symbol"], order_id=int(d["orderId"]), trade_id=int(d["id"]),
                   side=d["side"], price=float(d["price"]), qty=float(d["qty"]),
                   commission=float(d.get("commission", 0) or 0),
                   commission_asset=d.get("commissionAsset", ""),
                   realized=float(d.get("realizedPnl", 0) or 0), maker=bool(d.get("maker")),
                   time_ms=int(d["time"]))

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
        return cls(symbol=d["symbol"], amount=float(d.get("positionAmt", 0) or 0),
                   entry_price=float(d.get("entryPrice", 0) or 0),
                   mark_price=float(d.get("markPrice", 0) or 0),
                   unrealized=float(d.get("unRealizedProfit", 0) or 0))

    @classmethod
    def from_account_update(cls, p: dict) -> Position:
        """One ``P`` entry of an ``ACCOUNT_UPDATE`` event."""
        return cls(symbol=p["s"], amount=float(p.get("pa", 0) or 0),
                   entry_price=float(p.get("ep", 0) or 0),
                   unrealized=float(p.get("up", 0) or 0))


def order_params(symbol: str, side: str, qty: float, qty_decimals: int, *,
                 type: str = "MARKET", price: float | None = None,
                 price_decimals: int = 8, time_in_force: str | None = None,
                 reduce_only: bool = False, client_id: str | None = None,
                 resp_type: str = "RESULT") -> dict:
    """The parameters of ``POST /fapi/v1/order``: quantity and price written with the symbol's
    decimals (Binance refuses more, -1111)."""
    p = {"symbol": symbol, "side": side, "type": type, "quantity": f"{qty:.{qty_decimals}f}",
         "newOrderRespType": resp_type}
    if type == "LIMIT":
        p["price"] = f"{price:.{price_decimals}f}"
        p["timeInForce"] = time_in_force or "GTC"
    if reduce_only:
        p["reduceOnly"] = "true"
    if client_id:
        p["newClientOrderId"] = client_id
    return p
