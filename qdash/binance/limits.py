"""Binance USDⓈ-M futures declared as data: URLs, endpoint paths, request weights, page sizes,
the aggTrades window, kline intervals, stream routes and caps.

Facts of the venue only (see ``shared/reference/binance-usdm.md``); what qdash does with them (how
long to wait, which page size to pick, when to give up) lives with the callers. Times are int ms
unless named ``_s`` (seconds).
"""

from __future__ import annotations

DEFAULT_REST_URL = "https://fapi.binance.com"
DEFAULT_WS_URL = "wss://fstream.binance.com"

# --- REST paths --------------------------------------------------------------------------------
PING = "/fapi/v1/ping"
TIME = "/fapi/v1/time"
EXCHANGE_INFO = "/fapi/v1/exchangeInfo"
TRADES = "/fapi/v1/trades"
HISTORICAL_TRADES = "/fapi/v1/historicalTrades"
AGG_TRADES = "/fapi/v1/aggTrades"
KLINES = "/fapi/v1/klines"
CONTINUOUS_KLINES = "/fapi/v1/continuousKlines"
MARK_PRICE_KLINES = "/fapi/v1/markPriceKlines"
INDEX_PRICE_KLINES = "/fapi/v1/indexPriceKlines"
PREMIUM_INDEX_KLINES = "/fapi/v1/premiumIndexKlines"
PREMIUM_INDEX = "/fapi/v1/premiumIndex"
FUNDING_RATE = "/fapi/v1/fundingRate"
FUNDING_INFO = "/fapi/v1/fundingInfo"
TICKER_24HR = "/fapi/v1/ticker/24hr"
TICKER_PRICE = "/fapi/v1/ticker/price"
TICKER_PRICE_V2 = "/fapi/v2/ticker/price"
BOOK_TICKER = "/fapi/v1/ticker/bookTicker"
DEPTH = "/fapi/v1/depth"
OPEN_INTEREST = "/fapi/v1/openInterest"

KLINE_PATHS = (KLINES, CONTINUOUS_KLINES, MARK_PRICE_KLINES, INDEX_PRICE_KLINES,
               PREMIUM_INDEX_KLINES)

# --- request weights and rate limits -----------------------------------------------------------
DEFAULT_WEIGHT_LIMIT = 2400  # REQUEST_WEIGHT per minute per IP
FUNDING_REQUESTS_PER_5MIN = 500  # fundingRate + fundingInfo together, per IP
FUNDING_BUDGET_PATHS = (FUNDING_RATE, FUNDING_INFO)
BAN_DEFAULT_S = 120.0  # a 418 (IP ban) without a wait header: the shortest ban Binance gives
FIXED_WEIGHTS = {AGG_TRADES: 20, TRADES: 5, HISTORICAL_TRADES: 20, EXCHANGE_INFO: 1,
                 FUNDING_RATE: 1, FUNDING_INFO: 1, TIME: 1, PING: 1, OPEN_INTEREST: 1}
# (weight with a symbol, weight without one)
SYMBOL_WEIGHTS = {PREMIUM_INDEX: (1, 10), TICKER_24HR: (1, 40), BOOK_TICKER: (2, 5),
                  TICKER_PRICE: (1, 2), TICKER_PRICE_V2: (1, 2)}


def kline_weight(limit: int) -> int:
    """Weight of a klines request of ``limit`` rows: <100 → 1, <500 → 2, ≤1000 → 5, else 10."""
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def depth_weight(limit: int) -> int:
    """Weight of a depth request of ``limit`` levels: ≤50 → 2, ≤100 → 5, ≤500 → 10, else 20."""
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def request_weight(path: str, params: dict | None = None) -> int:
    """Binance's REQUEST_WEIGHT of ``GET path?params`` (1 for endpoints not listed)."""
    params = params or {}
    if path in KLINE_PATHS:
        return kline_weight(int(params.get("limit", KLINE_DEFAULT_LIMIT)))
    if path == DEPTH:
        return depth_weight(int(params.get("limit", 500)))
    if path in SYMBOL_WEIGHTS:
        with_symbol, without = SYMBOL_WEIGHTS[path]
        return with_symbol if params.get("symbol") else without
    return FIXED_WEIGHTS.get(path, 1)


