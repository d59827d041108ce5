"""The Book tab's model: a book run (:class:`~qdash.book.result.BookResult`) read against live
closes — no widgets, plain frames out.

For the latest trade window's pairs (``windows`` rows with the last ``window_start``):

* **live z**: THE signal (:func:`qdash.analytics.compute_signal`, the run's hedge and windows,
  :func:`signal_spec_of`) on the closes the live scanner's kline streams hold
  (:meth:`qdash.scan.live.LiveScanner.closes`): the z of the last closed bar;
* **side**: what the book's rule (:func:`rule_side`, the backtest kernel's levels: enter at
  ``|z| >= entry`` below ``stop``, leave at ``exit`` or ``stop``) makes of that z from the side the
  book holds in the pair (its open round trip in ``trades``, else flat);
* **target per leg** (:func:`leg_targets`): the pair's gross ``weight × leverage × equity`` split
  as the book sizes an entry (:mod:`qdash.book.kernel`, before its net and gross caps scale it):
  y holds ``gross / (1 + |β|)``, x ``-β`` times y's notional, signed by the side (> 0 long,
  USDT);
* **held per leg**: the net notional the book holds in the leg's symbol at its last bar
  (``positions``, summed over every pair the symbol sits in), marked to the live close.

Per symbol: the net target (summed over the pairs) against the net held, the **order** that
moves the live holding to the target (``target - held_live``, USDT, > 0 buy: one netted order
per symbol, as the book trades; :mod:`qdash.book.kernel`), and the margin ratio
(maintenance margin / margin balance) at the book's last bar and marked to the live closes
(:func:`margin_now`: the first bracket's flat rate, so maintenance margin scales with gross).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..analytics import SignalSpec, compute_signal
from ..defaults import DEFAULT_TIMEFRAME
from ..errors import AnalyticsError, QdashError
from ..model import timeframe_ms

if TYPE_CHECKING:
    from ..book.result import BookResult

Closes = Callable[[str], pd.Series]
PAIR_COLUMNS = ("y", "x", "beta", "half_life", "weight", "z", "held_side", "side", "target_y",
                "target_x", "held_y", "held_x")
SYMBOL_COLUMNS = ("symbol", "target", "held", "held_live", "order", "price_move")


def signal_spec_of(spec: dict) -> SignalSpec:
    """The signal a book run traded: ``spec["signal"]`` (the fields of :class:`SignalSpec`, as
    :func:`qdash.book` records them), else :func:`qdash.backtest.engine.spec_of` of the run's
    ``hedge``, ``window`` (β and z window, bars) and ``timeframe``."""
    from ..backtest.engine import spec_of

    if isinstance(spec.get("signal"), dict):
        return SignalSpec(**spec["signal"])
    window = spec.get("window")
    return spec_of(None, hedge=spec.get("hedge"), window=int(window) if window else None,
                   bar_ms=timeframe_ms(spec.get("timeframe") or DEFAULT_TIMEFRAME))


def latest_window(windows: pd.DataFrame) -> pd.DataFrame:
    """The rows of the latest trade window (the last ``window_start``)."""
    if windows.empty:
        return windows.copy()
    return windows[windows["window_start"] == windows["window_start"].max()].reset_index(drop=True)


def held_sides(trades: pd.DataFrame) -> dict[tuple[str, str], int]:
    """``(y, x) → side`` of every round trip still open (no ``exit_time``)."""
    open_ = trades[trades["exit_time"].isna()]
    return {(y, x): int(s) for y, x, s in zip(open_["y"], open_["x"], open_["side"])}


def rule_side(z: float, held: int, entry: float, exit: float, stop: float) -> int:
    """The side the book's rule wants at ``z`` from ``held`` (+1 long spread, -1 short, 0 flat):
    flat → short at ``entry <= z < stop``, long at ``-stop < z <= -entry`` (the entry of
    :func:`qdash.backtest.kernel.simulate`); in a position → flat where THE exit rule
    (:func:`qdash.backtest.kernel.exit_reason`: stop or exit level) says so. An undefined z
    changes nothing."""
    from ..backtest.kernel import exit_reason

    if not math.isfinite(z):
        return held
    if held == 0:
        if entry <= z < stop:
            return -1
        return 1 if -stop < z <= -entry else 0
    return 0 if exit_reason(held, z, stop, exit) else held


def leg_targets(side: int, beta: float, weight: float, leverage: float, equity: float
                ) -> tuple[float, float]:
    """(y, x) target notionals in USDT of a pair with ``side`` and log-price ``beta``: gross
    ``weight × leverage × equity``, y ``side × gross / (1 + |β|)``, x ``-β`` times y's."""
    y = side * weight * leverage * equity / (1.0 + abs(beta))
    return y + 0.0, -beta * y + 0.0


