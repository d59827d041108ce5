"""THE defaults that depend on the bar length: one table, read by the CLI, the API and the
dashboard, so that every entry point opens on the same bars with windows that fit them.

A window is a number of bars, so a fixed count means a different span on every timeframe (120
bars: 2 minutes of 1s bars, 10 hours of 5m bars). Each row states the bar count that spans a
useful stretch of time on its timeframe:

* ``beta_window``: bars of the rolling hedge ratio. β needs days of data to separate the pair's
  relation from bar noise (errors in x bias every regression towards 0): measured on the demo
  pair, the five estimators' βs lay 70% apart with 1s/30-bar windows, 28% with 1m/1,440 (one
  day) and 1% with 15m/672 and 1h/168 (one week).
* ``z_window``: bars of the z-score's mean and deviation (here the same span as β's).
* ``scan_lookback``: the span the universe scanner tests, a timeframe string (``"30d"``): long
  enough for the cointegration tests to have power (on ``qdash sim --universe 40`` the 5m scan
  finds the 22 planted pairs over 30 days and none over 7).

This module imports nothing heavy (the CLI builds its parsers from it).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TIMEFRAME = "5m"
"""The bar length every entry point opens on: ``qdash demo``, ``qdash dashboard``,
:class:`~qdash.app.Dashboard`, ``qdash backtest`` and ``qdash scan``."""


@dataclass(frozen=True)
class TimeframeDefaults:
    """The defaults of one timeframe: windows in bars, the scan's lookback as a span."""

    timeframe: str
    beta_window: int
    z_window: int
    scan_lookback: str


def _row(timeframe: str, window: int, lookback: str) -> TimeframeDefaults:
    return TimeframeDefaults(timeframe, window, window, lookback)


TABLE: dict[str, TimeframeDefaults] = {r.timeframe: r for r in (
    _row("1s", 1_800, "1d"),       # 30 min (a live session bootstraps at most 5,000 1s bars)
    _row("1m", 1_440, "7d"),       # 1 day
    _row("3m", 960, "14d"),        # 2 days
    _row("5m", 2_016, "30d"),      # 1 week
    _row("15m", 672, "60d"),       # 1 week
    _row("30m", 336, "90d"),       # 1 week
    _row("1h", 168, "180d"),       # 1 week
    _row("2h", 168, "365d"),       # 2 weeks
    _row("4h", 180, "365d"),       # 30 days
    _row("6h", 120, "730d"),       # 30 days
    _row("8h", 90, "730d"),        # 30 days
    _row("12h", 60, "730d"),       # 30 days
    _row("1d", 60, "1095d"),       # 60 days
)}
"""The defaults per timeframe, keyed by the canonical name (:func:`qdash.model.timeframe_name`)."""


def defaults_for(timeframe: str | int | None = None) -> TimeframeDefaults:
    """The row of ``timeframe`` (a name like ``"5m"`` or milliseconds; None: the default
    timeframe). A timeframe without a row takes the windows and lookback of the longest
    timeframe in the table not longer than it (the shortest row when all are longer)."""
    if timeframe is None:
        timeframe = DEFAULT_TIMEFRAME
    if isinstance(timeframe, str) and timeframe in TABLE:
        return TABLE[timeframe]
    from .model import timeframe_ms, timeframe_name

    ms = timeframe_ms(timeframe)
    name = timeframe_name(ms)
    if name in TABLE:
        return TABLE[name]
    rows = sorted(TABLE.values(), key=lambda r: timeframe_ms(r.timeframe))
    below = [r for r in rows if timeframe_ms(r.timeframe) <= ms]
    row = below[-1] if below else rows[0]
    return TimeframeDefaults(name, row.beta_window, row.z_window, row.scan_lookback)
