"""A synthetic order book per symbol with Binance's update ids, for REST depth and the book
streams.

The book is a function of the last trade price and the clock: the best bid is the last price
floored to the tick, the best ask one tick above, ``LEVELS`` levels a side on consecutive ticks.
The quantity resting at a price is drawn from a hash of (seed, symbol, side, price in ticks,
epoch), where each price level has its own 10-second epoch phase, so about a tenth of the levels
change every second and a price move shifts the window by whole levels — diffs stay small, as on
the real book.

Every :meth:`SyntheticBook.refresh` that changes anything advances ``update_id`` by one and
remembers which price levels it touched; :meth:`SyntheticBook.diff` gives the levels touched in
(``after``, ``update_id``] with their current quantity (``0`` = removed), which is exactly what
a ``<symbol>@depth`` event must carry so that Binance's snapshot-plus-diffs procedure (drop
events with ``u`` < snapshot ``lastUpdateId``, check ``pu`` continuity) rebuilds the book.
Prices and quantities are held as integers (ticks, lot steps).

What is published (REST depth, the depth streams, :meth:`quantity`, :meth:`top`, :meth:`diff`)
is the drawn book plus an **overlay** per level (:meth:`show`): the liquidity the accounts took
and that has not refilled yet (negative) and their resting limit orders (positive), set by
:mod:`qdash.sim.matching`. A level whose published quantity is 0 is not in the book. Every
change of the overlay advances ``update_id`` like a redraw, so snapshot plus diffs still
rebuild exactly the published book. Matching reads the drawn book (:meth:`drawn`).
"""

from __future__ import annotations

import hashlib

import numpy as np

LEVELS = 1000
EPOCH_MS = 10_000
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (uint64 → uint64), vectorised."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def _uniform(key: int, ticks: np.ndarray, salt: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = _mix(np.uint64(key) ^ _mix(ticks.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
                                      + salt.astype(np.uint64)))
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0 ** 53


