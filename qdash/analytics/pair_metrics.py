"""Every metric of a live pair, declared once: name, unit and meaning.

:meth:`qdash.analytics.PairState.metrics` returns exactly these keys (a test says so); alert
rules may use any numeric one (:data:`RULE_METRICS`), and a rule naming anything else is rejected
with the list of what exists. β, α and spreads are in the signal's working units: log prices by
default (see :mod:`qdash.analytics.signal`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One published number: ``name`` (the key), ``unit``, ``meaning``."""

    name: str
    unit: str
    meaning: str


_W = "working units (log price)"
_DECLARED = [
    Metric("symbol_y", "text", "the leg held one unit of"),
    Metric("symbol_x", "text", "the hedge leg"),
    Metric("ts_ms", "ms since epoch", "open time of the last aligned bar"),
    Metric("bars", "bars", "aligned bars processed"),
    Metric("segment_bars", "bars", "bars since the start or the last hole in the data"),
    Metric("price_y", "quote currency", "last close of y"),
    Metric("price_x", "quote currency", "last close of x"),
    Metric("beta", _W, "the signal's hedge ratio (the chosen hedge method)"),
    Metric("alpha", _W, "the signal's intercept"),
    Metric("spread", _W, "the signal's spread y − (β·x + α)"),
    Metric("zscore", "σ", "the signal's z-score; NaN while a leg is stale"),
    Metric("zscore_raw", "σ", "the signal's z-score, also when a leg is stale"),
    Metric("beta_rolling", _W, "rolling OLS hedge ratio over the β window"),
    Metric("alpha_rolling", _W, "rolling OLS intercept"),
    Metric("spread_rolling", _W, "spread of the rolling OLS fit"),
    Metric("beta_kalman", _W, "Kalman-filtered hedge ratio"),
    Metric("alpha_kalman", _W, "Kalman-filtered intercept"),
    Metric("spread_kalman", _W, "spread of the Kalman fit"),
    Metric("innovation", _W, "Kalman one-step prediction error of y"),
    Metric("innovation_var", "working units²", "its predicted variance"),
    Metric("innovation_z", "σ", "innovation / sqrt(variance): a break signal"),
    Metric("corr", "−1..1", "correlation of log returns over the correlation window"),
    Metric("corr_returns", "−1..1", "the same as corr"),
    Metric("corr_prices", "−1..1", "correlation of working prices over the correlation window"),
    Metric("age_y_s", "s", "time since y's last trade"),
    Metric("age_x_s", "s", "time since x's last trade"),
    Metric("stale_y", "bool", "y's last trade is older than stale_after_s"),
    Metric("stale_x", "bool", "x's last trade is older than stale_after_s"),
    Metric("stale", "bool", "either leg is stale"),
    Metric("beta_ols", _W, "OLS hedge ratio on the refresh window"),
    Metric("alpha_ols", _W, "OLS intercept on the refresh window"),
    Metric("beta_huber", _W, "Huber hedge ratio on the refresh window"),
    Metric("alpha_huber", _W, "Huber intercept on the refresh window"),
    Metric("beta_theil_sen", _W, "Theil–Sen hedge ratio on the refresh window"),
    Metric("alpha_theil_sen", _W, "Theil–Sen intercept on the refresh window"),
    Metric("beta_disagreement", "ratio", "(max − min) / |median| of the five betas"),
    Metric("adf_stat", "t", "ADF statistic of the OLS spread (stationarity diagnostic)"),
    Metric("adf_p", "p", "its Dickey–Fuller p-value (not a cointegration test)"),
    Metric("coint_stat", "t", "Engle–Granger cointegration statistic"),
    Metric("coint_p", "p", "its MacKinnon cointegration p-value"),
    Metric("coint_crit_5", "t", "the 5% cointegration critical value"),
    Metric("half_life_bars", "bars", "mean-reversion half-life of the OLS spread"),
    Metric("half_life_s", "s", "the same in seconds"),
    Metric("hurst", "0..1", "Hurst exponent of the OLS spread (< 0.5 mean-reverting)"),
    Metric("liquidity_y", "0..1", "liquidity score of y"),
    Metric("liquidity_x", "0..1", "liquidity score of x"),
    Metric("liquidity_pair", "0..1", "liquidity score of the pair (the weaker leg)"),
    Metric("quote_volume_per_min_y", "quote/min", "y's traded quote volume per minute"),
    Metric("quote_volume_per_min_x", "quote/min", "x's traded quote volume per minute"),
    Metric("trades_per_min_y", "1/min", "y's trades per minute"),
    Metric("trades_per_min_x", "1/min", "x's trades per minute"),
    Metric("spread_proxy_bps_y", "bps", "y's bid-ask spread estimated from bars (Roll)"),
    Metric("spread_proxy_bps_x", "bps", "x's bid-ask spread estimated from bars (Roll)"),
    Metric("refresh_bars", "bars", "length of the refresh window"),
    Metric("refreshed_ms", "ms since epoch", "bar time of the last refresh"),
]

PAIR_METRICS: dict[str, Metric] = {m.name: m for m in _DECLARED}
"""Every key of :meth:`~qdash.analytics.PairState.metrics`."""

RULE_METRICS: tuple[str, ...] = tuple(m.name for m in _DECLARED if m.unit != "text")
"""The metrics an alert rule may compare (every numeric or boolean one)."""


def metrics_help() -> str:
    """The rule metrics as ``name (unit): meaning`` lines, for editors and error messages."""
    return "\n".join(f"{m.name} ({m.unit}): {m.meaning}" for m in _DECLARED
                     if m.name in RULE_METRICS)
