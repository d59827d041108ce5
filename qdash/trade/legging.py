"""Legging: getting both legs of an entry or exit filled, and what to do when one lags.

A pure state machine (no sockets, no clock of its own): :class:`Legging` is told what the
exchange said (:meth:`~Legging.on_update` with an :class:`~qdash.binance.order_updates.OrderUpdate`,
:meth:`~Legging.on_reject` with Binance's error) and the time (:meth:`~Legging.on_timer`), and
answers with the orders to send (:class:`Place`) or cancel (:class:`Cancel`).

The policy (:class:`LeggingPolicy`):

* both legs are sent at once, as ``MARKET`` orders or as ``LIMIT`` orders at the touch (the
  best bid to buy, ask to sell, given by the caller);
* a leg not filled ``timeout_ms`` after the orders went out is **chased**: its working order is
  cancelled and the rest is sent as a ``MARKET`` order (at most ``max_chases`` times);
* if a leg of an entry is **rejected** (Binance answers with an error: below min notional,
  margin...), the other leg is **unwound**: its working order is cancelled and what it filled is
  closed with a reduce-only ``MARKET`` order. A rejected exit leg is chased as a market order;
  a reduce-only rejection (-2022: nothing left to reduce) counts as done.

For every entry and exit :meth:`Legging.record` gives the legging time (ms between the two
legs' last fills), which leg filled first, and the legging price: how far the late leg's fill
lies from its price when the first leg completed (bps, positive = paid).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..binance import order_fields as F
from ..binance.order_updates import OrderUpdate
from .ids import ClientId

REDUCE_ONLY_REJECTED = -2022
ORDER_TYPES = F.ORDER_TYPES


@dataclass(frozen=True)
class LeggingPolicy:
    """``order_type``: ``MARKET`` or ``LIMIT`` (at the touch); ``timeout_ms``: how long a leg
    may stay unfilled before it is chased with a market order; ``max_chases`` per leg."""

    order_type: str = F.MARKET
    timeout_ms: int = 1_000
    max_chases: int = 2

    def __post_init__(self):
        if self.order_type not in ORDER_TYPES:
            raise ValueError(f"order_type must be one of {ORDER_TYPES}, got {self.order_type!r}")
        if self.timeout_ms <= 0 or self.max_chases < 0:
            raise ValueError("timeout_ms must be > 0 and max_chases >= 0")


@dataclass(frozen=True)
class Place:
    """Send an order: ``qty`` > 0 base units, ``side`` BUY/SELL, ``price`` for a LIMIT."""

    client_id: str
    leg: str
    symbol: str
    side: str
    qty: float
    type: str = F.MARKET
    price: float | None = None
    reduce_only: bool = False


@dataclass(frozen=True)
class Cancel:
    """Cancel the working order ``client_id``."""

    client_id: str
    leg: str
    symbol: str


@dataclass
class _Order:
    filled: float = 0.0
    avg: float = 0.0
    status: str = "NEW"
    unwind: bool = False


@dataclass
class Leg:
    """One leg of a legging: ``target`` signed base units; what its orders filled."""

    name: str
    symbol: str
    target: float
    ref_price: float
    touch: float | None = None
    orders: dict[str, _Order] = field(default_factory=dict)
    working: str | None = None        # the client id of the order not final yet
    attempts: int = 0
    chases: int = 0
    chasing: bool = False             # the working order is being cancelled to be chased
    rejected: str | None = None
    done_ms: int | None = None
    mark_at_first: float | None = None
    unwind: float = 0.0               # signed quantity sent to unwind it

    @property
    def side(self) -> str:
        return F.BUY if self.target > 0 else F.SELL

    @property
    def filled(self) -> float:
        """Base units filled (>= 0) by this leg's orders except its unwind."""
        return sum(o.filled for o in self.orders.values() if not o.unwind)

    @property
    def avg_price(self) -> float:
        f = [(o.filled, o.avg) for o in self.orders.values() if not o.unwind]
        q = sum(a for a, _ in f)
        return sum(a * p for a, p in f) / q if q > 0 else float("nan")

    @property
    def remaining(self) -> float:
        r = abs(self.target) - self.filled
        return r if r > 1e-9 * max(1.0, abs(self.target)) else 0.0

    @property
    def complete(self) -> bool:
        return self.remaining == 0.0


