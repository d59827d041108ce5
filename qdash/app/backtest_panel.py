"""The dashboard's backtest tab: fees, slippage and holding limit, run, the metrics, the trades
and the equity/drawdown plots. The backtest itself is :meth:`PairMonitor.run_backtest`."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w

from .charts import PairCharts
from .controls import BacktestControls
from .dispatch import Dispatcher
from .monitor import PairMonitor
from .render import fmt
from .tables import frame_html, notes_html, table


class BacktestPanel(BacktestControls):
    """The backtest tab of ``monitor``; ``say(text, level)`` reports in the status line, the
    plots are ``charts``' backtest view."""

    def __init__(self, monitor: PairMonitor, dispatch: Dispatcher,
                 say: Callable[[str, str], None], charts: PairCharts):
        super().__init__()
        self.monitor, self.say, self.charts = monitor, say, charts
        dispatch.click(self.run, self.run_backtest)

    def widget(self) -> w.Widget:
        return super().widget(w.VBox([self.charts.backtest_view]))

    async def run_backtest(self):
        """Backtest the rule on the candles on screen (fetched history and live bars; stored
        ones when not live), with both legs' stored funding; shows and returns the result."""
        from ..backtest import metrics as mt

        by, bx = self.monitor.backtest_candles()
        if min(len(by), len(bx)) < 2:
            self.say(f"backtest needs stored bars of both legs, have {len(by)} / {len(bx)}",
                     "warn")
            return None
        self.say("backtest running…", "info")
        result = await self.monitor.run_backtest(
            fee_bps=self.fee_bps.value, slippage_bps=self.slippage_bps.value,
            max_hold=self.max_hold.value or None, candles=(by, bx))
        self.charts.draw_backtest(result)
        tr = result.trades
        self.metrics.value = table(
            [(k, mt.sharpe_text(result.metrics) if k == "sharpe" else fmt(v))
             for k, v in result.metrics.items()], "qdash-backtest-metrics") + notes_html(
            result.notes)
        self.trades.value = frame_html(tr.rename(columns={"beta": "beta (log prices)"}),
                                       "qdash-backtest-trades")
        self.charts.flush()
        self.say(f"backtest ({result.params['hedge']}): {len(tr)} trades, total return "
                 f"{fmt(result.metrics.get('total_return'), 3)}"
                 + (f" — {result.notes[0]}" if not len(tr) and result.notes else ""), "ok")
        return result