def live_z(closes_y: pd.Series, closes_x: pd.Series, spec: SignalSpec, tf_ms: int) -> float:
    """The signal's z of the last closed bar of both legs (NaN while the windows are not full or
    a leg has no closes)."""
    if len(closes_y) < 2 or len(closes_x) < 2:
        return math.nan
    try:
        z = compute_signal(closes_y, closes_x, spec, timeframe_ms=tf_ms)["zscore"]
    except AnalyticsError:
        return math.nan
    return float(z.iloc[-1])


def last_positions(positions: pd.DataFrame) -> pd.Series:
    """Net notional per symbol at the book's last change (``positions``' last row per symbol)."""
    if positions.empty:
        return pd.Series(dtype=float)
    last = positions.sort_values("open_time", kind="stable").groupby("symbol").last()
    return last["notional"].astype(float)


def price_moves(symbols, closes: Closes, at: pd.Timestamp | None) -> pd.Series:
    """Live close / close of the bar at ``at`` per symbol (1 where either is unknown)."""
    out = {}
    for s in symbols:
        c = closes(s)
        then = c.asof(at) if at is not None and len(c) else math.nan
        now = float(c.iloc[-1]) if len(c) else math.nan
        out[s] = now / then if then and math.isfinite(then) and math.isfinite(now) else 1.0
    return pd.Series(out, dtype=float)


def margin_now(equity_row: pd.Series, held: pd.Series, held_live: pd.Series) -> dict[str, float]:
    """The book's margin at its last bar and marked to the live closes: ``equity``, ``gross``,
    ``margin_ratio`` there; ``equity_live`` (plus the held positions' price change),
    ``gross_live`` and ``margin_ratio_live`` (maintenance margin scaled by the held gross's
    change, over the live margin balance)."""
    equity, gross = float(equity_row["equity"]), float(equity_row["gross_exposure"])
    ratio = float(equity_row["margin_ratio"])
    equity_live = equity + float((held_live - held).sum())
    gross_held, gross_live = float(held.abs().sum()), float(held_live.abs().sum())
    maint = ratio * equity * (gross_live / gross_held if gross_held > 0 else 0.0)
    return {"equity": equity, "gross": gross, "margin_ratio": ratio, "equity_live": equity_live,
            "gross_live": gross_live,
            "margin_ratio_live": maint / equity_live if equity_live > 0 else math.inf}


