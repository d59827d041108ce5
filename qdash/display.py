"""Table cells and plot columns shared by the dashboard (:mod:`qdash.app`) and the standalone
reports (:mod:`qdash.book.report`): one way to show a number, one equity/drawdown view."""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd


def fmt(v, digits: int = 4) -> str:
    """A table cell: ``–`` for missing/NaN, thousands separators, ``yes``/``no``."""
    if v is None:
        return "–"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return f"{v:,}"
    if isinstance(v, float | np.floating):
        if not math.isfinite(v):
            return "–"
        return f"{v:,.{digits}g}" if abs(v) < 1e6 else f"{v:,.0f}"
    return html.escape(str(v))


def equity_columns(equity: pd.Series) -> dict[str, list]:
    """Columns of the backtest's equity and drawdown view; the drawdown is
    :func:`qdash.backtest.metrics.drawdown` (a positive fraction of the running peak; the
    figure hangs it below zero)."""
    from .backtest.metrics import drawdown  # the backtest package loads when first used

    return {"t": equity.index.as_unit("ms").asi8.astype(float).tolist(),
            "equity": equity.tolist(), "drawdown": drawdown(equity).tolist()}
