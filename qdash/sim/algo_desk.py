"""The simulated exchange's conditional orders (Binance's Algo Order API,
:mod:`qdash.binance.algo_orders`): they wait outside the book until their working price crosses
the trigger, then go to the trading desk (:class:`qdash.sim.trading.Trading`) as MARKET or LIMIT
orders.

* Placement checks the trigger and limit prices against the symbol's filters, the quantity
  unless ``closePosition``, at most :data:`~qdash.binance.algo_orders.MAX_ALGO_ORDERS` open per
  symbol (-4045), and refuses an order its working price would trigger at once (-2021). No
  margin is held for it; the engine order checks margin when it is sent.
* Triggers are checked at each step of the exchange's publishing loop: ``CONTRACT_PRICE``
  against every trade price since the last step (their low and high, :meth:`AlgoDesk.traded`;
  the last price when none traded), so a trigger touched between two steps is not missed;
  ``MARK_PRICE`` against the mark price. A trailing stop moves with the last (or mark) price at
  each step (``callbackRate`` in [0.1, 10] %, -1130 outside).
* At the trigger: ``closePosition`` sends the whole position, reduce only (none left to reduce:
  REJECTED); otherwise the order's quantity. What the engine refuses makes the algo order
  REJECTED with the engine's message in ``rm``. Every change is an ``ALGO_UPDATE`` event; the
  engine order has its own ``ORDER_TRADE_UPDATE`` events.
"""

from __future__ import annotations

from collections.abc import Callable

from ..binance import algo_orders as A
from ..binance import order_fields as F
from ..binance.orders import CLIENT_ID, Rejected, check_order, check_price
from .accounts import Account
from .trading import Trading