class SyntheticBook:
    """The book of one symbol (see the module doc). ``unit_steps``: typical level size in lot
    steps."""

    def __init__(self, seed: int, symbol: str, unit_steps: int, levels: int = LEVELS):
        self.key = int.from_bytes(hashlib.blake2b(f"{seed}/{symbol}/book".encode(),
                                                  digest_size=8).digest(), "little")
        self.unit = max(1, int(unit_steps))
        self.levels = levels
        self.update_id = 0
        self.bid_top = self.ask_top = None  # best bid / ask in ticks
        self.bid_q = self.ask_q = np.empty(0, np.int64)  # lot steps, best first
        self._state: tuple[int, int] | None = None
        self._touched = ({}, {})  # side (0 bid, 1 ask) → {price tick: update id}
        self._overlay = ({}, {})  # side → {price tick: lot steps added (+) or taken (−)}

    def _quantities(self, side: int, ticks: np.ndarray, t_ms: int) -> np.ndarray:
        phase = (_uniform(self.key, ticks, np.full(len(ticks), 7 + side)) * EPOCH_MS)
        epoch = ((t_ms + phase.astype(np.int64)) // EPOCH_MS).astype(np.int64)
        u1 = _uniform(self.key, ticks, epoch * 4 + side)
        u2 = _uniform(self.key, ticks, epoch * 4 + 2 + side)
        z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
        return np.maximum(np.rint(self.unit * np.exp(0.6 * z)), 1).astype(np.int64)

    def refresh(self, best_bid_tick: int, t_ms: int) -> bool:
        """Move the book to best bid ``best_bid_tick`` at time ``t_ms`` (ms); True when it
        changed (``update_id`` advanced)."""
        t_ms = int(t_ms)
        state = (int(best_bid_tick), t_ms)
        if self._state is not None and state[0] == self._state[0] and \
                t_ms // 100 == self._state[1] // 100:
            return False
        bid, k = int(best_bid_tick), np.arange(self.levels, dtype=np.int64)
        bid_ticks, ask_ticks = bid - k, bid + 1 + k
        new = (self._quantities(0, bid_ticks, t_ms), self._quantities(1, ask_ticks, t_ms))
        old = ((self.bid_top, self.bid_q, -1), (self.ask_top, self.ask_q, 1))
        tops = (bid, bid + 1)
        changed = []
        for side in (0, 1):
            top, q, direction = old[side]
            changed.append(_changed_levels(top, q, tops[side], new[side], direction))
        self._state = state
        if not any(len(c) for c in changed):
            return False
        self.update_id += 1
        for side in (0, 1):
            touched = self._touched[side]
            for tick in changed[side].tolist():
                touched[tick] = self.update_id
        self.bid_top, self.ask_top = tops
        self.bid_q, self.ask_q = new
        return True

    def top(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(bids, asks): the best ``n`` published levels a side as (price tick, lot steps),
        best first."""
        out = []
        for side, first, step, q in ((0, self.bid_top, -1, self.bid_q),
                                     (1, self.ask_top, 1, self.ask_q)):
            ticks = first + step * np.arange(self.levels, dtype=np.int64)
            over = self._overlay[side]
            if over:
                q = q.copy()
                for tick, delta in over.items():
                    i = (tick - first) * step
                    if 0 <= i < self.levels:
                        q[i] = max(0, q[i] + delta)
                keep = np.flatnonzero(q > 0)[:n]
                out.append(list(zip(ticks[keep].tolist(), q[keep].tolist())))
            else:
                m = min(n, self.levels)
                out.append(list(zip(ticks[:m].tolist(), q[:m].tolist())))
        return out[0], out[1]

    def drawn(self, side: int, tick: int) -> int:
        """Lot steps the model draws at ``tick`` on ``side`` (0 bid, 1 ask); 0 outside the
        book (what matching takes from, before the liquidity already taken)."""
        if side == 0:
            i = self.bid_top - tick
            return int(self.bid_q[i]) if 0 <= i < self.levels else 0
        i = tick - self.ask_top
        return int(self.ask_q[i]) if 0 <= i < self.levels else 0

    def quantity(self, side: int, tick: int) -> int:
        """Lot steps published at ``tick`` on ``side``: drawn plus the overlay, 0 outside the
        book."""
        q = self.drawn(side, tick)
        return max(0, q + self._overlay[side].get(tick, 0)) if q else 0

    def show(self, side: int, changes: dict[int, int]) -> None:
        """Set the overlay of levels of ``side`` (price tick → lot steps, 0 = none); one
        update (``update_id`` advances once) when the published book changes."""
        over, touched = self._overlay[side], []
        for tick, delta in changes.items():
            if over.get(tick, 0) == delta:
                continue
            before = self.quantity(side, tick)
            if delta:
                over[tick] = delta
            else:
                del over[tick]
            if self.quantity(side, tick) != before:
                touched.append(tick)
        if touched:
            self.update_id += 1
            for tick in touched:
                self._touched[side][tick] = self.update_id

    def diff(self, after: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Levels touched by updates in (``after``, ``update_id``] with their current quantity:
        (bids descending, asks ascending)."""
        out = []
        for side in (0, 1):
            ticks = sorted((t for t, u in self._touched[side].items() if u > after),
                           reverse=side == 0)
            out.append([(t, self.quantity(side, t)) for t in ticks])
        return out[0], out[1]

    def forget(self, upto: int) -> None:
        """Drop the memory of updates ≤ ``upto`` (no diff stream needs them any more)."""
        for side in (0, 1):
            touched = self._touched[side]
            for t in [t for t, u in touched.items() if u <= upto]:
                del touched[t]


def _changed_levels(old_top, old_q, new_top, new_q, direction) -> np.ndarray:
    """Price ticks whose quantity differs between two contiguous ladders (``direction`` −1
    for bids, which descend from their top, +1 for asks)."""
    if old_top is None:
        return new_top + direction * np.arange(len(new_q), dtype=np.int64)
    n = len(new_q)
    lo = min(old_top, new_top) if direction == 1 else min(old_top, new_top) - n + 1
    hi = max(old_top, new_top) + n - 1 if direction == 1 else max(old_top, new_top)
    grid = np.arange(lo, hi + 1, dtype=np.int64)

    def aligned(top, q):
        a = np.zeros(len(grid), np.int64)
        idx = (grid - top) * direction
        ok = (idx >= 0) & (idx < len(q))
        a[ok] = q[idx[ok]]
        return a

    return grid[aligned(old_top, old_q) != aligned(new_top, new_q)]
