"""Backtest performance metrics: one small function per metric.

Modelled on hftbacktest's ``stats/metrics.py`` (one unit per metric, conventions in the
docstring), but plain functions over numpy arrays so a sweep can call them thousands of times.

Conventions, shared by every function here:

- ``equity`` is the **bar equity curve** (account value marked at each bar's close, quote
  currency), oldest first. Returns are simple bar-to-bar returns of that curve
  (``equity[t] / equity[t-1] - 1``). Risk ratios are never computed from per-trade returns: a
  trade-based Sharpe ignores the time spent flat and the path inside each trade.
- **Annualisation for a 24/7 market.** Crypto perpetuals trade every day, so a year is 365 days of
  bars: ``periods_per_year = 365 * 86_400_000 / bar_ms`` (525,600 for 1m bars, 8,760 for 1h bars,
  365 for daily bars). Volatility, Sharpe and Sortino scale by ``sqrt(periods_per_year)``. The
  traditional-finance √252 is wrong here whatever the bar: it assumes daily bars *and* 252 trading
  days. Note (as hftbacktest warns) that a Sharpe annualised from short bars is sensitive to the
  sampling interval when bar returns are autocorrelated, so compare strategies at the same bar.
- **Every figure shown, with its uncertainty.** The annualised metrics (``cagr``,
  ``annual_volatility``, ``sharpe``, ``sortino``, ``calmar``) are given whatever the span. The
  Sharpe comes with its standard error ``sharpe_se`` (:func:`sharpe_se`, Mertens 2002: Lo 2002
  corrected for the skewness and kurtosis of the bar returns), annualised on the same bar
  clock, and with ``span_days``. A curve spanning less than :data:`SHORT_SAMPLE_DAYS` days is
  flagged ``short_sample`` (:func:`short_sample_note` says so): one day of 1m bars gives a
  ``sharpe_se`` near 19, thirty days near 3.5, so a short sample makes the figure uncertain,
  not meaningless. ``total_return`` and the per-trade metrics are always given. The deflated
  Sharpe (:func:`deflated_sharpe`) divides by the same standard error.
- Risk-free rate: zero. Standard deviations use ``ddof=1``.
- Drawdowns are fractions of the running peak (0.12 = 12 % below the peak), reported positive.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

DAY_MS = 86_400_000
DAYS_PER_YEAR = 365
SHORT_SAMPLE_DAYS = 30.0
"""Equity curves (first to last bar, days) shorter than this are flagged ``short_sample``."""
ANNUALISED = ("cagr", "annual_volatility", "sharpe", "sortino", "calmar")


def span_text(span_days: float) -> str:
    """A span in the unit that reads best: minutes, hours or days."""
    return (f"{span_days * 1440:.0f} minutes" if span_days < 1 / 24 else
            f"{span_days * 24:.1f} hours" if span_days < 1 else f"{span_days:.1f} days")


def short_sample_note(span_days: float) -> str:
    """What the ``short_sample`` flag of a curve of ``span_days`` days means."""
    return (f"short sample: {span_text(span_days)} of data (under {SHORT_SAMPLE_DAYS:g} days); "
            f"the annualised metrics ({', '.join(ANNUALISED)}) are shown but uncertain: read "
            "the Sharpe with its standard error")


def sharpe_text(metrics: dict) -> str:
    """The Sharpe of a metrics dict (:func:`compute_all`) as a trader reads it:
    ``"1.23 ± 3.45 (annualised, 20.0 days, short sample)"``."""
    sr, se = metrics["sharpe"], metrics["sharpe_se"]
    if not math.isfinite(sr):
        return "n/a (flat equity: no risk taken)"
    flag = ", short sample" if metrics["short_sample"] else ""
    return f"{sr:.3g} ± {se:.2g} (annualised, {span_text(metrics['span_days'])}{flag})"


def periods_per_year(bar_ms: float) -> float:
    """Bars in a 365-day year for bars of ``bar_ms`` milliseconds (24/7 market)."""
    if not bar_ms > 0:
        raise ValueError(f"bar length must be positive, got {bar_ms} ms")
    return DAYS_PER_YEAR * DAY_MS / float(bar_ms)


def bar_ms_of(index: pd.DatetimeIndex) -> float:
    """Bar length in ms of a time index: the median spacing (robust to gaps)."""
    if len(index) < 2:
        raise ValueError("need at least two bars to infer the bar length")
    ms = index.as_unit("ms").asi8
    return float(np.median(np.diff(ms)))


def bar_returns(equity) -> np.ndarray:
    """Simple bar returns of the equity curve (length ``len(equity) - 1``)."""
    e = np.asarray(equity, dtype=np.float64)
    return e[1:] / e[:-1] - 1.0


def total_return(equity) -> float:
    """Final over initial equity, minus one (0.05 = +5 %)."""
    e = np.asarray(equity, dtype=np.float64)
    return float(e[-1] / e[0] - 1.0) if len(e) else math.nan


def cagr(equity, years: float) -> float:
    """Compound annual growth rate over ``years`` (elapsed calendar time, 365-day years)."""
    e = np.asarray(equity, dtype=np.float64)
    if len(e) < 2 or not years > 0 or e[-1] <= 0:
        return math.nan if len(e) < 2 or not years > 0 else -1.0
    with np.errstate(over="ignore"):  # a short, steep curve annualises to inf
        return float(np.power(e[-1] / e[0], 1.0 / years) - 1.0)


def annual_volatility(equity, periods_per_year: float) -> float:
    """Standard deviation (ddof=1) of bar returns times ``sqrt(periods_per_year)``.

    ``periods_per_year`` is bars per 365-day year (see the module docstring), not 252.
    """
    r = bar_returns(equity)
    if len(r) < 2:
        return math.nan
    return float(r.std(ddof=1) * math.sqrt(periods_per_year))


def _sharpe_per_bar(r: np.ndarray) -> float:
    """``mean(r) / std(r, ddof=1)``; NaN under two returns or when they are all equal."""
    if len(r) < 2:
        return math.nan
    sd = r.std(ddof=1)
    return float(r.mean() / sd) if sd > 0 else math.nan


def sharpe(equity, periods_per_year: float) -> float:
    """Annualised Sharpe ratio of the bar equity curve, risk-free rate zero.

    ``mean(r) / std(r, ddof=1) * sqrt(periods_per_year)`` with ``r`` the bar returns and
    ``periods_per_year`` the bars in a 365-day year at this bar frequency (24/7 market). NaN when
    the curve is flat (no risk taken). With its standard error: :func:`sharpe_with_se`.
    """
    return _sharpe_per_bar(bar_returns(equity)) * math.sqrt(periods_per_year)


def sharpe_se(sr: float, bars: int, skew: float = 0.0, kurtosis: float = 3.0) -> float:
    """Standard error of a per-bar Sharpe estimate ``sr`` from ``bars`` returns.

    THE standard error of every Sharpe qdash reports (backtest, scanner) and of the deflated
    Sharpe. Mertens (2002): ``sqrt((1 − g3·SR + (g4 − 1)/4 · SR²) / T)`` with ``g3`` the
    skewness and ``g4`` the (non-excess) kurtosis of the returns; the defaults (normal returns,
    ``g3 = 0``, ``g4 = 3``) give Lo's (2002) iid ``sqrt((1 + SR²/2) / T)``. Per bar, like
    ``sr``: multiply by ``sqrt(periods_per_year)`` to annualise. NaN for ``bars < 1``.
    """
    if bars < 1:
        return math.nan
    v = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    return math.sqrt(max(v, 0.0) / bars)


def return_moments(r) -> tuple[float, float]:
    """Skewness ``g3`` and non-excess kurtosis ``g4`` (3 for a normal) of the returns ``r``:
    the sample's own central moments over its standard deviation with ddof=0 (scipy's
    ``skew``/``kurtosis(fisher=False)`` with ``bias=True``). NaN when ``r`` is constant."""
    r = np.asarray(r, dtype=np.float64)
    d = r - r.mean()
    m2 = float(np.mean(d * d)) if len(r) else 0.0
    if not m2 > 0:
        return math.nan, math.nan
    return float(np.mean(d ** 3)) / m2 ** 1.5, float(np.mean(d ** 4)) / m2 ** 2


def sharpe_with_se(equity, periods_per_year: float) -> tuple[float, float]:
    """Annualised Sharpe (:func:`sharpe`) of the bar equity curve and its annualised standard
    error: :func:`sharpe_se` of the per-bar estimate over the ``len(equity) - 1`` bar returns,
    with their skewness and kurtosis (Mertens), times ``sqrt(periods_per_year)``. Both NaN when
    the curve is flat."""
    r = bar_returns(equity)
    sr = _sharpe_per_bar(r)
    if math.isnan(sr):
        return math.nan, math.nan
    g3, g4 = return_moments(r)
    k = math.sqrt(periods_per_year)
    return sr * k, sharpe_se(sr, len(r), g3, g4) * k


EULER_GAMMA = 0.5772156649015329


def deflated_sharpe(sr: float, bars: int, skew: float, kurtosis: float, trials: int,
                    trial_variance: float) -> float:
    """Deflated Sharpe ratio (Bailey and López de Prado, 2014), everything per bar.

    The probability that the true Sharpe exceeds ``SR0``, what the best of ``trials``
    independent trials whose Sharpe estimates have variance ``trial_variance`` would show by
    luck: ``SR0 = sqrt(V)·((1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e)))`` (γ Euler–Mascheroni;
    ``SR0 = 0`` for one trial), and ``DSR = Φ((SR − SR0) / sharpe_se(SR, T − 1, g3, g4))``:
    the same standard error as every Sharpe qdash reports (:func:`sharpe_se`), over ``T − 1``
    for ``T = bars`` returns. ``skew``/``kurtosis``: :func:`return_moments` of the returns.
    """
    from statistics import NormalDist

    if trials < 1 or bars < 2:
        raise ValueError(f"need trials >= 1 and bars >= 2, got {trials} and {bars}")
    phi = NormalDist()
    sr0 = 0.0 if trials == 1 else math.sqrt(trial_variance) * (
        (1 - EULER_GAMMA) * phi.inv_cdf(1 - 1 / trials)
        + EULER_GAMMA * phi.inv_cdf(1 - 1 / (trials * math.e)))
    return phi.cdf((sr - sr0) / sharpe_se(sr, bars - 1, skew, kurtosis))


def sortino(equity, periods_per_year: float) -> float:
    """Annualised Sortino ratio of the bar equity curve, target return zero.

    ``mean(r) / sqrt(mean(min(r, 0)**2)) * sqrt(periods_per_year)``: the downside deviation is
    taken over *all* bars (zeros for up bars), as in hftbacktest; bars per 365-day year.
    """
    r = bar_returns(equity)
    if len(r) < 2:
        return math.nan
    dd = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    return float(r.mean() / dd * math.sqrt(periods_per_year)) if dd > 0 else math.nan


def drawdown(equity) -> np.ndarray:
    """Per-bar drawdown as a positive fraction of the running peak."""
    e = np.asarray(equity, dtype=np.float64)
    return 1.0 - e / np.maximum.accumulate(e)


def max_drawdown(equity) -> float:
    """Largest peak-to-trough fall as a positive fraction of the peak (0.2 = -20 %)."""
    e = np.asarray(equity, dtype=np.float64)
    return float(drawdown(e).max()) if len(e) else math.nan


def max_drawdown_duration(equity) -> int:
    """Longest run of consecutive bars below the running peak (still counting at the end when
    the curve never recovers)."""
    e = np.asarray(equity, dtype=np.float64)
    if len(e) == 0:
        return 0
    peak_pos = np.maximum.accumulate(np.where(e >= np.maximum.accumulate(e), np.arange(len(e)), 0))
    under = np.arange(len(e)) - peak_pos
    return int(under.max())


def calmar(cagr_value: float, max_drawdown_value: float) -> float:
    """CAGR over maximum drawdown (both as fractions); NaN without a drawdown."""
    return cagr_value / max_drawdown_value if max_drawdown_value > 0 else math.nan


def number_of_trades(net_pnl) -> int:
    """Closed round trips."""
    return int(len(net_pnl))


def win_rate(net_pnl) -> float:
    """Fraction of trades with positive net PnL (after fees, slippage and funding)."""
    p = np.asarray(net_pnl, dtype=np.float64)
    return float((p > 0).mean()) if len(p) else math.nan


def profit_factor(net_pnl) -> float:
    """Sum of winning net PnL over the absolute sum of losing net PnL (inf without losers)."""
    p = np.asarray(net_pnl, dtype=np.float64)
    if not len(p):
        return math.nan
    loss = -p[p < 0].sum()
    win = p[p > 0].sum()
    return float(win / loss) if loss > 0 else (math.inf if win > 0 else math.nan)


def average_holding_bars(bars_held) -> float:
    """Mean number of bars a trade was held (entry fill to exit fill)."""
    b = np.asarray(bars_held, dtype=np.float64)
    return float(b.mean()) if len(b) else math.nan


def exposure(side) -> float:
    """Fraction of bars with an open position."""
    s = np.asarray(side)
    return float((s != 0).mean()) if len(s) else math.nan


def turnover(traded_notional: float, initial_capital: float) -> float:
    """Total traded notional (both legs, entries and exits) over initial capital."""
    return float(traded_notional / initial_capital)


def compute_all(equity, side, net_pnl, bars_held, *, bar_ms: float, years: float,
                initial_capital: float,
                traded_notional: float, fees: float, slippage: float, funding: float) -> dict:
    """Every metric of a backtest as a flat dict (the row a sweep stores).

    ``net_pnl`` and ``bars_held`` are per closed trade; ``fees``, ``slippage`` (costs, positive)
    and ``funding`` (received, signed) are totals over the run including any still-open position.
    ``years`` is the elapsed time of the curve (first to last bar) in 365-day years, for CAGR and
    the ``short_sample`` flag (under :data:`SHORT_SAMPLE_DAYS`).
    Holding time is also given in hours (``bars * bar_ms``).
    """
    e = np.asarray(equity, dtype=np.float64)
    ppy = periods_per_year(bar_ms)
    net = np.asarray(net_pnl, dtype=np.float64)
    span_days = years * DAYS_PER_YEAR
    c = cagr(e, years)
    mdd = max_drawdown(e)
    avg_bars = average_holding_bars(bars_held)
    sr, se = sharpe_with_se(e, ppy)
    return {
        "total_return": total_return(e),
        "cagr": c,
        "annual_volatility": annual_volatility(e, ppy),
        "sharpe": sr,
        "sharpe_se": se,
        "sortino": sortino(e, ppy),
        "span_days": span_days,
        "short_sample": bool(span_days < SHORT_SAMPLE_DAYS),
        "max_drawdown": mdd,
        "max_drawdown_bars": (dd_bars := max_drawdown_duration(e)),
        "max_drawdown_hours": dd_bars * bar_ms / 3_600_000,
        "calmar": calmar(c, mdd),
        "trades": number_of_trades(net),
        "win_rate": win_rate(net),
        "profit_factor": profit_factor(net),
        "avg_holding_bars": avg_bars,
        "avg_holding_hours": avg_bars * bar_ms / 3_600_000,
        "exposure": exposure(side),
        "turnover": turnover(traded_notional, initial_capital),
        "total_fees": float(fees),
        "total_slippage": float(slippage),
        "total_funding": float(funding),
        "final_equity": float(e[-1]) if len(e) else math.nan,
    }
