"""REST market-data endpoints of the simulated exchange, with Binance's names, types, weights
and errors.

Every answer is JSON and carries ``X-MBX-USED-WEIGHT-1M``; every error is
``{"code": -NNNN, "msg": "..."}`` with Binance's code and HTTP status (400 for bad parameters,
404 with -5000 for an unknown path, 429/418 with -1003 and ``Retry-After`` over the weight
limit). Klines and the other kline kinds join the deterministic past (:mod:`qdash.sim.past`)
and the live ledger seamlessly. Times are int64 ms UTC.
"""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import tornado.web

from ..binance.schema import SIMULATOR_FIELD, kline_rows
from .market import X_MARKET
from .minutes import trade_bars
from .past import FUNDING_MS, IDS_PER_DAY, empty_bars, merge_bars
from .universe import DAY_MS, INTERVALS, aggregate_klines, interval_close, interval_open

if TYPE_CHECKING:
    from .context import ExchangeContext

KLINE_INTERVALS = INTERVALS
DEPTH_LIMITS = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class ApiError(Exception):
    """A Binance API error: HTTP ``status``, ``code`` and ``msg``."""

    def __init__(self, status: int, code: int, msg: str):
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


class RestHandler(tornado.web.RequestHandler):
    """Weight accounting, rate limits and error replies shared by every endpoint."""

    weight = 1

    def initialize(self, sim: ExchangeContext):
        self.sim = sim

    def _reply(self, status: int, body, weight_used: int, retry_after: int | None = None,
               headers: dict | None = None):
        self.set_status(status)
        for k, v in (headers or {}).items():
            self.set_header(k, v)
        self.set_header("Content-Type", "application/json")
        self.set_header("X-MBX-USED-WEIGHT-1M", str(weight_used))
        if retry_after is not None:
            self.set_header("Retry-After", str(retry_after))
        self.finish(json.dumps(body, separators=(",", ":")))

    def _error(self, code: int, msg: str, status: int = 400):
        raise ApiError(status, code, msg)

    def get(self, *args):
        used = self.admit()
        if used is None:
            return
        try:
            body = self.respond()
        except ApiError as e:
            self._reply(e.status, {"code": e.code, "msg": e.msg}, used)
            return
        self.sim.stats["rest_ok"] += 1
        self._reply(200, body, used)

    def admit(self) -> int | None:
        """Charge the request's weight to its IP: the weight used this minute, or None when
        refused (the 429/418 answer is then sent)."""
        sim = self.sim
        ip = self.request.remote_ip or "?"
        try:
            weight = self.request_weight()
        except ApiError:
            weight = self.weight
        refusal = sim.limiter.admit(ip, weight)
        if refusal is not None:
            status, retry, used = refusal
            if status == 429:
                msg = (f"Too many requests; current limit of IP({ip}) is {sim.limiter.limit} "
                       "requests per minute. Please use the websocket for live updates to avoid "
                       "polling the API.")
            else:
                msg = (f"Way too many requests; IP({ip}) banned until "
                       f"{now_ms() + retry * 1000}. Please use the websocket for live updates "
                       "to avoid bans.")
            sim.stats[f"rest_{status}"] += 1
            self._reply(status, {"code": -1003, "msg": msg}, used, retry)
            return None
        return sim.limiter.used(ip)

    def write_error(self, status_code: int, **kwargs):
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"code": -1000, "msg": "An unknown error occurred while "
                                "processing the request."}))

    def request_weight(self) -> int:
        return self.weight

    def respond(self):
        raise NotImplementedError

    # parameter helpers -----------------------------------------------------------------------
    def symbol(self, name: str = "symbol", required: bool = True) -> str | None:
        s = self.get_argument(name, "")
        if not s:
            if not required:
                return None
            self._error(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or "
                               "malformed.")
        if s not in self.sim.instruments:
            self._error(-1121, "Invalid symbol.")
        return s

    def int_arg(self, name: str, default: int | None = None, lo: int | None = None,
                hi: int | None = None) -> int | None:
        v = self.get_argument(name, None)
        if v is None or v == "":
            return default
        try:
            x = int(v)
        except ValueError:
            self._error(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                               "'^[0-9]{1,20}$'.")
        if (lo is not None and x < lo) or (hi is not None and x > hi):
            self._error(-1130, f"Data sent for parameter '{name}' is not valid.")
        return x

    def time_window(self) -> tuple[int | None, int | None]:
        start, end = self.int_arg("startTime"), self.int_arg("endTime")
        if start is not None and end is not None and start > end:
            self._error(-1023, "Start time is greater than end time.")
        return start, end


