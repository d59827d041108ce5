"""The stats tab's table and the live status line, as HTML from the session and the monitor.
Pure: nothing here holds state or a widget."""

from __future__ import annotations

import html
import time

import pandas as pd

from ..analytics import check_filters, liquidity_stats
from ..live import LiveSession
from .funding import FundingPoller
from .monitor import PairMonitor
from .render import connection_text, fmt, funding_rows, signal_rows
from .tables import frame_html, table

LIQUIDITY_BARS = 600  # the last bars of each leg the liquidity filters judge


def liquidity_rows(s: LiveSession, monitor: PairMonitor) -> list[tuple[str, str]]:
    """Pass/FAIL of each liquidity filter (the monitor's thresholds) on both legs."""
    legs = {}
    for sym in (monitor.y, monitor.x):
        bars = s.candles[sym].frame().iloc[-LIQUIDITY_BARS:]
        if len(bars) < 2:
            return [("liquidity filters", "waiting for 2 bars per leg")]
        legs[sym] = liquidity_stats(bars, sym, s.tf_ms)
    passed = check_filters(legs[monitor.y], legs[monitor.x], **monitor.filters)
    return [(f"filter {k}", "pass" if ok else "<b style='color:#c62828'>FAIL</b>")
            for k, ok in passed.items()]


def trade_cost_rows(monitor: PairMonitor) -> list[tuple[str, str]]:
    """The cost to trade :attr:`~PairMonitor.cost_notional` USDT on both legs now (the live
    books' walk) against the pair's expected edge; nothing without live books."""
    c = monitor.trade_cost()
    if c is None:
        return []
    thin = "" if c["complete"] else " (book too thin: a lower bound)"
    return [(f"cost to trade {c['notional']:,.0f} USDT / leg now ({c['side']})",
             f"{monitor.y} {c['side_y']} {fmt(c['slip_y_bps'], 3)} bps ({c['levels_y']} "
             f"levels) + {monitor.x} {c['side_x']} {fmt(c['slip_x_bps'], 3)} bps "
             f"({c['levels_x']} levels) = {fmt(c['cost_bps'], 3)} bps{thin}"),
            ("expected edge (|z| − exit)·σ / net of a round trip",
             f"{fmt(c['edge_bps'], 3)} bps / {fmt(c['net_bps'], 3)} bps")]


def funding_status_rows(funding: FundingPoller, now_ms: int) -> list[tuple[str, str]]:
    """Each leg's funding rows, and why the last poll failed (none before the poll started)."""
    if funding.premium is None:
        return []
    rows = funding_rows(funding.premium, now_ms)
    if funding.error:
        rows.append(("funding", f"not available: {html.escape(funding.error)}"))
    return rows


def stats_html(s: LiveSession, m: dict, monitor: PairMonitor, *, comm_messages: int,
               frames: int) -> str:
    """The live statistics (``m``: the session's metrics): signal, β by every estimator,
    stationarity, liquidity, funding, each symbol's tick rate and lag, the feed's counters,
    what the kernel sent."""
    feed = s.feed.stats()
    per = feed.get("symbols", {})
    waiting = s.waiting_for()
    enough = not any(w.startswith("ADF") for w in waiting)
    rows = [
        ("pair", f"{monitor.y} / {monitor.x} ({s.timeframe} bars, log prices)"),
        ("aligned bars (this segment)", f"{fmt(m['bars'])} ({fmt(m['segment_bars'])})"),
        *signal_rows(m, s.state.spec, waiting),
        ("ADF stat / p (stationarity of the OLS spread)",
         f"{fmt(m['adf_stat'], 3)} / {fmt(m['adf_p'], 3)}" if enough else "–"),
        ("Engle–Granger coint p (MacKinnon)", fmt(m["coint_p"], 3) if enough else "–"),
        ("half-life (s)", fmt(m["half_life_s"], 3) if enough else "–"),
        ("Hurst (std of lagged differences)", fmt(m["hurst"], 3) if enough else "–"),
        ("correlation of returns", fmt(m["corr"], 3)),
        ("liquidity score y / x / pair",
         f"{fmt(m['liquidity_y'], 2)} / {fmt(m['liquidity_x'], 2)} / "
         f"{fmt(m['liquidity_pair'], 2)}"),
        *liquidity_rows(s, monitor),
        *trade_cost_rows(monitor),
        *funding_status_rows(monitor.funding, int(time.time() * 1000)),
    ]
    for sym in monitor.watched():
        st = per.get(sym, {})
        rows.append((sym, f"{s.ticks_per_second(sym):,.1f} ticks/s, last tick "
                     f"{fmt(s.last_tick_age_s(sym), 3)} s ago, "
                     f"lag {fmt(st.get('lag_ms'))} ms"))
    if feed:
        rows.append(("feed", f"{fmt(feed.get('messages_per_s'), 4)} msg/s, "
                     f"{fmt(feed.get('reconnects', 0))} reconnects, "
                     f"{fmt(feed.get('gaps_found', 0))} gaps "
                     f"({fmt(feed.get('gaps_filled', 0))} filled)"))
    if feed.get("depth"):
        d = feed["depth"]
        rows.append(("order books", f"{d['synced']}/{len(d['symbols'])} synced, "
                     f"{d['resyncs']} resyncs, {d['snapshots']} REST snapshots"))
    rows.append(("kernel → browser", f"{comm_messages:,} comm messages in {frames:,} frames"))
    note = "".join(f"<div style='color:#b36b00'>waiting: {html.escape(t)}</div>"
                   for t in waiting)
    return note + table(rows)


def stored_stats_html(pa) -> str:
    """The statistics of stored data (:class:`~qdash.analytics.PairAnalytics`)."""
    waiting = pa.state.waiting_for()
    return table(signal_rows(pa.summary, pa.state.spec, waiting) + [
        (k, fmt(v)) for k, v in pa.summary.items() if not isinstance(v, str)])


def live_status(s: LiveSession, m: dict, source: str) -> tuple[str, str]:
    """The status line while live, and its level (``ok``/``warn``): tick rate and bars, or the
    connection's trouble, a failed refresh, a stale leg."""
    rate = sum(s.ticks_per_second(sym) for sym in s.symbols)
    text = (f"live · {source} · {len(s.symbols)} symbols · "
            f"{rate:,.0f} ticks/s · {m['bars']:,} aligned {s.timeframe} bars")
    level = "ok"
    conn = connection_text(s.feed.connection_status())
    if conn:
        text = f"{source}: {conn} · {m['bars']:,} aligned bars so far"
        level = "warn"
    if s.refresh_error:
        text += f" · statistics refresh failed: {s.refresh_error}"
        level = "warn"
    if m["stale"]:
        text += (f" · a leg is stale (no trade for > {s.pair_config.stale_after_s:g} s): "
                 "z-score withheld")
        level = "warn"
    return text, level


def stats_history_html(frame: pd.DataFrame) -> str:
    """The stats-over-time table (:meth:`PairMonitor.stats_history_frame`)."""
    if not len(frame):
        return ""
    return frame_html(frame.drop(columns="ts_ms"), "qdash-stats-history", 30)
