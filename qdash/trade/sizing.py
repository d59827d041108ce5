"""Both legs' order quantities: the backtest's sizing (:func:`qdash.backtest.kernel.entry_size`)
rounded to each symbol's market step size, with the minimum quantity and notional checked.

A leg that falls below its symbol's minimum makes the whole entry impossible (a pair with one
leg is no hedge): :attr:`LegSizes.problem` says which leg, by how much, and nothing is sent.
Exits are reduce-only and close what the exchange holds, which Binance accepts below the minimum
notional.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..backtest import kernel as K
from ..binance.filters import SymbolFilters


@dataclass(frozen=True)
class LegSizes:
    """Signed quantities to trade on each leg (base units, rounded), their notionals at the
    decision's prices (quote currency), and ``problem``: why the entry cannot be sent (None when
    it can)."""

    qty_y: float
    qty_x: float
    notional_y: float
    notional_x: float
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _leg(q: float, price: float, f: SymbolFilters, leg: str) -> tuple[float, float, str | None]:
    """(rounded signed quantity, its notional, the problem or None) of one leg."""
    qty = f.round_qty(abs(q), market=True)
    notional = qty * price
    if qty < f.market_min_qty or qty <= 0:
        return 0.0, 0.0, (f"leg {leg} ({f.symbol}): {abs(q):.8g} rounds to {qty:g}, below the "
                          f"minimum quantity {f.market_min_qty:g}")
    if qty > f.market_max_qty:
        return 0.0, 0.0, (f"leg {leg} ({f.symbol}): {qty:g} is above the maximum market "
                          f"quantity {f.market_max_qty:g}")
    if notional < f.min_notional:
        return 0.0, 0.0, (f"leg {leg} ({f.symbol}): notional {notional:.2f} USDT is below its "
                          f"minimum notional {f.min_notional:g} USDT")
    return (qty if q > 0 else -qty), notional, None


def size_entry(side: int, beta: float, price_y: float, price_x: float, equity: float, *,
               allocation: float, leverage: float, log_beta: bool, filters_y: SymbolFilters,
               filters_x: SymbolFilters) -> LegSizes:
    """The legs of an entry on ``side`` (+1 long spread: buy y, sell β·x; −1 the reverse) with
    hedge ratio ``beta`` at the decision's closes, for ``equity`` (quote currency) at
    ``allocation`` × ``leverage`` gross notional, as :func:`qdash.backtest.kernel.simulate`
    sizes it (``log_beta``: β is an elasticity on log prices)."""
    qy, qx = K.entry_size(side, beta, price_y, price_x, equity, allocation, leverage, log_beta)
    if qy == 0.0:
        return LegSizes(0.0, 0.0, 0.0, 0.0, f"no equity to size an entry ({equity:.2f} USDT)")
    ry, ny, py_problem = _leg(qy, price_y, filters_y, "y")
    rx, nx, px_problem = _leg(qx, price_x, filters_x, "x")
    problem = "; ".join(p for p in (py_problem, px_problem) if p) or None
    return LegSizes(ry, rx, ny, nx, problem)
