"""Market streams of the simulated exchange beyond trades: names, Binance-shaped events and one
periodic emitter.

Stream names (lower-case symbol ``s``; every kline interval of Binance):

==================================  =========  ==================================================
name                                 route      push
==================================  =========  ==================================================
``s@trade``, ``s@aggTrade``          public,    on every trade (published by the exchange)
                                     market
``s@kline_<i>``                      market     250 ms while the forming bar changes; ``x`` true
                                                once, when the bar closes
``<pair>_perpetual@continuousKline_<i>``  market  as klines (``continuous_kline`` events)
``s@markPrice``, ``s@markPrice@1s``  market     every 3 s / 1 s
``!markPrice@arr[@1s]``              market     every 3 s / 1 s, one array for all symbols
``s@bookTicker``                     public     when the best bid/ask (price or size) changes
``!bookTicker``                      public     every 5 s, one event per symbol
``s@depth<5|10|20>[@100ms|@250ms|@500ms]``  public  top levels when the book changed (250 ms)
``s@depth[@100ms|@250ms|@500ms]``    public     diff depth: levels changed since the last event
``s@ticker``, ``s@miniTicker``       market     every 2 s (24 h rolling window)
``!ticker@arr``, ``!miniTicker@arr`` market     every 1 s, one array for all symbols
==================================  =========  ==================================================

Anything else, or an unknown symbol, is not a stream: :func:`parse_stream` returns None and the
exchange answers Binance's ``{"error": {"code": 2, "msg": "Invalid request: invalid stream"},
"id": N}``. The event builders (``*_event``) are pure functions of REST-shaped inputs with
Binance's field names, order and types (numbers as strings, times and ids as ints); times are
int64 ms UTC on the exchange clock.
"""

from __future__ import annotations

import collections
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from .minutes import combine
from .universe import INTERVALS, interval_close, interval_open

if TYPE_CHECKING:
    from .context import ExchangeContext

INVALID_STREAM = "Invalid request: invalid stream"
_IV = "|".join(INTERVALS)
_SPEED = r"(?:@(100|250|500)ms)?"
_PATTERNS = [
    (re.compile(r"^!markPrice@arr(@1s)?$"), "markPriceArr"),
    (re.compile(r"^!ticker@arr$"), "tickerArr"),
    (re.compile(r"^!miniTicker@arr$"), "miniTickerArr"),
    (re.compile(r"^!bookTicker$"), "allBookTicker"),
    (re.compile(r"^([a-z0-9]+)@(trade|aggTrade|bookTicker|ticker|miniTicker)$"), None),
    (re.compile(rf"^([a-z0-9]+)@kline_({_IV})$"), "kline"),
    (re.compile(rf"^([a-z0-9]+)_perpetual@continuousKline_({_IV})$"), "continuousKline"),
    (re.compile(r"^([a-z0-9]+)@markPrice(@1s)?$"), "markPrice"),
    (re.compile(rf"^([a-z0-9]+)@depth(5|10|20)?{_SPEED}$"), "depth"),
]
PUBLIC_KINDS = {"trade", "bookTicker", "allBookTicker", "depth", "partialDepth"}
# push periods (ms) of the periodic kinds
PERIODS = {"ticker": 2000, "miniTicker": 2000, "tickerArr": 1000, "miniTickerArr": 1000,
           "allBookTicker": 5000, "kline": 250, "continuousKline": 250}


@dataclass(frozen=True)
class Stream:
    """A parsed stream name: ``kind``, upper-case ``symbol`` (None for ``!`` streams),
    ``interval`` (klines), ``levels`` (partial depth), ``period_ms`` and ``route``."""

    name: str
    kind: str
    symbol: str | None = None
    interval: str | None = None
    levels: int = 0
    period_ms: int = 0

    @property
    def route(self) -> str:
        return "public" if self.kind in PUBLIC_KINDS else "market"


