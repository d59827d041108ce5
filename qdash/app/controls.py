"""The dashboard's ipywidgets controls, grouped by panel. No behaviour here: the Dashboard wires it.

Values are the dashboard's parameters: symbols in exchange spelling, timeframes as ``"1m"``,
z-score levels in standard deviations, fees in basis points.
"""

from __future__ import annotations

import html

import ipywidgets as w

from ..analytics import LIQUIDITY_FILTERS
from ..analytics.estimators import DASHBOARD_METHODS
from ..analytics.pair_metrics import metrics_help
from .choices import TIMEFRAMES, WINDOW_MAX, WINDOW_MIN

SOURCES = [("simulated exchange", "sim"), ("Binance live", "binance"),
           ("server hub (pushed ticks)", "hub"), ("stored data", "store")]
METHODS = list(DASHBOARD_METHODS)
_DESC = {"description_width": "initial"}


def _float(description: str, value: float, step: float = 0.1, width: str = "140px"):
    return w.FloatText(value=value, step=step, description=description, style=_DESC,
                       layout=w.Layout(width=width))


class MarketControls:
    """Source, symbols, pair, timeframe, window, method, z levels, liquidity filters, start/stop."""

    def __init__(self, source: str, symbols: list[str], y: str, x: str, timeframe: str,
                 window: int, method: str, entry: float, exit: float, stop: float | None):
        self.source = w.Dropdown(options=SOURCES, value=source, description="source",
                                 style=_DESC, layout=w.Layout(width="260px"))
        self.symbols = w.Text(value=",".join(symbols), description="watch", style=_DESC,
                              layout=w.Layout(width="300px"),
                              placeholder="BTCUSDT,ETHUSDT,SOLUSDT")
        self.y = w.Dropdown(options=symbols, value=y, description="y", style=_DESC,
                            layout=w.Layout(width="170px"))
        self.x = w.Dropdown(options=symbols, value=x, description="x", style=_DESC,
                            layout=w.Layout(width="170px"))
        self.timeframe = w.Dropdown(options=list(TIMEFRAMES), value=timeframe, description="bars",
                                    style=_DESC, layout=w.Layout(width="130px"))
        self.window = w.BoundedIntText(value=window, min=WINDOW_MIN, max=WINDOW_MAX,
                                       description="window", style=_DESC,
                                       layout=w.Layout(width="150px"))
        self.method = w.Dropdown(options=METHODS, value=method, description="hedge",
                                 style=_DESC, layout=w.Layout(width="170px"))
        self.entry = _float("entry z", entry)
        self.exit = _float("exit z", exit)
        self.stop = _float("stop z", stop if stop is not None else 0.0)
        # one box per declared liquidity filter (qdash.analytics.LIQUIDITY_FILTERS)
        self.filters = {
            f.name: w.BoundedFloatText(value=f.default, min=f.min, max=f.max, step=f.step,
                                       description=f"{f.label} ({f.unit})", tooltip=f.description,
                                       style=_DESC, layout=w.Layout(width="270px"))
            for f in LIQUIDITY_FILTERS}
        self.live = w.ToggleButton(value=False, description="start live",
                                   button_style="success", layout=w.Layout(width="120px"))
        self.run_tests = w.Button(description="run ADF/coint now", layout=w.Layout(width="170px"))

    def widget(self) -> w.Widget:
        return w.VBox([
            w.HBox([self.source, self.symbols, self.live]),
            w.HBox([self.y, self.x, self.timeframe, self.window, self.method]),
            w.HBox([self.entry, self.exit, self.stop, self.run_tests]),
            w.HBox(list(self.filters.values())),
        ])


class BacktestControls:
    """Backtest parameters (the z levels come from the market controls), run, results."""

    def __init__(self):
        self.fee_bps = _float("fee bps/leg", 4.0, step=0.5, width="150px")
        self.slippage_bps = _float("slippage bps", 1.0, step=0.5, width="160px")
        self.max_hold = w.BoundedIntText(value=0, min=0, max=10**7, description="max hold bars",
                                         style=_DESC, layout=w.Layout(width="190px"))
        self.run = w.Button(description="run backtest", button_style="primary")
        self.metrics = w.HTML()
        self.trades = w.HTML()

    def widget(self, plots: w.Widget) -> w.Widget:
        return w.VBox([w.HBox([self.fee_bps, self.slippage_bps, self.max_hold, self.run]),
                       self.metrics, plots, self.trades])


class AlertControls:
    """Rule editor (text syntax), optional webhook, the active rules and the firing history."""

    def __init__(self):
        self.expression = w.Text(placeholder="abs(zscore) > 2 and corr > 0.8",
                                 description="rule", style=_DESC, layout=w.Layout(width="420px"))
        self.name = w.Text(placeholder="name", layout=w.Layout(width="160px"))
        self.severity = w.Dropdown(options=["info", "warning", "critical"], value="warning",
                                   layout=w.Layout(width="110px"))
        self.cooldown = w.FloatText(value=60.0, description="cooldown s", style=_DESC,
                                    layout=w.Layout(width="150px"))
        self.webhook_kind = w.Dropdown(options=["none", "slack", "discord", "json"], value="none",
                                       description="webhook", style=_DESC,
                                       layout=w.Layout(width="170px"))
        self.webhook_url = w.Text(placeholder="https://hooks.slack.com/...",
                                  layout=w.Layout(width="330px"))
        self.add = w.Button(description="add rule", button_style="primary")
        self.feedback = w.HTML()  # what became of the rule just typed: its error, or when it runs
        self.rules = w.HTML()
        self.history = w.HTML()
        self.metrics = w.HTML(
            "<details><summary>metrics a rule can use</summary>"
            "<div class='qdash-metrics-help' style='font-size:11px;white-space:pre'>"
            + html.escape(metrics_help()) + "</div></details>")

    def widget(self) -> w.Widget:
        return w.VBox([
            w.HBox([self.expression, self.name, self.severity, self.cooldown]),
            w.HBox([self.webhook_kind, self.webhook_url, self.add]), self.feedback, self.metrics,
            w.HTML("<b>active rules</b>"), self.rules,
            w.HTML("<b>firing history</b>"), self.history,
        ])


class DataControls:
    """File upload with progress and report; CSV downloads."""

    def __init__(self):
        self.upload = w.FileUpload(accept=".csv,.gz,.zip,.ndjson,.json,.txt", multiple=True,
                                   description="load files")
        self.progress = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="loading",
                                        style=_DESC, layout=w.Layout(width="360px"))
        self.report = w.HTML()
        self.prepare = w.Button(description="prepare CSV downloads")
        self.downloads = w.HTML()

    def widget(self) -> w.Widget:
        return w.VBox([w.HBox([self.upload, self.progress]), self.report,
                       w.HBox([self.prepare]), self.downloads])
