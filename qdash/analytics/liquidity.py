"""Liquidity of a symbol and of a pair, from candles (and optionally ticks), and the cost of
trading through an order book.

Per symbol over a window of bars: quote volume (Σ price·qty, quote asset, e.g. USDT), trade count,
both also per minute of the window; the trade-size profile (quote notional per trade: mean, and
quantiles from ticks when given, else from per-bar averages); a realised-spread proxy (Roll 1984:
``2·sqrt(−cov(Δp_t, Δp_{t−1}))`` on log prices, in basis points, 0 when the autocovariance is
positive). :func:`liquidity_score` maps these to [0, 1]; a pair's score is its weaker leg's.

:data:`LIQUIDITY_FILTERS` declares the filter parameters (name, label, bounds, step, unit) so a UI
can render controls from the declaration; :func:`check_filters` applies them.

The cost of taking liquidity (:func:`walk_book`, THE depth walk, vectorised over snapshots by
:func:`walk_cost_bps`): a market order of ``notional`` quote (USDT) takes the best levels of one
side (asks to buy, bids to sell) until the notional is filled; its *slippage* in basis points is
``side·(VWAP − mid)/mid·10⁴`` against the mid ``(best bid + best ask)/2``: half the spread plus
the impact of walking the book, always ≥ 0. A book too thin for the notional fills the rest at
its last level shown (a lower bound, flagged ``complete=False``). :func:`pair_trade_cost`
compares both legs' cost with the pair's expected edge (the live monitor);
:class:`DepthSlippage` gives backtests per-bar slippage from recorded snapshots, without
look-ahead.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..errors import AnalyticsError
from ..model import depth_levels


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


# --- the cost of taking liquidity ---------------------------------------------------------------
BUY, SELL = 1, -1


def walk_cost_bps(best_bid, best_ask, prices, qtys, notional: float, side: int):
    """Slippage (bps against the mid) of taking ``notional`` quote from one side of ``n`` books.

    ``best_bid``/``best_ask`` (n,) the top of each book; ``prices``/``qtys`` (n, L) the side
    taken, best first (asks for ``side`` :data:`BUY`, bids for :data:`SELL`; NaN-padded).
    Returns ``(slippage_bps, vwap, levels, complete)``, each (n,): ``levels`` touched, and
    ``complete`` False where the side shown holds less than ``notional`` (the rest then fills
    at its last level). NaN where a book has no level on the side or no mid."""
    if not notional > 0:
        raise AnalyticsError(f"notional must be > 0 (quote currency), got {notional}")
    if side not in (BUY, SELL):
        raise AnalyticsError(f"side must be BUY (1) or SELL (-1), got {side}")
    px = np.atleast_2d(np.asarray(prices, dtype=np.float64))
    q = np.nan_to_num(np.atleast_2d(np.asarray(qtys, dtype=np.float64)))
    quote = np.where(np.isfinite(px), px * q, 0.0)
    cum_quote, cum_qty = np.cumsum(quote, axis=1), np.cumsum(q, axis=1)
    n, width = px.shape
    rows = np.arange(n)
    k = np.minimum((cum_quote < notional).sum(axis=1), width - 1)  # the level that completes
    complete = cum_quote[:, -1] >= notional
    shown = np.isfinite(px).sum(axis=1)
    k = np.where(complete, k, np.maximum(shown - 1, 0))
    before_quote = np.where(k > 0, cum_quote[rows, k - 1], 0.0)
    before_qty = np.where(k > 0, cum_qty[rows, k - 1], 0.0)
    qty = before_qty + (notional - before_quote) / px[rows, k]
    vwap = notional / qty
    mid = (np.asarray(best_bid, dtype=np.float64) + np.asarray(best_ask, dtype=np.float64)) / 2
    slip = side * (vwap - mid) / mid * 1e4
    slip = np.where(shown > 0, slip, np.nan)
    return slip, vwap, k + 1, complete


@dataclass(frozen=True)
class BookWalk:
    """A market order of ``notional`` quote taken from one side of a book (:func:`walk_book`):
    ``side`` :data:`BUY`/:data:`SELL`, ``vwap``, ``mid``, ``levels`` touched, ``complete``
    (False: the book shown was too thin, the rest priced at its last level) and
    ``slippage_bps`` = side·(vwap − mid)/mid·10⁴."""

    side: int
    notional: float
    vwap: float
    mid: float
    levels: int
    complete: bool
    slippage_bps: float


def walk_book(bids, asks, notional: float, side: int) -> BookWalk:
    """Walk one book (``bids``/``asks``: arrays (k, 2) of [price, qty], best first) for a
    ``side`` order of ``notional`` quote; see :func:`walk_cost_bps`."""
    bids = np.asarray(bids, dtype=np.float64).reshape(-1, 2)
    asks = np.asarray(asks, dtype=np.float64).reshape(-1, 2)
    if not len(bids) or not len(asks):
        raise AnalyticsError("walk_book needs a book with bids and asks (no mid otherwise)")
    taken = asks if side == BUY else bids
    slip, vwap, levels, complete = walk_cost_bps(bids[:1, 0], asks[:1, 0], taken[None, :, 0],
                                                 taken[None, :, 1], notional, side)
    return BookWalk(side, float(notional), float(vwap[0]), float((bids[0, 0] + asks[0, 0]) / 2),
                    int(levels[0]), bool(complete[0]), float(slip[0]))


@dataclass(frozen=True)
class PairTradeCost:
    """What entering the pair now would cost against what it is expected to earn, in bps of
    ``notional`` (quote currency traded on each leg).

    ``side`` is the spread position the signal's z calls for (−1 short spread when z > 0: sell
    y, buy x; +1 long spread otherwise); ``y``/``x`` the legs' :class:`BookWalk`;
    ``cost_bps`` = slippage y + slippage x (entry, both legs, each in bps of ``notional``);
    ``edge_bps`` the expected edge: the spread's move from its z now back to the exit level,
    (|z| − exit_z)·σ, where σ is the spread's rolling standard deviation (the one signal's
    ``spread_std``), in bps of y's notional (a log spread: σ·10⁴; a price spread:
    σ/price_y·10⁴); ``net_bps`` = edge − 2·cost (entering now and exiting through a book like
    this one). No fees are included. NaN edge where z or σ is undefined."""

    notional: float
    side: int
    y: BookWalk
    x: BookWalk
    cost_bps: float
    edge_bps: float
    net_bps: float


def pair_trade_cost(book_y: tuple, book_x: tuple, notional: float, *, z: float, exit_z: float,
                    spread_std: float, log: bool = True, price_y: float | None = None
                    ) -> PairTradeCost:
    """Cost to trade ``notional`` quote on both legs now from their books (``(bids, asks)``
    each, as :func:`walk_book` takes them) against the edge of z (see :class:`PairTradeCost`;
    ``price_y`` for a price spread, default y's mid)."""
    side = SELL if z > 0 else BUY  # the spread position: y's side; x trades the other way
    wy = walk_book(*book_y, notional, side)
    wx = walk_book(*book_x, notional, -side)
    cost = wy.slippage_bps + wx.slippage_bps
    sigma_bps = spread_std * 1e4 if log else spread_std / (price_y or wy.mid) * 1e4
    edge = (abs(z) - exit_z) * sigma_bps if math.isfinite(z) else math.nan
    return PairTradeCost(float(notional), side, wy, wx, cost, edge, edge - 2 * cost)


class DepthSlippage:
    """A slippage model from recorded depth snapshots, for backtests: the cost in bps of taking
    ``notional`` quote from each symbol's book at each bar, from the last snapshot at or before
    the bar's fill time (no look-ahead: a snapshot recorded after the fill is never used), NaN
    before a symbol's first snapshot or where the last one is older than ``max_age_ms``.

    ``snapshots``: symbol → depth frame (:data:`qdash.model.DEPTH_COLUMNS`, as
    ``Store.depth(symbol)`` returns it). The rate of a fill is the mean of the buy and sell
    walks (the kernel books one slippage rate per leg and bar, whichever way the leg trades).
    """

    def __init__(self, snapshots: dict, notional: float, max_age_ms: int | None = None):
        self.notional, self.max_age_ms = float(notional), max_age_ms
        self._ts: dict[str, np.ndarray] = {}
        self._bps: dict[str, np.ndarray] = {}
        for symbol, frame in snapshots.items():
            ts = frame["ts"].to_numpy(np.int64)
            if len(ts) and (np.diff(ts) < 0).any():
                raise AnalyticsError(f"depth snapshots of {symbol} are not in time order")
            lv = depth_levels(frame)
            bid, ask = lv[:, 0, 0, 0], lv[:, 1, 0, 0]
            buy = walk_cost_bps(bid, ask, lv[:, 1, 0], lv[:, 1, 1], self.notional, BUY)[0]
            sell = walk_cost_bps(bid, ask, lv[:, 0, 0], lv[:, 0, 1], self.notional, SELL)[0]
            self._ts[symbol], self._bps[symbol] = ts, (buy + sell) / 2

    def bps(self, symbol: str, times_ms) -> np.ndarray:
        """Slippage in bps of ``symbol`` at each of ``times_ms`` (int ms UTC)."""
        t = np.asarray(times_ms, dtype=np.int64)
        ts = self._ts.get(symbol)
        if ts is None or not len(ts):
            return np.full(len(t), np.nan)
        i = np.searchsorted(ts, t, side="right") - 1  # the last snapshot with ts <= t
        out = self._bps[symbol][np.maximum(i, 0)].copy()
        out[i < 0] = np.nan
        if self.max_age_ms is not None:
            out[t - ts[np.maximum(i, 0)] > self.max_age_ms] = np.nan
        return out

    def pair(self, symbol_y: str, symbol_x: str):
        """The model of one pair as the backtest takes it (``run(..., slippage_model=...)``):
        ``times_ms`` → (bps of y, bps of x)."""
        def rates(times_ms):
            return self.bps(symbol_y, times_ms), self.bps(symbol_x, times_ms)
        return rates
