"""The ledger of every trade the simulated exchange published, with the queries REST needs.

Rows are kept per symbol as appended numpy chunks (concatenated lazily and cached), so appending
at 20,000 trades/s is cheap and a REST query costs one concatenation at most. ``retention_ms``
(None = keep everything) bounds memory for long-running servers: older rows are forgotten, as
Binance forgets old history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..model import tick_frame
from .market import X_MARKET, X_NAMES

_FIELDS = ("ts", "event_ts", "trade_id", "price", "qty", "m", "x", "agg")


class _SymbolBook:
    def __init__(self):
        self.chunks: list[tuple[np.ndarray, ...]] = []
        self.cache: dict[str, np.ndarray] | None = None

    def append(self, cols: tuple[np.ndarray, ...]) -> None:
        self.chunks.append(cols)
        self.cache = None

    def arrays(self) -> dict[str, np.ndarray]:
        if self.cache is None:
            if self.chunks:
                joined = [np.concatenate(c) for c in zip(*self.chunks)]
                self.chunks = [tuple(joined)]
            else:
                joined = [np.empty(0, dtype=np.int64)] * len(_FIELDS)
            self.cache = dict(zip(_FIELDS, joined))
        return self.cache

    def trim(self, min_ts: int) -> None:
        a = self.arrays()
        keep = a["ts"] >= min_ts
        if not keep.all():
            self.chunks = [tuple(a[f][keep] for f in _FIELDS)]
            self.cache = None


class Ledger:
    """Every published trade, per symbol, in id order (market and non-market)."""

    def __init__(self, retention_ms: int | None = None):
        self.retention_ms = retention_ms
        self.books: dict[str, _SymbolBook] = {}

    def append(self, symbol: str, ts, event_ts, trade_id, price, qty, m, x, agg) -> None:
        """Record published trades of one symbol (arrays of equal length, id order)."""
        book = self.books.setdefault(symbol, _SymbolBook())
        book.append((np.asarray(ts, np.int64), np.asarray(event_ts, np.int64),
                     np.asarray(trade_id, np.int64), np.asarray(price, np.float64),
                     np.asarray(qty, np.float64), np.asarray(m, np.int8),
                     np.asarray(x, np.int8), np.asarray(agg, np.int64)))
        if self.retention_ms is not None and len(book.chunks) % 200 == 0:
            book.trim(int(book.arrays()["ts"][-1]) - self.retention_ms)

    def arrays(self, symbol: str) -> dict[str, np.ndarray]:
        """Column arrays of one symbol (empty arrays for an unknown symbol)."""
        book = self.books.get(symbol)
        return book.arrays() if book else _SymbolBook().arrays()

    def frame(self, symbol: str | None = None, *, market_only: bool = False) -> pd.DataFrame:
        """The ledger as a DataFrame: symbol, ts, event_ts, trade_id, price, qty,
        is_buyer_maker, type (MARKET / NA / INSURANCE_FUND), agg_id."""
        symbols = [symbol] if symbol else sorted(self.books)
        parts = []
        for s in symbols:
            a = self.arrays(s)
            df = pd.DataFrame({"symbol": s, "ts": a["ts"], "event_ts": a["event_ts"],
                               "trade_id": a["trade_id"], "price": a["price"], "qty": a["qty"],
                               "is_buyer_maker": a["m"].astype(np.int8),
                               "type": np.asarray(X_NAMES, dtype=object)[a["x"].astype(np.int64)],
                               "agg_id": a["agg"]})
            if market_only:
                df = df[a["x"] == X_MARKET]
            parts.append(df)
        if not parts:
            return pd.DataFrame(columns=["symbol", "ts", "event_ts", "trade_id", "price", "qty",
                                         "is_buyer_maker", "type", "agg_id"])
        return pd.concat(parts, ignore_index=True)

    def market_ticks(self, symbol: str | None = None, source: str = "") -> pd.DataFrame:
        """The MARKET trades as a canonical tick batch (what a lossless consumer must store)."""
        df = self.frame(symbol, market_only=True)
        return tick_frame(df["symbol"].to_numpy(object), df["ts"], df["trade_id"], df["price"],
                          df["qty"], df["is_buyer_maker"], source)

    def aggregates(self, symbol: str) -> pd.DataFrame:
        """MARKET trades aggregated per taker order (Binance aggTrades): agg_id, price, qty,
        first_id, last_id, ts, is_buyer_maker; ascending agg_id."""
        a = self.arrays(symbol)
        mk = (a["x"] == X_MARKET) & (a["agg"] >= 0)
        agg = a["agg"][mk]
        if len(agg) == 0:
            return pd.DataFrame({c: np.empty(0, np.int64) for c in
                                 ("agg_id", "price", "qty", "first_id", "last_id", "ts",
                                  "is_buyer_maker")})
        starts = np.r_[0, np.flatnonzero(np.diff(agg)) + 1]
        ends = np.r_[starts[1:], len(agg)]
        ids = a["trade_id"][mk]
        qty = np.add.reduceat(a["qty"][mk], starts)
        return pd.DataFrame({"agg_id": agg[starts], "price": a["price"][mk][starts],
                             "qty": qty, "first_id": ids[starts], "last_id": ids[ends - 1],
                             "ts": a["ts"][mk][starts], "is_buyer_maker": a["m"][mk][starts]})

    def summary(self, symbols: list[str]) -> dict:
        """Per symbol: MARKET trade count, first/last id, id sum and total qty (bench checks)."""
        out = {}
        for s in symbols:
            a = self.arrays(s)
            mk = a["x"] == X_MARKET
            ids = a["trade_id"][mk]
            out[s] = {"market": int(mk.sum()), "all": int(len(a["x"])),
                      "first_id": int(ids[0]) if len(ids) else None,
                      "last_id": int(ids[-1]) if len(ids) else None,
                      "id_sum": int(ids.sum()), "qty_sum": float(a["qty"][mk].sum())}
        return out

    def __len__(self) -> int:
        return sum(len(self.arrays(s)["ts"]) for s in self.books)
