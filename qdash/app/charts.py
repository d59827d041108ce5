"""The dashboard's Bokeh side: the pair's figures, their widgets, and what each frame draws.

Each view is a :class:`~qdash.app.bokeh_widget.FrameBokehModel`: what a frame changed goes to
the browser as ONE patch message set per view (:meth:`PairCharts.flush`), and a page's
whole-state request is answered from a snapshot. Readers pull from the
:class:`~qdash.live.LiveSession` by cursor: a frame with nothing new builds nothing. A new pair,
timeframe or source empties and relabels the same figures (:meth:`PairCharts.reset`).
"""

from __future__ import annotations

import math
from functools import cached_property

import pandas as pd

from ..live import LiveSession
from ..model import timeframe_ms
from .bokeh_widget import FrameBokehModel
from .monitor import HEAT_BARS, ROLLOVER, PairMonitor
from .plots import PairFigures
from .render import (
    candle_columns,
    equity_columns,
    heat_columns,
    live_point,
    pair_columns,
    trade_columns,
)


class PairCharts:
    """The figures of ``monitor``'s pair and their widgets (``market_view``: candles and the
    pair's panels; ``heat_view``: correlations; ``backtest_view``: equity and drawdown, built
    when first used). ``comm_messages``: messages sent to the browser so far."""

    def __init__(self, monitor: PairMonitor):
        self.monitor = mon = monitor
        self.figures = PairFigures(mon.y, mon.x, entry=mon.entry_z, exit=mon.exit_z,
                                   stop=mon.stop_z or None)
        self.market_view = FrameBokehModel(self.figures.layout())
        self.heat_view = FrameBokehModel(self.figures.heatmap)
        self.comm_messages = 0
        self.reset()

    @cached_property
    def backtest_view(self) -> FrameBokehModel:
        """The backtest tab's equity and drawdown plots (built when first used)."""
        return FrameBokehModel(self.figures.backtest_layout())

    def views(self) -> list[FrameBokehModel]:
        return [self.market_view, self.heat_view] + (
            [self.backtest_view] if "backtest_view" in self.__dict__ else [])

    def reset(self) -> None:
        """Empty every figure and label it for the monitor's pair and settings."""
        mon = self.monitor
        self.figures.reset(mon.y, mon.x, stop=mon.stop_z or None)
        self.figures.set_levels(mon.entry_z, mon.exit_z)
        self.figures.set_heat_symbols(mon.watched())
        self._cursors = {"y": 0, "x": 0, "pair": 0}
        self._norm_base: tuple[float, float] | None = None

    def flush(self) -> None:
        """Send what changed since the last flush, one patch set per view."""
        for view in self.views():
            self.comm_messages += view.flush()

    def send(self, view: FrameBokehModel) -> None:
        """Flush a view of another panel (the scanner's), counted with these."""
        self.comm_messages += view.flush()

    def snapshot(self) -> None:
        """Serialize every view's document now, not while a page waits for it."""
        for view in self.views():
            view.snapshot()

    # --- live ----------------------------------------------------------------------------------
    def draw_live(self, s: LiveSession) -> None:
        """What is new in the session since the last frame: candles, pair rows, the live z."""
        self._draw_candles(s)
        self._draw_pair(s)

    def _draw_candles(self, s: LiveSession) -> None:
        tf = timeframe_ms(self.monitor.timeframe)
        for leg, symbol in (("y", self.monitor.y), ("x", self.monitor.x)):
            new, self._cursors[leg] = s.candles_since(symbol, self._cursors[leg])
            src = self.figures.candles[leg]
            forming = s.forming(symbol)  # one candle, or more while a late-tick tolerance runs
            rows = pd.concat([new, forming]) if len(forming) else new
            if not len(rows):
                continue
            data = candle_columns(rows.iloc[-ROLLOVER:], tf)
            # the forming candles shown last frame (the last rows) are replaced by the first new
            # rows (the same candles, closed or grown since); the remaining rows are appended
            size = len(src.data["t"])
            before = min(src._n_forming, size)
            shown = min(before, len(data["t"]))
            if shown:
                first = size - before
                src.patch({k: [(first + i, v[i]) for i in range(shown)] for k, v in data.items()})
            if len(data["t"]) > shown:
                src.stream({k: v[shown:] for k, v in data.items()}, rollover=ROLLOVER)
            src._n_forming = len(forming)

    def _draw_pair(self, s: LiveSession) -> None:
        shown = self._cursors["pair"]
        new, self._cursors["pair"] = s.pair_rows_since(shown, ROLLOVER)
        metrics = s.metrics()
        if len(new):
            if self._norm_base is None:
                self._norm_base = (math.exp(new["y"].iloc[0]), math.exp(new["x"].iloc[0]))
            data = pair_columns(new, metrics, s.state.spec, self._norm_base,
                                continues=shown > 0)
            # NaN (not yet defined, or a break) is sent as NaN: Bokeh lifts the pen there
            self.figures.pair.stream(data, rollover=ROLLOVER)
        self._draw_live_z(s)

    def _draw_live_z(self, s: LiveSession) -> None:
        """The z-score the forming bar would have now (moves every frame): the pair kernel run
        on a copy of the live state (:meth:`PairState.preview`)."""
        fy, fx = s.forming(self.monitor.y), s.forming(self.monitor.x)
        if not len(fy) or not len(fx):
            self.figures.live.data = live_point(None, 0.0)
            return
        t_open = int(max(fy.index[-1].value, fx.index[-1].value) // 1_000_000)
        pv = s.state.preview(float(fy["close"].iloc[-1]), float(fx["close"].iloc[-1]), t_open)
        self.figures.live.data = live_point(pv, t_open)

    def draw_heat(self, candles: dict[str, pd.DataFrame]) -> None:
        """Correlation of returns across every watched symbol
        (:func:`~qdash.analytics.stats.return_correlations`) over the stored history of the
        timeframe and what arrived live."""
        from ..analytics import return_correlations

        history = self.monitor.heat_history
        closes = {}
        for sym in self.monitor.watched():
            parts = [f["close"] for f in (history.get(sym), candles.get(sym))
                     if f is not None and len(f)]
            if parts:
                closes[sym] = pd.concat(parts)
        if len(closes) < 2:
            return
        corr = return_correlations(closes, last=HEAT_BARS)
        self.figures.set_heat_symbols(list(corr.columns))
        self.figures.heat.data = heat_columns(corr)

    # --- stored data and the backtest ----------------------------------------------------------
    def draw_stored(self, candles: dict[str, pd.DataFrame], pa) -> int:
        """The recorded data of the pair (static); returns the aligned bars shown."""
        mon = self.monitor
        tf = timeframe_ms(mon.timeframe)
        for leg, sym in (("y", mon.y), ("x", mon.x)):
            self.figures.candles[leg].data = candle_columns(candles[sym].iloc[-ROLLOVER:], tf)
        ser = pa.series.iloc[-ROLLOVER:]
        self.figures.pair.data = pair_columns(ser, pa.summary, pa.state.spec,
                                              (ser["price_y"].iloc[0], ser["price_x"].iloc[0]),
                                              continues=False)
        self.draw_heat(candles)
        return len(ser)

    def draw_backtest(self, result) -> None:
        """The backtest's equity, drawdown and trade markers."""
        self.figures.equity.data = equity_columns(result.equity)
        if len(result.trades):
            self.figures.trades.data = trade_columns(result.trades)
