"""A local order book of one symbol kept by Binance's rules (no sockets, no clock: pure state).

Binance's procedure ("How to manage a local order book correctly", USDⓈ-M):

1. buffer the ``<symbol>@depth`` events;
2. take a REST snapshot (``/fapi/v1/depth?limit=1000``), which gives ``lastUpdateId`` (L);
3. drop the events with ``u < L``;
4. the first event applied must have ``U <= L + 1`` (with ``u >= L`` from step 3: USDⓈ-M's
   documented ``U <= L <= u`` and the spot form ``U <= L+1 <= u`` are both accepted, as the
   same book results: quantities are absolute, so applying an event already in the snapshot
   changes nothing);
5. after that, each event's ``pu`` must equal the previous event's ``u``; if not, the book is
   out of sync: it is cleared, the event starts a new buffer and a new snapshot is needed
   (a *resync*, counted in :attr:`LocalOrderBook.resyncs`).

A snapshot older than the buffered stream (its ``L + 1`` below the first kept event's ``U``)
cannot start the book: :meth:`LocalOrderBook.on_snapshot` answers ``"stale"`` and keeps the buffer
for the next snapshot. Quantities are absolute; a quantity of 0 removes the level; a removal of a
level not held is normal. Prices in the quote asset, quantities in the base asset.
"""

from __future__ import annotations

import collections
import heapq

import numpy as np

from .schema import DepthSnapshot, DepthUpdate

MAX_BUFFER = 1_000  # events held while waiting for a snapshot (older ones are dropped first)

# what on_event / on_snapshot report
BUFFERED, APPLIED, DROPPED, GAP = "buffered", "applied", "dropped", "gap"
SYNCED, STALE = "synced", "stale"


class LocalOrderBook:
    """One symbol's local book (see the module docstring).

    :attr:`synced` is True once a snapshot and the stream agree; :attr:`needs_snapshot` says the
    owner should fetch one (REST) and pass it to :meth:`on_snapshot`. :attr:`last_update_id` is
    the ``u`` of the last event applied (the snapshot's ``lastUpdateId`` before the first);
    :attr:`event_ms` its exchange time. Counters: :attr:`resyncs` (gaps in ``pu``),
    :attr:`stale_snapshots`, :attr:`applied`, :attr:`dropped` (events older than the snapshot),
    :attr:`buffer_overflows`.
    """

    def __init__(self, symbol: str, max_buffer: int = MAX_BUFFER):
        self.symbol = symbol
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.synced = False
        self.last_update_id: int | None = None
        self.event_ms = 0
        self._first_pending = False  # synced from a snapshot, no event applied yet
        self._buffer: collections.deque[DepthUpdate] = collections.deque(maxlen=max_buffer)
        self.resyncs = self.stale_snapshots = self.applied = self.dropped = 0
        self.buffer_overflows = 0

    @property
    def needs_snapshot(self) -> bool:
        """True while the book waits for a REST snapshot."""
        return not self.synced

    # --- input -----------------------------------------------------------------------------
    def on_event(self, ev: DepthUpdate) -> str:
        """Take one stream event: ``buffered`` (waiting for a snapshot), ``applied``,
        ``dropped`` (already in the snapshot) or ``gap`` (out of sync: cleared, a new snapshot
        is needed, the event is buffered for it)."""
        if not self.synced:
            if len(self._buffer) == self._buffer.maxlen:
                self.buffer_overflows += 1
            self._buffer.append(ev)
            return BUFFERED
        L = self.last_update_id
        if self._first_pending:
            if ev.last_id < L:
                self.dropped += 1
                return DROPPED
            if ev.first_id > L + 1:  # events between the snapshot and this one were missed
                return self._resync(ev)
        elif ev.prev_id != L:
            return self._resync(ev)
        self._apply(ev)
        return APPLIED

    def on_snapshot(self, snap: DepthSnapshot) -> str:
        """Start the book from a REST snapshot and the buffered events: ``synced``, ``stale``
        (the snapshot is older than the buffer: fetch another; nothing changed) or ``gap``
        (the buffered events themselves break the ``pu`` chain: a new snapshot is needed)."""
        L = snap.last_update_id
        kept = [ev for ev in self._buffer if ev.last_id >= L]
        if kept and kept[0].first_id > L + 1:
            self.stale_snapshots += 1
            return STALE
        self.dropped += len(self._buffer) - len(kept)
        self._buffer.clear()
        self.bids = {p: q for p, q in snap.bids if q > 0}
        self.asks = {p: q for p, q in snap.asks if q > 0}
        self.last_update_id, self.event_ms = L, snap.event_ms
        self.synced, self._first_pending = True, True
        for ev in kept:
            if self.on_event(ev) == GAP:
                return GAP
        return SYNCED

    def reset(self) -> None:
        """Forget the book and the buffer (e.g. the stream was unsubscribed); not a resync."""
        self.bids, self.asks = {}, {}
        self.synced, self._first_pending = False, False
        self.last_update_id = None
        self._buffer.clear()

    def _resync(self, ev: DepthUpdate) -> str:
        self.resyncs += 1
        self.reset()
        self._buffer.append(ev)
        return GAP

    def _apply(self, ev: DepthUpdate) -> None:
        for side, levels in ((self.bids, ev.bids), (self.asks, ev.asks)):
            for p, q in levels:
                if q > 0:
                    side[p] = q
                else:
                    side.pop(p, None)
        self.last_update_id, self.event_ms = ev.last_id, ev.event_ms
        self._first_pending = False
        self.applied += 1

    # --- output ----------------------------------------------------------------------------
    def top(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``n`` levels a side: (bids descending, asks ascending), each an array of
        shape (k, 2) of [price, qty], k <= n."""
        bids = heapq.nlargest(n, self.bids.items())
        asks = heapq.nsmallest(n, self.asks.items())
        return (np.array(bids, dtype=np.float64).reshape(-1, 2),
                np.array(asks, dtype=np.float64).reshape(-1, 2))

    def top_levels(self, n: int) -> np.ndarray:
        """The best ``n`` levels as one array (2 sides, 2 [price, qty], n), NaN-padded where a
        side holds fewer: the layout of :data:`qdash.model.DEPTH_LEVEL_COLUMNS`."""
        out = np.full((2, 2, n), np.nan)
        for i, side in enumerate(self.top(n)):
            out[i, :, :len(side)] = side.T
        return out

    def stats(self) -> dict:
        """Counters and the state of the book, plain data."""
        best_bid = max(self.bids) if self.bids else None
        best_ask = min(self.asks) if self.asks else None
        return {"synced": self.synced, "last_update_id": self.last_update_id,
                "event_ms": self.event_ms, "levels": (len(self.bids), len(self.asks)),
                "best_bid": best_bid, "best_ask": best_ask, "resyncs": self.resyncs,
                "stale_snapshots": self.stale_snapshots, "applied": self.applied,
                "dropped": self.dropped, "buffered": len(self._buffer),
                "buffer_overflows": self.buffer_overflows}
