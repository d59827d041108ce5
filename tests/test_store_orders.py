"""The paper trader's store tables: each row keeps its signal bar; layout 3 stays readable."""

from __future__ import annotations

import sqlite3

import pytest

from qdash.store import Store
from qdash.store.schema import READABLE_VERSIONS, SCHEMA_VERSION

pytestmark = pytest.mark.unit


def test_orders_fills_positions_and_leggings_round_trip(tmp_path):
    with Store(tmp_path / "q.db") as st:
        t = st.orders
        t.add_order({"client_id": "qdabc-1-ey0", "pair": "ETHUSDT/BTCUSDT", "symbol": "ETHUSDT",
                     "leg": "y", "kind": "entry", "side": "BUY", "type": "MARKET", "qty": 1.0,
                     "reduce_only": 0, "signal_bar_ms": 60_000, "sent_ms": 120_001})
        t.update_order("qdabc-1-ey0", status="FILLED", filled=1.0, avg_price=2_000.5,
                       order_id=7, updated_ms=120_003)
        t.update_order("qdabc-1-ey0", status="FILLED", filled=0.4)  # an older event: kept max
        fill = {"symbol": "ETHUSDT", "trade_id": 11, "client_id": "qdabc-1-ey0", "order_id": 7,
                "pair": "ETHUSDT/BTCUSDT", "signal_bar_ms": 60_000, "side": "BUY",
                "price": 2_000.5, "qty": 1.0, "commission": 1.0, "commission_asset": "USDT",
                "realized": 0.0, "maker": 0, "time_ms": 120_003}
        assert t.add_fills([fill, fill]) == 1
        t.add_position({"pair": "ETHUSDT/BTCUSDT", "symbol": "ETHUSDT", "time_ms": 120_003,
                        "amount": 1.0, "entry_price": 2_000.5, "reason": "fill",
                        "signal_bar_ms": 60_000})
        t.save_legging({"pair": "ETHUSDT/BTCUSDT", "signal_bar_ms": 60_000, "kind": "entry",
                        "outcome": "filled", "legging_ms": 12})
        orders = t.frame("trade_orders")
        assert orders.loc[0, ["status", "filled", "avg_price", "order_id"]].tolist() == [
            "FILLED", 1.0, 2_000.5, 7]
        assert t.frame("trade_fills", "ETHUSDT/BTCUSDT")["signal_bar_ms"].tolist() == [60_000]
        assert t.frame("trade_positions")["amount"].tolist() == [1.0]
        assert t.frame("trade_leggings")["legging_ms"].tolist() == [12]
        assert t.frame("trade_fills", "SOLUSDT/BTCUSDT").empty


def test_a_layout_3_store_reads_its_trade_tables_as_empty_and_migrates(tmp_path):
    path = tmp_path / "v3.db"
    assert SCHEMA_VERSION == 4 and 3 in READABLE_VERSIONS
    with Store(path) as st:
        conn = st.connection()
        for table in ("trade_orders", "trade_fills", "trade_positions", "trade_leggings"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("PRAGMA user_version=3")
    with Store(path, readonly=True) as ro:
        assert ro.orders.frame("trade_orders").empty
    with Store(path) as st:
        st.orders.save_legging({"pair": "A/B", "signal_bar_ms": 1, "kind": "exit"})
        assert len(st.orders.frame("trade_leggings")) == 1
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 4
