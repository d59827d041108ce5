"""The paper trader: the one signal traded on both legs of a pair, on an exchange that speaks
Binance's protocol (the simulator by default).

| module | what |
|---|---|
| :mod:`.rule` | the backtest's rule one closed bar at a time (:class:`SignalRule`) |
| :mod:`.sizing` | both legs' quantities, rounded, min notional checked (:func:`size_entry`) |
| :mod:`.legging` | both legs filled: market/limit, chase, unwind (:class:`Legging`) |
| :mod:`.reconcile` | what the trader holds, from what the exchange says |
| :mod:`.ids` | the trader's client order ids (pair, signal bar, leg) |
| :mod:`.account` | the signed REST calls and the user-data stream (:class:`Account`) |
| :mod:`.trader` | :class:`PaperTrader`, beside a :class:`~qdash.live.LiveSession` |
| :mod:`.shortfall` | paper round trips against the backtest's on the same bars |
"""

from .legging import Legging, LeggingPolicy
from .reconcile import Reconciliation, reconcile
from .rule import Decision, SignalRule
from .sizing import LegSizes, size_entry
from .trader import PaperTrader

__all__ = ["Decision", "LegSizes", "Legging", "LeggingPolicy", "PaperTrader", "Reconciliation",
           "SignalRule", "reconcile", "size_entry"]