@lru_cache(maxsize=65536)
def _parse(name: str) -> Stream | None:
    for pattern, kind in _PATTERNS:
        m = pattern.match(name)
        if m is None:
            continue
        if kind == "markPriceArr":
            return Stream(name, kind, period_ms=1000 if m.group(1) else 3000)
        if kind in ("tickerArr", "miniTickerArr", "allBookTicker"):
            return Stream(name, kind, period_ms=PERIODS[kind])
        sym = m.group(1).upper()
        if kind is None:
            k = m.group(2)
            return Stream(name, k, sym, period_ms=PERIODS.get(k, 0))
        if kind in ("kline", "continuousKline"):
            return Stream(name, kind, sym, interval=m.group(2), period_ms=PERIODS[kind])
        if kind == "markPrice":
            return Stream(name, kind, sym, period_ms=1000 if m.group(2) else 3000)
        levels = int(m.group(2) or 0)
        return Stream(name, "partialDepth" if levels else "depth", sym, levels=levels,
                      period_ms=int(m.group(3) or 250))
    return None


def parse_stream(name: str, symbols) -> Stream | None:
    """The stream called ``name`` on an exchange listing ``symbols`` (upper case), else None."""
    s = _parse(name)
    if s is None or (s.symbol is not None and s.symbol not in symbols):
        return None
    return s


def names_a_stream(segment: str) -> bool:
    """True when a ``/ws/<segment>`` path segment is meant as a stream name (it has an ``@`` or
    starts with ``!``); anything else, like ccxt.pro's connection counter in ``/public/ws/0``,
    names no stream and Binance ignores it (a stream-shaped name that is wrong is an error)."""
    return "@" in segment or segment.startswith("!")


def stream_route(name: str) -> str:
    """``"market"`` or ``"public"``: the route Binance serves a stream on (unknown names:
    public, where they deliver nothing)."""
    s = _parse(name)
    return s.route if s is not None else "public"


def error_reply(msg: str, rid, code: int = 2) -> dict:
    """Binance's WebSocket error reply."""
    return {"error": {"code": code, "msg": msg}, "id": rid}


# --- event builders ---------------------------------------------------------------------------
def kline_body(bar: dict, interval: str, symbol: str | None, closed: bool, pdec: int,
               qdec: int) -> dict:
    """The ``k`` object of a kline event from one bar (scalars as
    :func:`qdash.sim.minutes.combine` returns, with ``first_id``/``last_id``)."""
    qq = pdec + qdec
    k = {"t": bar["open_time"], "T": int(interval_close(bar["open_time"], interval))}
    if symbol is not None:
        k["s"] = symbol
    k.update({"i": interval, "f": bar.get("first_id", -1), "L": bar.get("last_id", -1),
              "o": f"{bar['open']:.{pdec}f}", "c": f"{bar['close']:.{pdec}f}",
              "h": f"{bar['high']:.{pdec}f}", "l": f"{bar['low']:.{pdec}f}",
              "v": f"{bar['volume']:.{qdec}f}", "n": int(bar["trades"]), "x": bool(closed),
              "q": f"{bar['quote_volume']:.{qq}f}", "V": f"{bar['taker_buy_volume']:.{qdec}f}",
              "Q": f"{bar['taker_buy_quote_volume']:.{qq}f}", "B": "0"})
    return k


def kline_event(symbol: str, interval: str, bar: dict, closed: bool, event_ms: int, pdec: int,
                qdec: int) -> dict:
    """``<symbol>@kline_<interval>`` payload."""
    return {"e": "kline", "E": event_ms, "s": symbol,
            "k": kline_body(bar, interval, symbol, closed, pdec, qdec)}


def continuous_kline_event(pair: str, interval: str, bar: dict, closed: bool, event_ms: int,
                           pdec: int, qdec: int) -> dict:
    """``<pair>_perpetual@continuousKline_<interval>`` payload."""
    return {"e": "continuous_kline", "E": event_ms, "ps": pair, "ct": "PERPETUAL",
            "k": kline_body(bar, interval, None, closed, pdec, qdec)}


