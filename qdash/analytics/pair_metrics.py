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
_TABLE = """
symbol_y               | text           | the leg held one unit of
symbol_x               | text           | the hedge leg
ts_ms                  | ms since epoch | open time of the last aligned bar
bars                   | bars           | aligned bars processed
segment_bars           | bars           | bars since the start or the last hole in the data
price_y                | quote currency | last close of y
price_x                | quote currency | last close of x
beta                   | W              | the signal's hedge ratio (the chosen hedge method)
alpha                  | W              | the signal's intercept
spread                 | W              | the signal's spread y − (β·x + α)
zscore                 | σ              | the signal's z-score; NaN while a leg is stale
zscore_raw             | σ              | the signal's z-score, also when a leg is stale
beta_rolling           | W              | rolling OLS hedge ratio over the β window
alpha_rolling          | W              | rolling OLS intercept
spread_rolling         | W              | spread of the rolling OLS fit
beta_kalman            | W              | Kalman-filtered hedge ratio
alpha_kalman           | W              | Kalman-filtered intercept
spread_kalman          | W              | spread of the Kalman fit
innovation             | W              | Kalman one-step prediction error of y
innovation_var         | working units² | its predicted variance
innovation_z           | σ              | innovation / sqrt(variance): a break signal
corr                   | −1..1          | correlation of log returns over the correlation window
corr_returns           | −1..1          | the same as corr
corr_prices            | −1..1          | correlation of working prices over the correlation window
age_y_s                | s              | time since y's last trade
age_x_s                | s              | time since x's last trade
stale_y                | bool           | y's last trade is older than stale_after_s
stale_x                | bool           | x's last trade is older than stale_after_s
stale                  | bool           | either leg is stale
beta_ols               | W              | OLS hedge ratio on the refresh window
alpha_ols              | W              | OLS intercept on the refresh window
beta_huber             | W              | Huber hedge ratio on the refresh window
alpha_huber            | W              | Huber intercept on the refresh window
beta_theil_sen         | W              | Theil–Sen hedge ratio on the refresh window
alpha_theil_sen        | W              | Theil–Sen intercept on the refresh window
beta_disagreement      | ratio          | (max − min) / |median| of the five betas
adf_stat               | t              | ADF statistic of the OLS spread (stationarity diagnostic)
adf_p                  | p              | its Dickey–Fuller p-value (not a cointegration test)
coint_stat             | t              | Engle–Granger cointegration statistic
coint_p                | p              | its MacKinnon cointegration p-value
coint_crit_5           | t              | the 5% cointegration critical value
half_life_bars         | bars           | mean-reversion half-life of the OLS spread
half_life_s            | s              | the same in seconds
hurst                  | 0..1           | Hurst exponent of the OLS spread (< 0.5 mean-reverting)
break_stat             | sup |CUSUM|    | OLS-CUSUM break statistic of the OLS spread's
                       |                | mean-reversion residuals
break_p                | p              | its p-value (small: the spread broke inside the refresh
                       |                | window)
coint_break            | 0/1            | 1 when coint_p > 0.05 or break_p < 0.05: the pair stopped
                       |                | behaving; a rule `coint_break > 0` fires on it
liquidity_y            | 0..1           | liquidity score of y
liquidity_x            | 0..1           | liquidity score of x
liquidity_pair         | 0..1           | liquidity score of the pair (the weaker leg)
quote_volume_per_min_y | quote/min      | y's traded quote volume per minute
quote_volume_per_min_x | quote/min      | x's traded quote volume per minute
trades_per_min_y       | 1/min          | y's trades per minute
trades_per_min_x       | 1/min          | x's trades per minute
spread_proxy_bps_y     | bps            | y's bid-ask spread estimated from bars (Roll)
spread_proxy_bps_x     | bps            | x's bid-ask spread estimated from bars (Roll)
refresh_bars           | bars           | length of the refresh window
refreshed_ms           | ms since epoch | bar time of the last refresh
"""
"""One metric a row, ``name | unit | meaning`` (unit ``W``: :data:`_W`); a row without a name
continues the meaning above it."""


def _declared(table: str) -> list[Metric]:
    rows: list[list[str]] = []
    for line in table.strip().splitlines():
        name, unit, meaning = (part.strip() for part in line.split(" | ", 2))
        if name:
            rows.append([name, _W if unit == "W" else unit, meaning])
        else:
            rows[-1][2] += " " + meaning
    return [Metric(*row) for row in rows]


_DECLARED = _declared(_TABLE)

PAIR_METRICS: dict[str, Metric] = {m.name: m for m in _DECLARED}
"""Every key of :meth:`~qdash.analytics.PairState.metrics`."""

RULE_METRICS: tuple[str, ...] = tuple(m.name for m in _DECLARED if m.unit != "text")
"""The metrics an alert rule may compare (every numeric or boolean one)."""


def metrics_help() -> str:
    """The rule metrics as ``name (unit): meaning`` lines, for editors and error messages."""
    return "\n".join(f"{m.name} ({m.unit}): {m.meaning}" for m in _DECLARED
                     if m.name in RULE_METRICS)