# --- page sizes and windows --------------------------------------------------------------------
KLINE_DEFAULT_LIMIT = 500
KLINE_MAX_LIMIT = 1500
KLINE_PAGE_SIZES = (99, 499, 1000, 1500)  # the largest page of each weight tier
AGG_TRADES_LIMIT = 1000
TRADES_LIMIT = 1000  # /trades: the most recent trades, at most this many
FUNDING_LIMIT = 1000
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)  # the level counts /depth accepts
DEPTH_SNAPSHOT_LIMIT = 1000  # what Binance's local-book procedure asks for (weight 20)
AGG_WINDOW_MS = 3_599_999  # endTime - startTime of an aggTrades request: under one hour

# Binance USDⓈ-M kline intervals; all but the month have a fixed length
INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d",
             "1w", "1M")
FIXED_INTERVALS = INTERVALS[:-1]

# --- WebSocket streams -------------------------------------------------------------------------
MAX_STREAMS_PER_CONNECTION = 200  # 1024 per the 2025 docs; older docs and clients: 200
MAX_CONTROL_MESSAGES_PER_S = 10  # SUBSCRIBE etc.; above it Binance closes with 1008
DEPTH_SPEEDS = ("100ms", "250ms", "500ms")  # diff depth ``<symbol>@depth@<speed>`` (250ms: bare)
# the route each stream type is served on (a stream subscribed on another route stays silent)
STREAM_ROUTES = {"trade": "public", "bookTicker": "public", "depth": "public",
                 "aggTrade": "market", "kline": "market", "markPrice": "market",
                 "miniTicker": "market", "ticker": "market"}

# --- orders and accounts (signed) --------------------------------------------------------------
ORDER = "/fapi/v1/order"
BATCH_ORDERS = "/fapi/v1/batchOrders"
ALL_OPEN_ORDERS = "/fapi/v1/allOpenOrders"
OPEN_ORDERS = "/fapi/v1/openOrders"
ALL_ORDERS = "/fapi/v1/allOrders"
USER_TRADES = "/fapi/v1/userTrades"
ACCOUNT_V2, ACCOUNT_V3 = "/fapi/v2/account", "/fapi/v3/account"
BALANCE_V2, BALANCE_V3 = "/fapi/v2/balance", "/fapi/v3/balance"
POSITION_RISK_V2, POSITION_RISK_V3 = "/fapi/v2/positionRisk", "/fapi/v3/positionRisk"
LEVERAGE = "/fapi/v1/leverage"
MARGIN_TYPE = "/fapi/v1/marginType"
POSITION_SIDE_DUAL = "/fapi/v1/positionSide/dual"
LEVERAGE_BRACKET = "/fapi/v1/leverageBracket"
COMMISSION_RATE = "/fapi/v1/commissionRate"
LISTEN_KEY = "/fapi/v1/listenKey"
ALGO_ORDER = "/fapi/v1/algoOrder"              # conditional orders (qdash.binance.algo_orders)
OPEN_ALGO_ORDERS = "/fapi/v1/openAlgoOrders"
ALL_ALGO_ORDERS = "/fapi/v1/allAlgoOrders"
ALGO_OPEN_ORDERS = "/fapi/v1/algoOpenOrders"
# IP weight of the signed endpoints (new orders cost 0 IP weight, they count as orders instead)
ORDER_WEIGHTS = {ORDER: 1, BATCH_ORDERS: 5, ALL_OPEN_ORDERS: 1, ALL_ORDERS: 5, USER_TRADES: 5,
                 ACCOUNT_V2: 5, ACCOUNT_V3: 5, BALANCE_V2: 5, BALANCE_V3: 5,
                 POSITION_RISK_V2: 5, POSITION_RISK_V3: 5, LEVERAGE: 1, MARGIN_TYPE: 1,
                 POSITION_SIDE_DUAL: 30, LEVERAGE_BRACKET: 1, COMMISSION_RATE: 20,
                 LISTEN_KEY: 1, ALGO_ORDER: 1, ALL_ALGO_ORDERS: 5, ALGO_OPEN_ORDERS: 1}
OPEN_ORDERS_WEIGHTS = (1, 40)  # with a symbol, without (openOrders and openAlgoOrders)
# order-count limits per account: (orders, window ms, Binance's interval name)
ORDER_COUNT_LIMITS = ((300, 10_000, "TEN_SECONDS", "X-MBX-ORDER-COUNT-10S"),
                      (1200, 60_000, "ONE_MINUTE", "X-MBX-ORDER-COUNT-1M"))
LISTEN_KEY_TTL_MS = 60 * 60_000