def mark_price_event(premium: dict, event_ms: int) -> dict:
    """``markPriceUpdate`` from a ``/fapi/v1/premiumIndex`` entry."""
    return {"e": "markPriceUpdate", "E": event_ms, "s": premium["symbol"],
            "p": premium["markPrice"], "i": premium["indexPrice"],
            "P": premium["estimatedSettlePrice"], "r": premium["lastFundingRate"],
            "T": premium["nextFundingTime"]}


def book_ticker_event(symbol: str, update_id: int, bid: tuple[str, str], ask: tuple[str, str],
                      event_ms: int) -> dict:
    """``bookTicker`` from the best (price, qty) strings of each side."""
    return {"e": "bookTicker", "u": update_id, "E": event_ms, "T": event_ms, "s": symbol,
            "b": bid[0], "B": bid[1], "a": ask[0], "A": ask[1]}


def depth_event(symbol: str, first_id: int, last_id: int, prev_id: int, bids: list, asks: list,
                event_ms: int) -> dict:
    """``depthUpdate`` (diff or partial depth): ``U`` first and ``u`` final update id of the
    event, ``pu`` the ``u`` of the previous event; levels as [price, qty] strings."""
    return {"e": "depthUpdate", "E": event_ms, "T": event_ms, "s": symbol, "U": first_id,
            "u": last_id, "pu": prev_id, "b": bids, "a": asks}


def ticker_event(t24: dict, event_ms: int) -> dict:
    """``24hrTicker`` from a ``/fapi/v1/ticker/24hr`` entry."""
    return {"e": "24hrTicker", "E": event_ms, "s": t24["symbol"], "p": t24["priceChange"],
            "P": t24["priceChangePercent"], "w": t24["weightedAvgPrice"],
            "c": t24["lastPrice"], "Q": t24["lastQty"], "o": t24["openPrice"],
            "h": t24["highPrice"], "l": t24["lowPrice"], "v": t24["volume"],
            "q": t24["quoteVolume"], "O": t24["openTime"], "C": t24["closeTime"],
            "F": t24["firstId"], "L": t24["lastId"], "n": t24["count"]}


def mini_ticker_event(t24: dict, event_ms: int) -> dict:
    """``24hrMiniTicker`` from a ``/fapi/v1/ticker/24hr`` entry."""
    return {"e": "24hrMiniTicker", "E": event_ms, "s": t24["symbol"], "c": t24["lastPrice"],
            "o": t24["openPrice"], "h": t24["highPrice"], "l": t24["lowPrice"],
            "v": t24["volume"], "q": t24["quoteVolume"]}


def _dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


# --- the emitter ------------------------------------------------------------------------------
@dataclass
class _Bar:
    """The forming bar of one kline stream: its open time and its part from the past."""

    open_time: int
    close_time: int
    past: dict | None
    sent_version: int = -1


