"""What a history page source yields and :mod:`qdash.history.fetch` writes: one page."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass
class HistoryPage:
    """One unit of writing: rows of ``symbol`` (in the shape the store takes: candles, ticks or
    funding; None where the source lacks the range) and the range ``[start, end)`` (int ms UTC)
    they complete; ``from_archive`` when they came from the bulk archive."""

    symbol: str
    start: int
    end: int
    rows: pd.DataFrame | None
    from_archive: bool = False
