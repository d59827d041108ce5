"""The simulated exchange's derived market state: last price, mark/index/premium, 24 h ticker
and the order book, as REST answers and stream events need them.

:class:`MarketState` is mixed into :class:`qdash.sim.exchange.SimExchange`; it reads the
exchange's past, its live minute books (:mod:`qdash.sim.minutes`), the last MARKET trade of
each symbol and its synthetic books (:mod:`qdash.sim.orderbook`). Times are int64 ms UTC on the
exchange clock; prices and sizes print with the symbol's tick and lot decimals.
"""

from __future__ import annotations

import math

import numpy as np

from .minutes import MinuteBook
from .orderbook import SyntheticBook
from .past import FUNDING_MS, INTEREST
from .universe import DAY_MS, MINUTE_MS


class MarketState:
    """Mixin: expects ``past``, ``instruments``, ``ledger``, ``seed``, ``now_ms()``,
    ``minutes`` (symbol → MinuteBook), ``books`` (symbol → SyntheticBook), ``last_trade``
    (symbol → (price, qty, id) of the last MARKET trade) and ``market_last`` (symbol → the last
    price of the market's own trades, not the accounts' fills) and ``trading`` (its
    ``matchers``: what the accounts took and rest, shown on the book)."""

    def minutes_of(self, symbol: str) -> MinuteBook:
        """The live minute book of ``symbol`` (created empty on first use)."""
        mb = self.minutes.get(symbol)
        if mb is None:
            mb = self.minutes[symbol] = MinuteBook()
        return mb

    def last_price(self, symbol: str) -> float:
        """Last MARKET trade price, else the past's last close."""
        last = self.last_trade.get(symbol)
        if last is not None:
            return last[0]
        bars = self.past.minutes(symbol, self.past.end_ms - DAY_MS, self.past.end_ms)
        return float(bars["close"][-1]) if len(bars["close"]) else \
            self.instruments[symbol].sym.base_price

    def mark_price(self, symbol: str, t_ms: int | None = None) -> float:
        """Mark price at ``t_ms`` (default now): index · (1 + P) of the minute (see past);
        now, the index follows the market's own last price (the accounts' fills move neither
        the book nor the mark, as one order does not move Binance's median-based mark)."""
        t = self.now_ms() if t_ms is None else int(t_ms)
        minute = t // MINUTE_MS * MINUTE_MS
        if t_ms is None and symbol in self.market_last:
            price = self.market_last[symbol]
        elif minute < self.past.end_ms:
            bars = self.past.minutes(symbol, minute, minute + MINUTE_MS)
            price = float(bars["open"][0]) if len(bars["open"]) else self.last_price(symbol)
        else:
            live = self.minutes_of(symbol).bars(self.past.end_ms, t)
            price = float(live["close"][-1]) if len(live["close"]) else self.last_price(symbol)
        slow, p, _ = self.past.premium_at(symbol, np.array([minute]))
        return price / (1.0 + p[0]) * (1.0 + slow[0])

    def premium_index(self, symbol: str) -> dict:
        """``/fapi/v1/premiumIndex`` entry."""
        now = self.now_ms()
        minute = now // MINUTE_MS * MINUTE_MS
        slow, p, _ = self.past.premium_at(symbol, np.array([minute]))
        index = self.last_price(symbol) / (1.0 + p[0])
        nxt = (now // FUNDING_MS + 1) * FUNDING_MS
        rate = self.past.funding(symbol, nxt, nxt)["funding_rate"]
        return {"symbol": symbol, "markPrice": f"{index * (1 + slow[0]):.8f}",
                "indexPrice": f"{index:.8f}", "estimatedSettlePrice": f"{index:.8f}",
                "lastFundingRate": f"{float(rate.iloc[0]) if len(rate) else INTEREST:.8f}",
                "interestRate": f"{INTEREST:.8f}", "nextFundingTime": int(nxt), "time": now}

    def _past_last_day(self, symbol: str) -> dict[str, np.ndarray]:
        """1-minute bars of the past's last 24 h (cached: the past never changes)."""
        cache = self.__dict__.setdefault("_past_day_cache", {})
        bars = cache.get(symbol)
        if bars is None:
            end = self.past.end_ms
            bars = cache[symbol] = self.past.minutes(symbol, end - DAY_MS, end)
        return bars

    def ticker_24hr(self, symbol: str) -> dict:
        """``/fapi/v1/ticker/24hr`` entry over the 1-minute bars opening in the last 24 h."""
        now = self.now_ms()
        lo = now - DAY_MS
        first = (lo // MINUTE_MS + 1) * MINUTE_MS
        past = self._past_last_day(symbol)
        sel = past["open_time"] >= first
        live = self.minutes_of(symbol).bars(first, now)
        cols = {k: np.concatenate([past[k][sel], live[k]])
                for k in ("open", "high", "low", "volume", "quote_volume", "trades")}
        ins = self.instruments[symbol]
        pdec, qdec = ins.price_decimals, ins.qty_decimals
        c = self.last_price(symbol)
        o = float(cols["open"][0]) if len(cols["open"]) else c
        vol, quote = float(cols["volume"].sum()), float(cols["quote_volume"].sum())
        last = self.last_trade.get(symbol)
        if last is not None:
            last_id, last_qty = last[2], last[1]
        else:
            last_id = self.past.trade_id_at(symbol, self.past.end_ms - 1, first=False)
            last_qty = ins.step
        count = int(cols["trades"].sum())
        return {"symbol": symbol, "priceChange": f"{c - o:.{pdec}f}",
                "priceChangePercent": f"{(c / o - 1) * 100:.3f}",
                "weightedAvgPrice": f"{quote / vol if vol else c:.{pdec}f}",
                "lastPrice": f"{c:.{pdec}f}", "lastQty": f"{last_qty:.{qdec}f}",
                "openPrice": f"{o:.{pdec}f}",
                "highPrice": f"{max(float(cols['high'].max(initial=c)), c):.{pdec}f}",
                "lowPrice": f"{min(float(cols['low'].min(initial=c)), c):.{pdec}f}",
                "volume": f"{vol:.{qdec}f}", "quoteVolume": f"{quote:.2f}", "openTime": lo,
                "closeTime": now, "firstId": max(0, last_id - count + 1), "lastId": last_id,
                "count": count}

    # --- the order book --------------------------------------------------------------------
    def order_book(self, symbol: str) -> SyntheticBook:
        """The symbol's book, moved to the market's last price (the accounts' fills do not move
        it: :mod:`qdash.sim.matching` remembers what they took, and shows it on the book with the
        resting orders) and the current time."""
        ins = self.instruments[symbol]
        last = self.market_last.get(symbol) or self.last_price(symbol)
        book = self.books.get(symbol)
        if book is None:
            unit = max(1, round(5_000.0 / last / ins.step))
            book = self.books[symbol] = SyntheticBook(self.seed, symbol, unit)
        now = self.now_ms()
        book.refresh(math.floor(last / ins.tick + 1e-9), now)
        matcher = self.trading.matchers.get(symbol)
        if matcher is not None:  # the accounts' taken liquidity and resting orders, published
            matcher.show(book, now)
        return book

    def format_levels(self, symbol: str, bids, asks) -> tuple[list, list]:
        """(price tick, lot steps) levels as Binance's [price, qty] strings."""
        ins = self.instruments[symbol]
        pdec, qdec = ins.price_decimals, ins.qty_decimals

        def fmt(levels):
            return [[f"{t * ins.tick:.{pdec}f}", f"{q * ins.step:.{qdec}f}"] for t, q in levels]
        return fmt(bids), fmt(asks)

    def book_levels(self, symbol: str, book: SyntheticBook, n: int) -> tuple[list, list]:
        """The best ``n`` levels a side as [price, qty] strings."""
        return self.format_levels(symbol, *book.top(n))

    def depth(self, symbol: str, limit: int) -> dict:
        """``/fapi/v1/depth`` answer (``lastUpdateId`` matches the depth streams' ``u``)."""
        now = self.now_ms()
        book = self.order_book(symbol)
        bids, asks = self.book_levels(symbol, book, limit)
        return {"lastUpdateId": book.update_id, "E": now, "T": now, "bids": bids,
                "asks": asks}

    def book_ticker(self, symbol: str) -> dict:
        """``/fapi/v1/ticker/bookTicker`` entry."""
        book = self.order_book(symbol)
        bids, asks = self.book_levels(symbol, book, 1)
        return {"symbol": symbol, "bidPrice": bids[0][0], "bidQty": bids[0][1],
                "askPrice": asks[0][0], "askQty": asks[0][1], "time": self.now_ms(),
                "lastUpdateId": book.update_id}
