"""A symbol's trading filters from ``exchangeInfo`` (PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE,
MIN_NOTIONAL, PERCENT_PRICE), and rounding to them: one definition for the simulator that
enforces them and the traders that respect them.

Prices and quantities are floats in the symbol's quote (USDT) and base units; rounding is done on
integer multiples of the tick/step so that ``round_qty(0.3, 0.1)`` is ``0.3`` and not
``0.30000000000000004``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SymbolFilters:
    """The filters of one symbol. ``min_notional`` is in USDT; ``percent_up``/``percent_down`` are
    the PERCENT_PRICE multipliers of the mark price (e.g. 1.05 / 0.95)."""

    symbol: str
    tick_size: float
    min_price: float
    max_price: float
    step_size: float
    min_qty: float
    max_qty: float
    market_step_size: float
    market_min_qty: float
    market_max_qty: float
    min_notional: float
    percent_up: float
    percent_down: float
    price_decimals: int
    qty_decimals: int

    @classmethod
    def from_exchange_info(cls, entry: dict) -> SymbolFilters:
        """Parse one ``symbols`` entry of ``GET /fapi/v1/exchangeInfo``."""
        f = {x["filterType"]: x for x in entry["filters"]}
        price, lot = f["PRICE_FILTER"], f["LOT_SIZE"]
        market = f.get("MARKET_LOT_SIZE", lot)
        pct = f.get("PERCENT_PRICE", {"multiplierUp": "inf", "multiplierDown": "0"})
        return cls(
            symbol=entry["symbol"], tick_size=float(price["tickSize"]),
            min_price=float(price["minPrice"]), max_price=float(price["maxPrice"]),
            step_size=float(lot["stepSize"]), min_qty=float(lot["minQty"]),
            max_qty=float(lot["maxQty"]), market_step_size=float(market["stepSize"]),
            market_min_qty=float(market["minQty"]), market_max_qty=float(market["maxQty"]),
            min_notional=float(f.get("MIN_NOTIONAL", {"notional": "0"})["notional"]),
            percent_up=float(pct["multiplierUp"]), percent_down=float(pct["multiplierDown"]),
            price_decimals=int(entry.get("pricePrecision", 8)),
            qty_decimals=int(entry.get("quantityPrecision", 8)))

    def round_qty(self, qty: float, market: bool = False) -> float:
        """``qty`` (base units, >= 0) rounded *down* to the (market) step size."""
        return round_down(qty, self.market_step_size if market else self.step_size,
                          self.qty_decimals)

    def round_price(self, price: float) -> float:
        """``price`` rounded to the nearest tick."""
        return round(round(price / self.tick_size) * self.tick_size, self.price_decimals)


def round_down(value: float, step: float, decimals: int = 8) -> float:
    """The largest multiple of ``step`` that is <= ``value`` (``value`` >= 0), to ``decimals``."""
    n = math.floor(value / step + 1e-9)
    return round(n * step, decimals)


def filters_by_symbol(exchange_info: dict) -> dict[str, SymbolFilters]:
    """Every symbol's filters from a whole ``exchangeInfo`` response."""
    return {s["symbol"]: SymbolFilters.from_exchange_info(s) for s in exchange_info["symbols"]}
