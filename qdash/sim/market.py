"""A seeded, deterministic market generator for the simulated exchange.

Model (per group of symbols; by default all symbols form one group):

* a common stochastic trend ``W`` (Brownian, log-vol ``trend_vol`` per √hour) shared by the group;
* each symbol's log price is ``log p0 + beta * W + s``, where the spread ``s`` is an
  Ornstein-Uhlenbeck process with half-life ``half_life_s`` (seconds) and stationary standard
  deviation ``spread_std`` around a mean ``mu`` — so any two symbols of a group are cointegrated
  with hedge ratio ``beta_a / beta_b`` in log prices;
* regime breaks arrive as a Poisson process (``regimes_per_hour``): each shifts one symbol's
  ``beta`` and spread mean and rescales the volatility of the group;
* taker orders arrive per symbol as a Poisson process (the symbol's share of ``rate`` by its
  weight, and at least ``min_rate`` trades/s when ``rate`` allows) whose rate switches into bursts
  (``burst_multiplier`` times the base rate, mean length ``burst_seconds``); each order fills
  1..k trades at one price (bid for taker sells, ask for taker buys, rounded to the tick size),
  sizes are lognormal rounded to the lot step; the taker side leans with the last price move;
* a small share of ids go to non-market frames: ``NA`` (price and qty 0) and
  ``INSURANCE_FUND`` (price 1–3 % off the market), which consume trade ids like Binance's.

Everything is a function of ``seed`` and the sequence of ``advance(dt_ms)`` calls, so two models
with the same seed and the same steps emit identical trades. Times are int64 ms since the epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .universe import decimals

# X codes used in the generated arrays
X_MARKET, X_NA, X_INSURANCE = 0, 1, 2
X_NAMES = ("MARKET", "NA", "INSURANCE_FUND")

# (reference price, tick size, lot step, share of the total rate)
KNOWN_SYMBOLS = {
    "BTCUSDT": (64_000.0, 0.1, 0.001, 1.0),
    "ETHUSDT": (3_400.0, 0.01, 0.001, 1.0),
    "SOLUSDT": (160.0, 0.01, 0.01, 0.6),
    "BNBUSDT": (580.0, 0.01, 0.01, 0.4),
    "XRPUSDT": (0.6, 0.0001, 0.1, 0.5),
}


@dataclass(frozen=True)
class SymbolSpec:
    """Static description of one simulated instrument (prices in quote currency)."""

    symbol: str
    price: float
    tick_size: float
    step_size: float
    weight: float


def floored_shares(weights: np.ndarray, floor: float) -> np.ndarray:
    """``weights`` normalised to sum 1 with every share at least ``floor``: shares below it are
    set to it and the rest rescaled in proportion (repeated until none falls below). Equal shares
    when ``floor`` · n ≥ 1."""
    w = np.asarray(weights, dtype=float)
    if floor * len(w) >= 1.0:
        return np.full(len(w), 1.0 / len(w))
    fixed = np.zeros(len(w), dtype=bool)
    while True:
        free = w * ~fixed
        shares = np.where(fixed, floor, free / free.sum() * (1.0 - floor * fixed.sum()))
        low = ~fixed & (shares < floor)
        if not low.any():
            return shares
        fixed |= low


def symbol_spec(symbol: str) -> SymbolSpec:
    """Spec of a known symbol, or a deterministic made-up one (price 10..1000) for others."""
    if symbol in KNOWN_SYMBOLS:
        return SymbolSpec(symbol, *KNOWN_SYMBOLS[symbol])
    h = sum((i + 1) * ord(c) for i, c in enumerate(symbol))
    price = 10.0 * 10 ** ((h % 200) / 100)
    return SymbolSpec(symbol, round(price, 2), 0.01 if price < 100 else 0.1, 0.01, 0.3)


@dataclass
class TradeArrays:
    """A columnar batch of generated trades in trade-time order (ids increase per symbol).

    ``sym`` indexes ``MarketModel.symbols``; ``agg`` is the aggregate-trade id (one per taker
    order; -1 for non-market trades); ``x`` is an X code (see :data:`X_NAMES`).
    """

    sym: np.ndarray
    ts: np.ndarray
    trade_id: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    m: np.ndarray
    x: np.ndarray
    agg: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)


class MarketModel:
    """Generates trades for ``symbols`` at ``rate`` trades/s in total on average (see module
    doc; bursts and multi-fill orders included in the average).

    ``groups``: lists of symbols sharing a common trend (cointegrated); symbols not named in any
    group get their own trend. Default: one group with every symbol. ``specs`` overrides
    :func:`symbol_spec` per symbol. ``min_rate``: trades/s each symbol averages at least (its
    share is raised to it and the others' lowered, still in proportion to their weights); with
    ``rate`` below ``len(symbols) · min_rate`` every symbol gets an equal share.
    """

    def __init__(self, symbols: list[str], *, rate: float = 50.0, seed: int = 0,
                 specs: dict[str, SymbolSpec] | None = None,
                 start_ms: int = 1_721_347_200_000, groups: list[list[str]] | None = None,
                 trend_vol: float = 0.01, half_life_s: float = 60.0, spread_std: float = 0.002,
                 burst_multiplier: float = 6.0, bursts_per_minute: float = 1.0,
                 burst_seconds: float = 2.0, regimes_per_hour: float = 2.0,
                 fills_p: float = 0.65, size_sigma: float = 1.1, na_prob: float = 0.002,
                 insurance_prob: float = 0.0005, first_id: int = 1_000_000,
                 min_rate: float = 0.0):
        if not symbols:
            raise ValueError("MarketModel needs at least one symbol")
        self.symbols = list(symbols)
        self.specs = [(specs or {}).get(s) or symbol_spec(s) for s in self.symbols]
        self.rng = np.random.default_rng(seed)
        self.t_ms = float(start_ms)
        self.rate = float(rate)
        groups = groups if groups is not None else [self.symbols]
        self.group_of = np.arange(len(self.symbols))
        for g, members in enumerate(groups):
            for s in members:
                if s in self.symbols:
                    self.group_of[self.symbols.index(s)] = len(self.symbols) + g
        _, self.group_of = np.unique(self.group_of, return_inverse=True)
        n, n_groups = len(self.symbols), int(self.group_of.max()) + 1
        self.trend = np.zeros(n_groups)
        self.trend_vol = trend_vol / math.sqrt(3600.0)  # per √second
        self.vol_mult = np.ones(n_groups)
        self.kappa = math.log(2.0) / half_life_s
        self.spread_sigma = spread_std * math.sqrt(2.0 * self.kappa)
        self.spread = self.rng.normal(0.0, spread_std, n)
        self.mu = np.zeros(n)
        self.beta = 1.0 + 0.2 * self.rng.random(n)
        self.log_p0 = np.log([s.price for s in self.specs])
        self.weights = floored_shares(np.array([s.weight for s in self.specs]),
                                      min_rate / self.rate if self.rate > 0 else 0.0)
        self.tick = np.array([s.tick_size for s in self.specs])
        self.step = np.array([s.step_size for s in self.specs])
        # median fill notional of about 2,000 quote units
        self.size_median = 2_000.0 / np.exp(self.log_p0)
        self.size_sigma = size_sigma
        self.fills_p = fills_p
        self.burst_multiplier = burst_multiplier
        self.burst_start_rate = bursts_per_minute / 60.0
        self.burst_end_rate = 1.0 / burst_seconds
        self.in_burst = False
        self.regime_rate = regimes_per_hour / 3600.0
        self.na_prob = na_prob
        self.insurance_prob = insurance_prob
        self.next_id = np.full(n, first_id, dtype=np.int64) + np.arange(n) * 10_000_000
        self.next_agg = np.full(n, first_id // 2, dtype=np.int64) + np.arange(n) * 10_000_000
        self.last_log_price = self.log_prices()
        self.regime_breaks = 0
        # orders/s such that trades/s averages ``rate``: each order fills 1/fills_p trades on
        # average and bursts occupy start/(start+end) of the time at burst_multiplier
        burst_share = self.burst_start_rate / (self.burst_start_rate + self.burst_end_rate)
        self.order_rate = self.rate * fills_p / (1.0 + burst_share * (burst_multiplier - 1.0))

    def log_prices(self) -> np.ndarray:
        """Current log mid prices of every symbol."""
        return self.log_p0 + self.beta * self.trend[self.group_of] + self.spread

    def _step_state(self, dt: float) -> None:
        rng = self.rng
        if self.in_burst:
            self.in_burst = rng.random() >= self.burst_end_rate * dt
        else:
            self.in_burst = rng.random() < self.burst_start_rate * dt
        for _ in range(rng.poisson(self.regime_rate * dt)):
            i = rng.integers(len(self.symbols))
            self.beta[i] *= math.exp(rng.normal(0.0, 0.1))
            self.mu[i] += rng.normal(0.0, 0.005)
            self.vol_mult[self.group_of[i]] = rng.choice([0.5, 1.0, 2.0])
            self.regime_breaks += 1
        self.trend += self.trend_vol * self.vol_mult * math.sqrt(dt) * rng.standard_normal(
            len(self.trend))
        decay = math.exp(-self.kappa * dt)
        sd = self.spread_sigma * math.sqrt((1.0 - decay * decay) / (2.0 * self.kappa))
        self.spread = self.mu + (self.spread - self.mu) * decay + sd * rng.standard_normal(
            len(self.spread))

    def advance(self, dt_ms: float) -> TradeArrays:
        """Move the clock by ``dt_ms`` (keep it ≤ 100 ms) and return the trades in that window."""
        rng = self.rng
        dt = dt_ms / 1000.0
        t0 = self.t_ms
        lp0 = self.log_prices()
        self._step_state(dt)
        lp1 = self.log_prices()
        self.t_ms += dt_ms
        mult = self.burst_multiplier if self.in_burst else 1.0
        n_orders = rng.poisson(self.order_rate * self.weights * mult * dt)
        parts = []
        for i, n in enumerate(n_orders):
            if n:
                parts.append(self._orders(i, int(n), t0, dt_ms, lp0[i], lp1[i]))
        self.last_log_price = lp1
        if not parts:
            e = np.empty(0, dtype=np.int64)
            return TradeArrays(e, e, e, np.empty(0), np.empty(0), e.astype(np.int8),
                               e.astype(np.int8), e)
        cols = [np.concatenate(c) for c in zip(*parts)]
        order = np.argsort(cols[1], kind="stable")
        return TradeArrays(*[c[order] for c in cols])

    def _orders(self, i: int, n: int, t0: float, dt_ms: float, lp0: float, lp1: float):
        rng = self.rng
        frac = np.sort(rng.random(n))
        ts = np.floor(t0 + frac * dt_ms).astype(np.int64)
        mid = np.exp(lp0 + (lp1 - lp0) * frac)
        move = (lp1 - lp0) / max(self.spread_sigma, 1e-9)
        p_buy = 0.5 + 0.3 * math.tanh(move)
        taker_sell = rng.random(n) >= p_buy
        tick = self.tick[i]
        bid = np.floor(mid / tick) * tick
        price = np.where(taker_sell, bid, bid + tick)
        kind = np.full(n, X_MARKET, dtype=np.int8)
        u = rng.random(n)
        kind[u < self.na_prob + self.insurance_prob] = X_INSURANCE
        kind[u < self.na_prob] = X_NA
        fills = np.where(kind == X_MARKET, rng.geometric(self.fills_p, n), 1)
        # expand orders into fills
        rep = np.repeat(np.arange(n), fills)
        nf = len(rep)
        qty = self.size_median[i] * rng.lognormal(0.0, self.size_sigma, nf)
        step = self.step[i]
        qty = np.maximum(np.round(qty / step), 1.0) * step
        f_kind = kind[rep]
        f_price = price[rep]
        off = 1.0 + np.where(rng.random(nf) < 0.5, -1.0, 1.0) * rng.uniform(0.01, 0.03, nf)
        f_price = np.where(f_kind == X_INSURANCE, np.round(f_price * off / tick) * tick, f_price)
        f_price = np.where(f_kind == X_NA, 0.0, f_price)
        qty = np.where(f_kind == X_NA, 0.0, qty)
        # round away float noise so prices print exactly at tick precision
        f_price = np.round(f_price, decimals(self.specs[i].tick_size))
        qty = np.round(qty, decimals(self.specs[i].step_size))
        ids = self.next_id[i] + np.arange(nf, dtype=np.int64)
        self.next_id[i] += nf
        market_order = kind == X_MARKET
        agg_of_order = np.full(n, -1, dtype=np.int64)
        agg_of_order[market_order] = self.next_agg[i] + np.arange(int(market_order.sum()))
        self.next_agg[i] += int(market_order.sum())
        return (np.full(nf, i, dtype=np.int64), ts[rep], ids, f_price, qty,
                taker_sell[rep].astype(np.int8), f_kind, agg_of_order[rep])
