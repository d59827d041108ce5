"""Live 1-minute aggregates of one symbol's MARKET trades, kept incrementally.

The kline and ticker streams read bars from here instead of re-scanning the trade ledger at
every push: appending a batch costs one pass over the batch, a bar of any interval is an
aggregate of a slice of minutes. Columns are those of :func:`trade_bars` (``open_time``
int64 ms UTC, prices and base volumes as floats, ``trades`` int64) plus ``first_id`` and
``last_id`` (the MARKET trade ids of the minute). ``retention_ms`` bounds memory: older minutes
are forgotten, as the ledger forgets old trades.
"""

from __future__ import annotations

import numpy as np

from ..bars import reduce_trades
from .universe import MINUTE_MS

COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "quote_volume", "trades",
           "taker_buy_volume", "taker_buy_quote_volume", "first_id", "last_id")
_INT = ("open_time", "trades", "first_id", "last_id")
_SUMS = ("volume", "quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume")


def trade_bars(open_time: np.ndarray, price: np.ndarray, qty: np.ndarray, m: np.ndarray
               ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Kline columns (Binance's names, :data:`COLUMNS` without the ids) of MARKET trades in id
    order, one bar per run of equal ``open_time`` (int64 ms); ``m`` 1 when the buyer was the
    maker. Reduced by :func:`qdash.bars.reduce_trades`; also returns its ``starts``/``ends``."""
    agg, starts, ends = reduce_trades(open_time, price, qty, m, buy_quote=True)
    bars = {k: agg[k] for k in ("open_time", "open", "high", "low", "close", "volume",
                                "quote_volume", "trades")}
    bars["taker_buy_volume"] = agg["buy_volume"]
    bars["taker_buy_quote_volume"] = agg["buy_quote_volume"]
    return bars, starts, ends


class MinuteBook:
    """1-minute bars of one symbol's live MARKET trades (ascending, no empty minutes)."""

    def __init__(self, retention_ms: int = 2 * 86_400_000):
        self.retention_ms = retention_ms
        self.n = 0
        self.version = 0  # bumped by every append that changed a bar
        self.last_ts = -1
        self._cols = {c: np.empty(256, np.int64 if c in _INT else np.float64) for c in COLUMNS}

    def append(self, ts: np.ndarray, ids: np.ndarray, price: np.ndarray, qty: np.ndarray,
               m: np.ndarray) -> None:
        """Add MARKET trades (ascending ``ts``; ``m`` 1 when the buyer was the maker)."""
        if len(ts) == 0:
            return
        ts = np.asarray(ts, np.int64)
        new, starts, ends = trade_bars(ts // MINUTE_MS * MINUTE_MS,
                                       np.asarray(price, np.float64), np.asarray(qty, np.float64),
                                       np.asarray(m))
        new["first_id"] = np.asarray(ids, np.int64)[starts]
        new["last_id"] = np.asarray(ids, np.int64)[ends - 1]
        c = self._cols
        if self.n and c["open_time"][self.n - 1] == new["open_time"][0]:
            j = self.n - 1
            c["high"][j] = max(c["high"][j], new["high"][0])
            c["low"][j] = min(c["low"][j], new["low"][0])
            c["close"][j] = new["close"][0]
            c["last_id"][j] = new["last_id"][0]
            for k in _SUMS:
                c[k][j] += new[k][0]
            new = {k: v[1:] for k, v in new.items()}
        k = len(new["open_time"])
        if k:
            self._reserve(self.n + k)
            for name, v in new.items():
                c[name][self.n:self.n + k] = v
            self.n += k
        self.last_ts = int(ts[-1])
        self.version += 1
        self._trim()

    def _reserve(self, size: int) -> None:
        cap = len(self._cols["open_time"])
        if size <= cap:
            return
        cap = max(size, 2 * cap)
        for name, v in self._cols.items():
            grown = np.empty(cap, v.dtype)
            grown[:self.n] = v[:self.n]
            self._cols[name] = grown

    def _trim(self) -> None:
        t = self._cols["open_time"]
        cut = int(np.searchsorted(t[:self.n], self.last_ts - self.retention_ms))
        if cut > self.n // 2 and cut > 1024:
            for v in self._cols.values():
                v[:self.n - cut] = v[cut:self.n].copy()
            self.n -= cut

    def bars(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Minutes opening in [lo, hi] (copies)."""
        t = self._cols["open_time"][:self.n]
        a, b = np.searchsorted(t, lo), np.searchsorted(t, hi, side="right")
        return {k: v[a:b].copy() for k, v in self._cols.items()}

    def last(self) -> dict | None:
        """The last minute as scalars, or None."""
        if not self.n:
            return None
        return {k: v[self.n - 1].item() for k, v in self._cols.items()}


def combine(bars: dict[str, np.ndarray]) -> dict | None:
    """One bar (scalars) aggregating ascending bars (first open, max high, min low, last close,
    sums; ``first_id``/``last_id`` when present); None for no bars."""
    if len(bars["open_time"]) == 0:
        return None
    out = {"open_time": int(bars["open_time"][0]), "open": float(bars["open"][0]),
           "high": float(np.max(bars["high"])), "low": float(np.min(bars["low"])),
           "close": float(bars["close"][-1])}
    for k in _SUMS:
        out[k] = bars[k].sum().item()
    if "first_id" in bars:
        out["first_id"] = int(bars["first_id"][0])
        out["last_id"] = int(bars["last_id"][-1])
    return out
