"""The Book tab's HTML from :class:`~qdash.app.book_model.BookModel`'s plain frames: pure
functions, unit-tested without a browser."""

from __future__ import annotations

import html
import math

import pandas as pd

from .render import fmt

SIDE = {1: "long spread", -1: "short spread", 0: "flat"}
PAIR_HEADERS = ("pair", "β", "half-life (bars)", "weight", "live z", "held side", "rule side",
                "target y", "target x", "held y (net)", "held x (net)")
EXPOSURE_HEADERS = ("symbol", "net target", "net held (book's last bar)", "net held (live)",
                    "order (netted, > 0 buy)", "price move")


def _money(v: float) -> str:
    return "–" if not math.isfinite(v) else f"{v:+,.0f}"


def _table(headers, rows, cls: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (f"<table class='{cls}' style='border-collapse:collapse;font-size:12px'>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def pairs_html(pairs: pd.DataFrame) -> str:
    """The latest window's pairs: β, half-life, weight, live z, sides, target and held notional
    per leg (USDT, > 0 long)."""
    rows = [(html.escape(f"{r.y}/{r.x}"), fmt(r.beta, 3), fmt(r.half_life, 3), fmt(r.weight, 3),
             fmt(r.z, 3), SIDE[int(r.held_side)], SIDE[int(r.side)], _money(r.target_y),
             _money(r.target_x), _money(r.held_y), _money(r.held_x))
            for r in pairs.itertuples()]
    return _table(PAIR_HEADERS, rows, "qdash-book-pairs")


def exposure_html(exposure: pd.DataFrame) -> str:
    """Net exposure per symbol: target against held, and the one order between them (USDT,
    > 0 long / buy)."""
    rows = [(html.escape(r.symbol), _money(r.target), _money(r.held), _money(r.held_live),
             _money(r.order), f"{(r.price_move - 1) * 100:+.2f} %")
            for r in exposure.itertuples()]
    return _table(EXPOSURE_HEADERS, rows, "qdash-book-exposure")


def margin_html(margin: dict, bounds) -> str:
    """The window, equity, gross exposure and the margin ratio (maintenance margin / margin
    balance), at the book's last bar and live."""
    window = ("no window" if bounds is None else
              f"{bounds[0]:%Y-%m-%d %H:%M} → {bounds[1]:%Y-%m-%d %H:%M} UTC")
    return (f"<div class='qdash-book-margin'>latest window: {window} · equity "
            f"{margin['equity']:,.0f} (live {margin['equity_live']:,.0f}) USDT · gross "
            f"{margin['gross']:,.0f} (live {margin['gross_live']:,.0f}) · <b>margin ratio "
            f"{margin['margin_ratio']:.2%} (live {margin['margin_ratio_live']:.2%})</b></div>")
