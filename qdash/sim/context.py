"""What the simulated exchange's REST, stream and archive handlers may read from it.

The handlers (:mod:`qdash.sim.rest`, :mod:`qdash.sim.streams`, :mod:`qdash.sim.archive`) are
given an :class:`ExchangeContext` and never import the exchange itself
(:class:`qdash.sim.exchange.SimExchange` satisfies it). Times are int64 ms UTC on the exchange
clock; symbols upper case; prices and sizes print with the symbol's tick and lot decimals.
"""

from __future__ import annotations

import collections
from typing import Protocol

from .accounts import Accounts
from .algo_desk import AlgoDesk
from .latency import Latency
from .ledger import Ledger
from .limiter import OrderCounter, WeightLimiter
from .minutes import MinuteBook
from .orderbook import SyntheticBook
from .past import Instrument, Past
from .trading import Trading
from .user_stream import UserStreams


class ExchangeContext(Protocol):
    """The exchange as its handlers see it: listings, the past, live trades and market state."""

    symbols: list[str]                    # listed symbols, in listing order
    instruments: dict[str, Instrument]    # symbol → tick, lot step, funding cap
    past: Past                            # the deterministic history before the start
    ledger: Ledger                        # every trade published live
    minutes: dict[str, MinuteBook]        # symbol → live 1-minute bars of MARKET trades
    books: dict[str, SyntheticBook]       # symbol → its order book (created on first use)
    limiter: WeightLimiter                # REST weight per IP
    stats: collections.Counter            # counters (rest_ok, rest_429, ...)

    @property
    def replaying(self) -> bool:
        """True when recorded ticks play instead of the market model."""

    def now_ms(self) -> int:
        """The exchange clock: the model's time, or the replay's (last recorded trade)."""

    def key_clock_ms(self) -> int:
        """The clock listen keys expire by (the wall's in a replay)."""

    def minutes_of(self, symbol: str) -> MinuteBook: ...

    def last_price(self, symbol: str) -> float: ...

    def mark_price(self, symbol: str, t_ms: int | None = None) -> float: ...

    def premium_index(self, symbol: str) -> dict: ...

    def ticker_24hr(self, symbol: str) -> dict: ...

    def order_book(self, symbol: str) -> SyntheticBook: ...

    def format_levels(self, symbol: str, bids, asks) -> tuple[list, list]: ...

    def book_levels(self, symbol: str, book: SyntheticBook, n: int) -> tuple[list, list]: ...

    def depth(self, symbol: str, limit: int) -> dict: ...

    def book_ticker(self, symbol: str) -> dict: ...


class TradingContext(ExchangeContext, Protocol):
    """The exchange as its signed (order, account, listen key) handlers see it."""

    accounts: Accounts                    # paper accounts by API key
    trading: Trading                      # orders, fills, positions, funding, liquidation
    algo_desk: AlgoDesk                   # conditional orders until they trigger
    user_streams: UserStreams             # listen keys and their connections
    order_counter: OrderCounter           # order-count limits per account
    order_latency: Latency                # delay before a new order is matched
