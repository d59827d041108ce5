"""Binance USDⓈ-M order vocabulary, defined once: order statuses, sides, types, time in force,
execution types, user-data event names, the parameters of a new order, and the JSON keys of
every order/account payload field that a client reads.

The simulator writes its payloads with these keys (:mod:`qdash.binance.orders`) and the
traders read them with the same keys (:mod:`qdash.binance.order_updates`); a round-trip test
holds the two sides together. Each ``*_KEYS`` map goes from the reader's attribute name to the
payload's key (see ``shared/reference/binance-usdm.md``, "Orders, accounts, the user-data
stream").
"""

from __future__ import annotations

# --- order statuses, in a life's order -------------------------------------------------------
NEW, PARTIALLY_FILLED, FILLED = "NEW", "PARTIALLY_FILLED", "FILLED"
CANCELED, REJECTED, EXPIRED, EXPIRED_IN_MATCH = "CANCELED", "REJECTED", "EXPIRED", \
    "EXPIRED_IN_MATCH"
STATUSES = (NEW, PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED, EXPIRED_IN_MATCH)
OPEN_STATUSES = frozenset({NEW, PARTIALLY_FILLED})
FINAL_STATUSES = frozenset(STATUSES) - OPEN_STATUSES

# --- sides, types, time in force, position side (one-way mode) -------------------------------
BUY, SELL = "BUY", "SELL"
SIDES = (BUY, SELL)
LIMIT, MARKET = "LIMIT", "MARKET"
ORDER_TYPES = (LIMIT, MARKET)
GTC, IOC, FOK, GTX = "GTC", "IOC", "FOK", "GTX"
TIME_IN_FORCE = (GTC, IOC, FOK, GTX)
POSITION_SIDE = "BOTH"
RESULT, ACK = "RESULT", "ACK"            # newOrderRespType

# --- execution types of ORDER_TRADE_UPDATE (``x``) -------------------------------------------
TRADE, CALCULATED = "TRADE", "CALCULATED"    # a fill; a liquidation
EXECUTIONS = (NEW, TRADE, CANCELED, EXPIRED, CALCULATED)

# --- user-data events (``e``) and ACCOUNT_UPDATE reasons (``a.m``) ---------------------------
ORDER_TRADE_UPDATE, ACCOUNT_UPDATE = "ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"
MARGIN_CALL, LISTEN_KEY_EXPIRED = "MARGIN_CALL", "listenKeyExpired"
USER_EVENTS = (ORDER_TRADE_UPDATE, ACCOUNT_UPDATE, MARGIN_CALL, LISTEN_KEY_EXPIRED)
REASON_ORDER, REASON_FUNDING_FEE = "ORDER", "FUNDING_FEE"

# --- POST /fapi/v1/order parameters: reader's name -> Binance's ------------------------------
ORDER_PARAMS = {"symbol": "symbol", "side": "side", "type": "type", "qty": "quantity",
                "price": "price", "time_in_force": "timeInForce", "reduce_only": "reduceOnly",
                "client_id": "newClientOrderId", "resp_type": "newOrderRespType",
                "position_side": "positionSide"}

# --- payload keys: reader's attribute -> Binance's key ---------------------------------------
# an order object of a REST answer (new order RESULT/ACK, query, cancel, open/all orders)
ORDER_KEYS = {"symbol": "symbol", "client_id": "clientOrderId", "order_id": "orderId",
              "side": "side", "type": "type", "time_in_force": "timeInForce",
              "status": "status", "qty": "origQty", "price": "price", "filled": "executedQty",
              "avg_price": "avgPrice", "time_ms": "updateTime", "reduce_only": "reduceOnly"}
ORDER_TIME_KEY = "time"                  # creation time; absent from a new order's answer
ORDER_ORIG_TYPE_KEY = "origType"
# the ``o`` object of an ORDER_TRADE_UPDATE event
EVENT_ORDER_KEYS = {"symbol": "s", "client_id": "c", "order_id": "i", "side": "S",
                    "type": "o", "time_in_force": "f", "status": "X", "qty": "q", "price": "p",
                    "filled": "z", "avg_price": "ap", "time_ms": "T", "reduce_only": "R",
                    "last_qty": "l", "last_price": "L", "commission": "n",
                    "commission_asset": "N", "trade_id": "t", "maker": "m", "realized": "rp",
                    "execution": "x"}
# a GET /fapi/v1/userTrades row
USER_TRADE_KEYS = {"symbol": "symbol", "order_id": "orderId", "trade_id": "id", "side": "side",
                   "price": "price", "qty": "qty", "commission": "commission",
                   "commission_asset": "commissionAsset", "realized": "realizedPnl",
                   "maker": "maker", "time_ms": "time"}
# a GET /fapi/v2|v3/positionRisk row
POSITION_RISK_KEYS = {"symbol": "symbol", "amount": "positionAmt", "entry_price": "entryPrice",
                      "mark_price": "markPrice", "unrealized": "unRealizedProfit"}
# one ``a.P`` entry of an ACCOUNT_UPDATE event
ACCOUNT_POSITION_KEYS = {"symbol": "s", "amount": "pa", "entry_price": "ep",
                         "unrealized": "up"}


def keyed(keys: dict[str, str], **values) -> dict:
    """A payload in the order ``values`` are given: a reader's name of ``keys`` is written under
    its payload key, any other name is Binance's own key of a field no reader takes. Every name
    of ``keys`` must be given (a writer cannot leave out a field the reader takes)."""
    missing = keys.keys() - values.keys()
    if missing:
        raise KeyError(f"payload fields missing: {sorted(missing)}")
    return {keys.get(name, name): v for name, v in values.items()}
