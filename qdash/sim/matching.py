"""Matching on the simulated exchange's book: market orders walk it, limit orders cross it or
rest in its queue.

Units: prices in ticks, quantities in lot steps (ints), times in ms on the exchange clock; side
0 is the bid, 1 the ask (a BUY takes from side 1, a SELL from side 0).

* **Taken liquidity.** The synthetic book (:mod:`qdash.sim.orderbook`) is a function of the last
  price and the clock; what an order takes from a level is remembered in
  :class:`Liquidity` and refills at ``refill`` lot steps per ms per level (by default the book's
  typical level size per 10 s epoch, the rate at which the book redraws its levels), so two
  orders never fill from the same liquidity and a second order right after the first fills
  worse.
* **Market orders** (and the crossing part of a limit order) walk the levels from the best
  outwards up to an optional limit tick: one fill per level consumed.
* **Resting limit orders** get a queue position: the quantity resting at their price when they
  arrived (0 at a price better than the best). A market trade of the model at their price on
  their side (a taker SELL for a resting BUY) first works off the queue ahead, then fills the
  order as maker; a trade through their price (below a resting BUY, above a resting SELL) fills
  what is left. Partial fills follow from the trade sizes.
* **The published book** shows both (:meth:`Matcher.show`): a level's overlay is the lot steps
  resting there minus those taken and not refilled (rounded up), set on the book at once for
  the levels an order touches and for every overlaid level when the clock has moved on
  (``SHOW_EVERY_MS``, the book's own redraw granularity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .orderbook import EPOCH_MS, SyntheticBook

BID, ASK = 0, 1
SHOW_EVERY_MS = 100


class Liquidity:
    """Liquidity taken from one book: (side, tick) → (lot steps still missing, at time ms)."""

    def __init__(self, refill_per_ms: float):
        self.refill = refill_per_ms
        self.taken: dict[tuple[int, int], tuple[float, int]] = {}

    def missing(self, side: int, tick: int, t_ms: int) -> float:
        """Lot steps taken from the level and not refilled yet at ``t_ms``."""
        got = self.taken.get((side, tick))
        if got is None:
            return 0.0
        left = got[0] - self.refill * (t_ms - got[1])
        if left <= 0:
            del self.taken[(side, tick)]
            return 0.0
        return left

    def available(self, book: SyntheticBook, side: int, tick: int, t_ms: int) -> int:
        """Lot steps one can take at the level now."""
        q = book.drawn(side, tick)
        if q <= 0:
            return 0
        return max(0, int(q - self.missing(side, tick, t_ms)))

    def take(self, side: int, tick: int, lots: int, t_ms: int) -> None:
        self.taken[(side, tick)] = (self.missing(side, tick, t_ms) + lots, t_ms)


@dataclass
class Resting:
    """A resting limit order: its id, side taken from the book's point of view (BID for a BUY),
    price tick, lot steps left and the lot steps queued ahead of it."""

    order_id: int
    side: int
    tick: int
    left: int
    ahead: int


class Matcher:
    """The matching of one symbol against its book (see the module doc)."""

    def __init__(self, unit_lots: int, refill_per_ms: float | None = None):
        self.liquidity = Liquidity(unit_lots / EPOCH_MS if refill_per_ms is None
                                   else refill_per_ms)
        self.resting: dict[int, Resting] = {}
        self.queued: dict[tuple[int, int], int] = {}  # (side, tick) → lot steps resting
        self.shown: dict[tuple[int, int], int] = {}   # (side, tick) → overlay on the book
        self._shown_ms: int | None = None

    def show(self, book: SyntheticBook, t_ms: int, levels=None) -> None:
        """Publish on ``book`` the overlay of ``levels`` ((side, tick) pairs), or of every
        overlaid level when the clock moved ``SHOW_EVERY_MS`` on since the last time."""
        if levels is None:
            bucket = t_ms // SHOW_EVERY_MS
            if bucket == self._shown_ms or not (self.shown or self.liquidity.taken):
                return
            self._shown_ms = bucket
            levels = set(self.shown) | set(self.liquidity.taken)
        changes: tuple[dict, dict] = ({}, {})
        for key in levels:
            delta = self.queued.get(key, 0) - math.ceil(self.liquidity.missing(*key, t_ms))
            if delta != self.shown.get(key, 0):
                changes[key[0]][key[1]] = delta
                if delta:
                    self.shown[key] = delta
                else:
                    del self.shown[key]
        for side in (BID, ASK):
            if changes[side]:
                book.show(side, changes[side])

    def _queue(self, side: int, tick: int, lots: int) -> None:
        left = self.queued.get((side, tick), 0) + lots
        if left:
            self.queued[(side, tick)] = left
        else:
            del self.queued[(side, tick)]

    def walk(self, book: SyntheticBook, buy: bool, lots: int, t_ms: int,
             limit_tick: int | None = None) -> list[tuple[int, int]]:
        """Take up to ``lots`` from the opposite side, best level first, not past
        ``limit_tick``; returns the fills as (tick, lot steps), one per level."""
        side = ASK if buy else BID
        tick, step = (book.ask_top, 1) if buy else (book.bid_top, -1)
        liq, fills, left = self.liquidity, [], lots
        for _ in range(book.levels):
            if limit_tick is not None and (tick > limit_tick if buy else tick < limit_tick):
                break
            avail = liq.available(book, side, tick, t_ms)
            if avail > 0:
                got = avail if avail < left else left
                liq.take(side, tick, got, t_ms)
                fills.append((tick, got))
                left -= got
                if left == 0:
                    break
            tick += step
        self.show(book, t_ms, [(side, t) for t, _ in fills])
        return fills

    def crossable(self, book: SyntheticBook, buy: bool, limit_tick: int, t_ms: int) -> int:
        """Lot steps a limit order at ``limit_tick`` could take now (FOK and post-only
        checks)."""
        side = ASK if buy else BID
        tick, step = (book.ask_top, 1) if buy else (book.bid_top, -1)
        total = 0
        while (tick <= limit_tick if buy else tick >= limit_tick) and \
                abs(tick - (book.ask_top if buy else book.bid_top)) < book.levels:
            total += self.liquidity.available(book, side, tick, t_ms)
            tick += step
        return total

    def rest(self, book: SyntheticBook, order_id: int, buy: bool, tick: int, lots: int,
             t_ms: int) -> Resting:
        """Put an order in the queue at ``tick`` behind what rests there now."""
        side = BID if buy else ASK
        r = Resting(order_id, side, tick, lots,
                    self.liquidity.available(book, side, tick, t_ms))
        self.resting[order_id] = r
        self._queue(side, tick, lots)
        self.show(book, t_ms, [(side, tick)])
        return r

    def cancel(self, order_id: int, book: SyntheticBook, t_ms: int) -> None:
        """Take an order out of the queue and off the published ``book``."""
        r = self.resting.pop(order_id, None)
        if r is not None:
            self._queue(r.side, r.tick, -r.left)
            self.show(book, t_ms, [(r.side, r.tick)])

    def on_trade(self, tick: int, lots: int, taker_sell: bool) -> list[tuple[int, int, int]]:
        """A market trade of ``lots`` at ``tick``; returns the maker fills it causes as
        (order id, tick, lot steps); filled orders leave the queue."""
        out = []
        for r in list(self.resting.values()):
            if r.side == BID:
                through, at = tick < r.tick, tick == r.tick and taker_sell
            else:
                through, at = tick > r.tick, tick == r.tick and not taker_sell
            if through:
                got = r.left
            elif at:
                beyond = lots - r.ahead
                r.ahead = max(0, r.ahead - lots)
                got = min(r.left, beyond) if beyond > 0 else 0
            else:
                continue
            if got:
                r.left -= got
                self._queue(r.side, r.tick, -got)
                out.append((r.order_id, r.tick, got))
                if r.left == 0:
                    del self.resting[r.order_id]
        return out
