"""THE comparison operators of alert conditions, each written once, for both evaluators.

An operator is data (:class:`Operator`): the comparison of the value with the level, whether the
value is taken absolute, and, for a crossing, the comparison the previous value must pass.
From that one row come the live evaluator's generated source (:func:`live_code`: a few
hundred nanoseconds a leaf on a dict of metrics) and the history evaluator's numpy mask
(:func:`history_mask`: one pass over a column). A missing, ``None`` or NaN value makes every
comparison false in both.

Relaxed form (the re-arm test of hysteresis, see :mod:`qdash.alerts.rules`): a crossing becomes
the level test of its direction (the previous value is not consulted).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Operator:
    """``name``: the canonical name; ``compare``: how the (absolute when ``absolute``) value
    compares with the level; ``previous``: for a crossing, how the previous value compares with
    it (None: not a crossing); ``upward``: fires on large values (a reset level lies at or
    below the threshold)."""

    name: str
    compare: str
    previous: str | None = None
    absolute: bool = False

    @property
    def upward(self) -> bool:
        return self.compare.startswith(">")

    @property
    def crossing(self) -> bool:
        return self.previous is not None


_COMPARE = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}
"""The numpy function of each comparison symbol (the live code writes the symbol itself)."""

OPERATOR_TABLE: dict[str, Operator] = {op.name: op for op in (
    *(Operator(c, c) for c in _COMPARE),
    Operator("crosses_above", ">", previous="<="),
    Operator("crosses_below", "<", previous=">="),
    *(Operator("abs" + c, c, absolute=True) for c in _COMPARE),
)}
"""Every operator by canonical name: ``>``, ``>=``, ``<``, ``<=``, ``crosses_above``,
``crosses_below``, ``abs>``, ``abs>=``, ``abs<``, ``abs<=``."""

LEVEL_COMPARISONS = tuple(_COMPARE)


def live_code(op: Operator, metric: str, level: float, relaxed: bool) -> str:
    """Python source of one comparison over ``v`` (values) and ``p`` (previous values), dicts of
    metric -> number; ``metric`` must be a validated identifier and ``level`` a finite float."""
    m, t = repr(metric), repr(level)
    x = "abs(x)" if op.absolute else "x"
    code = f"(x := v.get({m})) is not None and {x} {op.compare} {t}"
    if op.crossing and not relaxed:
        code += f" and (y := p.get({m})) is not None and y {op.previous} {t}"
    return f"({code})"


def history_mask(op: Operator, x: np.ndarray, level: float, relaxed: bool) -> np.ndarray:
    """Where the comparison holds on each value of ``x`` (float64, time order; a crossing
    compares each value with the one before)."""
    now = _COMPARE[op.compare](np.abs(x) if op.absolute else x, level)
    if not op.crossing or relaxed:
        return now
    prev = np.concatenate([[np.nan], x[:-1]])
    return now & _COMPARE[op.previous](prev, level)
