"""Stored funding for backtests on USDⓈ-M perpetuals (``qdash backtest`` and the dashboard).

:func:`stored_funding` reads one leg's settlements from the store (:meth:`Store.funding
<qdash.store.Store.funding>`, filled by ``qdash fetch --kind funding`` and by the live bootstrap)
over the span of its bars, as the Series :func:`qdash.backtest.run` takes for ``funding_y`` /
``funding_x``: index the settlement time (UTC), value the signed rate per funding interval
(positive: longs pay shorts). :func:`settlements_applied` counts the settlements a backtest
actually charged or paid (those falling on a bar while a position was held), and
:func:`funding_note` says it in one line.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import metrics as mt
from .engine import BacktestResult, funding_per_bar


def stored_funding(store, symbol: str, bars: pd.DataFrame | pd.Series,
                   bar_ms: float | None = None) -> pd.Series | None:
    """``symbol``'s stored funding rates settled within ``bars``' span (first open to the last
    bar's end; ``bar_ms`` defaults to the bars' step); None when none is stored there."""
    if not len(bars):
        return None
    index = pd.DatetimeIndex(bars.index)
    step = mt.bar_ms_of(index) if bar_ms is None else bar_ms
    end = index[-1] + pd.Timedelta(milliseconds=float(step))
    f = store.funding(symbol.upper(), index[0], end)
    return f["rate"] if len(f) else None


def settlements_applied(result: BacktestResult, funding_y: pd.Series | None,
                        funding_x: pd.Series | None) -> int:
    """Settlements (of both legs) that fell on a bar while a position was held: the ones the
    backtest charged or paid. The position at a settlement is the one after the bar's fill when
    fills are at the open, before it when they are at the close (as the kernel settles)."""
    index = result.equity.index
    if len(index) == 0:
        return 0
    bar_ms = mt.bar_ms_of(index) if len(index) > 1 else 1.0
    side = result.positions["side"].to_numpy()
    if result.params.get("fill") != "open":
        side = np.concatenate([[0], side[:-1]])
    held = side != 0
    n = 0
    for rates in (funding_y, funding_x):
        if rates is not None and len(rates):
            per_bar = funding_per_bar(pd.Series(1.0, index=rates.index), index, bar_ms)
            n += int(per_bar[held].sum())
    return n


def funding_note(result: BacktestResult, funding_y: pd.Series | None,
                 funding_x: pd.Series | None, symbols: tuple[str, str]) -> str:
    """One line: settlements applied and the total funding received (quote currency), or which
    leg has none stored (and how to fetch it)."""
    missing = [s for s, f in zip(symbols, (funding_y, funding_x)) if f is None or not len(f)]
    total = result.metrics.get("total_funding", 0.0)
    text = (f"funding: {settlements_applied(result, funding_y, funding_x):,} settlements "
            f"applied, total {total:+,.6g} (received; negative: paid)")
    if missing:
        text += (f"; no stored funding for {', '.join(missing)} in this range (qdash fetch "
                 f"{','.join(missing)} --kind funding --start ...)")
    return text


__all__ = ["stored_funding", "settlements_applied", "funding_note"]