class AlgoDesk:
    """Conditional orders of every account (module doc). ``last_price(symbol)``: the last
    trade price; ``emit(account, event)`` sends a user-data event."""

    def __init__(self, trading: Trading, last_price: Callable[[str], float],
                 emit: Callable[[Account, dict], None]):
        self.trading, self.last_price, self.emit = trading, last_price, emit
        self.next_algo_id = 4_000_000
        self.watched: dict[int, tuple[Account, A.AlgoOrder]] = {}   # NEW, or TRIGGERED
        self.ranges: dict[str, tuple[float, float]] = {}   # symbol → trades' (low, high)

    def traded(self, symbol: str, low: float, high: float) -> None:
        """Trades of ``symbol`` printed between ``low`` and ``high`` since the last step."""
        lo, hi = self.ranges.get(symbol, (low, high))
        self.ranges[symbol] = (min(lo, low), max(hi, high))

    def _reached(self, a: A.AlgoOrder, ranges: dict[str, tuple[float, float]]) -> bool:
        """Whether a (non-trailing) order's trigger was reached since the last step."""
        if a.working_type == A.MARK_PRICE:
            return A.fires(a.type, a.side, a.trigger_price, self.trading.mark(a.symbol))
        last = self.last_price(a.symbol)
        lo, hi = ranges.get(a.symbol, (last, last))
        return A.fires(a.type, a.side, a.trigger_price, lo) or \
            A.fires(a.type, a.side, a.trigger_price, hi)

    def working_price(self, a: A.AlgoOrder) -> float:
        if a.working_type == A.MARK_PRICE:
            return self.trading.mark(a.symbol)
        return self.last_price(a.symbol)

    def place(self, acc: Account, symbol: str, side: str, order_type: str, qty: float | None,
              price: float | None, trigger: float | None, working_type: str, tif: str,
              close_position: bool, reduce_only: bool, client_id: str | None,
              activate_price: float | None = None, callback_rate: float | None = None
              ) -> A.AlgoOrder:
        """Check and accept a conditional order (raises :class:`Rejected`); a trailing stop
        takes ``callback_rate`` (%) and ``activate_price`` instead of ``trigger``."""
        t = self.trading
        f, now, mark = t.filters[symbol], t.venue.now_ms(), t.mark(symbol)
        if client_id is not None and not CLIENT_ID.match(client_id):
            raise Rejected(-4015)
        if client_id is not None and any(a.client_id == client_id and a.is_open
                                         for a in acc.algo_orders.values()):
            raise Rejected(-4116)
        if sum(a.is_open and a.symbol == symbol for a in acc.algo_orders.values()) >= \
                A.MAX_ALGO_ORDERS:
            raise Rejected(-4045)
        trailing = order_type == A.TRAILING_STOP_MARKET
        if trailing:
            lo, hi = A.CALLBACK_RATE_RANGE
            if callback_rate is None:
                raise Rejected(-1102, name="callbackRate")
            if not lo <= callback_rate <= hi:
                raise Rejected(-1130, name="callbackRate")
            if activate_price is not None:
                check_price(f, activate_price)
        elif trigger is None:
            raise Rejected(-1102, name="triggerPrice")
        else:
            check_price(f, trigger)
        market = A.is_market(order_type)
        if close_position:
            if order_type not in A.CLOSE_POSITION_TYPES:
                raise Rejected(-1106, name="closePosition")
            if qty is not None:
                raise Rejected(-1106, name="quantity")
            if price is not None:
                raise Rejected(-1106, name="price")
        else:
            if qty is None:
                raise Rejected(-1102, name="quantity")
            if not market and price is None:
                raise Rejected(-1102, name="price")
            check_order(f, order_type=F.MARKET if market else F.LIMIT, qty=qty,
                        price=None if market else price, mark=mark, reduce_only=reduce_only)
        a = A.AlgoOrder(0, "", symbol, side, order_type, tif, qty or 0.0,
                        0.0 if market else float(price), trigger or 0.0, working_type,
                        close_position, reduce_only, now, update_time=now)
        if trailing:
            a.callback_rate = callback_rate
            a.activate_price = self.working_price(a) if activate_price is None else activate_price
            self._trail(a)
        elif A.fires(order_type, side, trigger, self.working_price(a)):
            raise Rejected(-2021)
        self.next_algo_id += 1
        a.algo_id = self.next_algo_id
        a.client_id = client_id or f"sim-algo-{a.algo_id}"
        acc.algo_orders[a.algo_id] = a
        self.watched[a.algo_id] = (acc, a)
        self._event(acc, a, now)
        return a

    def find(self, acc: Account, algo_id: int | None, client_id: str | None
             ) -> A.AlgoOrder | None:
        if algo_id is not None:
            return acc.algo_orders.get(algo_id)
        return next((a for a in reversed(acc.algo_orders.values()) if a.client_id == client_id),
                    None)

    def cancel(self, acc: Account, algo_id: int | None, client_id: str | None) -> A.AlgoOrder:
        """Cancel a waiting conditional order (-2011 when unknown or no longer open)."""
        a = self.find(acc, algo_id, client_id)
        if a is None or a.status != F.NEW:
            raise Rejected(-2011)
        self._finish(acc, a, F.CANCELED)
        return a

    def cancel_all(self, acc: Account, symbol: str) -> None:
        for a in list(acc.algo_orders.values()):
            if a.symbol == symbol and a.status == F.NEW:
                self._finish(acc, a, F.CANCELED)

    def step(self) -> None:
        """Trigger what its working price reached; finish what the engine is done with."""
        ranges, self.ranges = self.ranges, {}
        for acc, a in list(self.watched.values()):
            if a.status == F.NEW:
                if a.type == A.TRAILING_STOP_MARKET:
                    fire = self._trail(a)
                else:
                    fire = self._reached(a, ranges)
                if fire:
                    self._trigger(acc, a)
            else:
                self._follow(acc, a)

    def _trail(self, a: A.AlgoOrder) -> bool:
        """Move a trailing stop on the working price now; True when it fires. Its trigger
        price is the level it fires at once activated."""
        a.activated, a.best, fire = A.trail(a.side, a.activate_price, a.callback_rate,
                                            a.activated, a.best, self.working_price(a))
        if a.activated:
            f = self.trading.filters[a.symbol]
            a.trigger_price = round(A.trail_level(a.side, a.callback_rate, a.best),
                                    f.price_decimals)
        return fire

    def _trigger(self, acc: Account, a: A.AlgoOrder) -> None:
        t = self.trading
        now = t.venue.now_ms()
        a.status, a.trigger_time, a.update_time = A.TRIGGERING, now, now
        self._event(acc, a, now)
        qty, reduce = a.qty, a.reduce_only
        if a.close_position:
            amt = acc.position(a.symbol).amt
            qty = abs(amt) if amt * (1.0 if a.side == F.BUY else -1.0) < 0 else 0.0
            reduce = True
        try:
            if qty <= 0:
                raise Rejected(-2022)
            market = A.is_market(a.type)
            o = t.place(acc, a.symbol, a.side, F.MARKET if market else F.LIMIT,
                        round(qty, t.filters[a.symbol].qty_decimals),
                        None if market else a.price, F.GTC if market else a.tif, reduce)
        except Rejected as e:
            a.reason = e.msg
            self._finish(acc, a, F.REJECTED)
            return
        a.actual_id, a.actual_type = o.order_id, o.type
        a.status = A.TRIGGERED
        a.actual_qty, a.actual_price = o.executed, o.avg_price
        self._event(acc, a, now)
        if not o.is_open:
            self._finish(acc, a, A.FINISHED)

    def _follow(self, acc: Account, a: A.AlgoOrder) -> None:
        """A triggered order follows its engine order: an event when it fills more, FINISHED
        once it is no longer open."""
        o = acc.orders[a.actual_id]
        if (a.actual_qty, a.actual_price) != (o.executed, o.avg_price):
            a.actual_qty, a.actual_price = o.executed, o.avg_price
            a.update_time = self.trading.venue.now_ms()
            if o.is_open:
                self._event(acc, a, a.update_time)
        if not o.is_open:
            self._finish(acc, a, A.FINISHED)

    def _finish(self, acc: Account, a: A.AlgoOrder, status: str) -> None:
        now = self.trading.venue.now_ms()
        a.status, a.update_time = status, now
        self.watched.pop(a.algo_id, None)
        self._event(acc, a, now)

    def _event(self, acc: Account, a: A.AlgoOrder, now: int) -> None:
        f = self.trading.filters[a.symbol]
        self.emit(acc, A.algo_update(a, f.price_decimals, f.qty_decimals, now))
