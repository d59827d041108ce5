"""The values the dashboard's controls offer, importable without a widget library: the controls
build their dropdowns and bounds from them, and ``qdash dashboard``/``qdash demo`` refuse any other
value before anything starts."""

from __future__ import annotations

from ..binance.limits import FIXED_INTERVALS

TIMEFRAMES = ("1s", *FIXED_INTERVALS)
"""Bar lengths: 1s (resampled from trades) and every fixed-length Binance kline interval (the
month, of varying length, is not a bar length here)."""
WINDOW_MIN, WINDOW_MAX = 5, 100_000
"""Bounds of the rolling window, in bars (β, z-score, correlation)."""
