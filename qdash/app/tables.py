"""HTML the dashboard's panels show: key/value tables, frames, CSV download links. Pure:
values in, markup out (text is escaped)."""

from __future__ import annotations

import base64
import html

import pandas as pd


def table(rows: list[tuple[str, str]], cls: str = "qdash-stats") -> str:
    """A two-column table; keys are escaped, values are markup."""
    body = "".join(f"<tr><th style='text-align:left;padding-right:12px'>{html.escape(k)}</th>"
                   f"<td style='text-align:right'>{v}</td></tr>" for k, v in rows)
    return f"<table class='{cls}' style='font-size:12px'>{body}</table>"


def frame_html(df: pd.DataFrame | None, cls: str, max_rows: int = 50) -> str:
    """The last ``max_rows`` rows of ``df`` in a scrolling box ("none yet" when empty)."""
    if df is None or not len(df):
        return f"<div class='{cls}'><i>none yet</i></div>"
    return (f"<div class='{cls}' style='max-height:260px;overflow:auto;font-size:12px'>"
            + df.tail(max_rows).to_html(classes=cls, border=0, float_format=lambda v: f"{v:,.6g}")
            + "</div>")


def csv_link(name: str, df: pd.DataFrame) -> str:
    """A download link carrying ``df`` as CSV (:func:`qdash.io.to_csv`) in a data: URL."""
    from ..io import to_csv

    data = base64.b64encode((to_csv(df) or "").encode()).decode()
    return (f"<a download='{html.escape(name)}' href='data:text/csv;base64,{data}' "
            f"style='margin-right:14px'>⬇ {html.escape(name)} ({len(df):,} rows)</a>")


def notes_html(notes: list[str]) -> str:
    """Warnings under a table, one line each."""
    return "".join(f"<div style='color:#b36b00'>{html.escape(n)}</div>" for n in notes)