class Legging:
    """Both legs of one entry (``kind`` ``"e"``), exit (``"x"``) or kill (``"k"``) caused by
    the signal bar ``bar_ms``. ``legs``: ``{"y": (symbol, signed qty, reference price, touch
    price or None), "x": (...)}`` (a leg of quantity 0 is left out); ``prefix``: the trader's
    client-id prefix (:mod:`qdash.trade.ids`); exits and kills are market orders, reduce-only
    unless ``reduce_only=False`` (a foreign position netted into a leg: closing the trader's
    part may cross zero). ``price_of(symbol)``: the symbol's last price (for the legging price)."""

    def __init__(self, kind: str, bar_ms: int, legs: dict, policy: LeggingPolicy,
                 prefix: str, now_ms: int, price_of: Callable[[str], float | None] | None = None,
                 reduce_only: bool | None = None):
        self.kind, self.bar_ms, self.policy, self.prefix = kind, int(bar_ms), policy, prefix
        self.legs = {n: Leg(n, s, float(q), float(p), t) for n, (s, q, p, t) in legs.items()
                     if q != 0}
        self.reduce_only = kind != "e" if reduce_only is None else reduce_only
        self.started_ms = int(now_ms)
        self.price_of = price_of or (lambda symbol: None)
        self.outcome: str | None = None    # filled, unwound, failed
        self.problem: str | None = None
        self.unwinding = False

    # --- helpers -------------------------------------------------------------------------------
    def _place(self, leg: Leg, qty: float, market: bool, kind: str | None = None,
               reduce_only: bool | None = None, side: str | None = None) -> Place:
        cid = ClientId(self.bar_ms, kind or self.kind, leg.name, leg.attempts).text(self.prefix)
        leg.attempts += 1
        leg.orders[cid] = _Order(unwind=kind == "u")
        leg.working = cid
        limit = not market and self.policy.order_type == F.LIMIT and leg.touch
        return Place(cid, leg.name, leg.symbol, side or leg.side, qty,
                     F.LIMIT if limit else F.MARKET, leg.touch if limit else None,
                     self.reduce_only if reduce_only is None else reduce_only)

    def _leg_of(self, client_id: str) -> Leg | None:
        for leg in self.legs.values():
            if client_id in leg.orders:
                return leg
        return None

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def client_ids(self) -> list[str]:
        return [c for leg in self.legs.values() for c in leg.orders]

    # --- events --------------------------------------------------------------------------------
    def start(self) -> list[Place]:
        """The first orders of both legs."""
        if not self.legs:
            self.outcome, self.problem = "failed", "no leg to trade"
            return []
        return [self._place(leg, abs(leg.target), market=self.kind != "e")
                for leg in self.legs.values()]

    def on_update(self, u: OrderUpdate, now_ms: int) -> list[Place | Cancel]:
        """The exchange reports order ``u.client_id`` (an answer or a stream event)."""
        leg = self._leg_of(u.client_id)
        if leg is None or self.done:
            return []
        order = leg.orders[u.client_id]
        if u.filled < order.filled and not u.final:
            return []                          # an older event than one already applied
        order.filled, order.status = max(order.filled, u.filled), u.status
        if u.filled > 0 and u.avg_price > 0:
            order.avg = u.avg_price
        out: list[Place | Cancel] = []
        if u.final and leg.working == u.client_id:
            leg.working = None
            if order.unwind:
                pass
            elif leg.remaining and leg.chasing and not self.unwinding:
                leg.chasing = False
                out.append(self._place(leg, leg.remaining, market=True))
            elif leg.remaining and u.final and u.status != F.FILLED and not self.unwinding:
                out += self._rejected(leg, f"order {u.status.lower()}", None)
        if leg.complete and leg.done_ms is None:
            leg.done_ms = int(u.time_ms or now_ms)
            for other in self.legs.values():
                if other is not leg and other.mark_at_first is None and other.done_ms is None:
                    other.mark_at_first = self.price_of(other.symbol)
        if self.unwinding:
            out += self._continue_unwind()
        elif all(g.complete for g in self.legs.values()):
            self.outcome = "filled"
        return out

    def on_reject(self, client_id: str, code: int | None, msg: str, now_ms: int
                  ) -> list[Place | Cancel]:
        """Binance refused order ``client_id`` (``code``, ``msg``)."""
        leg = self._leg_of(client_id)
        if leg is None or self.done:
            return []
        leg.orders[client_id].status = "REJECTED"
        if leg.working == client_id:
            leg.working = None
        return self._rejected(leg, f"{code}: {msg}" if code is not None else msg, code)

    def _rejected(self, leg: Leg, why: str, code: int | None) -> list[Place | Cancel]:
        if self.unwinding:
            self.outcome = "failed"
            self.problem = f"unwind of leg {leg.name} ({leg.symbol}) refused: {why}"
            return []
        if self.reduce_only:
            if code == REDUCE_ONLY_REJECTED:    # nothing left to reduce on this leg
                leg.target = leg.filled * (1 if leg.target > 0 else -1)
                if all(g.complete for g in self.legs.values()):
                    self.outcome = "filled"
                return []
            if leg.chases < self.policy.max_chases:
                leg.chases += 1
                return [self._place(leg, leg.remaining, market=True)]
            self.outcome = "failed"
            self.problem = f"leg {leg.name} ({leg.symbol}) refused: {why}"
            return []
        leg.rejected = why
        self.problem = f"leg {leg.name} ({leg.symbol}) rejected: {why}"
        self.unwinding = True
        out: list[Place | Cancel] = []
        for other in self.legs.values():
            if other is not leg and other.working is not None:
                out.append(Cancel(other.working, other.name, other.symbol))
        return out + self._continue_unwind()

    def _continue_unwind(self) -> list[Place]:
        """Once no order of the entry is working: close what the other legs filled."""
        if any(g.working is not None for g in self.legs.values()):
            return []
        out = []
        for leg in self.legs.values():
            todo = leg.filled - abs(leg.unwind)
            if leg.rejected is None and todo > 1e-12:
                side = F.SELL if leg.target > 0 else F.BUY
                leg.unwind += -todo if leg.target > 0 else todo
                out.append(self._place(leg, todo, market=True, kind="u", reduce_only=True,
                                       side=side))
        if not out and not any(g.working for g in self.legs.values()):
            unwound = [g for g in self.legs.values() if g.unwind]
            self.outcome = "unwound" if unwound else "failed"
        return out

    def on_timer(self, now_ms: int) -> list[Cancel]:
        """Chase every leg still unfilled ``timeout_ms`` after the orders went out: cancel its
        working order (the market order for the rest follows the cancel's confirmation)."""
        if self.done or self.unwinding or now_ms - self.started_ms < self.policy.timeout_ms:
            return []
        out = []
        for leg in self.legs.values():
            if (leg.remaining and leg.working and not leg.chasing
                    and leg.chases < self.policy.max_chases):
                leg.chasing = True
                leg.chases += 1
                self.started_ms = int(now_ms)   # the chase gets its own timeout
                out.append(Cancel(leg.working, leg.name, leg.symbol))
        return out

    def on_cancel_failed(self, client_id: str) -> None:
        """The cancel of ``client_id`` was refused (-2011: it filled or ended meanwhile): its
        updates will tell; no chase follows."""
        leg = self._leg_of(client_id)
        if leg is not None:
            leg.chasing = False

    # --- the record ------------------------------------------------------------------------------
    def record(self) -> dict:
        """The legging of this entry/exit: ``legging_ms`` (between the legs' last fills; None
        unless both filled), ``first_leg``, ``legging_bps`` (the late leg's fill against its
        price when the first completed, positive = paid), per leg the average fill price, the
        filled quantity and the shortfall against the decision's close (bps, positive = paid),
        chases, outcome and problem."""
        rec = {"kind": self.kind, "bar_ms": self.bar_ms, "outcome": self.outcome,
               "problem": self.problem, "legging_ms": None, "first_leg": None,
               "legging_bps": None}
        for leg in self.legs.values():
            sign = 1 if leg.target > 0 else -1
            avg = leg.avg_price
            rec[f"price_{leg.name}"] = avg
            rec[f"filled_{leg.name}"] = sign * leg.filled
            rec[f"shortfall_bps_{leg.name}"] = (sign * (avg - leg.ref_price) / leg.ref_price
                                                * 1e4 if leg.filled else None)
            rec[f"chases_{leg.name}"] = leg.chases
        done = [g for g in self.legs.values() if g.done_ms is not None]
        if len(done) == 2:
            first, late = sorted(done, key=lambda g: g.done_ms)
            rec["legging_ms"] = late.done_ms - first.done_ms
            rec["first_leg"] = first.name
            if late.mark_at_first:
                sign = 1 if late.target > 0 else -1
                rec["legging_bps"] = (sign * (late.avg_price - late.mark_at_first)
                                      / late.mark_at_first * 1e4)
        return rec
