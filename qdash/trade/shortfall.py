"""The paper trader's round trips, and how far they fell from the backtest's on the same bars.

Paper round trips pair each filled entry with the exit that follows it (:func:`round_trips`).
Times follow the backtest's convention: a decision at bar t's close fills in bar t+1, whose open
time is the trade's ``entry_time``/``exit_time``; a kill switch (the end of a replay) closes in
the bar it is pulled in, as the backtest's ``end_of_data`` exit does. :func:`shortfall` joins
them with the backtest's trades on ``entry_time``: one row per round trip of either, with

* ``backtest_pnl``, ``paper_pnl``: net PnL (quote currency; the paper's after its commissions);
* ``entry_shortfall_bps``, ``exit_shortfall_bps``: what the paper's fills cost against the
  backtest's fill prices, notional-weighted over both legs (bps, positive = the paper paid more);
* ``legging_ms``: the entry's and the exit's legging time added;
* ``fees_diff``: the paper's commissions minus the backtest's fees (quote currency);
* ``why``: empty when both made the trip on the same bars, else why they differ (a leg below
  min notional, a fill that completed a bar later, an exit on another bar, no such trade).

:func:`summary` gives the mean and p95 shortfall next to the slippage the backtest assumed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

SHORTFALL_COLUMNS = ["entry_time", "exit_time", "backtest_pnl", "paper_pnl",
                     "entry_shortfall_bps", "exit_shortfall_bps", "legging_ms", "fees_diff",
                     "why"]
TRIP_COLUMNS = ["entry_time", "exit_time", "side", "qty_y", "qty_x", "entry_price_y",
                "entry_price_x", "exit_price_y", "exit_price_x", "pnl_y", "pnl_x", "fees",
                "net_pnl", "entry_legging_ms", "exit_legging_ms", "exit_reason", "late"]


def _ts(ms) -> pd.Timestamp:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC")


def _fees(fills: pd.DataFrame, bar_ms: int) -> float:
    if fills.empty:
        return 0.0
    return float(fills.loc[fills["signal_bar_ms"] == bar_ms, "commission"].sum())


def round_trips(leggings: list[dict], fills: pd.DataFrame, tf_ms: int) -> pd.DataFrame:
    """The paper's round trips (:data:`TRIP_COLUMNS`) from the trader's legging records and
    fills: each filled entry with the next filled exit. ``late`` is True when a legging
    completed after the end of the bar it was meant to fill in (its ``market_ms``)."""
    rows, entry = [], None
    for rec in leggings:
        if rec["kind"] == "entry" and rec["outcome"] == "filled":
            entry = rec
        elif rec["kind"] in ("exit", "kill") and rec["outcome"] == "filled" and entry:
            qy, qx = entry["filled_y"], entry["filled_x"]
            pnl_y = qy * (rec["price_y"] - entry["price_y"])
            pnl_x = qx * (rec["price_x"] - entry["price_x"])
            fees = _fees(fills, entry["bar_ms"]) + _fees(fills, rec["bar_ms"])
            late = any((r.get("market_ms") or 0) >= r["bar_ms"] + 2 * tf_ms
                       for r in (entry, rec))
            rows.append({"entry_time": _ts(entry["bar_ms"] + tf_ms),
                         "exit_time": _ts(rec["bar_ms"] + (tf_ms if rec["kind"] == "exit"
                                                           else 0)), "side": entry["side"],
                         "qty_y": qy, "qty_x": qx, "entry_price_y": entry["price_y"],
                         "entry_price_x": entry["price_x"], "exit_price_y": rec["price_y"],
                         "exit_price_x": rec["price_x"], "pnl_y": pnl_y, "pnl_x": pnl_x,
                         "fees": fees, "net_pnl": pnl_y + pnl_x - fees,
                         "entry_legging_ms": entry["legging_ms"],
                         "exit_legging_ms": rec["legging_ms"], "exit_reason": rec["reason"],
                         "late": late})
            entry = None
    return pd.DataFrame(rows, columns=TRIP_COLUMNS)


def _cost_bps(qty: list[float], paper: list[float], ref: list[float], sign: float) -> float:
    """Notional-weighted cost of fills at ``paper`` against ``ref`` for signed quantities
    ``qty`` traded (``sign`` −1 for the closing side), bps, positive = paid."""
    num = sum(sign * q * (p - r) for q, p, r in zip(qty, paper, ref))
    den = sum(abs(q) * r for q, r in zip(qty, ref))
    return num / den * 1e4 if den > 0 else math.nan


def shortfall(paper: pd.DataFrame, backtest: pd.DataFrame, leggings: list[dict],
              tf_ms: int) -> pd.DataFrame:
    """One row per round trip of the paper (:func:`round_trips`) or the backtest (its
    ``trades``), joined on ``entry_time`` (:data:`SHORTFALL_COLUMNS`)."""
    refused = {_ts(r["bar_ms"] + tf_ms): r.get("problem") or r["outcome"]
               for r in leggings if r["kind"] == "entry" and r["outcome"] != "filled"}
    bt = backtest.set_index("entry_time")
    pp = paper.set_index("entry_time")
    rows = []
    for t in sorted(set(bt.index) | set(pp.index)):
        b = bt.loc[t] if t in bt.index else None
        p = pp.loc[t] if t in pp.index else None
        row = dict.fromkeys(SHORTFALL_COLUMNS, math.nan)
        row.update(entry_time=t, why="")
        if b is not None:
            row.update(exit_time=b["exit_time"], backtest_pnl=b["net_pnl"])
        if p is not None:
            row.update(exit_time=p["exit_time"], paper_pnl=p["net_pnl"],
                       legging_ms=(p["entry_legging_ms"] or 0) + (p["exit_legging_ms"] or 0))
        if b is None:
            row["why"] = "the backtest made no trade entering on this bar"
        elif p is None:
            row["why"] = (f"paper: no entry ({refused[t]})" if t in refused else
                          "paper: no entry on this bar (a legging still running or disarmed)")
        else:
            q = [p["qty_y"], p["qty_x"]]
            row["entry_shortfall_bps"] = _cost_bps(
                q, [p["entry_price_y"], p["entry_price_x"]],
                [b["entry_price_y"], b["entry_price_x"]], 1.0)
            row["exit_shortfall_bps"] = _cost_bps(
                q, [p["exit_price_y"], p["exit_price_x"]],
                [b["exit_price_y"], b["exit_price_x"]], -1.0)
            row["fees_diff"] = p["fees"] - b["fees"]
            if p["late"]:
                row["why"] = "a fill completed a bar later"
            elif p["exit_time"] != b["exit_time"]:
                paper = ("closed by the kill switch" if p["exit_reason"] == "kill"
                         else "exit")
                row["why"] = (f"exit on another bar: paper {p['exit_time']} ({paper}), "
                              f"backtest {b['exit_time']} ({b['exit_reason']})")
        rows.append(row)
    return pd.DataFrame(rows, columns=SHORTFALL_COLUMNS)


def summary(table: pd.DataFrame, assumed_slippage_bps: float) -> dict:
    """Mean and p95 of the entry and exit shortfalls (bps, every matched round trip's two
    numbers pooled), their count, the round trips that differ, and the backtest's assumed
    slippage per leg per fill (bps)."""
    v = pd.concat([table["entry_shortfall_bps"], table["exit_shortfall_bps"]]).dropna()
    v = v.to_numpy(dtype=float)
    return {"fills_compared": len(v),
            "mean_shortfall_bps": float(v.mean()) if len(v) else math.nan,
            "p95_shortfall_bps": float(np.percentile(v, 95)) if len(v) else math.nan,
            "assumed_slippage_bps": float(assumed_slippage_bps),
            "round_trips": len(table), "differing": int((table["why"] != "").sum())}