class StreamEngine:
    """Computes the events of every subscribed non-trade stream; :meth:`tick` runs on the
    exchange's publishing loop (one emitter for all connections and kinds)."""

    def __init__(self, sim: ExchangeContext):
        self.sim = sim
        self.active: collections.Counter = collections.Counter()  # name → connections
        self.specs: dict[str, Stream] = {}
        self._slot: dict[str, int] = {}
        self._bars: dict[str, _Bar] = {}
        self._prev_u: dict[str, int] = {}
        self._top_sent: dict[str, tuple] = {}
        self._lose: collections.Counter = collections.Counter()  # diff events to lose (fault)

    # subscriptions ------------------------------------------------------------------------
    def add(self, names) -> None:
        for n in names:
            s = parse_stream(n, self.sim.instruments)
            if s is None or s.kind in ("trade", "aggTrade"):
                continue
            self.active[n] += 1
            self.specs[n] = s
            if s.kind == "depth" and n not in self._prev_u:
                # the diff stream starts at the subscription: a snapshot the client takes after
                # the SUBSCRIBE reply is never older than the first event's ``pu``
                self._prev_u[n] = self.sim.order_book(s.symbol).update_id

    def remove(self, names) -> None:
        for n in names:
            if self.active.get(n, 0) <= 0:
                continue
            self.active[n] -= 1
            if self.active[n] == 0:
                for d in (self.active, self.specs, self._slot, self._bars, self._prev_u,
                          self._top_sent, self._lose):
                    d.pop(n, None)

    def lose_depth_events(self, n: int) -> None:
        """Lose the next ``n`` events of every subscribed diff depth stream (a fault: the
        following event's ``pu`` names an event nobody received)."""
        for name, s in self.specs.items():
            if s.kind == "depth":
                self._lose[name] += n

    # the clock ----------------------------------------------------------------------------
    def clock(self) -> int:
        """Exchange time (ms): the model's clock, or the last replayed trade time."""
        return self.sim.now_ms()

    def _due(self, name: str, period: int, wall: int) -> bool:
        slot = wall // period
        if self._slot.get(name) == slot:
            return False
        self._slot[name] = slot
        return True

    # one step -----------------------------------------------------------------------------
    def tick(self, wall_ms: int) -> list[tuple[str, str]]:
        """(stream, payload) frames due now, in a deterministic order."""
        if not self.active:
            return []
        clock = self.clock()
        cache: dict = {}
        frames: list[tuple[str, str]] = []
        for name, s in list(self.specs.items()):
            k = s.kind
            if k in ("kline", "continuousKline"):
                frames += self._kline(s, clock, wall_ms)
                continue
            if k in ("bookTicker",):
                frames += self._book_ticker(s, clock, cache)
                continue
            if not self._due(name, s.period_ms, wall_ms):
                continue
            if k == "markPrice":
                frames.append((name, _dumps(mark_price_event(self._premium(s.symbol, cache),
                                                             clock))))
            elif k == "markPriceArr":
                frames.append((name, _dumps([mark_price_event(self._premium(sym, cache), clock)
                                             for sym in self.sim.symbols])))
            elif k in ("ticker", "miniTicker"):
                build = ticker_event if k == "ticker" else mini_ticker_event
                frames.append((name, _dumps(build(self._t24(s.symbol, cache), clock))))
            elif k in ("tickerArr", "miniTickerArr"):
                build = ticker_event if k == "tickerArr" else mini_ticker_event
                frames.append((name, _dumps([build(self._t24(sym, cache), clock)
                                             for sym in self.sim.symbols])))
            elif k == "allBookTicker":
                for sym in self.sim.symbols:
                    frames.append((name, _dumps(self._book_ticker_payload(sym, clock, cache))))
            elif k in ("depth", "partialDepth"):
                frames += self._depth(s, clock, cache)
        self._forget_book_history()
        return frames

    # kinds --------------------------------------------------------------------------------
    def _premium(self, sym: str, cache: dict) -> dict:
        key = ("premium", sym)
        if key not in cache:
            cache[key] = self.sim.premium_index(sym)
        return cache[key]

    def _t24(self, sym: str, cache: dict) -> dict:
        key = ("t24", sym)
        if key not in cache:
            cache[key] = self.sim.ticker_24hr(sym)
        return cache[key]

    def _book(self, sym: str, cache: dict):
        key = ("book", sym)
        if key not in cache:
            cache[key] = self.sim.order_book(sym)
        return cache[key]

    def _book_ticker_payload(self, sym: str, clock: int, cache: dict) -> dict:
        book = self._book(sym, cache)
        bids, asks = self.sim.book_levels(sym, book, 1)
        return book_ticker_event(sym, book.update_id, tuple(bids[0]), tuple(asks[0]), clock)

    def _book_ticker(self, s: Stream, clock: int, cache: dict) -> list:
        book = self._book(s.symbol, cache)
        top = (book.bid_top, int(book.bid_q[0]), book.ask_top, int(book.ask_q[0]))
        if self._top_sent.get(s.name) == top:
            return []
        self._top_sent[s.name] = top
        return [(s.name, _dumps(self._book_ticker_payload(s.symbol, clock, cache)))]

    def _depth(self, s: Stream, clock: int, cache: dict) -> list:
        book = self._book(s.symbol, cache)
        prev = self._prev_u.get(s.name)
        if prev is None:  # a new subscription starts from the book as it is now
            prev = book.update_id - 1 if s.kind == "partialDepth" else book.update_id
            self._prev_u[s.name] = prev
        if book.update_id <= prev:
            return []
        if s.kind == "partialDepth":
            bids, asks = self.sim.book_levels(s.symbol, book, s.levels)
        else:
            bids, asks = self.sim.format_levels(s.symbol, *book.diff(prev))
        self._prev_u[s.name] = book.update_id
        if self._lose[s.name] > 0:
            self._lose[s.name] -= 1
            return []
        return [(s.name, _dumps(depth_event(s.symbol, prev + 1, book.update_id, prev, bids,
                                            asks, clock)))]

    def _forget_book_history(self) -> None:
        marks: dict[str, int] = {}
        for name, s in self.specs.items():
            if s.kind == "depth" and name in self._prev_u:
                marks[s.symbol] = min(marks.get(s.symbol, self._prev_u[name]), self._prev_u[name])
        for sym, book in self.sim.books.items():
            book.forget(marks.get(sym, book.update_id))

    def _kline(self, s: Stream, clock: int, wall: int) -> list:
        sim = self.sim
        ins = sim.instruments[s.symbol]
        mb = sim.minutes_of(s.symbol)
        state = self._bars.get(s.name)
        out = []
        if state is not None and clock > state.close_time:
            bar = self._bar(s.symbol, state)
            if bar is not None:
                out.append(self._kline_frame(s, bar, True, clock, ins))
            state = None
        if state is None:
            t = interval_open(clock, s.interval)
            state = self._bars[s.name] = _Bar(t, interval_close(t, s.interval),
                                              self._past_bar(s.symbol, s.interval, t))
        if self._due(s.name, s.period_ms, wall) and mb.version != state.sent_version:
            bar = self._bar(s.symbol, state)
            if bar is not None:
                state.sent_version = mb.version
                out.append(self._kline_frame(s, bar, False, clock, ins))
        return out

    def _kline_frame(self, s: Stream, bar: dict, closed: bool, clock: int, ins):
        if s.kind == "kline":
            ev = kline_event(s.symbol, s.interval, bar, closed, clock, ins.price_decimals,
                             ins.qty_decimals)
        else:
            ev = continuous_kline_event(s.symbol, s.interval, bar, closed, clock,
                                        ins.price_decimals, ins.qty_decimals)
        return s.name, _dumps(ev)

    def _bar(self, sym: str, state: _Bar) -> dict | None:
        """The bar so far: its past part merged with the live minutes."""
        live = combine(self.sim.minutes_of(sym).bars(state.open_time, state.close_time))
        past = state.past
        if past is None or live is None:
            return live if past is None else dict(past)
        bar = dict(past)
        bar["high"] = max(past["high"], live["high"])
        bar["low"] = min(past["low"], live["low"])
        bar["close"] = live["close"]
        bar["last_id"] = live["last_id"]
        for k in ("volume", "quote_volume", "trades", "taker_buy_volume",
                  "taker_buy_quote_volume"):
            bar[k] = past[k] + live[k]
        return bar

    def _past_bar(self, sym: str, interval: str, open_time: int) -> dict | None:
        """The part of the bar opening at ``open_time`` that lies in the past, with the past's
        first and last trade ids (ids are ``day·10^7 + k``, k counting the day's trades)."""
        past = self.sim.past
        if open_time >= past.end_ms:
            return None
        bars = past.klines(sym, interval, open_time, open_time + 1)
        bar = combine(bars)
        if bar is None:
            return None
        first_min = max(open_time, past.first_ms(sym))
        last_min = min(interval_close(open_time, interval), past.end_ms - 1)
        bar["first_id"] = past.trade_id_at(sym, first_min, first=True)
        bar["last_id"] = past.trade_id_at(sym, last_min, first=False)
        return bar

