"""The deterministic past of the simulated exchange: klines, funding, mark/index prices, trades.

Every symbol of the exchange is described by a :class:`~qdash.sim.universe.UniverseSymbol`
(built-in symbols get one from :data:`~qdash.sim.market.KNOWN_SYMBOLS`) and its history is
generated on demand by :mod:`qdash.sim.universe`, so any window is reproducible and nothing is
stored. The past ends at ``end_ms`` (a minute boundary, the exchange's start); bars are truncated
there and the live ledger continues them.

* **Funding** every 8 h (00:00, 08:00, 16:00 UTC). A premium ``P_k`` per funding interval is a
  finite moving average (16 taps, decay 0.75) of fat-tailed innovations (a normal times a
  lognormal scale) around +2e-4; the rate follows Binance's formula
  ``F = P + clamp(I − P, −0.05 %, +0.05 %)`` with interest ``I = 0.01 %`` (so most rates are
  exactly 0.0001), clamped to ±``funding_cap``.
* **Premium index** per minute: ``p(t) = P_k + 2e-4·u(t)`` (u uniform in [−1, 1]); **index
  price** ``close / (1 + p)``; **mark price** ``index · (1 + P_k)``. Their 1-minute klines
  aggregate like trade klines.
* **Trades** of a past day expand its 1-minute klines exactly: per minute ``trades`` trades, the
  first at the open, the last at the close, one at the high and one at the low, quantities (whole
  lot steps) adding up to the volume and the taker-buy quantities to the taker-buy volume; the
  quote volume matches to rounding (prices sit on ticks). Trade ids of day ``d`` are
  ``d·10^7 + k``; aggregate trades group consecutive fills of one price, side and millisecond.

Times are int64 ms UTC; symbols upper case.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .universe import (
    DAY_MS,
    MINUTE_MS,
    UniverseSymbol,
    _generator,
    _key,
    aggregate_klines,
    decimals,
    interval_close,
    interval_open,
    universe_klines,
)

FUNDING_MS = 8 * 3_600_000
INTEREST = 0.0001
IDS_PER_DAY = 10_000_000
_FUNDING_TAPS = 16
_FUNDING_BLOCK = 1024
_STREAM_FUNDING, _STREAM_PREMIUM, _STREAM_TRADES = 3, 4, 5
_SUMS = ("volume", "quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume")


@dataclass(frozen=True)
class Instrument:
    """A symbol of the exchange: its universe description, tick size and lot step (powers of
    ten) and funding cap (a fraction per interval)."""

    sym: UniverseSymbol
    tick: float
    step: float
    funding_cap: float = 0.02

    @property
    def symbol(self) -> str:
        return self.sym.symbol

    @property
    def price_decimals(self) -> int:
        return decimals(self.tick)

    @property
    def qty_decimals(self) -> int:
        return decimals(self.step)


class Past:
    """History of ``instruments`` before ``end_ms`` (rounded down to a minute), for ``seed``."""

    def __init__(self, instruments: list[Instrument], end_ms: int, seed: int = 0):
        self.instruments = {i.symbol: i for i in instruments}
        self.end_ms = int(end_ms) // MINUTE_MS * MINUTE_MS
        self.seed = seed
        self._days: OrderedDict[tuple[str, int], dict] = OrderedDict()

    def first_ms(self, symbol: str) -> int:
        """Open time of the first 1-minute bar (the listing)."""
        return self.instruments[symbol].sym.onboard_ms

    # --- klines ----------------------------------------------------------------------------
    def _klines(self, symbol: str, interval: str, start: int, end: int) -> dict[str, np.ndarray]:
        ins = self.instruments[symbol]
        df = universe_klines([ins.sym], interval, start, end, self.seed,
                             steps={symbol: (ins.tick, ins.step)})
        return {c: df[c].to_numpy() for c in df.columns if c != "symbol"}

    def day_minutes(self, symbol: str, day: int) -> dict[str, np.ndarray]:
        """1-minute bars of one UTC day (before ``end_ms``), cached (LRU)."""
        k = (symbol, day)
        bars = self._days.get(k)
        if bars is None:
            bars = self._klines(symbol, "1m", day * DAY_MS, min((day + 1) * DAY_MS, self.end_ms))
            self._days[k] = bars
            if len(self._days) > 4 * len(self.instruments) + 16:
                self._days.popitem(last=False)
        else:
            self._days.move_to_end(k)
        return bars

    def klines(self, symbol: str, interval: str, start: int, end: int) -> dict[str, np.ndarray]:
        """Trade klines with open_time in [start, end) and before ``end_ms``; the bar holding
        ``end_ms`` aggregates only its minutes before ``end_ms``."""
        end = min(end, self.end_ms)
        if end <= start:
            return empty_bars()
        cut = interval_open(self.end_ms, interval)
        parts = [self._klines(symbol, interval, start, min(end, cut))]
        if cut < self.end_ms and start <= cut < end:
            parts.append(aggregate_klines(self._klines(symbol, "1m", cut, self.end_ms), interval))
        return _concat(parts)

    def minutes(self, symbol: str, start: int, end: int) -> dict[str, np.ndarray]:
        """1-minute klines with open_time in [start, min(end, end_ms))."""
        return self.klines(symbol, "1m", start, end)

    # --- funding and premium ---------------------------------------------------------------
    def premium_per_interval(self, symbol: str, k0: int, k1: int) -> np.ndarray:
        """Premium ``P_k`` of funding intervals k0..k1 (interval k ends at ``k·8h``)."""
        key = _key(self.seed, symbol)
        lo = k0 - _FUNDING_TAPS + 1
        blocks = range(lo // _FUNDING_BLOCK, k1 // _FUNDING_BLOCK + 1)
        draws = []
        for b in blocks:
            g = _generator(key, _STREAM_FUNDING, b)
            draws.append(g.standard_normal(_FUNDING_BLOCK) * np.exp(
                0.9 * g.standard_normal(_FUNDING_BLOCK)))
        e = np.concatenate(draws)[lo - blocks[0] * _FUNDING_BLOCK: k1 - blocks[0] *
                                  _FUNDING_BLOCK + 1]
        w = 0.75 ** np.arange(_FUNDING_TAPS - 1, -1, -1, dtype=np.float64)
        win = np.lib.stride_tricks.sliding_window_view(e, _FUNDING_TAPS)
        scale = 1.2e-4 * (1.0 + 2.0 * (self.instruments[symbol].sym.quote_volume_per_day
                                       < 1e8))
        return 2e-4 + (win * w).sum(axis=1) * scale

    def funding(self, symbol: str, start: int, end: int) -> pd.DataFrame:
        """Funding events with fundingTime in [start, end] (after the listing):
        ``funding_time, funding_rate`` (rounded to 8 decimals) ``, premium``."""
        ins = self.instruments[symbol]
        start = max(start, ins.sym.onboard_ms + 1)
        k0, k1 = -(-start // FUNDING_MS), end // FUNDING_MS
        if k1 < k0:
            return pd.DataFrame({"funding_time": np.empty(0, np.int64),
                                 "funding_rate": np.empty(0), "premium": np.empty(0)})
        prem = self.premium_per_interval(symbol, k0, k1)
        rate = prem + np.clip(INTEREST - prem, -0.0005, 0.0005)
        rate = np.round(np.clip(rate, -ins.funding_cap, ins.funding_cap), 8)
        return pd.DataFrame({"funding_time": np.arange(k0, k1 + 1, dtype=np.int64) * FUNDING_MS,
                             "funding_rate": rate, "premium": prem})

    def premium_at(self, symbol: str, open_time: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P of the funding interval, p(t), (2, n) uniforms for the premium's high and low)
        for minutes opening at ``open_time``."""
        t = np.asarray(open_time, dtype=np.int64)
        k = t // FUNDING_MS + 1  # the interval ends at the next funding time
        if len(t) == 0:
            return np.empty(0), np.empty(0), np.empty((2, 0))
        slow = self.premium_per_interval(symbol, int(k.min()), int(k.max()))[k - k.min()]
        key = _key(self.seed, symbol)
        day = t // DAY_MS
        u = np.empty((3, len(t)))
        for d in np.unique(day):
            block = _generator(key, _STREAM_PREMIUM, int(d)).random(3 * 1440).reshape(3, 1440)
            sel = day == d
            u[:, sel] = block[:, (t[sel] - d * DAY_MS) // MINUTE_MS]
        return slow, slow + 2e-4 * (2.0 * u[0] - 1.0), u[1:]

    def derived_minutes(self, symbol: str, bars: dict[str, np.ndarray], kind: str
                        ) -> dict[str, np.ndarray]:
        """Mark, index or premium 1-minute klines from trade 1-minute ``bars`` (volumes 0,
        ``trades`` = 60 updates a minute, as Binance's 1 s mark price)."""
        t = bars["open_time"]
        slow, p, u = self.premium_at(symbol, t)
        ins = self.instruments[symbol]
        out = {"open_time": t}
        for c in ("open", "high", "low", "close"):
            x = np.asarray(bars[c], dtype=np.float64)
            if kind == "index":
                out[c] = np.round(x / (1.0 + p), 8)
            elif kind == "mark":
                out[c] = np.round(np.round(x / (1.0 + p) * (1.0 + slow) / ins.tick) * ins.tick,
                                  ins.price_decimals)
            else:
                out[c] = np.round(p, 8)
        if kind == "premium":
            out["high"] = np.round(p + 5e-5 * u[0], 8)
            out["low"] = np.round(p - 5e-5 * u[1], 8)
        zero = np.zeros(len(t))
        out.update(volume=zero, quote_volume=zero, trades=np.full(len(t), 60, np.int64),
                   taker_buy_volume=zero, taker_buy_quote_volume=zero)
        return out

    # --- trades ----------------------------------------------------------------------------
    def trades(self, symbol: str, day: int) -> pd.DataFrame:
        """Trades of one UTC day before ``end_ms``: ``id, price, qty, quote_qty, time,
        is_buyer_maker, agg_id`` in id (= time) order; see the module doc."""
        ins = self.instruments[symbol]
        bars = self.day_minutes(symbol, day)
        n = bars["trades"].astype(np.int64)
        total = int(n.sum())
        if total == 0:
            return _empty_trades()
        g = _generator(_key(self.seed, symbol), _STREAM_TRADES, day)
        minute = np.repeat(np.arange(len(n)), n)
        starts = np.r_[0, np.cumsum(n)[:-1]]
        pos = np.arange(total) - starts[minute]
        last = pos == n[minute] - 1
        scale = 10.0 ** ins.price_decimals
        o, h, lo, c = (bars[k][minute] for k in ("open", "high", "low", "close"))
        # prices: open, then the high and the low at two interior positions, close last
        sticky = g.random(total) < 0.5
        u = g.random(total)
        price = np.rint((lo + u * (h - lo)) * scale) / scale
        price = np.where(sticky & (pos > 0), np.nan, price)
        price = pd.Series(price).ffill().to_numpy()
        hi_pos = 1 + (g.random(len(n)) * (n - 2)).astype(np.int64)
        lo_pos = 1 + (hi_pos - 1 + 1 + (g.random(len(n)) * (n - 3)).astype(np.int64)) % (n - 2)
        price = np.where(pos == hi_pos[minute], h, price)
        price = np.where(pos == lo_pos[minute], lo, price)
        price = np.where(pos == 0, o, price)
        price = np.where(last, c, price)
        # sides: nb buys per minute, feasible for whole-step quantities
        step = ins.step
        vol = np.rint(bars["volume"] / step).astype(np.int64)
        buy = np.rint(bars["taker_buy_volume"] / step).astype(np.int64)
        nb = np.where(buy == 0, 0, np.where(buy == vol, n, np.clip(
            np.rint(n * buy / np.maximum(vol, 1)), np.maximum(1, n - (vol - buy)),
            np.minimum(n - 1, buy)))).astype(np.int64)
        order = np.lexsort((g.random(total), minute))
        rank = np.empty(total, np.int64)
        rank[order] = np.arange(total) - starts[minute[order]]
        is_buy = rank < nb[minute]
        # quantities: one step each, the rest spread by random weights, remainder on one fill
        w = g.random(total) + 0.05
        grp = minute * 2 + is_buy
        wsum = np.bincount(grp, w, minlength=2 * len(n))
        cnt = np.bincount(grp, minlength=2 * len(n))
        need = np.zeros(2 * len(n), np.int64)
        need[1::2], need[0::2] = buy, vol - buy
        spare = need - cnt
        q = 1 + np.floor(spare[grp] * w / wsum[grp]).astype(np.int64)
        left = need - np.bincount(grp, q, minlength=2 * len(n))
        first_of = np.full(2 * len(n), -1, np.int64)
        first_of[grp[::-1]] = np.arange(total)[::-1]
        has = first_of >= 0
        np.add.at(q, first_of[has], left[has])
        qdec = ins.qty_decimals
        qty = np.round(q * step, qdec) if step < 1 else q * step
        # times: sorted within the minute; half of the fills share the previous fill's ms
        r = g.random(total)
        off = np.floor(r[np.lexsort((r, minute))] * MINUTE_MS)
        off = np.where((g.random(total) < 0.5) & (pos > 0), np.nan, off)
        off = pd.Series(off).ffill().to_numpy().astype(np.int64)
        ts = bars["open_time"][minute] + off
        ids = day * IDS_PER_DAY + np.arange(total, dtype=np.int64)
        maker = ~is_buy
        newagg = np.r_[True, (np.diff(price) != 0) | (np.diff(ts) != 0) |
                       (np.diff(maker.astype(np.int8)) != 0)]
        agg = day * IDS_PER_DAY + np.cumsum(newagg) - 1
        return pd.DataFrame({"id": ids, "price": price, "qty": qty,
                             "quote_qty": np.round(price * qty, 8), "time": ts,
                             "is_buyer_maker": maker, "agg_id": agg})

    def agg_trades(self, symbol: str, day: int) -> pd.DataFrame:
        """Aggregate trades of a past day, as :meth:`~qdash.sim.ledger.Ledger.aggregates`:
        ``agg_id, price, qty, first_id, last_id, ts, is_buyer_maker``."""
        return aggregate_trades(self.trades(symbol, day))


def aggregate_trades(tr: pd.DataFrame) -> pd.DataFrame:
    """Group trades (as :meth:`Past.trades`) by ``agg_id``."""
    if len(tr) == 0:
        return pd.DataFrame({c: np.empty(0, np.int64) for c in
                             ("agg_id", "price", "qty", "first_id", "last_id", "ts",
                              "is_buyer_maker")})
    a = tr["agg_id"].to_numpy()
    starts = np.r_[0, np.flatnonzero(np.diff(a)) + 1]
    ends = np.r_[starts[1:], len(a)] - 1
    ids = tr["id"].to_numpy()
    return pd.DataFrame({"agg_id": a[starts], "price": tr["price"].to_numpy()[starts],
                         "qty": np.add.reduceat(tr["qty"].to_numpy(), starts),
                         "first_id": ids[starts], "last_id": ids[ends],
                         "ts": tr["time"].to_numpy()[starts],
                         "is_buyer_maker": tr["is_buyer_maker"].to_numpy()[starts].astype(np.int8)})


def _empty_trades() -> pd.DataFrame:
    return pd.DataFrame({"id": np.empty(0, np.int64), "price": np.empty(0), "qty": np.empty(0),
                         "quote_qty": np.empty(0), "time": np.empty(0, np.int64),
                         "is_buyer_maker": np.empty(0, bool), "agg_id": np.empty(0, np.int64)})


def empty_bars() -> dict[str, np.ndarray]:
    """A bar table with no rows."""
    out = {c: np.empty(0) for c in ("open", "high", "low", "close") + _SUMS}
    out["open_time"] = np.empty(0, np.int64)
    out["trades"] = np.empty(0, np.int64)
    return out


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    parts = [p for p in parts if len(p["open_time"])]
    if not parts:
        return empty_bars()
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def merge_bars(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Bars of ``a`` then ``b`` (both ascending, ``a`` earlier); a bar open in both is combined
    (open of ``a``, close of ``b``, max/min, sums)."""
    if len(a["open_time"]) and len(b["open_time"]) and a["open_time"][-1] == b["open_time"][0]:
        j = {k: v[-1] for k, v in a.items()}
        first = {k: v[0] for k, v in b.items()}
        j["high"] = max(j["high"], first["high"])
        j["low"] = min(j["low"], first["low"])
        j["close"] = first["close"]
        for k in _SUMS:
            j[k] = j[k] + first[k]
        a = {k: np.r_[v[:-1], [j[k]]] for k, v in a.items()}
        b = {k: v[1:] for k, v in b.items()}
    return _concat([a, b])


def bar_close_times(open_time: np.ndarray, interval: str) -> np.ndarray:
    """Binance close times (next open − 1 ms) of bars opening at ``open_time``."""
    return interval_close(np.asarray(open_time, dtype=np.int64), interval)


def funding_grid(start: int, end: int) -> np.ndarray:
    """Funding times (every 8 h from the epoch) in [start, end]."""
    return np.arange(-(-start // FUNDING_MS), end // FUNDING_MS + 1, dtype=np.int64) * FUNDING_MS


def price_str(x: float, dec: int) -> str:
    """A price or quantity as Binance prints it (fixed decimals)."""
    return f"{x:.{dec}f}" if math.isfinite(x) else "0"
