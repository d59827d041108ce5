"""THE backtest's rule, one closed bar at a time: what the paper trader decides on a bar.

Nothing is decided here that the backtest does not decide: the signal is the pair's
:class:`~qdash.analytics.PairState` (the same kernel as
:func:`~qdash.analytics.signal.compute_signal`), the entry/exit/stop/time rule is
:func:`qdash.backtest.kernel.decide` (the compiled function the backtest's loop calls), and the
hedge rule is :func:`~qdash.analytics.signal.hedge_ok` against the expanding reference β
(:class:`~qdash.analytics.signal.ReferenceBeta`, the incremental form of
:func:`~qdash.analytics.signal.reference_beta`), as in
:func:`~qdash.analytics.signal.signal_hedge_ok`.

Timing, as in the backtest: a decision at bar t's close is executed at once, i.e. at bar t+1's
open. Differences from the backtest, by construction of a live trader: after a hole in the data
an open position is closed on the first bar of the new segment (the backtest, seeing the hole
ahead, closes it at the last bar before it; reason ``gap`` in both); and the rule holds the
position the exchange confirmed (:meth:`SignalRule.set_position`), not the one it asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..analytics.signal import ReferenceBeta, SignalSpec, hedge_ok
from ..backtest import kernel as K

REASON_GAP_TEXT = K.REASONS[K.REASON_GAP]


@dataclass(frozen=True)
class Decision:
    """What the rule decided at the close of bar ``bar_ms`` (open time, ms UTC): ``action``
    ``"enter"`` (``side`` +1 long spread, −1 short) or ``"exit"`` (``side`` the position left,
    ``reason`` exit/stop/time/gap); ``z``, ``beta`` and the closes the rule saw."""

    bar_ms: int
    action: str
    side: int
    reason: str
    z: float
    beta: float
    price_y: float
    price_x: float


class SignalRule:
    """The pair rule of :mod:`qdash.backtest` with ``entry``/``exit``/``stop``/``max_hold`` (z
    levels and bars, as :class:`qdash.backtest.engine.Params`), for the signal ``spec`` on bars
    of ``timeframe_ms``. Feed it every bar the pair uses, in order (:meth:`on_bar`)."""

    def __init__(self, spec: SignalSpec, timeframe_ms: int, *, entry: float = 2.0,
                 exit: float = 0.0, stop: float | None = None, max_hold: int | None = None):
        self.spec = spec
        self.tf_ms = int(timeframe_ms)
        self.entry, self.exit = float(entry), float(exit)
        self.stop = math.inf if stop is None else float(stop)
        self.max_hold = np.iinfo(np.int64).max if max_hold is None else int(max_hold)
        self._band = None if spec.estimator.kind == "given" else spec.beta_band
        self.reference = ReferenceBeta()
        self.side = 0                 # position held: +1 long spread, -1 short, 0 flat
        self.entry_bar_ms: int | None = None
        self.blocked = 0
        self.refused = {"stop": 0, "beta": 0}

    def set_position(self, side: int, entry_bar_ms: int | None = None) -> None:
        """The position the exchange holds for this pair (after fills, or a reconciliation):
        ``side`` and the signal bar of its entry (for ``max_hold``)."""
        self.side = int(side)
        self.entry_bar_ms = entry_bar_ms if side else None

    def on_bar(self, bar_ms: int, beta: float, z: float, yw: float, xw: float,
               price_y: float, price_x: float, new_segment: bool = False) -> Decision | None:
        """The decision at the close of bar ``bar_ms`` (None: nothing to do). ``beta``/``z``:
        the signal at the close; ``yw``/``xw``: the working values (log prices when the spec is
        on log prices) that feed the reference β; ``price_y``/``price_x``: the closes;
        ``new_segment``: the bar starts a segment after a hole. The rule assumes its decision
        fills (``side`` changes); :meth:`set_position` corrects it when it does not."""
        ref = self.reference.push(yw, xw)
        if new_segment:
            self.blocked = 0
            if self.side:
                return self._exit(bar_ms, REASON_GAP_TEXT, z, beta, price_y, price_x)
        ok = bool(hedge_ok(np.array([beta]), None if self._band is None else np.array([ref]),
                           self._band)[0])
        held = ((bar_ms - self.entry_bar_ms) // self.tf_ms if self.entry_bar_ms is not None
                else 0)
        action, reason, self.blocked, refused = K.decide(
            self.side, z, beta, ok, self.blocked, held, self.entry, self.exit, self.stop,
            self.max_hold)
        if refused == K.REFUSED_STOP:
            self.refused["stop"] += 1
        elif refused == K.REFUSED_BETA:
            self.refused["beta"] += 1
        if action == 2:
            if reason in (K.REASON_STOP, K.REASON_TIME):
                self.blocked = self.side
            return self._exit(bar_ms, K.REASONS[int(reason)], z, beta, price_y, price_x)
        if action:
            self.set_position(int(action), bar_ms)
            return Decision(bar_ms, "enter", int(action), "", z, beta, price_y, price_x)
        return None

    def on_state(self, state) -> Decision | None:
        """:meth:`on_bar` with the last bar of a :class:`~qdash.analytics.PairState` (call it
        after every :meth:`~qdash.analytics.PairState.update` that used a bar)."""
        last = state.frame(last=1)
        row = last.iloc[-1]
        yw, xw = float(row["y"]), float(row["x"])
        py, px = (math.exp(yw), math.exp(xw)) if self.spec.log else (yw, xw)
        return self.on_bar(int(last.index[-1].value // 1_000_000), float(row["beta"]),
                           float(row["zscore_raw"]), yw, xw, py, px,
                           bool(row["segment_bar"] == 0))

    def _exit(self, bar_ms, reason, z, beta, py, px) -> Decision:
        side = self.side
        self.set_position(0)
        return Decision(bar_ms, "exit", side, reason, z, beta, py, px)
