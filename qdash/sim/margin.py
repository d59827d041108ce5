"""Positions and margin on the simulated exchange, by Binance's USDⓈ-M formulas (one-way mode).

* A fill of signed quantity ``q`` (base units, + buy) at ``price`` moves a position of signed
  amount ``amt`` and entry ``ep``: adding to it averages the entry (quantity-weighted); reducing
  it realizes ``(price − ep)·closed`` for a long (``(ep − price)·closed`` for a short); a fill
  that flips it opens the rest at ``price``.
* Unrealized PnL at mark ``m``: ``amt · (m − ep)``.
* Maintenance margin of notional ``N`` (USDT, ``|amt|·m``): ``N · rate − cum`` of the leverage
  bracket holding ``N`` (``GET /fapi/v1/leverageBracket``; ``cum`` makes it continuous).
* Liquidation price (Binance's formula for one position; cross margin counts the other
  positions' maintenance ``tmm`` and unrealized ``upnl``, isolated margin its own wallet):
  ``LP = (WB − TMM1 + UPNL1 + cum − s·|amt|·ep) / (|amt|·rate − s·|amt|)``, ``s`` = +1 long,
  −1 short. A position is liquidated when its margin balance falls to its maintenance margin,
  which is exactly when the mark reaches ``LP``.
"""

from __future__ import annotations

from dataclasses import dataclass

# (notional cap USDT, maintenance rate, max leverage) per bracket, Binance's typical tables
_BTC = ((50e3, 0.004, 125), (250e3, 0.005, 100), (3e6, 0.01, 50), (15e6, 0.025, 20),
        (30e6, 0.05, 10), (80e6, 0.1, 5), (100e6, 0.125, 4), (200e6, 0.15, 3),
        (300e6, 0.25, 2), (500e6, 0.5, 1))
_ETH = ((50e3, 0.005, 100), (250e3, 0.0065, 75), (2e6, 0.01, 50), (10e6, 0.02, 25),
        (20e6, 0.05, 10), (50e6, 0.1, 5), (100e6, 0.125, 4), (200e6, 0.15, 3),
        (500e6, 0.25, 2))
_ALT = ((5e3, 0.01, 50), (25e3, 0.025, 20), (100e3, 0.05, 10), (250e3, 0.1, 5),
        (1e6, 0.125, 2), (5e6, 0.5, 1))
LIQUIDATION_FEE = 0.0125  # exchangeInfo's liquidationFee: a share of the liquidated notional


@dataclass(frozen=True)
class Bracket:
    """One leverage bracket: notional (floor, cap], maintenance ``rate``, ``cum`` amount."""

    bracket: int
    floor: float
    cap: float
    rate: float
    cum: float
    max_leverage: int


def brackets(symbol: str) -> list[Bracket]:
    """The symbol's leverage brackets, ``cum`` accumulated so maintenance is continuous."""
    table = _BTC if symbol == "BTCUSDT" else _ETH if symbol == "ETHUSDT" else _ALT
    out, floor, cum, prev_rate = [], 0.0, 0.0, 0.0
    for i, (cap, rate, lev) in enumerate(table, 1):
        cum += floor * (rate - prev_rate)
        out.append(Bracket(i, floor, cap, rate, cum, lev))
        floor, prev_rate = cap, rate
    return out


def bracket_of(symbol: str, notional: float) -> Bracket:
    """The bracket holding ``notional`` (USDT)."""
    table = brackets(symbol)
    return next((b for b in table if notional <= b.cap), table[-1])


def maintenance(symbol: str, notional: float) -> float:
    """Maintenance margin (USDT) of a position of ``notional`` (USDT, ≥ 0)."""
    b = bracket_of(symbol, notional)
    return max(0.0, notional * b.rate - b.cum)


@dataclass
class Position:
    """One symbol's position: signed ``amt`` (base units, + long), ``entry`` price, ``realized``
    PnL (USDT, since opened), ``leverage``, ``margin_type`` (CROSSED/ISOLATED) and the isolated
    ``wallet`` (USDT, isolated margin only)."""

    symbol: str
    amt: float = 0.0
    entry: float = 0.0
    realized: float = 0.0
    leverage: int = 20
    margin_type: str = "CROSSED"
    wallet: float = 0.0
    update_time: int = 0

    def fill(self, qty: float, price: float) -> float:
        """Apply a fill of signed ``qty`` at ``price``; returns the realized PnL (USDT)."""
        amt = self.amt
        if amt == 0 or (amt > 0) == (qty > 0):
            new = amt + qty
            self.entry = (self.entry * abs(amt) + price * abs(qty)) / abs(new)
            self.amt = new
            return 0.0
        closed = min(abs(qty), abs(amt))
        sign = 1.0 if amt > 0 else -1.0
        realized = sign * (price - self.entry) * closed
        self.realized += realized
        rest = abs(qty) - closed
        self.amt = amt + qty if rest <= 1e-12 else sign * -rest
        if abs(self.amt) <= 1e-12:
            self.amt, self.entry = 0.0, 0.0
        elif rest > 1e-12:
            self.entry = price
        return realized

    def unrealized(self, mark: float) -> float:
        return self.amt * (mark - self.entry)

    def notional(self, mark: float) -> float:
        return abs(self.amt) * mark

    def maint(self, mark: float) -> float:
        return maintenance(self.symbol, self.notional(mark))

    def initial(self, mark: float) -> float:
        return self.notional(mark) / self.leverage


def liquidation_price(pos: Position, wallet: float, other_maint: float = 0.0,
                      other_upnl: float = 0.0) -> float:
    """Binance's liquidation price of ``pos`` (0 when flat or when no price liquidates it):
    ``wallet`` is the cross wallet (cross margin, with the other positions' maintenance and
    unrealized PnL) or the position's isolated wallet."""
    if pos.amt == 0:
        return 0.0
    size, side = abs(pos.amt), (1.0 if pos.amt > 0 else -1.0)
    fallback = 0.0
    for b in brackets(pos.symbol):  # the bracket that holds the notional at the price found
        lp = (wallet - other_maint + other_upnl + b.cum - side * size * pos.entry) / (
            size * b.rate - side * size)
        if b.floor < size * lp <= b.cap:
            return max(lp, 0.0)
        if b.floor < size * pos.entry <= b.cap:
            fallback = lp
    return max(fallback, 0.0)
