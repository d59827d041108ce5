"""The dashboard's trade tab: arm and disarm the paper trader (off by default), the kill switch,
the positions per leg as the exchange reports them, the open orders, the last fills with their
legging time, live PnL against the backtest's over the same bars, and the shortfall summary.

:func:`trade_status` is the model: plain data from a :class:`~qdash.trade.PaperTrader` (and,
when given, its comparison with the backtest); :class:`TradePanel` only draws it. The trader
trades the monitor's live session (same bars, same :class:`~qdash.analytics.PairState`) on the
exchange its feed reads, with the key and secret of ``$QDASH_API_KEY``/``$QDASH_API_SECRET``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable

import ipywidgets as w
import pandas as pd

from ..binance.order_fields import OPEN_STATUSES
from ..errors import QdashError
from .dispatch import Dispatcher
from .monitor import PairMonitor
from .render import fmt
from .tables import frame_html, table

LAST_FILLS = 20


def trade_status(trader, comparison=None) -> dict:
    """What the trade tab shows, as plain data: ``armed``, ``blocked`` (why it does not trade,
    or None), ``positions`` (per leg: the trader's amount and the exchange's), ``open_orders``
    (its orders not final), ``fills`` (the last :data:`LAST_FILLS`, with the legging time of
    the entry/exit they belong to), ``pnl`` (paper and backtest net PnL over the round trips
    since the trader's first entry; quote currency), ``shortfall`` (the summary),
    ``decisions`` (entries and exits the rule decided) and ``refused`` (entries the rule
    refused: ``beta``, the hedge ratio outside its band; ``stop``, |z| past the stop)."""
    legging_ms = {rec["bar_ms"]: rec.get("legging_ms") for rec in trader.leggings}
    positions = [{"symbol": s, "trader": trader.amount[s],
                  "exchange": trader.positions[s].amount if s in trader.positions else None,
                  "entry_price": trader.positions[s].entry_price if s in trader.positions
                  else None} for s in (trader.y, trader.x)]
    orders = [{k: o.get(k) for k in ("client_id", "symbol", "side", "type", "qty", "price",
                                     "status", "filled")}
              for o in trader.orders_frame().to_dict("records")
              if o.get("status") in OPEN_STATUSES]
    fills = [{"time": pd.Timestamp(f["time_ms"], unit="ms", tz="UTC"), "symbol": f["symbol"],
              "side": f["side"], "qty": f["qty"], "price": f["price"],
              "commission": f["commission"], "legging_ms": legging_ms.get(f["signal_bar_ms"])}
             for f in trader.fills[-LAST_FILLS:]]
    pnl = {"paper": math.nan, "backtest": math.nan, "round_trips": 0}
    summary = None
    if comparison is not None:
        trips, bt = comparison.trips, comparison.backtest.trades
        if len(trips):
            since = trips["entry_time"].min()
            pnl = {"paper": float(trips["net_pnl"].sum()),
                   "backtest": float(bt.loc[bt["entry_time"] >= since, "net_pnl"].sum()),
                   "round_trips": len(trips)}
        summary = comparison.summary
    return {"armed": trader.armed, "blocked": trader.blocked, "positions": positions,
            "open_orders": orders, "fills": fills, "pnl": pnl, "shortfall": summary,
            "decisions": len(trader.decisions), "refused": dict(trader.rule.refused),
            "errors": list(trader.errors[-5:])}


class TradePanel:
    """The trade tab of ``monitor``; ``say(text, level)`` reports in the status line."""

    def __init__(self, monitor: PairMonitor, dispatch: Dispatcher,
                 say: Callable[[str, str], None]):
        self.monitor, self.say, self.trader = monitor, say, None
        self.arm = w.ToggleButton(value=False, description="armed: off", icon="power-off",
                                  tooltip="send the signal's entries and exits as orders")
        self.kill = w.Button(description="kill switch", button_style="danger",
                             tooltip="cancel every open order and flatten both legs")
        self.refresh_button = w.Button(description="refresh")
        self.body = w.HTML()
        dispatch.on(self.arm, lambda change: self.set_armed(change["new"]))
        dispatch.click(self.kill, self.flatten)
        dispatch.click(self.refresh_button, self.refresh)

    def widget(self) -> w.Widget:
        return w.VBox([w.HBox([self.arm, self.kill, self.refresh_button]), self.body])

    async def set_armed(self, on: bool) -> None:
        """Arm (creating and starting the trader on the live session the first time) or
        disarm."""
        self.arm.description = f"armed: {'on' if on else 'off'}"
        if not on:
            if self.trader is not None:
                self.trader.disarm()
            return self.refresh()
        session = self.monitor.session
        if session is None:
            self.arm.value = False
            return self.say("the trader trades the live session: start one first", "warn")
        if self.trader is None:
            from ..trade import PaperTrader

            try:
                self.trader = PaperTrader(
                    self.monitor.y, self.monitor.x, entry=self.monitor.entry_z,
                    exit=self.monitor.exit_z, stop=self.monitor.stop_z or None,
                    rest_url=session.feed.rest_url, ws_url=session.feed.ws_url,
                    store=self.monitor.store).attach(session)
                await self.trader.start()
            except QdashError as e:
                self.trader, self.arm.value = None, False
                return self.say(f"trader not started: {e}", "error")
        self.trader.arm()
        self.say(f"paper trader armed on {self.trader.pair}", "ok")
        self.refresh()

    async def flatten(self) -> None:
        if self.trader is None:
            return self.say("no trader: nothing to flatten", "info")
        rec = await self.trader.flatten()
        self.arm.value = False
        self.say(f"kill switch: {rec['outcome']} in {rec['seconds'] * 1000:.0f} ms", "warn")
        self.refresh()

    def refresh(self) -> None:
        """Draw :func:`trade_status`, with the backtest over the candles on screen."""
        if self.trader is None:
            self.body.value = "<i>not armed: the trader starts when armed</i>"
            return
        comparison = None
        by, bx = self.monitor.backtest_candles()
        if self.trader.leggings and min(len(by), len(bx)) > self.trader.spec.warmup_bars:
            from ..trade.replay import against_backtest

            comparison = against_backtest(self.trader, by, bx)
        self.body.value = status_html(trade_status(self.trader, comparison))


def status_html(s: dict) -> str:
    """The trade tab's body from :func:`trade_status`."""
    head = table([("armed", fmt(s["armed"])), ("blocked", html.escape(s["blocked"] or "–")),
                  ("decisions (entries and exits)", fmt(s["decisions"])),
                  ("entries refused: hedge ratio outside its band / past the stop",
                   f"{s['refused']['beta']} / {s['refused']['stop']}"),
                  ("paper PnL", fmt(s["pnl"]["paper"])),
                  ("backtest PnL (same bars)", fmt(s["pnl"]["backtest"])),
                  *(((k, fmt(v)) for k, v in s["shortfall"].items()) if s["shortfall"]
                    else ())], "qdash-trade-status")
    return (head + "<b>positions</b>" + frame_html(pd.DataFrame(s["positions"]),
                                                   "qdash-trade-positions")
            + "<b>open orders</b>" + frame_html(pd.DataFrame(s["open_orders"]),
                                                "qdash-trade-orders")
            + "<b>last fills</b>" + frame_html(pd.DataFrame(s["fills"]), "qdash-trade-fills")
            + "".join(f"<div style='color:#b00020'>{html.escape(e)}</div>"
                      for e in s["errors"]))
