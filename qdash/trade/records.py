"""What the paper trader did, kept in memory and written to the store: its orders (as sent and
as last reported), its fills (each once, by symbol and trade id), its legs' position changes
and each entry or exit's legging record; every row with the signal bar that caused it
(:mod:`qdash.store.orders` owns the tables). No row holds a key or a secret."""

from __future__ import annotations

import pandas as pd

from ..binance.order_updates import Fill, OrderUpdate, Position
from ..store.orders import ORDER_COLUMNS
from .ids import parse_client_id


class TradeRecords:
    """The records of the trader of ``pair`` (client-id ``prefix``), stored in ``store`` (a
    :class:`~qdash.store.Store`, or None: memory only)."""

    def __init__(self, pair: str, prefix: str, store=None):
        self.pair, self.prefix, self.store = pair, prefix, store
        self.orders: dict[str, dict] = {}               # client id -> the order row
        self.fills: list[dict] = []
        self.leggings: list[dict] = []
        self._trade_ids: set[tuple[str, int]] = set()

    def order_sent(self, row: dict) -> None:
        """An order as sent (``trade_orders`` columns)."""
        self.orders[row["client_id"]] = row
        if self.store is not None:
            self.store.orders.add_order(row)

    def order_refused(self, client_id: str, error: str) -> None:
        self.orders[client_id].update(status="REJECTED", error=error)
        if self.store is not None:
            self.store.orders.update_order(client_id, status="REJECTED", filled=0.0,
                                           error=error)

    def order_state(self, u: OrderUpdate) -> None:
        """The order's state, unless an older report than one already kept."""
        row = self.orders.get(u.client_id)
        if row is None or not (u.filled >= row["filled"] or u.final):
            return
        row.update(order_id=u.order_id, status=u.status, filled=u.filled,
                   avg_price=u.avg_price or None, updated_ms=u.time_ms)
        if self.store is not None:
            self.store.orders.update_order(u.client_id, status=u.status, filled=u.filled,
                                           avg_price=u.avg_price or None, order_id=u.order_id,
                                           updated_ms=u.time_ms)

    def add_fills(self, fills: list[Fill], client_id: str | None = None) -> list[dict]:
        """The trader's fills among ``fills`` not kept yet (their order found by ``client_id``
        or by symbol and order id); returns the rows added."""
        rows = []
        by_order = {(r["symbol"], r.get("order_id")): cid for cid, r in self.orders.items()}
        for f in fills:
            if (f.symbol, f.trade_id) in self._trade_ids:
                continue
            cid = client_id or by_order.get((f.symbol, f.order_id))
            parsed = parse_client_id(cid or "", self.prefix)
            if parsed is None:
                continue
            self._trade_ids.add((f.symbol, f.trade_id))
            rows.append({"symbol": f.symbol, "trade_id": f.trade_id, "client_id": cid,
                         "order_id": f.order_id, "pair": self.pair,
                         "signal_bar_ms": parsed.bar_ms, "side": f.side, "price": f.price,
                         "qty": f.qty, "commission": f.commission,
                         "commission_asset": f.commission_asset, "realized": f.realized,
                         "maker": int(f.maker), "time_ms": f.time_ms})
        self.fills += rows
        if rows and self.store is not None:
            self.store.orders.add_fills(rows)
        return rows

    def position(self, pos: Position, reason: str, time_ms: int,
                 signal_bar_ms: int | None) -> None:
        """A leg's position after a change (``reason``: fill, reconcile, kill)."""
        if self.store is not None:
            self.store.orders.add_position({
                "pair": self.pair, "symbol": pos.symbol, "time_ms": int(time_ms),
                "amount": pos.amount, "entry_price": pos.entry_price, "reason": reason,
                "signal_bar_ms": signal_bar_ms})

    def legging(self, rec: dict) -> None:
        """An entry's or exit's legging record (:meth:`qdash.trade.Legging.record` and the
        decision's fields)."""
        self.leggings.append(rec)
        if self.store is not None:
            self.store.orders.save_legging({"pair": self.pair, "signal_bar_ms": rec["bar_ms"],
                                            **rec})

    @property
    def realized(self) -> float:
        """Realized PnL minus commissions of the fills (quote currency)."""
        return sum(f["realized"] - f["commission"] for f in self.fills)

    def orders_frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.orders.values()), columns=list(ORDER_COLUMNS))
