"""The paper trader's tables: its orders, their fills, the positions of its legs, and each entry
or exit's legging (``store.orders``).

Every row names the pair (``"Y/X"``) and the signal bar that caused it (``signal_bar_ms``, the
bar's open time). Times are int ms UTC; quantities base units (fills: > 0, their ``side`` says
which way; positions: signed), prices quote currency. No row holds a key or a secret: the
columns are declared here and none is one.

* ``trade_orders``: one row per order (``client_id``): what was sent (``leg`` y/x, ``kind``
  entry/exit/kill/unwind, ``side``, ``type``, ``qty``, ``price``, ``reduce_only``, ``sent_ms``)
  and its last known state (``order_id``, ``status``, ``filled``, ``avg_price``,
  ``updated_ms``; ``error``: Binance's code and message when it was refused).
* ``trade_fills``: one row per fill (``symbol``, ``trade_id``), with its commission and realized
  PnL.
* ``trade_positions``: a leg's position after a change (``reason`` fill/reconcile/kill).
* ``trade_leggings``: per entry/exit (``kind``), the outcome, legging time and price, each leg's
  fill price, quantity and shortfall (bps), fees (quote) and the problem when it failed.
"""

from __future__ import annotations

import sqlite3

import pandas as pd

from .connection import StoreFile

ORDER_COLUMNS = ("client_id", "pair", "symbol", "leg", "kind", "side", "type", "qty", "price",
                 "reduce_only", "signal_bar_ms", "sent_ms", "order_id", "status", "filled",
                 "avg_price", "updated_ms", "error")
FILL_COLUMNS = ("symbol", "trade_id", "client_id", "order_id", "pair", "signal_bar_ms", "side",
                "price", "qty", "commission", "commission_asset", "realized", "maker", "time_ms")
POSITION_COLUMNS = ("pair", "symbol", "time_ms", "amount", "entry_price", "reason",
                    "signal_bar_ms")
LEGGING_COLUMNS = ("pair", "signal_bar_ms", "kind", "outcome", "reason", "legging_ms",
                   "legging_bps", "first_leg", "price_y", "price_x", "filled_y", "filled_x",
                   "shortfall_bps_y", "shortfall_bps_x", "fees", "problem")
TABLES = {"trade_orders": ORDER_COLUMNS, "trade_fills": FILL_COLUMNS,
          "trade_positions": POSITION_COLUMNS, "trade_leggings": LEGGING_COLUMNS}


def _insert(table: str, columns: tuple[str, ...], verb: str = "INSERT") -> str:
    return (f"{verb} INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})")


class TradeTables:
    """``store.orders``: the paper trader's tables of one store. Rows are mappings with the
    columns above (missing ones are NULL); each write is one transaction."""

    def __init__(self, store: StoreFile):
        self._store = store

    def _write(self, table: str, rows: list[dict], verb: str = "INSERT") -> int:
        cols = TABLES[table]
        return self._store.execute_many(_insert(table, cols, verb),
                                        [tuple(r.get(c) for c in cols) for r in rows])

    def add_order(self, row: dict) -> None:
        """An order as sent (``status`` NEW unless given)."""
        self._write("trade_orders", [{"status": "NEW", "filled": 0.0, **row}],
                    "INSERT OR REPLACE")

    def update_order(self, client_id: str, *, status: str, filled: float,
                     avg_price: float | None = None, order_id: int | None = None,
                     updated_ms: int | None = None, error: str | None = None) -> None:
        """The order's last known state (the newest of what the stream and REST said)."""
        self._store.execute_many(
            "UPDATE trade_orders SET status = ?, filled = MAX(filled, ?), "
            "avg_price = COALESCE(?, avg_price), order_id = COALESCE(?, order_id), "
            "updated_ms = COALESCE(?, updated_ms), error = COALESCE(?, error) "
            "WHERE client_id = ?",
            [(status, filled, avg_price, order_id, updated_ms, error, client_id)])

    def add_fills(self, rows: list[dict]) -> int:
        """Fills, each once (a fill seen on the stream and again by REST is kept once)."""
        return self._write("trade_fills", rows, "INSERT OR IGNORE")

    def add_position(self, row: dict) -> None:
        self._write("trade_positions", [row])

    def save_legging(self, row: dict) -> None:
        self._write("trade_leggings", [row], "INSERT OR REPLACE")

    def frame(self, table: str, pair: str | None = None) -> pd.DataFrame:
        """The rows of ``table`` (``trade_orders``, ``trade_fills``, ``trade_positions``,
        ``trade_leggings``), of one ``pair`` or all, in time order. A store of layout 3 (no
        trader tables yet) reads as empty."""
        cols = TABLES[table]
        order = {"trade_orders": "sent_ms, client_id", "trade_fills": "time_ms, trade_id",
                 "trade_positions": "id", "trade_leggings": "signal_bar_ms, kind"}[table]
        where, params = ("WHERE pair = ?", (pair,)) if pair else ("", ())
        try:
            rows = self._store.connection().execute(
                f"SELECT {', '.join(cols)} FROM {table} {where} ORDER BY {order}",
                params).fetchall()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                rows = []
            else:
                raise
        return pd.DataFrame.from_records(rows, columns=list(cols))
