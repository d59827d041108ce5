"""Liquidity of a symbol and of a pair, from candles (and optionally ticks).

Per symbol over a window of bars: quote volume (Σ price·qty, quote asset, e.g. USDT), trade count,
both also per minute of the window; the trade-size profile (quote notional per trade: mean, and
quantiles from ticks when given, else from per-bar averages); a realised-spread proxy (Roll 1984:
``2·sqrt(−cov(Δp_t, Δp_{t−1}))`` on log prices, in basis points, 0 when the autocovariance is
positive). :func:`liquidity_score` maps these to [0, 1]; a pair's score is its weaker leg's.

:data:`LIQUIDITY_FILTERS` declares the filter parameters (name, label, bounds, step, unit) so a UI
can render controls from the declaration; :func:`check_filters` applies them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..errors import AnalyticsError


@dataclass(frozen=True)
class LiquidityStats:
    """Liquidity of one symbol over ``minutes`` of bars. Notionals in the quote asset."""

    symbol: str
    minutes: float
    quote_volume: float
    quote_volume_per_min: float
    trades: int
    trades_per_min: float
    avg_trade_quote: float
    trade_quote_p50: float
    trade_quote_p90: float
    spread_proxy_bps: float

    def as_dict(self) -> dict:
        return asdict(self)


def roll_spread_bps(prices) -> float:
    """Roll (1984) effective-spread proxy of a price series, in basis points of the price."""
    p = np.asarray(prices, dtype=np.float64)
    p = p[np.isfinite(p) & (p > 0)]
    if len(p) < 4:
        return math.nan
    d = np.diff(np.log(p))
    a, b = d[1:] - d[1:].mean(), d[:-1] - d[:-1].mean()
    cov = float(np.dot(a, b) / (len(a) - 1))
    return 2.0 * math.sqrt(-cov) * 1e4 if cov < 0 else 0.0


def liquidity_from_arrays(symbol: str, close, quote_volume, trades, minutes: float,
                          trade_quotes=None) -> LiquidityStats:
    """:class:`LiquidityStats` from per-bar arrays; ``trade_quotes``: per-trade notionals."""
    qv = np.asarray(quote_volume, dtype=np.float64)
    nt = np.asarray(trades, dtype=np.float64)
    total_qv = float(np.nansum(qv))
    total_nt = int(np.nansum(nt))
    minutes = max(float(minutes), 1e-9)
    if trade_quotes is not None and len(trade_quotes):
        tq = np.asarray(trade_quotes, dtype=np.float64)
        p50, p90 = (float(v) for v in np.quantile(tq, [0.5, 0.9]))
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            per_bar = qv / nt
        per_bar = per_bar[np.isfinite(per_bar)]
        p50, p90 = ((float(v) for v in np.quantile(per_bar, [0.5, 0.9])) if len(per_bar)
                    else (math.nan, math.nan))
    return LiquidityStats(
        symbol=symbol, minutes=minutes, quote_volume=total_qv,
        quote_volume_per_min=total_qv / minutes, trades=total_nt,
        trades_per_min=total_nt / minutes,
        avg_trade_quote=total_qv / total_nt if total_nt else math.nan,
        trade_quote_p50=p50, trade_quote_p90=p90, spread_proxy_bps=roll_spread_bps(close))


def liquidity_stats(bars: pd.DataFrame, symbol: str = "", timeframe_ms: int | None = None,
                    ticks: pd.DataFrame | None = None) -> LiquidityStats:
    """Liquidity of one symbol's candles (``quote_volume``, ``trades``, ``close`` columns).

    The window is the bars given (slice them first); its length in minutes is
    ``len(bars)·timeframe`` (timeframe inferred from the smallest index step when not given).
    With ``ticks`` (``price``, ``qty`` columns) the trade-size quantiles come from single trades.
    """
    for col in ("close", "quote_volume", "trades"):
        if col not in bars.columns:
            raise AnalyticsError(f"liquidity of {symbol or 'symbol'}: bars lack column {col!r}")
    if timeframe_ms is None:
        if len(bars) < 2:
            raise AnalyticsError("liquidity: pass timeframe_ms= for fewer than 2 bars")
        timeframe_ms = int(np.diff(bars.index.as_unit("ms").asi8).min())
    tq = None
    if ticks is not None and len(ticks):
        qty = ticks["qty"] if "qty" in ticks.columns else ticks["size"]
        tq = (ticks["price"] * qty).to_numpy(dtype=np.float64)
    return liquidity_from_arrays(symbol, bars["close"], bars["quote_volume"], bars["trades"],
                                 len(bars) * timeframe_ms / 60_000.0, tq)


def liquidity_score(stats: LiquidityStats, ref_quote_volume_per_min: float = 1e6,
                    ref_trades_per_min: float = 100.0, ref_spread_bps: float = 1.0) -> float:
    """Score in [0, 1]: geometric mean of three saturating ratios.

    ``min(1, qv/min ÷ ref)``, ``min(1, trades/min ÷ ref)``, ``min(1, ref_spread ÷ spread_proxy)``
    (a zero or unknown spread proxy counts as 1). The references are the levels above which a
    symbol counts as fully liquid for the purpose (defaults suit 1 s–1 m stat-arb on USDⓈ-M perps).
    """
    a = min(1.0, stats.quote_volume_per_min / ref_quote_volume_per_min)
    b = min(1.0, stats.trades_per_min / ref_trades_per_min)
    sp = stats.spread_proxy_bps
    c = 1.0 if not (sp > 0) else min(1.0, ref_spread_bps / sp)
    return float((max(a, 0.0) * max(b, 0.0) * c) ** (1.0 / 3.0))


def pair_liquidity_score(stats_y: LiquidityStats, stats_x: LiquidityStats, **refs) -> float:
    """A pair is as liquid as its weaker leg: min of the two legs' scores."""
    return min(liquidity_score(stats_y, **refs), liquidity_score(stats_x, **refs))


