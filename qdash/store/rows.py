"""What the tables' modules share: the outcome of a write, and rows ↔ SQL parameters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import parse_time


@dataclass(frozen=True)
class WriteResult:
    """Outcome of one committed write: rows offered, rows newly stored, rows already present
    (``duplicates``; of them, ``matched`` id-less rows that are trades stored with an exchange
    id)."""

    received: int
    stored: int
    matched: int = 0

    @property
    def duplicates(self) -> int:
        return self.received - self.stored


def range_clause(column: str, symbol: str, start, end) -> tuple[str, list]:
    """``WHERE`` text and parameters for one symbol's rows with ``start <= column < end`` (either
    bound None for open; anything :func:`qdash.model.parse_time` reads)."""
    where, params = ["symbol = ?"], [symbol]
    if (s := parse_time(start)) is not None:
        where.append(f"{column} >= ?")
        params.append(s)
    if (e := parse_time(end)) is not None:
        where.append(f"{column} < ?")
        params.append(e)
    return " AND ".join(where), params


def none_for_nan(values: np.ndarray) -> list:
    """``values`` as a list of Python values, NaN as None (SQL NULL)."""
    out = values.tolist()
    if values.dtype.kind == "f" and np.isnan(values).any():
        out = [None if v != v else v for v in out]
    return out