class NotFoundHandler(RestHandler):
    """Any unknown path: 404 with Binance's JSON error."""

    def request_weight(self) -> int:
        return 1

    def respond(self):
        self._error(-5000, f"Path {self.request.path}, Method {self.request.method} is invalid",
                    404)

    post = put = delete = RestHandler.get


class PingHandler(RestHandler):
    def respond(self):
        return {}


class TimeHandler(RestHandler):
    def respond(self):
        return {"serverTime": now_ms()}


class ExchangeInfoHandler(RestHandler):
    def respond(self):
        sim = self.sim
        return {
            "timezone": "UTC", "serverTime": now_ms(), "futuresType": "U_MARGINED",
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": sim.limiter.limit},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1,
                 "limit": 1200},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": 300}],
            "exchangeFilters": [],
            "assets": [{"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"}
                       for a in ("USDT", "BTC", "BNB", "ETH", "USDC")],
            "symbols": [symbol_info(sim, s) for s in sim.symbols],
            SIMULATOR_FIELD: True,   # what it serves: qdash's simulated exchange, not Binance
        }


def symbol_info(sim: ExchangeContext, symbol: str) -> dict:
    """One ``symbols`` entry of exchangeInfo."""
    ins = sim.instruments[symbol]
    pdec, qdec = ins.price_decimals, ins.qty_decimals
    tick, step = f"{ins.tick:.{pdec}f}", f"{ins.step:.{qdec}f}"
    price = ins.sym.base_price
    min_notional = 5 if price < 1000 else 100
    return {
        "symbol": symbol, "pair": symbol, "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000, "onboardDate": sim.past.first_ms(symbol),
        "status": "TRADING", "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
        "baseAsset": symbol[:-4] if symbol.endswith("USDT") else symbol, "quoteAsset": "USDT",
        "marginAsset": "USDT", "pricePrecision": pdec, "quantityPrecision": qdec,
        "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
        "underlyingSubType": [], "settlePlan": 0, "triggerProtect": "0.0500",
        "liquidationFee": "0.012500", "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": f"{price / 100:.{pdec}f}",
             "maxPrice": f"{price * 100:.{pdec}f}", "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": f"{1e7 / price:.{qdec}f}",
             "stepSize": step},
            {"filterType": "MARKET_LOT_SIZE", "minQty": step,
             "maxQty": f"{1e6 / price:.{qdec}f}", "stepSize": step},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": str(min_notional)},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500",
             "multiplierDown": "0.9500", "multiplierDecimal": "4"}],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                       "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        "permissionSets": ["GRID", "COPY"],
    }