@dataclass(frozen=True)
class FilterParam:
    """Declaration of one filter control: enough for a UI to render a slider or number box."""

    name: str
    label: str
    default: float
    min: float
    max: float
    step: float
    unit: str
    description: str


LIQUIDITY_FILTERS: tuple[FilterParam, ...] = (
    FilterParam("min_quote_volume_per_min", "Min quote volume / min", 0.0, 0.0, 1e8, 1e4, "USDT",
                "each leg must trade at least this notional per minute"),
    FilterParam("min_trades_per_min", "Min trades / min", 0.0, 0.0, 10_000.0, 1.0, "trades",
                "each leg must print at least this many trades per minute"),
    FilterParam("max_spread_bps", "Max spread proxy", 50.0, 0.0, 500.0, 0.5, "bps",
                "each leg's Roll spread proxy must not exceed this"),
    FilterParam("min_score", "Min liquidity score", 0.0, 0.0, 1.0, 0.01, "",
                "the pair's liquidity score (weaker leg) must reach this"),
)


def check_filters(stats_y: LiquidityStats, stats_x: LiquidityStats,
                  **values: float) -> dict[str, bool]:
    """Apply :data:`LIQUIDITY_FILTERS` (declared defaults unless given); name → passed."""
    known = {f.name: f.default for f in LIQUIDITY_FILTERS}
    unknown = set(values) - set(known)
    if unknown:
        raise AnalyticsError(f"unknown liquidity filter(s) {sorted(unknown)}: use {sorted(known)}")
    v = {**known, **values}
    legs = (stats_y, stats_x)

    def spread_ok(s):
        return not (s.spread_proxy_bps > v["max_spread_bps"])

    return {
        "min_quote_volume_per_min": all(s.quote_volume_per_min >= v["min_quote_volume_per_min"]
                                        for s in legs),
        "min_trades_per_min": all(s.trades_per_min >= v["min_trades_per_min"] for s in legs),
        "max_spread_bps": all(spread_ok(s) for s in legs),
        "min_score": pair_liquidity_score(stats_y, stats_x) >= v["min_score"],
    }
