"""The dashboard's Bokeh figures and the column data sources behind them.

Every source's time column ``t`` is exchange time in epoch milliseconds (what Bokeh's datetime axis
expects). All time-series figures share one x range, so zooming one zooms all; every figure has
pan, wheel zoom, box zoom, reset and a hover tool.
"""

from __future__ import annotations

from bokeh.core.property.vectorization import value
from bokeh.layouts import column, gridplot
from bokeh.models import (
    BasicTicker,
    ColorBar,
    ColumnDataSource,
    DataRange1d,
    DatetimeTicker,
    DatetimeTickFormatter,
    HoverTool,
    LinearColorMapper,
    Span,
)
from bokeh.plotting import figure

TOOLS = "pan,wheel_zoom,box_zoom,reset,save"
UP, DOWN = "#26a69a", "#ef5350"
ESTIMATOR_COLORS = {"ols": "#1f77b4", "rolling_ols": "#17becf", "huber": "#ff7f0e",
                    "theil_sen": "#2ca02c", "kalman": "#d62728"}

CANDLE_COLUMNS = ["t", "open", "high", "low", "close", "volume", "color", "w"]
PAIR_COLUMNS = ["t", "y_norm", "x_norm", "spread", "mean", "upper", "lower", "z", "corr",
                *[f"beta_{k}" for k in ESTIMATOR_COLORS]]


def empty_source(columns: list[str]) -> ColumnDataSource:
    return ColumnDataSource({c: [] for c in columns})


def _time_figure(title: str, x_range=None, height: int = 220, **kw):
    fig = figure(title=title, x_axis_type="datetime", tools=TOOLS, height=height,
                 sizing_mode="stretch_width", x_range=x_range or DataRange1d(), **kw)
    fig.toolbar.logo = None
    fig.title.text_font_size = "11pt"
    return fig


def _share_time_axis(figures) -> None:
    """One datetime ticker and formatter for the time axes (and grids) of ``figures`` of one
    document: a datetime ticker is 13 models (one per time scale), and a page builds a view for
    each model; the market view's seven figures had 91 ticker and 7 formatter models, the same
    ticks drawn by one."""
    ticker, formatter = DatetimeTicker(), DatetimeTickFormatter()
    for fig in figures:
        fig.xaxis[0].ticker, fig.xaxis[0].formatter = ticker, formatter
        fig.xgrid[0].ticker = ticker


