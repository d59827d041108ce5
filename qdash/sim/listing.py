"""What a simulated exchange lists and how its live market starts: instruments, the market
model, and the hand-over from the deterministic past to the model.

Built-in symbols (:data:`qdash.sim.market.KNOWN_SYMBOLS`, others priced by
:func:`~qdash.sim.market.symbol_spec`) form one cointegrated group with the model's betas;
``universe=N`` synthetic perpetuals (:mod:`qdash.sim.universe`) form their own clusters, with
live rates in proportion to their quote volume (``universe_rate_share`` of the built-ins' rate
in total) and every symbol at least the past's 4 trades a minute on average. Times are int64 ms
UTC.
"""

from __future__ import annotations

import numpy as np

from .market import KNOWN_SYMBOLS, MarketModel, SymbolSpec, symbol_spec
from .past import IDS_PER_DAY, Instrument, Past
from .universe import (
    DAY_MS,
    MIN_TRADES_PER_MINUTE,
    MINUTE_MS,
    UniverseSymbol,
    step_size,
    tick_size,
)

# daily quote volume (USDT) and listing date of the built-in symbols' pasts
_BUILTIN_VOLUME = {"BTCUSDT": 1.5e10, "ETHUSDT": 8e9, "SOLUSDT": 2e9, "BNBUSDT": 6e8,
                   "XRPUSDT": 1.5e9}
_BUILTIN_ONBOARD = {"BTCUSDT": 1569398400000, "ETHUSDT": 1569398400000,
                    "SOLUSDT": 1600300800000, "BNBUSDT": 1581292800000,
                    "XRPUSDT": 1578441600000}
_BUILTIN_CLUSTER = 1000  # cluster id of the built-in group (universe clusters count from 0)


def market_model(builtin: list[str], synthetic: list[UniverseSymbol], *, rate: float, seed: int,
                 start_ms: int, universe_rate_share: float, market_kwargs: dict | None
                 ) -> tuple[MarketModel, dict[str, SymbolSpec]]:
    """The live model of ``builtin`` + ``synthetic`` symbols from ``start_ms`` on, and the
    specs of the synthetic ones."""
    symbols = builtin + [u.symbol for u in synthetic if u.symbol not in builtin]
    kw = dict(market_kwargs or {})
    groups = kw.pop("groups", None) or [builtin]
    for c in sorted({u.cluster for u in synthetic if u.cluster is not None}):
        groups.append([u.symbol for u in synthetic if u.cluster == c])
    total = sum(u.quote_volume_per_day for u in synthetic) or 1.0
    share = universe_rate_share * sum(KNOWN_SYMBOLS.get(b, (0, 0, 0, 0.3))[3] for b in builtin)
    specs = {}
    for u in synthetic:
        specs[u.symbol] = SymbolSpec(u.symbol, u.base_price, tick_size(u.base_price),
                                     step_size(u.base_price),
                                     share * u.quote_volume_per_day / total)
    kw.setdefault("min_rate", MIN_TRADES_PER_MINUTE / 60.0)  # as dense as the past
    model = MarketModel(symbols, rate=rate, seed=seed, start_ms=start_ms, specs=specs,
                        groups=groups, **kw)
    for u in synthetic:
        if u.cluster is not None:
            model.beta[symbols.index(u.symbol)] = u.beta
    return model, specs


def list_instruments(symbols: list[str], synthetic: list[UniverseSymbol],
                specs: dict[str, SymbolSpec], model: MarketModel | None) -> list[Instrument]:
    """The instruments of ``symbols``: built-in ones in one cluster with the model's betas (1
    without a model), funding caps by daily quote volume."""
    out = []
    for i, sym in enumerate(symbols):
        sp = specs.get(sym) or symbol_spec(sym)
        u = next((u for u in synthetic if u.symbol == sym), None)
        if u is None:
            beta = float(model.beta[i]) if model is not None else 1.0
            u = UniverseSymbol(sym, sp.price, _BUILTIN_VOLUME.get(sym, 2e8), _BUILTIN_CLUSTER,
                               beta, _BUILTIN_ONBOARD.get(sym, 1609459200000))
        cap = 0.003 if u.quote_volume_per_day >= 5e9 else 0.0075 if \
            u.quote_volume_per_day >= 5e8 else 0.02
        out.append(Instrument(u, sp.tick_size, sp.step_size, cap))
    return out


def continue_past(model: MarketModel, past: Past) -> None:
    """Start the live model where the past ends: same price, trade and aggregate ids above
    every past id."""
    end = past.end_ms
    base = (end // DAY_MS + 1) * IDS_PER_DAY
    for i, sym in enumerate(model.symbols):
        bars = past.minutes(sym, end - MINUTE_MS, end)
        if len(bars["close"]):
            model.log_p0[i] = np.log(bars["close"][-1]) - model.spread[i]
    model.size_median = 2_000.0 / np.exp(model.log_p0)
    model.last_log_price = model.log_prices()
    model.next_id = base + np.arange(len(model.symbols), dtype=np.int64) * IDS_PER_DAY
    model.next_agg = model.next_id.copy()
