"""Reconciliation: what the trader holds, from what the exchange says.

At start and after every reconnect the trader reads the account's positions (``positionRisk``),
its open orders and the order history of both legs (``allOrders``), and continues from them, not
from what it remembers. Ownership is decided on the exchange's own record too: the trader's
orders carry its client-id prefix (:mod:`qdash.trade.ids`), so its share of a leg's position is
the net of what its orders filled. Anything else is *foreign*: a position it did not open is
reported and left alone (and while one sits on a leg of the pair the trader does not trade it:
in one-way mode its orders would net against it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..binance import order_fields as F
from ..binance.order_updates import OrderUpdate, Position
from .ids import parse_client_id

TOLERANCE = 1e-9


@dataclass
class Reconciliation:
    """The trader's position as the exchange reports it: ``amount_y``/``amount_x`` (signed base
    units it owns), ``side`` (+1 long spread: long y, short x; −1 short; 0 flat),
    ``entry_bar_ms`` (the signal bar of its last entry, when it holds one), ``own_orders``
    (its orders still open: a legging that died with the process), ``foreign`` (positions it
    did not open, on any symbol), ``notes`` (what a user should read)."""

    amount_y: float = 0.0
    amount_x: float = 0.0
    side: int = 0
    entry_bar_ms: int | None = None
    own_orders: list[OrderUpdate] = field(default_factory=list)
    foreign: list[Position] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def foreign_on(self, symbols) -> list[Position]:
        """Foreign positions on ``symbols`` (the pair's legs)."""
        return [p for p in self.foreign if p.symbol in symbols]


def own_net(history: list[OrderUpdate], symbol: str, prefix: str) -> float:
    """The signed base units the trader's orders (``prefix``) filled on ``symbol``."""
    net = 0.0
    for o in history:
        if o.symbol == symbol and parse_client_id(o.client_id, prefix) is not None:
            net += o.filled if o.side == F.BUY else -o.filled
    return net


def reconcile(positions: list[Position], open_orders: list[OrderUpdate],
              history: list[OrderUpdate], y: str, x: str, prefix: str,
              foreign_before: dict[str, float] | None = None) -> Reconciliation:
    """The trader's state from ``positions`` (every non-zero position of the account),
    ``open_orders`` and ``history`` (orders of ``y`` and ``x``, any status).

    ``foreign_before``: the foreign amounts of the last reconciliation by symbol. In one-way
    mode a foreign position and the trader's net into one; the part that was foreign stays
    foreign. What the exchange holds beyond it is the trader's, up to what its orders filled
    (less when the exchange says so: a liquidation, a manual close)."""
    rec = Reconciliation()
    held = {p.symbol: p for p in positions if abs(p.amount) > TOLERANCE}
    before = foreign_before or {}
    for leg, s in (("y", y), ("x", x)):
        a = held[s].amount if s in held else 0.0
        n = own_net(history, s, prefix)
        mine = a - before.get(s, 0.0)
        owned = math.copysign(min(abs(mine), abs(n)), mine) if mine * n > 0 else 0.0
        setattr(rec, f"amount_{leg}", owned)
        if abs(n - owned) > TOLERANCE:
            rec.notes.append(f"leg {leg} ({s}): the trader's orders filled {n:g} net, the "
                             f"exchange holds {a:g}; continuing from {owned:g}")
        if abs(a - owned) > TOLERANCE:
            p = held.get(s, Position(s, 0.0, 0.0))
            rec.foreign.append(Position(s, a - owned, p.entry_price, p.mark_price))
    for s, p in held.items():
        if s not in (y, x):
            rec.foreign.append(p)
    for p in rec.foreign:
        rec.notes.append(f"position not opened by this trader, left alone: {p.symbol} "
                         f"{p.amount:g} at {p.entry_price:g}")
    ay, ax = rec.amount_y, rec.amount_x
    if ay > 0 or ax < 0:
        rec.side = 1
    elif ay < 0 or ax > 0:
        rec.side = -1
    if rec.side and (ay == 0 or ax == 0 or ay * ax > 0):
        rec.notes.append(f"the trader holds one leg only (y {ay:g}, x {ax:g}): the next exit "
                         "closes it")
    if rec.side:
        entries = [(o.time_ms, cid.bar_ms) for o in history
                   if (cid := parse_client_id(o.client_id, prefix)) is not None
                   and cid.kind == "e" and o.filled > 0]
        rec.entry_bar_ms = max(entries)[1] if entries else None
    for o in open_orders:
        if parse_client_id(o.client_id, prefix) is not None:
            rec.own_orders.append(o)
    return rec
