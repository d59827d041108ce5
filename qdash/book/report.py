"""``report.html`` of a book run: one standalone file (Bokeh, its JavaScript inline) that opens
offline and says exactly what produced it.

Shown (the data functions are pure and tested on their own):

* equity and drawdown of the book against its baselines (``result.baselines``); the drawdown is
  :func:`qdash.backtest.metrics.drawdown`, hung below zero;
* net exposure per symbol over time (``positions``, a step held until the next change), as a
  heatmap of symbols × time (:func:`exposure_grid`);
* per-pair attribution (:func:`attribution`): ``price = pnl + fees - funding`` (``fees`` a cost
  >= 0, ``funding`` signed, > 0 received), summed over the pair's windows;
* holding time of each round trip against its pair's half-life, both in bars of
  ``spec["timeframe"]`` (:func:`holding_times`);
* the window table and the metrics, the book's beside each baseline's (:func:`metrics_table`);
* the run's spec, the fingerprint of its input data and the library versions, visible and as JSON
  in ``<script type="application/json" id="qdash-book-provenance">`` (:func:`provenance`).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..model import timeframe_ms

if TYPE_CHECKING:
    from .result import BookResult

PROVENANCE_ID = "qdash-book-provenance"
BOOK_COLOR = "#1f77b4"
BASELINE_COLORS = ("#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
PART_COLORS = {"price": "#1f77b4", "fees": "#d62728", "funding": "#2ca02c", "pnl": "#222222"}
PAIR_KEY = ["y", "x"]
HEADLINE = ("total_return", "sharpe", "sharpe_se", "span_days", "short_sample", "deflated_sharpe",
            "max_drawdown", "turnover", "crossed", "fees",
            "funding", "trades", "windows", "pairs_traded")   # the figures shown first
MAX_EXPOSURE_ROWS = 40     # symbols drawn in the exposure heatmap (the largest)
EXPOSURE_COLUMNS = 600     # time cells of the exposure heatmap


def pair_name(y: str, x: str) -> str:
    """How a pair is labelled in the report: ``y/x``."""
    return f"{y}/{x}"


# --- data ------------------------------------------------------------------------------------
def attribution(windows: pd.DataFrame) -> pd.DataFrame:
    """Per pair (``y, x``), summed over its windows: ``price`` (the pnl from prices alone,
    ``pnl + fees - funding``), ``fees`` (a cost, >= 0), ``funding`` (signed, > 0 received) and
    ``pnl`` (net), so that ``price - fees + funding == pnl``; sorted by ``pnl``, best first."""
    cols = ["y", "x", "price", "fees", "funding", "pnl"]
    if windows.empty:
        return pd.DataFrame(columns=cols)
    g = windows.groupby(PAIR_KEY, sort=False)[["pnl", "fees", "funding"]].sum().reset_index()
    g["price"] = g["pnl"] + g["fees"] - g["funding"]
    return g[cols].sort_values("pnl", ascending=False, kind="stable").reset_index(drop=True)


def holding_times(trades: pd.DataFrame, windows: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Each closed round trip's holding time against its pair's half-life, both in bars of
    ``timeframe``: the trade's columns ``y, x, entry_time, exit_time, exit_reason`` with
    ``holding_bars`` (``(exit_time - entry_time) / timeframe``), ``half_life`` (the pair's, from
    the window its entry falls in: ``window_start <= entry_time < window_end``) and ``ratio``
    (``holding_bars / half_life``). Trades still open (no ``exit_time``) are left out; a trade
    whose entry lies in no window of its pair gets a NaN half-life."""
    cols = ["y", "x", "entry_time", "exit_time", "exit_reason", "holding_bars", "half_life",
            "ratio"]
    done = trades[trades["exit_time"].notna()].reset_index(drop=True)
    if done.empty:
        return pd.DataFrame(columns=cols)
    bar = pd.Timedelta(milliseconds=timeframe_ms(timeframe))
    out = done[["y", "x", "entry_time", "exit_time", "exit_reason"]].copy()
    out["holding_bars"] = (done["exit_time"] - done["entry_time"]) / bar
    joined = done[PAIR_KEY + ["entry_time"]].reset_index().merge(
        windows[PAIR_KEY + ["window_start", "window_end", "half_life"]], on=PAIR_KEY, how="left")
    inside = ((joined["window_start"] <= joined["entry_time"])
              & (joined["entry_time"] < joined["window_end"]))
    half = joined[inside].drop_duplicates("index").set_index("index")["half_life"]
    out["half_life"] = half.reindex(out.index).astype(float)
    out["ratio"] = out["holding_bars"] / out["half_life"]
    return out[cols]


