"""The simulated exchange's trading desk: orders of the paper accounts matched on the book,
fills booked to positions and balances, funding settled, positions liquidated.

:class:`Trading` sees the exchange through :class:`Venue` (the book, the mark price, the funding
rate, and publishing a fill as a trade of the exchange) and tells each account what happened
through ``emit(account, event)`` (user-data stream events, :mod:`qdash.binance.orders`).

* Fees: commission = fill notional × the account's taker (crossing) or maker (resting) rate,
  taken from the wallet; realized PnL added to it.
* Margin at order time: the part of an order that opens or adds to a position needs
  notional / leverage of available balance (cross wallet + cross unrealized − cross initial
  margins − open orders' initial margins), else -2019.
* Funding: at each funding time (every 8 h) every open position pays
  ``amt · mark · rate`` (longs pay a positive rate), reason FUNDING_FEE.
* Liquidation: a cross account whose margin balance falls to its maintenance margin, or an
  isolated position whose wallet + unrealized does, is closed at the mark price and charged the
  liquidation fee (:data:`qdash.sim.margin.LIQUIDATION_FEE` of the notional, at most the margin
  left; the wallet never goes below 0). ``MARGIN_CALL`` goes out once when the maintenance
  margin reaches 80 % of the margin balance.
* Every fill is published as a trade of the exchange (``@trade``, ``@aggTrade``, klines).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..binance import order_fields as F
from ..binance.filters import SymbolFilters
from ..binance.orders import (
    CLIENT_ID,
    Order,
    Rejected,
    account_position,
    account_update,
    check_order,
    margin_call,
    order_trade_update,
    user_trade_json,
)
from .accounts import Account, Accounts
from .margin import LIQUIDATION_FEE, Position
from .matching import Matcher
from .orderbook import SyntheticBook
from .past import FUNDING_MS

MARGIN_CALL_RATIO = 0.8


class Venue(Protocol):
    """What the desk needs from the exchange."""

    def now_ms(self) -> int: ...

    def order_book(self, symbol: str) -> SyntheticBook: ...

    def mark_price(self, symbol: str, t_ms: int | None = None) -> float: ...

    def funding_rate(self, symbol: str, t_ms: int) -> float: ...

    def publish_fills(self, symbol: str, prices: list[float], qtys: list[float],
                      taker_sell: bool) -> list[int]: ...


class Trading:
    """Orders, fills, positions, funding and liquidation of every account (module doc).
    ``filters``: each symbol's exchangeInfo filters; ``emit(account, event)`` sends a
    user-data event."""

    def __init__(self, venue: Venue, accounts: Accounts, filters: dict[str, SymbolFilters],
                 emit: Callable[[Account, dict], None]):
        self.venue, self.accounts, self.filters, self.emit = venue, accounts, filters, emit
        self.matchers: dict[str, Matcher] = {}
        self.next_order_id = 1_000_000
        self.resting: dict[int, tuple[Account, Order]] = {}
        self.last_funding = venue.now_ms() // FUNDING_MS
        self._marks: dict[str, tuple[int, float]] = {}  # symbol → (clock ms, mark price)

    def mark(self, symbol: str) -> float:
        """The mark price now (computed once per tick of the exchange clock)."""
        now = self.venue.now_ms()
        got = self._marks.get(symbol)
        if got is None or got[0] != now:
            got = self._marks[symbol] = (now, self.venue.mark_price(symbol))
        return got[1]

    def matcher(self, symbol: str, book: SyntheticBook) -> Matcher:
        m = self.matchers.get(symbol)
        if m is None:
            m = self.matchers[symbol] = Matcher(book.unit)
        return m

    # --- orders ----------------------------------------------------------------------------
    def place(self, acc: Account, symbol: str, side: str, order_type: str, qty: float,
              price: float | None = None, tif: str = F.GTC, reduce_only: bool = False,
              client_id: str | None = None) -> Order:
        """Check, accept and match an order (raises :class:`Rejected`); returns it after its
        immediate fills (it may rest, be filled or expired)."""
        f, v = self.filters[symbol], self.venue
        now, mark = v.now_ms(), self.mark(symbol)
        if client_id is not None and not CLIENT_ID.match(client_id):
            raise Rejected(-4015)
        if client_id is not None and any(o.client_id == client_id for o in acc.live.values()):
            raise Rejected(-4116)  # Binance: unique among the account's open orders
        check_order(f, order_type=order_type, qty=qty,
                    price=None if order_type == F.MARKET else price, mark=mark,
                    reduce_only=reduce_only)
        pos = acc.position(symbol)
        sign = 1.0 if side == F.BUY else -1.0
        if reduce_only and (pos.amt * sign >= 0 or qty > abs(pos.amt) + 1e-12):
            raise Rejected(-2022)
        book = v.order_book(symbol)
        m = self.matcher(symbol, book)
        buy = side == F.BUY
        if order_type == F.MARKET:
            best = (book.ask_top if buy else book.bid_top) * f.tick_size
            if best > mark * f.percent_up or best < mark * f.percent_down:
                raise Rejected(-4131)
        ref = price if order_type == F.LIMIT else mark
        adds = qty if pos.amt * sign >= 0 else max(0.0, qty - abs(pos.amt))
        if adds > 0 and adds * ref / pos.leverage > self.available(acc) + 1e-9:
            raise Rejected(-2019)
        ticks = round(price / f.tick_size) if order_type == F.LIMIT else 0
        lots = round(qty / f.step_size)
        if order_type == F.LIMIT and tif == F.GTX and \
                m.crossable(book, buy, ticks, now) > 0:
            raise Rejected(-5022)
        self.next_order_id += 1
        o = Order(self.next_order_id, client_id or f"sim-{self.next_order_id}", symbol, side,
                  order_type, F.GTC if order_type == F.MARKET else tif, qty,
                  0.0 if order_type == F.MARKET else float(price), reduce_only, now, lots,
                  ticks, update_time=now)
        acc.orders[o.order_id] = acc.live[o.order_id] = o
        self._event(acc, o, F.NEW, now)
        if order_type == F.LIMIT and tif == F.FOK and m.crossable(book, buy, ticks, now) < lots:
            self._finish(acc, o, F.EXPIRED, now)
            return o
        fills = m.walk(book, buy, lots, now, ticks if order_type == F.LIMIT else None)
        self._book_fills(acc, o, fills, maker=False, taker_sell=not buy)
        left = lots - sum(q for _, q in fills)
        if left > 0:
            if order_type == F.LIMIT and tif in (F.GTC, F.GTX):
                m.rest(book, o.order_id, buy, ticks, left, now)
                self.resting[o.order_id] = (acc, o)
            else:
                self._finish(acc, o, F.EXPIRED, v.now_ms())
        return o

    def cancel(self, acc: Account, symbol: str, order_id: int | None,
               client_id: str | None) -> Order:
        """Cancel an open order (-2011 when unknown or no longer open)."""
        o = acc.find(symbol, order_id, client_id)
        if o is None or not o.is_open:
            raise Rejected(-2011)
        self._finish(acc, o, F.CANCELED, self.venue.now_ms())
        return o

    def cancel_all(self, acc: Account, symbol: str) -> None:
        for o in acc.open_orders(symbol):
            self._finish(acc, o, F.CANCELED, self.venue.now_ms())

    def _finish(self, acc: Account, o: Order, status: str, now: int) -> None:
        o.status, o.update_time = status, now
        self.resting.pop(o.order_id, None)
        m = self.matchers.get(o.symbol)
        if m is not None and o.order_id in m.resting:
            m.cancel(o.order_id, self.venue.order_book(o.symbol), now)
        self._event(acc, o, status, now)

    def _event(self, acc: Account, o: Order, execution: str, now: int, **fill) -> None:
        if not o.is_open:
            acc.live.pop(o.order_id, None)
        f = self.filters[o.symbol]
        self.emit(acc, order_trade_update(o, f.price_decimals, f.qty_decimals,
                                          execution=execution, event_ms=now, **fill))

    # --- fills -----------------------------------------------------------------------------
    def _book_fills(self, acc: Account, o: Order, fills: list[tuple[int, int]], maker: bool,
                    taker_sell: bool) -> None:
        """Publish ``fills`` (tick, lots) as trades and book them to ``o`` and its account."""
        if not fills:
            return
        f, v = self.filters[o.symbol], self.venue
        prices = [round(t * f.tick_size, f.price_decimals) for t, _ in fills]
        qtys = [round(q * f.step_size, f.qty_decimals) for _, q in fills]
        ids = v.publish_fills(o.symbol, prices, qtys, taker_sell)
        now = v.now_ms()
        pos = acc.position(o.symbol)
        rate = acc.maker if maker else acc.taker
        for price, qty, tid in zip(prices, qtys, ids):
            self._margin_move(pos, o.sign * qty, price)
            realized = pos.fill(o.sign * qty, price)
            fee = price * qty * rate
            acc.wallet += realized - fee
            o.executed = round(o.executed + qty, f.qty_decimals)
            o.cum_quote += price * qty
            o.status = F.FILLED if o.executed >= o.qty - 1e-12 else F.PARTIALLY_FILLED
            o.update_time = pos.update_time = now
            acc.trades.append(user_trade_json(o.symbol, tid, o.order_id, o.side, price, qty,
                                              realized, fee, maker, now, f.price_decimals,
                                              f.qty_decimals))
            self._event(acc, o, F.TRADE, now, last_qty=qty, last_price=price, commission=fee,
                        trade_id=tid, maker=maker, realized=realized)
        self.emit(acc, account_update(F.REASON_ORDER, [self.balance_entry(acc, 0.0)],
                                      [self.position_entry(pos)], now))

    @staticmethod
    def _margin_move(pos: Position, qty: float, price: float) -> None:
        """Isolated margin follows the position: notional/leverage in, a share out."""
        if pos.margin_type != "ISOLATED":
            return
        opened = abs(qty)
        if pos.amt and (pos.amt > 0) != (qty > 0):  # closes first: its share of the margin out
            closed = min(abs(qty), abs(pos.amt))
            pos.wallet -= pos.wallet * closed / abs(pos.amt)
            opened -= closed
        pos.wallet += opened * price / pos.leverage

    def on_trade(self, symbol: str, price: float, qty: float, taker_sell: bool) -> None:
        """A market trade of the exchange's own flow: resting orders it reaches fill as
        makers."""
        m = self.matchers.get(symbol)
        if m is None or not m.resting:
            return
        f, levels = self.filters[symbol], set()
        for order_id, tick, lots in m.on_trade(round(price / f.tick_size),
                                                round(qty / f.step_size), taker_sell):
            acc, o = self.resting[order_id]
            self._book_fills(acc, o, [(tick, lots)], maker=True, taker_sell=o.side == F.BUY)
            levels.add((0 if o.side == F.BUY else 1, tick))
            if not o.is_open:
                self.resting.pop(order_id, None)
        if levels:  # what filled is off the published book
            m.show(self.venue.order_book(symbol), self.venue.now_ms(), levels)

    # --- margin ----------------------------------------------------------------------------
    def marks(self, acc: Account) -> dict[str, float]:
        return {s: self.mark(s) for s, p in acc.positions.items() if p.amt}

    def available(self, acc: Account, marks: dict[str, float] | None = None) -> float:
        """Available balance (USDT): see the module doc."""
        marks = self.marks(acc) if marks is None else marks
        cross = acc.wallet - acc.isolated_wallets()
        for s, p in acc.positions.items():
            if p.amt and p.margin_type == "CROSSED":
                cross += p.unrealized(marks[s]) - p.initial(marks[s])
        return cross - self.open_order_margin(acc)

    def open_order_margin(self, acc: Account) -> float:
        total = 0.0
        for o in acc.open_orders():
            total += (o.qty - o.executed) * o.price / acc.position(o.symbol).leverage
        return total

    def balance_entry(self, acc: Account, change: float) -> dict:
        return {"a": "USDT", "wb": f"{acc.wallet:.8f}",
                "cw": f"{acc.wallet - acc.isolated_wallets():.8f}", "bc": f"{change:.8f}"}

    def position_entry(self, pos: Position, mark: float | None = None) -> dict:
        f = self.filters[pos.symbol]
        mark = self.mark(pos.symbol) if mark is None else mark
        return account_position(pos.symbol, f"{pos.amt:.{f.qty_decimals}f}",
                                f"{pos.entry:.{f.price_decimals + 2}f}",
                                f"{pos.unrealized(mark):.8f}",
                                bep=f"{pos.entry:.{f.price_decimals + 2}f}",
                                cr=f"{pos.realized:.8f}",
                                mt=pos.margin_type.lower().replace("crossed", "cross"),
                                iw=f"{pos.wallet:.8f}")

    # --- funding and liquidation -----------------------------------------------------------
    def step(self) -> None:
        """Settle funding when a funding time passed; liquidate what must be."""
        now = self.venue.now_ms()
        k = now // FUNDING_MS
        if k > self.last_funding:
            self.last_funding = k
            self.settle_funding(k * FUNDING_MS)
        for acc in self.accounts:
            if any(p.amt for p in acc.positions.values()):
                self.check_margin(acc, self.marks(acc))

    def settle_funding(self, t_ms: int) -> None:
        """Every open position pays or receives its funding at ``t_ms``."""
        for acc in self.accounts:
            changed, total = [], 0.0
            for s, p in acc.positions.items():
                if not p.amt:
                    continue
                mark = self.venue.mark_price(s, t_ms)
                fee = -p.amt * mark * self.venue.funding_rate(s, t_ms)
                acc.wallet += fee
                if p.margin_type == "ISOLATED":
                    p.wallet += fee
                total += fee
                changed.append(self.position_entry(p, mark))
            if changed:
                self.emit(acc, account_update(F.REASON_FUNDING_FEE,
                                              [self.balance_entry(acc, total)], changed, t_ms))

    def check_margin(self, acc: Account, marks: dict[str, float]) -> list[str]:
        """Liquidate the positions whose margin is exhausted at ``marks``; send MARGIN_CALL
        when the cross maintenance margin nears the margin balance. Returns the symbols
        liquidated."""
        gone = []
        cross = [(s, p) for s, p in acc.positions.items() if p.amt and
                 p.margin_type == "CROSSED"]
        for s, p in acc.positions.items():
            if p.amt and p.margin_type == "ISOLATED" and \
                    p.wallet + p.unrealized(marks[s]) <= p.maint(marks[s]):
                self.liquidate(acc, p, marks[s], p.wallet)
                gone.append(s)
        if cross:
            balance = acc.wallet - acc.isolated_wallets() + sum(
                p.unrealized(marks[s]) for s, p in cross)
            maint = sum(p.maint(marks[s]) for s, p in cross)
            if balance <= maint:
                for s, p in cross:
                    self.liquidate(acc, p, marks[s], balance + p.maint(marks[s]))
                    gone.append(s)
            elif maint >= MARGIN_CALL_RATIO * balance:
                if not acc.margin_called:
                    acc.margin_called = True
                    self.emit(acc, margin_call(acc.wallet - acc.isolated_wallets(),
                                               [self._call_entry(p, marks[s]) for s, p in cross],
                                               self.venue.now_ms()))
            else:
                acc.margin_called = False
        return gone

    def _call_entry(self, p: Position, mark: float) -> dict:
        e = self.position_entry(p, mark)
        return {"s": e["s"], "ps": F.POSITION_SIDE, "pa": e["pa"], "mt": e["mt"], "iw": e["iw"],
                "mp": f"{mark:.8f}", "up": e["up"], "mm": f"{p.maint(mark):.8f}"}

    def liquidate(self, acc: Account, pos: Position, mark: float, margin_left: float) -> None:
        """Close ``pos`` at ``mark`` (a CALCULATED order), charge the liquidation fee (at most
        ``margin_left`` plus the realized PnL), never below a zero wallet."""
        f, now = self.filters[pos.symbol], self.venue.now_ms()
        for o in acc.open_orders(pos.symbol):
            self._finish(acc, o, F.CANCELED, now)
        side = F.SELL if pos.amt > 0 else F.BUY
        qty = round(abs(pos.amt), f.qty_decimals)
        price = round(round(mark / f.tick_size) * f.tick_size, f.price_decimals)
        self.next_order_id += 1
        o = Order(self.next_order_id, f"autoclose-{now}", pos.symbol, side, F.LIMIT, F.IOC,
                  qty, price, False, now, update_time=now)
        acc.orders[o.order_id] = o
        (tid,) = self.venue.publish_fills(pos.symbol, [price], [qty], side == F.SELL)
        isolated = pos.margin_type == "ISOLATED"
        realized = pos.fill(-pos.amt, price)
        fee = min(qty * price * LIQUIDATION_FEE, max(0.0, margin_left + realized))
        booked = max(realized, -pos.wallet) if isolated else realized  # isolated: its wallet
        acc.wallet = max(0.0, acc.wallet + booked - fee)
        pos.wallet = 0.0
        o.executed, o.cum_quote, o.status = qty, qty * price, F.FILLED
        acc.trades.append(user_trade_json(pos.symbol, tid, o.order_id, side, price, qty,
                                          realized, fee, False, now, f.price_decimals,
                                          f.qty_decimals))
        self._event(acc, o, F.CALCULATED, now, last_qty=qty, last_price=price,
                    commission=fee, trade_id=tid, realized=realized)
        self.emit(acc, account_update(F.REASON_ORDER, [self.balance_entry(acc, 0.0)],
                                      [self.position_entry(pos, mark)], now))