class BookModel:
    """A book run and the live reading of its latest window (see the module docstring).

    ``book``: a :class:`~qdash.book.result.BookResult`, or the ``--out`` directory of a
    ``qdash book`` run (:func:`qdash.book.files.read_book`)."""

    def __init__(self, book: BookResult | str | Path):
        if isinstance(book, str | Path):
            from ..book.files import read_book

            book = read_book(book)
        self.result = book
        spec = book.spec
        self.timeframe = spec.get("timeframe") or DEFAULT_TIMEFRAME
        self.tf_ms = timeframe_ms(self.timeframe)
        self.signal = signal_spec_of(spec)
        self.levels = tuple(float(spec.get(k, d)) for k, d in
                            (("entry", 2.0), ("exit", 0.0), ("stop", 4.0)))
        self.leverage = float(spec.get("leverage", 1.0))
        self.latest = latest_window(book.windows)
        if book.equity.empty:
            raise QdashError("book: the run has no equity rows")
        self.last_bar = book.equity.iloc[-1]

    def symbols(self) -> list[str]:
        """The legs of the latest window's pairs and every symbol the book holds, sorted."""
        held = last_positions(self.result.positions)
        return sorted({*self.latest["y"], *self.latest["x"], *held.index[held != 0]})

    def window_bounds(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """(start, end) of the latest window; None without one."""
        if self.latest.empty:
            return None
        return self.latest["window_start"].iloc[0], self.latest["window_end"].iloc[0]

    def lookback_bars(self) -> int:
        """Bars of closes the live z needs: the signal's warm-up, twice, at least 100."""
        return max(100, 2 * self.signal.warmup_bars)

    def pairs(self, closes: Closes) -> pd.DataFrame:
        """One row per pair of the latest window (:data:`PAIR_COLUMNS`)."""
        sides = held_sides(self.result.trades)
        held = self.held(closes)
        equity = float(self.last_bar["equity"])
        rows = []
        for r in self.latest.itertuples():
            z = live_z(closes(r.y), closes(r.x), self.signal, self.tf_ms)
            was = sides.get((r.y, r.x), 0)
            side = rule_side(z, was, *self.levels)
            ty, tx = leg_targets(side, r.beta, r.weight, self.leverage, equity)
            rows.append((r.y, r.x, r.beta, r.half_life, r.weight, z, was, side, ty, tx,
                         held.get(r.y, 0.0), held.get(r.x, 0.0)))
        return pd.DataFrame(rows, columns=list(PAIR_COLUMNS))

    def held(self, closes: Closes) -> pd.Series:
        """Net held notional per symbol marked to the live closes."""
        held = last_positions(self.result.positions)
        return held * price_moves(held.index, closes, self.last_bar["open_time"])

    def exposure(self, closes: Closes, pairs: pd.DataFrame | None = None) -> pd.DataFrame:
        """Per symbol (:data:`SYMBOL_COLUMNS`): the net target summed over the pairs, the net
        held at the book's last bar, the same marked to the live close, the netted order from
        that to the target, and the price move."""
        pairs = self.pairs(closes) if pairs is None else pairs
        target = (pd.concat([pairs.set_index("y")["target_y"], pairs.set_index("x")["target_x"]])
                  .groupby(level=0).sum())
        held = last_positions(self.result.positions)
        symbols = self.symbols()
        move = price_moves(symbols, closes, self.last_bar["open_time"])
        frame = pd.DataFrame({"symbol": symbols,
                              "target": target.reindex(symbols, fill_value=0.0).to_numpy(),
                              "held": held.reindex(symbols, fill_value=0.0).to_numpy()})
        frame["price_move"] = move.reindex(symbols).to_numpy()
        frame["held_live"] = frame["held"] * frame["price_move"]
        frame["order"] = frame["target"] - frame["held_live"]
        return frame[list(SYMBOL_COLUMNS)]

    def margin(self, closes: Closes) -> dict[str, float]:
        """:func:`margin_now` at the book's last bar and at the live closes."""
        held = last_positions(self.result.positions)
        return margin_now(self.last_bar, held, self.held(closes).reindex(held.index))

    def snapshot(self, closes: Closes) -> dict:
        """Everything the tab shows: ``pairs``, ``exposure`` (frames), ``margin`` (dict)."""
        pairs = self.pairs(closes)
        return {"pairs": pairs, "exposure": self.exposure(closes, pairs),
                "margin": self.margin(closes)}


def no_closes(symbol: str) -> pd.Series:
    """The closes before anything live: none."""
    return pd.Series([], dtype=np.float64, index=pd.DatetimeIndex([], tz="UTC"), name=symbol)
