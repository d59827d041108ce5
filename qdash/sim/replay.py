"""Replay of recorded ticks by the simulated exchange, in place of its market model.

The ticks (a tick DataFrame, or a path any qdash reader accepts) play in trade order at
``speed`` × real time (0 = as fast as possible, 5,000 ticks a step). Wall times are
``time.monotonic()`` seconds; tick times int64 ms UTC.

What is published is a valid Binance trade stream, whatever the file holds:

* Trade ids: the recorded ones where the file has them; a capture without ids (a browser
  collector's: ids <= 0) is numbered 1, 2, ... per symbol in file order. The accounts' own
  fills are trades of the exchange too: each takes the ids right after the last published
  trade of its symbol, and every later recorded trade is published that many ids higher, so ids
  stay unique, increasing and gap-free (a recorded id is published as itself until the first
  fill). Aggregate ids likewise: one per recorded trade (its id) and one per fill.
* Sides: the recorded ``is_buyer_maker`` where known, else the tick rule (an uptick is a
  buyer's trade, a downtick a seller's, a zero tick keeps the previous direction; a symbol's
  first trade without one counts as a buyer's).
* Time: the replay's clock (:attr:`Replay.clock_ms`) is the time of the last recorded trade
  published (the first one's before any); fills are stamped with it.
* Rows that are not trades (price or quantity <= 0) are left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FAST_STEP = 5000  # ticks a publishing step when speed is 0


def tick_rule(price: np.ndarray) -> np.ndarray:
    """``is_buyer_maker`` (int8, 1 = a seller's trade) of one symbol's trades in trade order by
    the tick rule (module doc)."""
    step = np.sign(np.diff(price, prepend=price[:1] if len(price) else price))
    s = pd.Series(np.where(step == 0, np.nan, step)).ffill().fillna(1.0).to_numpy()
    return (s < 0).astype(np.int8)


def load_replay(replay, symbols: list[str] | None) -> pd.DataFrame:
    """The trades of ``replay`` (frame or file), only ``symbols`` when given, sorted by time,
    symbol and trade id, with valid ids and sides (module doc)."""
    if isinstance(replay, pd.DataFrame):
        df = replay
    else:
        from ..io import read_ticks
        df = read_ticks(replay)
    df = df.reset_index(drop=True)
    if symbols:
        df = df[df["symbol"].isin([s.upper() for s in symbols])]
    df = df[(df["price"] > 0) & (df["qty"] > 0)]
    ids_known = bool(len(df)) and bool((df["trade_id"] > 0).all())
    order = ["ts", "symbol", "trade_id"] if ids_known else ["ts", "symbol"]
    df = df.sort_values(order, kind="stable", ignore_index=True)
    by = df.groupby("symbol", sort=False)
    if not ids_known:
        df["trade_id"] = by.cumcount().astype(np.int64) + 1
    side = df["is_buyer_maker"].to_numpy(np.int8).copy()
    unknown = side < 0
    if unknown.any():
        for idx in by.indices.values():
            side[idx] = np.where(unknown[idx], tick_rule(df["price"].to_numpy()[idx]),
                                 side[idx])
        df["is_buyer_maker"] = side
    return df


class Replay:
    """Where a replay stands: the ticks played so far, the clock that makes the rest due, and
    the ids the accounts' fills took per symbol (module doc)."""

    def __init__(self, ticks: pd.DataFrame, speed: float):
        self.ticks, self.speed = ticks, speed
        self.pos = 0  # ticks[:pos] are published
        self._ts = ticks["ts"].to_numpy()
        self._base_ms = int(self._ts[0]) if len(ticks) else 0  # tick time at _base_wall
        self._base_wall = 0.0
        self.clock_ms = self._base_ms
        codes, names = pd.factorize(ticks["symbol"])
        self._sym, self._code = codes.astype(np.int64), {s: i for i, s in enumerate(names)}
        self._ids = ticks["trade_id"].to_numpy(np.int64)
        self._fills = np.zeros(len(names), np.int64)  # fill trades published so far
        self._aggs = np.zeros(len(names), np.int64)   # fill aggregates published so far
        self._last = np.zeros(len(names), np.int64)   # last published trade id
        self._last_agg = np.zeros(len(names), np.int64)

    @property
    def done(self) -> bool:
        return self.pos >= len(self.ticks)

    def restart(self, wall: float) -> None:
        """Play on from the next tick at wall time ``wall`` (start, or resume after a pause:
        the paused interval is skipped)."""
        self._base_wall = wall
        if not self.done:
            self._base_ms = int(self._ts[self.pos])

    def due(self, wall: float) -> pd.DataFrame | None:
        """The ticks due at wall time ``wall`` and not yet played (now counted as played),
        with the ids they are published with: ``trade_id`` and ``agg``."""
        if self.done:
            return None
        if self.speed <= 0:
            end = min(self.pos + FAST_STEP, len(self.ticks))
        else:
            due_ms = self._base_ms + (wall - self._base_wall) * 1000.0 * self.speed
            end = int(np.searchsorted(self._ts, due_ms, side="right"))
        if end <= self.pos:
            return None
        sym, ids = self._sym[self.pos:end], self._ids[self.pos:end]
        part = self.ticks.iloc[self.pos:end].copy()
        part["trade_id"] = ids + self._fills[sym]
        part["agg"] = ids + self._aggs[sym]
        for c in np.unique(sym).tolist():
            j = int(np.flatnonzero(sym == c)[-1])
            self._last[c] = part["trade_id"].iat[j]
            self._last_agg[c] = part["agg"].iat[j]
        self.pos = end
        self.clock_ms = int(self._ts[end - 1])
        return part

    def fill_ids(self, symbol: str, n: int) -> tuple[np.ndarray, int]:
        """The trade ids (``n``) and the aggregate id of one fill of ``symbol`` published now."""
        c = self._code.get(symbol)
        if c is None:  # a symbol the file does not trade: ids of its own
            c = self._code[symbol] = len(self._fills)
            self._fills, self._aggs, self._last, self._last_agg = (
                np.append(a, 0) for a in (self._fills, self._aggs, self._last, self._last_agg))
        first = int(self._last[c]) + 1
        self._fills[c] += n
        self._aggs[c] += 1
        self._last[c] += n
        self._last_agg[c] += 1
        return np.arange(first, first + n, dtype=np.int64), int(self._last_agg[c])
