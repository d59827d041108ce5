"""When live rules are evaluated: once per closed bar of the pair, never on the forming one.

A rule added while a bar forms first sees that bar when it closes: the live dot on the chart
(the forming bar's z) can sit beyond a rule's level for up to a whole bar before the rule sees a
closed value there. :func:`next_evaluation_ms` is the time of that first evaluation, and
:func:`evaluation_note` says it in words where a rule is added.
"""

from __future__ import annotations

import pandas as pd


def next_evaluation_ms(now_ms: int, timeframe_ms: int, tolerance_ms: int = 0) -> int:
    """Epoch ms UTC at which the rules next run: the close of the bar forming at ``now_ms``
    (bars open at whole multiples of ``timeframe_ms`` since the epoch) plus ``tolerance_ms``,
    the late-trade allowance the live session waits before it calls a bar final."""
    return (int(now_ms) // int(timeframe_ms) + 1) * int(timeframe_ms) + int(tolerance_ms)


def evaluation_note(timeframe: str, next_ms: int) -> str:
    """One line for the rule editor: rules see closed ``timeframe`` bars, next at ``next_ms``."""
    at = pd.Timestamp(int(next_ms), unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
    return (f"rules see closed {timeframe} bars, not the forming one (the chart's live dot): "
            f"next evaluation at {at}, when the bar forming now closes")
