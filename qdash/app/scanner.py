"""The dashboard's scanner tab: a :class:`~qdash.scan.live.LiveScanner` on the dashboard's source,
its ranked table (sort, filters, top N), a Bokeh heatmap across symbols, and “open” to show a pair
in the pair monitor.

What is shown comes from :mod:`qdash.app.scan_render` (pure); this module only holds widgets and
wiring. Widget callbacks hop onto the loop through the dispatcher
(:class:`~qdash.app.dispatch.Dispatcher`); the scan itself runs in a worker thread inside the
scanner, never on the loop.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable

import ipywidgets as w
from bokeh.models import BasicTicker, ColorBar, ColumnDataSource, LinearColorMapper
from bokeh.plotting import figure

from ..defaults import DEFAULT_TIMEFRAME, defaults_for
from ..scan.live import LiveScanner
from .bokeh_widget import FrameBokehModel
from .dispatch import Dispatcher
from .monitor import PairMonitor
from .scan_render import HEAT_METRICS, TABLE_COLUMNS, heat_columns, pair_label, table_rows

log = logging.getLogger(__name__)

SCAN_TIMEFRAMES = ["1m", "5m", "15m", "1h"]
_DESC = {"description_width": "initial"}


def _heat_figure(source: ColumnDataSource):
    fig = figure(title="cointegration across symbols (y ↓, x →)", height=420, width=480,
                 tools="hover,save", x_range=[], y_range=[],
                 tooltips=[("pair", "@y / @x"), ("value", "@value{0.00}")])
    fig.toolbar.logo = None
    fig.xaxis.major_label_orientation = 1.0
    mapper = LinearColorMapper(palette="Viridis256", low=0, high=10)
    fig.rect("x", "y", 1, 1, source=source, fill_color={"field": "value", "transform": mapper},
             line_color=None)
    fig.add_layout(ColorBar(color_mapper=mapper, ticker=BasicTicker()), "right")
    return fig, mapper


class ScannerPanel:
    """The scanner tab of ``monitor``: ``start()`` scans the monitor's source (``sim`` or
    ``binance``) live. ``open_pair(y, x)`` shows a pair in the pair monitor (a coroutine);
    ``send(view)`` sends the heatmap's changes to the browser."""

    def __init__(self, monitor: PairMonitor, dispatch: Dispatcher, *,
                 open_pair: Callable[[str, str], Awaitable[None]],
                 send: Callable[[FrameBokehModel], None], symbols: str = "all",
                 timeframe: str = DEFAULT_TIMEFRAME, lookback: str | None = None):
        self.monitor, self.open_pair, self.send = monitor, open_pair, send
        self.scanner: LiveScanner | None = None
        self.rows = table_rows(None)
        self.symbols = w.Text(value=symbols, description="universe", style=_DESC,
                              layout=w.Layout(width="260px"), placeholder="all or A,B,C")
        self.timeframe = w.Dropdown(options=SCAN_TIMEFRAMES, value=timeframe,
                                    description="bars", style=_DESC,
                                    layout=w.Layout(width="120px"))
        lookback = lookback or defaults_for(timeframe).scan_lookback   # as `qdash scan`'s
        self.lookback = w.Text(value=lookback, description="lookback", style=_DESC,
                               layout=w.Layout(width="150px"))
        self.run = w.ToggleButton(value=False, description="start scanner",
                                  button_style="success", layout=w.Layout(width="130px"))
        self.passing = w.Checkbox(value=False, description="passing only", indent=False,
                                  layout=w.Layout(width="120px"))
        self.min_liquidity = w.FloatText(value=0.0, description="min quote vol/day",
                                         style=_DESC, layout=w.Layout(width="210px"))
        self.text = w.Text(value="", description="symbol", style=_DESC,
                           layout=w.Layout(width="170px"), placeholder="ETH")
        self.sort_by = w.Dropdown(options=TABLE_COLUMNS, value="rank", description="sort",
                                  style=_DESC, layout=w.Layout(width="160px"))
        self.ascending = w.Checkbox(value=True, description="ascending", indent=False,
                                    layout=w.Layout(width="100px"))
        self.top = w.BoundedIntText(value=30, min=1, max=10_000, description="top",
                                    style=_DESC, layout=w.Layout(width="110px"))
        self.metric = w.Dropdown(options=list(HEAT_METRICS), value="-log10 q",
                                 description="heat", style=_DESC, layout=w.Layout(width="150px"))
        self.pairs = w.Select(options=[], rows=8, description="pair", style=_DESC,
                              layout=w.Layout(width="420px"))
        self.open = w.Button(description="open in pair monitor", layout=w.Layout(width="180px"))
        self.status = w.HTML()
        self.table = w.HTML()
        self.heat = ColumnDataSource({"y": [], "x": [], "value": [], "label": []})
        self.heat_fig, self._mapper = _heat_figure(self.heat)
        self.heat_view = FrameBokehModel(self.heat_fig)
        dispatch.on(self.run, lambda c: self.start() if c["new"] else self.stop())
        for control in (self.passing, self.min_liquidity, self.text, self.sort_by,
                        self.ascending, self.top, self.metric):
            dispatch.on(control, lambda c: self.render())
        dispatch.click(self.open, self.open_selected)

    def widget(self) -> w.Widget:
        return w.VBox([
            w.HBox([self.symbols, self.timeframe, self.lookback, self.run]), self.status,
            w.HBox([self.passing, self.min_liquidity, self.text, self.sort_by, self.ascending,
                    self.top, self.metric]),
            w.HBox([w.VBox([self.pairs, self.open, self.table]), self.heat_view]),
        ])

    # --- the scanner -------------------------------------------------------------------------
    async def start(self) -> None:
        """Scan the monitor's source live (history first, then every closed bar)."""
        await self.stop()
        self.scanner = await self.monitor.live_scanner(
            self.symbols.value, timeframe=self.timeframe.value,
            lookback=self.lookback.value.strip(),
            on_result=lambda frame: self.render(), on_status=self._say)
        self.run.description, self.run.button_style = "stop scanner", "danger"

    async def stop(self) -> None:
        if self.scanner is not None:
            scanner, self.scanner = self.scanner, None
            await scanner.stop()
        self.run.description, self.run.button_style = "start scanner", "success"

    def _say(self, text: str, level: str) -> None:
        color = {"info": "#555", "ok": "#1b7f3b", "warn": "#b36b00", "error": "#c62828"}[level]
        self.status.value = f"<span style='color:{color}'>{html.escape(text)}</span>"

    # --- the view ----------------------------------------------------------------------------
    def render(self) -> None:
        """Table, pair list and heatmap from the last scan and the filters."""
        frame = self.scanner.result if self.scanner is not None else None
        self.rows = table_rows(frame, passing=self.passing.value,
                               min_quote_volume=self.min_liquidity.value, text=self.text.value,
                               sort_by=self.sort_by.value, ascending=self.ascending.value,
                               top=self.top.value)
        self.table.value = (
            "<div style='max-height:360px;overflow:auto;font-size:12px'>"
            + self.rows.to_html(index=False, border=0, float_format=lambda v: f"{v:,.4g}")
            + "</div>")
        keep = self.pairs.value
        self.pairs.options = [(pair_label(r), (r["y"], r["x"]))
                              for _, r in self.rows.iterrows()]
        if keep in [v for _, v in self.pairs.options]:
            self.pairs.value = keep
        symbols, cols = heat_columns(frame, self.rows, self.metric.value)
        self.heat_fig.x_range.factors = symbols
        self.heat_fig.y_range.factors = symbols[::-1]
        if cols["value"]:
            self._mapper.low, self._mapper.high = min(cols["value"]), max(cols["value"])
        self.heat.data = cols
        self.send(self.heat_view)

    def open_selected(self):
        """Open the selected pair in the pair monitor (``open_pair``)."""
        if not self.pairs.value:
            self._say("pick a pair in the list first", "warn")
            return None
        return self.open_pair(*self.pairs.value)