def exposure_frame(positions: pd.DataFrame, end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Net notional per symbol (columns) at every time one changes (index), each held until its
    next change, 0 before its first row; ``end`` (the last bar) adds a last row that holds the
    final positions there."""
    if positions.empty:
        return pd.DataFrame()
    wide = (positions.pivot_table(index="open_time", columns="symbol", values="notional",
                                  aggfunc="last").sort_index().ffill().fillna(0.0))
    if end is not None and end > wide.index[-1]:
        wide.loc[end] = wide.iloc[-1]
    wide.columns.name = None
    return wide


def metrics_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """``metrics`` (``name, value``) as one row per figure and one column per curve: ``book``,
    then each baseline in order of appearance (``baseline_<baseline>_<figure>``: the figure is
    the longest book figure that ends the name, so a baseline's name may hold underscores)."""
    names = [str(n) for n in metrics["name"]]
    values = dict(zip(names, metrics["value"].astype(float)))
    figures = [n for n in names if not n.startswith("baseline_")]
    table: dict[str, dict[str, float]] = {"book": {f: values[f] for f in figures}}
    for n in names:
        if not n.startswith("baseline_"):
            continue
        fig = max((f for f in figures if n.endswith("_" + f)), key=len, default=None)
        if fig is None or len(n) <= len("baseline__") + len(fig):
            continue
        table.setdefault(n[len("baseline_"):-len(fig) - 1], {})[fig] = values[n]
    out = pd.DataFrame(table).reindex(figures)
    out.index.name = "figure"
    return out


def exposure_grid(wide: pd.DataFrame, columns: int) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """:func:`exposure_frame` on a regular time grid of ``columns`` cells from its first to its
    last row: each cell holds the notional in force at the cell's start. Returns (cell starts,
    array ``symbols × columns``)."""
    start, end = wide.index[0], wide.index[-1]
    times = pd.date_range(start, end, periods=max(2, columns)) if end > start else wide.index[:1]
    rows = np.searchsorted(wide.index.to_numpy(), times.to_numpy(), side="right") - 1
    return times, wide.to_numpy(dtype=float)[rows].T.copy()


def largest_exposures(wide: pd.DataFrame, n: int) -> list[str]:
    """The ``n`` symbols of :func:`exposure_frame` with the largest absolute net notional at any
    time, largest first."""
    if wide.empty:
        return []
    return list(wide.abs().max().sort_values(ascending=False, kind="stable").index[:n])


def equity_curves(result: BookResult) -> dict[str, pd.Series]:
    """The book's equity (``"book"``) and each baseline's, as float Series by open time."""
    eq = result.equity
    curves = {"book": pd.Series(eq["equity"].to_numpy(dtype=float),
                                index=pd.DatetimeIndex(eq["open_time"]))}
    for name, curve in result.baselines.items():
        curves[name] = curve.astype(float)
    return curves


def provenance(result: BookResult) -> dict:
    """What produced the report: the run's ``spec``, the ``fingerprint`` of its input data and
    the library ``versions``."""
    return {"spec": result.spec, "fingerprint": result.fingerprint, "versions": result.versions}


def read_provenance(page: str) -> dict:
    """The provenance JSON embedded in a report's HTML text (inverse of the embedding)."""
    start = page.index(f'id="{PROVENANCE_ID}">') + len(f'id="{PROVENANCE_ID}">')
    return json.loads(page[start:page.index("</script>", start)])


# --- figures -----------------------------------------------------------------------------------
def _figure(title: str, height: int = 260, **kw):
    from bokeh.plotting import figure

    fig = figure(title=title, tools="pan,wheel_zoom,box_zoom,reset,save", height=height,
                 sizing_mode="stretch_width", **kw)
    fig.toolbar.logo = None
    return fig


def _equity_figures(result: BookResult):
    from ..display import equity_columns

    eq = _figure("equity against the baselines (USDT)", x_axis_type="datetime")
    dd = _figure("drawdown (fraction of the running peak)", x_axis_type="datetime",
                 x_range=eq.x_range, height=180)
    colors = iter(BASELINE_COLORS * 4)
    for name, curve in equity_curves(result).items():
        if curve.empty:
            continue
        cols = equity_columns(curve)
        cols["drawdown"] = [-d for d in cols["drawdown"]]
        color = BOOK_COLOR if name == "book" else next(colors)
        width = 2.5 if name == "book" else 1.5
        eq.line(cols["t"], cols["equity"], color=color, line_width=width, legend_label=name)
        dd.line(cols["t"], cols["drawdown"], color=color, line_width=width, legend_label=name)
    from bokeh.models import NumeralTickFormatter

    eq.yaxis.formatter = NumeralTickFormatter(format="0,0")
    for fig in (eq, dd):
        if fig.legend:
            fig.legend.location, fig.legend.click_policy = "top_left", "hide"
            fig.legend.background_fill_alpha = 0.5
    return eq, dd


def _exposure_figure(result: BookResult, x_range):
    from bokeh.models import ColorBar, FixedTicker, LinearColorMapper
    from bokeh.palettes import RdBu11

    end = result.equity["open_time"].iloc[-1] if len(result.equity) else None
    wide = exposure_frame(result.positions, end)
    shown = largest_exposures(wide, MAX_EXPOSURE_ROWS)
    more = f"; the {len(shown)} largest of {wide.shape[1]}" if len(shown) < wide.shape[1] else ""
    fig = _figure(f"net exposure per symbol (USDT: blue long, red short{more})",
                  x_axis_type="datetime", x_range=x_range, height=max(200, 60 + 18 * len(shown)),
                  tooltips=[("time", "$x{%F %H:%M}"), ("net USDT", "@image{0,0}")])
    fig.hover.formatters = {"$x": "datetime"}
    if not shown:
        return fig
    times, grid = exposure_grid(wide[shown[::-1]], EXPOSURE_COLUMNS)
    top = float(np.abs(grid).max()) or 1.0
    mapper = LinearColorMapper(palette=RdBu11[::-1], low=-top, high=top)
    t0 = float(times[0].value // 1_000_000)
    step = float((times[1] - times[0]).value // 1_000_000) if len(times) > 1 else 1.0
    fig.image(image=[grid], x=t0, y=0, dw=step * len(times), dh=len(shown), color_mapper=mapper)
    fig.yaxis.ticker = FixedTicker(ticks=[i + 0.5 for i in range(len(shown))])
    fig.yaxis.major_label_overrides = {i + 0.5: s for i, s in enumerate(shown[::-1])}
    fig.y_range.start, fig.y_range.end = 0, len(shown)
    fig.add_layout(ColorBar(color_mapper=mapper, width=10), "right")
    return fig


def _attribution_figure(result: BookResult):
    from bokeh.models import ColumnDataSource
    from bokeh.transform import dodge

    att = attribution(result.windows)
    pairs = [pair_name(y, x) for y, x in zip(att["y"], att["x"])][::-1]   # best on top
    att = att.iloc[::-1]
    src = ColumnDataSource({"pair": pairs, "price": att["price"].to_numpy(dtype=float),
                            "fees": -att["fees"].to_numpy(dtype=float),
                            "funding": att["funding"].to_numpy(dtype=float),
                            "pnl": att["pnl"].to_numpy(dtype=float)})
    fig = _figure("per-pair attribution: price − fees + funding = net pnl (USDT)",
                  y_range=pairs, height=max(220, 60 + 26 * len(pairs)),
                  tooltips=[("pair", "@pair"), ("price", "@price{0,0}"), ("fees", "@fees{0,0}"),
                            ("funding", "@funding{0,0}"), ("net pnl", "@pnl{0,0}")])
    for part, offset in (("price", 0.25), ("fees", 0.0), ("funding", -0.25)):
        fig.hbar(y=dodge("pair", offset, range=fig.y_range), left=0, right=part, height=0.25,
                 color=PART_COLORS[part], source=src, legend_label=part)
    fig.scatter("pnl", "pair", marker="diamond", size=11, color=PART_COLORS["pnl"], source=src,
                legend_label="net pnl")
    fig.ygrid.grid_line_color = None
    fig.legend.location, fig.legend.orientation = "bottom_right", "horizontal"
    return fig


def _holding_figure(result: BookResult):
    from bokeh.models import ColumnDataSource

    timeframe = result.spec.get("timeframe", "5m")
    ht = holding_times(result.trades, result.windows, timeframe)
    src = ColumnDataSource({
        "half_life": ht["half_life"].to_numpy(dtype=float),
        "holding": ht["holding_bars"].to_numpy(dtype=float),
        "pair": [pair_name(y, x) for y, x in zip(ht["y"], ht["x"])],
        "reason": ht["exit_reason"].astype(str).tolist()})
    fig = _figure(f"holding time against the pair's half-life ({timeframe} bars)",
                  tooltips=[("pair", "@pair"), ("held", "@holding{0.0} bars"),
                            ("half-life", "@half_life{0.0} bars"), ("exit", "@reason")])
    fig.scatter("half_life", "holding", source=src, size=7, alpha=0.6, color=BOOK_COLOR)
    top = np.nanmax(np.r_[ht["half_life"].to_numpy(dtype=float), 1.0])
    fig.line([0, top], [0, top], color="#888", line_dash="dashed", legend_label="held = half-life")
    fig.xaxis.axis_label, fig.yaxis.axis_label = "half-life (bars)", "holding time (bars)"
    fig.legend.location = "top_left"
    return fig


# --- the page ------------------------------------------------------------------------------------
def _table(df: pd.DataFrame) -> str:
    from ..display import fmt

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = "".join("<tr>" + "".join(f"<td>{_cell(v, fmt)}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f"<table class='qdash-table'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _cell(v, fmt) -> str:
    if isinstance(v, pd.Timestamp):
        return "–" if pd.isna(v) else v.strftime("%Y-%m-%d %H:%M")
    return fmt(v)


def _provenance_html(prov: dict) -> str:
    spec = pd.DataFrame({"argument": list(prov["spec"]),
                         "value": [json.dumps(v) for v in prov["spec"].values()]})
    versions = pd.DataFrame({"library": list(prov["versions"]),
                             "version": list(prov["versions"].values())})
    blob = json.dumps(prov, indent=1, sort_keys=True, default=str).replace("<", "\\u003c")
    return (f"<h2>what produced this report</h2><p>input data fingerprint (SHA-256): "
            f"<code class='qdash-fingerprint'>{html.escape(prov['fingerprint'])}</code></p>"
            f"<div class='qdash-row'><div><h3>spec</h3>{_table(spec)}</div>"
            f"<div><h3>library versions</h3>{_table(versions)}</div></div>"
            f'<script type="application/json" id="{PROVENANCE_ID}">{blob}</script>')


STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 16px 24px;
       color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 24px; } h3 { font-size: 14px; }
.qdash-table { border-collapse: collapse; font-size: 12px; }
.qdash-table th, .qdash-table td { padding: 2px 8px; border-bottom: 1px solid #ddd;
                                   text-align: right; }
.qdash-row { display: flex; gap: 32px; flex-wrap: wrap; align-items: flex-start; }
.qdash-scroll { max-height: 420px; overflow: auto; }
"""


def write_report(result: BookResult, path: Path) -> Path:
    """Write ``result``'s report to ``path`` (see the module docstring): one HTML file with
    BokehJS inline, no URL to fetch; returns ``path``."""
    from bokeh.embed import components
    from bokeh.layouts import column
    from bokeh.resources import Resources

    eq, dd = _equity_figures(result)
    layout = column(eq, dd, _exposure_figure(result, eq.x_range), _attribution_figure(result),
                    _holding_figure(result), sizing_mode="stretch_width")
    script, div = components(layout)
    figures = metrics_table(result.metrics)
    headline = figures.loc[[f for f in HEADLINE if f in figures.index]]
    js = Resources(mode="inline", components=["bokeh"]).render_js()
    spec = result.spec
    title = (f"qdash book — {spec.get('timeframe', '?')} bars, train {spec.get('train', '?')}, "
             f"trade {spec.get('trade', '?')}")
    page = (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>{js}{script}</head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"{_table(headline.reset_index())}{div}"
        f"<h2>windows</h2><div class='qdash-scroll'>{_table(result.windows)}</div>"
        f"<h2>metrics</h2>{_table(figures.reset_index())}"
        f"{_provenance_html(provenance(result))}</body></html>\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