# --- trades ---------------------------------------------------------------------------------
class AggTradesHandler(RestHandler):
    """Aggregate trades: the live ledger, and the past (ids ``day·10^7 + k``) before it. A
    startTime/endTime window may span at most one hour (exactly one hour is accepted)."""

    weight = 20

    def respond(self):
        sym = self.symbol()
        limit = self.int_arg("limit", 500, 1, 1000)
        from_id = self.int_arg("fromId", None, 0)
        start, end = self.time_window()
        if start is not None and end is not None and end - start > 3_600_000:
            self._error(-1127, "More than 1 hours between startTime and endTime.")
        if start is not None and end is None:
            end = start + 3_600_000
        if end is not None and start is None:
            start = end - 3_600_000
        sim = self.sim
        live = sim.ledger.aggregates(sym)
        past_end = sim.past.end_ms
        parts = []
        if from_id is not None:
            day = from_id // IDS_PER_DAY
            # past ids are day·10^7 + k from the listing day on; an id below that is a live one
            # (a replayed capture keeps the exchange's own ids)
            if sim.past.first_ms(sym) // DAY_MS <= day and day * DAY_MS < past_end:
                while day * DAY_MS < past_end and sum(map(len, parts)) < limit + 1:
                    a = sim.past.agg_trades(sym, day)
                    parts.append(a[a["agg_id"] >= from_id])
                    day += 1
            parts.append(live[live["agg_id"].to_numpy() >= from_id])
            rows = pd.concat(parts, ignore_index=True).head(limit)
        elif start is not None:
            for day in range(start // DAY_MS, min(end, past_end - 1) // DAY_MS + 1):
                parts.append(sim.past.agg_trades(sym, day))
            parts.append(live)
            rows = pd.concat(parts, ignore_index=True)
            ts = rows["ts"].to_numpy()
            rows = rows[(ts >= start) & (ts <= end)].head(limit)
        else:
            rows = live.tail(limit)
        ins = sim.instruments[sym]
        pd_, qd = ins.price_decimals, ins.qty_decimals
        return [{"a": int(r.agg_id), "p": f"{r.price:.{pd_}f}", "q": f"{r.qty:.{qd}f}",
                 "f": int(r.first_id), "l": int(r.last_id), "T": int(r.ts),
                 "m": bool(r.is_buyer_maker)} for r in rows.itertuples()]


class TradesHandler(RestHandler):
    weight = 5

    def respond(self):
        sym = self.symbol()
        limit = self.int_arg("limit", 500, 1, 1000)
        ins = self.sim.instruments[sym]
        a = self.sim.ledger.arrays(sym)
        idx = np.flatnonzero(a["x"] == X_MARKET)[-limit:]
        pd_, qd = ins.price_decimals, ins.qty_decimals
        return [{"id": int(a["trade_id"][i]), "price": f"{a['price'][i]:.{pd_}f}",
                 "qty": f"{a['qty'][i]:.{qd}f}",
                 "quoteQty": f"{a['price'][i] * a['qty'][i]:.{pd_ + qd}f}",
                 "time": int(a["ts"][i]), "isBuyerMaker": bool(a["m"][i] == 1)} for i in idx]


# --- klines ---------------------------------------------------------------------------------
def live_bars(a: dict, interval: str, lo: int, hi: int) -> dict[str, np.ndarray]:
    """Bars opening in [lo, hi] from the MARKET trades of one symbol's ledger arrays."""
    mk = a["x"] == X_MARKET
    ts = a["ts"][mk]
    key = interval_open(ts, interval) if len(ts) else ts
    sel = (key >= lo) & (key <= hi)
    if not sel.any():
        return empty_bars()
    return trade_bars(key[sel], a["price"][mk][sel], a["qty"][mk][sel], a["m"][mk][sel])[0]


def _step_back(t: int, interval: str, n: int) -> int:
    if interval == "1M":
        m = np.datetime64(t, "ms").astype("datetime64[M]") - n
        return int(m.astype("datetime64[ms]").astype(np.int64))
    return t - n * (interval_close(0, interval) + 1)


def _step_forward(t: int, interval: str, n: int) -> int:
    if interval == "1M":
        m = np.datetime64(t, "ms").astype("datetime64[M]") + n
        return int(m.astype("datetime64[ms]").astype(np.int64))
    return t + n * (interval_close(0, interval) + 1)


def kline_bars(sim: ExchangeContext, sym: str, interval: str, start: int | None, end: int | None,
               limit: int, kind: str = "trade") -> dict[str, np.ndarray]:
    """Binance's window rules: from ``start`` the first ``limit`` bars (open ≤ end); without
    it the last ``limit`` bars with open ≤ ``end`` (default now)."""
    now = sim.now_ms()
    hi = now if end is None else min(end, now)
    if start is not None:
        lo = start
        hi = min(hi, _step_forward(interval_open(start, interval), interval, limit))
    else:
        lo = _step_back(interval_open(hi, interval), interval, limit - 1)
    if hi < lo:
        return empty_bars()
    a = sim.ledger.arrays(sym)
    if kind == "trade":
        bars = merge_bars(sim.past.klines(sym, interval, lo, hi + 1),
                          live_bars(a, interval, lo, hi))
    else:
        lo_min = interval_open(lo, interval)
        hi_min = interval_close(interval_open(hi, interval), interval)
        minutes = merge_bars(sim.past.minutes(sym, lo_min, hi_min + 1),
                             live_bars(a, "1m", lo_min, hi_min))
        bars = aggregate_klines(sim.past.derived_minutes(sym, minutes, kind), interval)
        t = bars["open_time"]
        keep = (t >= lo) & (t <= hi)
        bars = {k: v[keep] for k, v in bars.items()}
    n = len(bars["open_time"])
    sl = slice(0, limit) if start is not None else slice(max(0, n - limit), n)
    return {k: v[sl] for k, v in bars.items()}


class KlinesHandler(RestHandler):
    """``/fapi/v1/klines`` and its kinds: ``markPriceKlines`` (symbol), ``indexPriceKlines``
    (pair), ``premiumIndexKlines`` (symbol), ``continuousKlines`` (pair, contractType)."""

    def initialize(self, sim: ExchangeContext, kind: str = "trade", param: str = "symbol"):
        self.sim, self.kind, self.param = sim, kind, param

    def request_weight(self) -> int:
        limit = self.int_arg("limit", 500, 1, 1500)
        return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10

    def respond(self):
        sym = self.symbol(self.param)
        if self.param == "pair" and self.request.path.endswith("continuousKlines"):
            ct = self.get_argument("contractType", "")
            if not ct:
                self._error(-1102, "Mandatory parameter 'contractType' was not sent, was "
                                   "empty/null, or malformed.")
            if ct != "PERPETUAL":
                self._error(-1130, "Data sent for parameter 'contractType' is not valid.")
        interval = self.get_argument("interval", "")
        if not interval:
            self._error(-1102, "Mandatory parameter 'interval' was not sent, was empty/null, or "
                               "malformed.")
        if interval not in KLINE_INTERVALS:
            self._error(-1120, "Invalid interval.")
        limit = self.int_arg("limit", 500, 1, 1500)
        start, end = self.time_window()
        ins = self.sim.instruments[sym]
        bars = kline_bars(self.sim, sym, interval, start, end, limit, self.kind)
        pdec = 8 if self.kind in ("index", "premium") else ins.price_decimals
        return kline_rows(bars, interval_close(bars["open_time"], interval), pdec,
                          ins.qty_decimals, volumes=self.kind == "trade")


# --- funding, mark price, tickers, book ------------------------------------------------------
def _symbols_arg(h: RestHandler) -> list[str]:
    s = h.symbol(required=False)
    return [s] if s else list(h.sim.symbols)


class PerSymbolHandler(RestHandler):
    """An endpoint answering one entry for ``symbol``, or a list of every symbol's entries
    without it; ``weights``: (with symbol, without)."""

    weights = (1, 1)

    def entry(self, symbol: str) -> dict:
        raise NotImplementedError

    def request_weight(self) -> int:
        return self.weights[0] if self.get_argument("symbol", "") else self.weights[1]

    def respond(self):
        out = [self.entry(s) for s in _symbols_arg(self)]
        return out[0] if self.get_argument("symbol", "") else out


class PremiumIndexHandler(PerSymbolHandler):
    weights = (1, 10)

    def entry(self, symbol: str) -> dict:
        return self.sim.premium_index(symbol)


class FundingRateHandler(RestHandler):
    """Settled funding events; without start/end the most recent ``limit`` (default 100,
    ≤ 1000); with startTime the first ``limit`` from it."""

    def respond(self):
        syms = _symbols_arg(self)
        limit = self.int_arg("limit", 100, 1, 1000)
        start, end = self.time_window()
        now = self.sim.now_ms()
        hi = now if end is None else min(end, now)
        if start is None:
            lo = hi - (limit + 1) * FUNDING_MS
        else:
            lo = start
            hi = min(hi, start + (limit + 1) * FUNDING_MS)
        rows = []
        for s in syms:
            f = self.sim.past.funding(s, lo, hi)
            ins = self.sim.instruments[s]
            for t, r in zip(f["funding_time"].tolist(), f["funding_rate"].tolist()):
                rows.append((t, s, r, self.sim.mark_price(s, t), ins.price_decimals))
        rows.sort()
        rows = rows[:limit] if start is not None else rows[-limit:]
        return [{"symbol": s, "fundingTime": t, "fundingRate": f"{r:.8f}",
                 "markPrice": f"{m:.8f}"} for t, s, r, m, _ in rows]


class FundingInfoHandler(RestHandler):
    def respond(self):
        return [{"symbol": s, "adjustedFundingRateCap": f"{ins.funding_cap:.8f}",
                 "adjustedFundingRateFloor": f"{-ins.funding_cap:.8f}",
                 "fundingIntervalHours": 8, "disclaimer": False}
                for s, ins in self.sim.instruments.items()]


class Ticker24hrHandler(PerSymbolHandler):
    weights = (1, 40)

    def entry(self, symbol: str) -> dict:
        return self.sim.ticker_24hr(symbol)


class TickerPriceHandler(PerSymbolHandler):
    weights = (1, 2)

    def entry(self, symbol: str) -> dict:
        ins = self.sim.instruments[symbol]
        return {"symbol": symbol,
                "price": f"{self.sim.last_price(symbol):.{ins.price_decimals}f}",
                "time": self.sim.now_ms()}


class BookTickerHandler(PerSymbolHandler):
    weights = (2, 5)

    def entry(self, symbol: str) -> dict:
        return self.sim.book_ticker(symbol)


class DepthHandler(RestHandler):
    def request_weight(self) -> int:
        return DEPTH_LIMITS.get(self.int_arg("limit", 500), 10)

    def respond(self):
        sym = self.symbol()
        limit = self.int_arg("limit", 500)
        if limit not in DEPTH_LIMITS:
            self._error(-1130, "Data sent for parameter 'limit' is not valid.")
        return self.sim.depth(sym, limit)


class OpenInterestHandler(RestHandler):
    def respond(self):
        sym = self.symbol()
        ins = self.sim.instruments[sym]
        day = self.sim.now_ms() // DAY_MS
        oi = 0.3 * ins.sym.quote_volume_per_day / ins.sym.base_price * (
            1.0 + 0.2 * math.sin(day + hash(sym) % 7))
        oi = round(oi / ins.step) * ins.step
        return {"openInterest": f"{oi:.{ins.qty_decimals}f}", "symbol": sym,
                "time": self.sim.now_ms()}


def rest_routes(sim: ExchangeContext) -> list:
    """Tornado routes of every REST endpoint (the catch-all 404 is the default handler)."""
    kw = {"sim": sim}
    plain = {"v1/ping": PingHandler, "v1/time": TimeHandler,
             "v1/exchangeInfo": ExchangeInfoHandler, "v1/aggTrades": AggTradesHandler,
             "v1/trades": TradesHandler, "v1/premiumIndex": PremiumIndexHandler,
             "v1/fundingRate": FundingRateHandler, "v1/fundingInfo": FundingInfoHandler,
             "v1/ticker/24hr": Ticker24hrHandler, "v1/ticker/price": TickerPriceHandler,
             "v2/ticker/price": TickerPriceHandler, "v1/ticker/bookTicker": BookTickerHandler,
             "v1/depth": DepthHandler, "v1/openInterest": OpenInterestHandler}
    klines = {"v1/klines": {}, "v1/continuousKlines": {"param": "pair"},
              "v1/markPriceKlines": {"kind": "mark"},
              "v1/indexPriceKlines": {"kind": "index", "param": "pair"},
              "v1/premiumIndexKlines": {"kind": "premium"}}
    return ([(f"/fapi/{path}", handler, kw) for path, handler in plain.items()]
            + [(f"/fapi/{path}", KlinesHandler, kw | extra) for path, extra in klines.items()])