class PairFigures:
    """All figures of one pair view, with their sources.

    ``candles[leg]`` (leg ``"y"`` or ``"x"``), ``pair``, ``live`` (the current z-score point),
    ``trades`` (backtest entries/exits on the z-score), ``heat`` (correlation heatmap),
    ``equity`` (backtest equity and drawdown) are the sources the dashboard updates.
    """

    def __init__(self, y: str, x: str, *, entry: float = 2.0, exit: float = 0.0,
                 stop: float | None = None, band_k: float = 2.0):
        self.candles = {"y": empty_source(CANDLE_COLUMNS), "x": empty_source(CANDLE_COLUMNS)}
        self.pair = empty_source(PAIR_COLUMNS)
        self.live = ColumnDataSource({"t": [], "z": []})
        self.trades = ColumnDataSource({"t": [], "z": [], "kind": [], "color": []})
        self.heat = ColumnDataSource({"a": [], "b": [], "corr": [], "label": []})
        self.equity = ColumnDataSource({"t": [], "equity": [], "drawdown": []})

        self.candle_figs = {}
        shared = None
        for leg in ("y", "x"):
            fig = _time_figure("", x_range=shared, height=300)
            shared = shared or fig.x_range
            src = self.candles[leg]
            # volume under the candles, on its own scale: 0 at the bottom, the largest bar at a
            # fifth of the height (range end = max + 4·max). One figure per leg instead of two:
            # each live frame repaints the figures of the forming candle, and a figure's paint
            # costs about the same with few or many bars (axes, ticks, labels)
            fig.extra_y_ranges = {"volume": DataRange1d(start=0, range_padding=4.0)}
            volume = fig.vbar("t", "w", "volume", 0, fill_color="color", line_color=None,
                              alpha=0.35, source=src, y_range_name="volume")
            wicks = fig.segment("t", "high", "t", "low", color="color", source=src)
            bars = fig.vbar("t", "w", "open", "close", fill_color="color", line_color="color",
                            source=src)
            fig.y_range.renderers = [wicks, bars]  # each range fits its own glyphs only
            fig.extra_y_ranges["volume"].renderers = [volume]
            fig.add_tools(HoverTool(renderers=[bars], formatters={"@t": "datetime"}, tooltips=[
                ("time", "@t{%F %T}"), ("open", "@open"), ("high", "@high"), ("low", "@low"),
                ("close", "@close"), ("volume", "@volume")]))
            self.candle_figs[leg] = fig
        self.x_range = shared

        self.normalized = _time_figure("", x_range=shared)
        self.normalized.line("t", "y_norm", source=self.pair, color="#1f77b4", legend_label="y")
        self.normalized.line("t", "x_norm", source=self.pair, color="#ff7f0e", legend_label="x")
        self.normalized.legend.location = "top_left"

        self.spread = _time_figure(f"spread  {y} − β·{x} − α (log prices), z-window mean ± "
                                   f"{band_k:g}σ",
                                   x_range=shared)
        self.spread.line("t", "spread", source=self.pair, color="#333333", legend_label="spread")
        self.spread.line("t", "mean", source=self.pair, color="#888888", line_dash="dashed",
                         legend_label="mean")
        self.spread.varea("t", "lower", "upper", source=self.pair, fill_alpha=0.12,
                          fill_color="#1f77b4", legend_label=f"±{band_k:g}σ")
        self.spread.legend.location = "top_left"

        self.zscore = _time_figure("z-score of the spread — the one alerts fire on and the "
                                   "backtest trades", x_range=shared)
        self.z_line = self.zscore.line("t", "z", source=self.pair, color="#6a3d9a")
        self.zscore.scatter("t", "z", source=self.live, size=9, color="#6a3d9a",
                            legend_label="now (forming bar)")
        self.zscore.scatter("t", "z", source=self.trades, size=8, color="color", marker="triangle",
                            legend_label="backtest trades")
        self.z_spans = []
        for level, dash in ((entry, "dashed"), (-entry, "dashed"), (exit, "dotted")):
            span = Span(location=level, dimension="width", line_color="#d62728",
                        line_dash=dash, line_alpha=0.7)
            self.zscore.add_layout(span)
            self.z_spans.append(span)
        for _ in range(2):  # the stop levels (hidden without a stop)
            span = Span(location=0.0, dimension="width", line_color="black",
                        line_dash="dotdash", line_alpha=0.6)
            self.zscore.add_layout(span)
            self.z_spans.append(span)
        self.zscore.legend.location = "top_left"

        self.correlation = _time_figure("rolling correlation of returns", x_range=shared,
                                        height=180, y_range=(-1.05, 1.05))
        self.correlation.line("t", "corr", source=self.pair, color="#2ca02c")

        self.hedge = _time_figure("", x_range=shared)
        for name, color in ESTIMATOR_COLORS.items():
            self.hedge.line("t", f"beta_{name}", source=self.pair, color=color,
                            legend_label=name.replace("_", " "))
        self.hedge.legend.location = "top_left"
        self.hedge.legend.click_policy = "hide"

        _share_time_axis([*self.candle_figs.values(), self.normalized, self.spread, self.zscore,
                          self.correlation, self.hedge])
        for fig in (self.normalized, self.spread, self.zscore, self.correlation, self.hedge):
            fig.add_tools(HoverTool(formatters={"@t": "datetime"}, mode="vline", tooltips=[
                ("time", "@t{%F %T}"), ("z", "@z{0.00}"), ("spread", "@spread{0.0000}"),
                ("corr", "@corr{0.000}"), ("β ols", "@beta_ols{0.0000}"),
                ("β kalman", "@beta_kalman{0.0000}")]))

        self.heatmap = figure(title="correlation of returns across watched symbols", height=300,
                              width=340, tools="hover,save", x_range=[], y_range=[],
                              tooltips=[("pair", "@a / @b"), ("corr", "@corr{0.000}")])
        self.heatmap.toolbar.logo = None
        mapper = LinearColorMapper(palette="RdBu11", low=-1, high=1)
        self.heatmap.rect("a", "b", 1, 1, source=self.heat,
                          fill_color={"field": "corr", "transform": mapper}, line_color=None)
        self.heatmap.text("a", "b", text="label", source=self.heat, text_align="center",
                          text_baseline="middle", text_font_size="9pt")
        self.heatmap.add_layout(ColorBar(color_mapper=mapper, ticker=BasicTicker()), "right")

        self.equity_fig = _time_figure("backtest equity", height=200)
        self.equity_fig.line("t", "equity", source=self.equity, color="#1f77b4")
        self.drawdown_fig = _time_figure("drawdown", x_range=self.equity_fig.x_range, height=140)
        self.drawdown_fig.varea("t", 0, "drawdown", source=self.equity, fill_color=DOWN,
                                fill_alpha=0.4)
        self.drawdown_fig.y_range.flipped = True  # a positive fraction, hanging below zero
        self.reset(y, x, stop=stop)

    def sources(self) -> list[ColumnDataSource]:
        return [*self.candles.values(), self.pair, self.live, self.trades, self.heat,
                self.equity]

    def reset(self, y: str, x: str, *, stop: float | None = None) -> None:
        """Show a new pair in the same figures: every source emptied, titles and legends
        naming ``y``/``x``, the stop lines at ±``stop`` (hidden when None). Cheaper than new
        figures (a few property changes for the browser instead of a new Bokeh document)."""
        for src in self.sources():
            src.data = {k: [] for k in src.data}
            src._n_forming = 0  # forming candles shown (see the dashboard's candle renderer)
        for leg, symbol in (("y", y), ("x", x)):
            self.candle_figs[leg].title.text = f"{symbol} candles and volume"
        self.normalized.title.text = f"{y} and {x}, normalised to their first close (=1)"
        for item, symbol in zip(self.normalized.legend.items, (y, x)):
            item.label = value(symbol)
        self.hedge.title.text = f"hedge ratio β of {y} on {x} (log prices), every estimator"
        for span, level in zip(self.z_spans[3:], (stop, -stop) if stop else (0.0, 0.0)):
            span.location, span.visible = level, bool(stop)

    def set_levels(self, entry: float, exit: float) -> None:
        """Move the entry/exit lines on the z-score plot."""
        for span, level in zip(self.z_spans[:3], (entry, -entry, exit)):
            span.location = level

    def set_heat_symbols(self, symbols: list[str]) -> None:
        self.heatmap.x_range.factors = list(symbols)
        self.heatmap.y_range.factors = list(symbols)

    def layout(self):
        """The market panels as one Bokeh layout (candles and volume, spread, z, legs, corr,
        hedge)."""
        return column(
            gridplot([[self.candle_figs["y"], self.candle_figs["x"]]],
                     sizing_mode="stretch_width", merge_tools=False),
            self.spread, self.zscore, self.normalized, self.correlation, self.hedge,
            sizing_mode="stretch_width")

    def backtest_layout(self):
        return column(self.equity_fig, self.drawdown_fig, sizing_mode="stretch_width")
