"""The trade tab's model: plain data from a paper trader, drawn without a socket."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from qdash.analytics.signal import SignalSpec
from qdash.app.trade_panel import status_html, trade_status
from qdash.binance.order_updates import Position
from qdash.trade import PaperTrader

pytestmark = pytest.mark.unit

SECRET = "tabSecret" + "z" * 30


def trader() -> PaperTrader:
    tr = PaperTrader("ETHUSDT", "BTCUSDT", SignalSpec(beta_window=5, z_window=5),
                     rest_url="http://127.0.0.1:1", ws_url="ws://127.0.0.1:1",
                     api_key="tabKey" + "k" * 20, api_secret=SECRET, armed=False)
    tr.amount = {"ETHUSDT": 1.0, "BTCUSDT": -0.05}
    tr.positions = {"ETHUSDT": Position("ETHUSDT", 1.2, 3_000.0)}
    rec = tr.records
    rec.leggings = [{"kind": "entry", "bar_ms": 60_000, "outcome": "filled", "legging_ms": 7}]
    rec.fills = [{"time_ms": 121_000, "symbol": "ETHUSDT", "side": "BUY", "qty": 1.0,
                  "price": 3_000.0, "commission": 1.5, "signal_bar_ms": 60_000}]
    rec.orders = {"a": {"client_id": "a", "symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT",
                        "qty": 0.05, "price": 90_000.0, "status": "NEW", "filled": 0.0},
                  "b": {"client_id": "b", "symbol": "ETHUSDT", "side": "BUY",
                        "type": "MARKET", "qty": 1.0, "price": None, "status": "FILLED",
                        "filled": 1.0}}
    return tr


def test_trade_status_is_plain_data_of_what_the_exchange_and_the_trader_hold():
    t = pd.Timestamp("2026-01-01", tz="UTC")
    comparison = SimpleNamespace(
        trips=pd.DataFrame({"entry_time": [t], "net_pnl": [-3.0]}),
        backtest=SimpleNamespace(trades=pd.DataFrame({
            "entry_time": [t - pd.Timedelta("1h"), t], "net_pnl": [100.0, -2.0]})),
        summary={"mean_shortfall_bps": 0.4, "p95_shortfall_bps": 1.1,
                 "assumed_slippage_bps": 1.0})
    tr = trader()
    tr.rule.refused["beta"] = 3
    s = trade_status(tr, comparison)
    assert s["armed"] is False and s["blocked"] is None
    assert s["decisions"] == 0 and s["refused"] == {"stop": 0, "beta": 3}
    assert s["positions"][0] == {"symbol": "ETHUSDT", "trader": 1.0, "exchange": 1.2,
                                 "entry_price": 3_000.0}
    assert s["positions"][1]["exchange"] is None
    assert [o["client_id"] for o in s["open_orders"]] == ["a"]
    assert s["fills"][0]["legging_ms"] == 7
    # the backtest's PnL over the same bars: from the paper's first entry on
    assert s["pnl"] == {"paper": -3.0, "backtest": -2.0, "round_trips": 1}
    page = status_html(s)
    assert "qdash-trade-positions" in page and "p95_shortfall_bps" in page
    assert "outside its band / past the stop</th><td style='text-align:right'>3 / 0</td>" in page
    assert SECRET not in page and SECRET not in repr(s)


def test_trade_status_without_a_comparison():
    s = trade_status(trader())
    assert s["shortfall"] is None and s["pnl"]["round_trips"] == 0
    assert "qdash-trade-fills" in status_html(s)


def test_arming_without_a_live_session_says_so_and_stays_off():
    import asyncio

    from qdash.app.dispatch import Dispatcher
    from qdash.app.trade_panel import TradePanel

    said = []

    async def main():
        loop = asyncio.get_running_loop()
        monitor = SimpleNamespace(session=None, backtest_candles=lambda: ([], []))
        panel = TradePanel(monitor, Dispatcher(loop, on_error=said.append),
                           lambda text, level: said.append((text, level)))
        panel.refresh()
        await panel.set_armed(True)
        return panel

    panel = asyncio.run(main())
    assert panel.arm.value is False and panel.trader is None
    assert said[-1] == ("the trader trades the live session: start one first", "warn")
    assert "not armed" in panel.body.value
