"""Pair mean-reversion backtest: ``run`` (one backtest), ``sweep`` (a grid), ``walk_forward``.

The strategy trades the spread ``y - beta * x - alpha`` of two aligned price series on its
z-score: short the spread when ``z >= entry``, long when ``z <= -entry``, flat again when z comes
back to ``exit`` (0 = the mean), with an optional ``stop`` (|z| beyond it) and ``max_hold`` (bars).

Layers:

- the core takes aligned prices plus per-bar ``beta`` and ``z`` arrays (``run(y, x, beta=...,
  z=...)``) and runs the compiled loop in :mod:`qdash.backtest.kernel`;
- :func:`signals` computes beta/alpha/z with :mod:`qdash.analytics` for the named hedge methods
  (``rolling-ols``, ``expanding-ols``, ``kalman``: causal; ``fixed``: a given beta; ``full-ols``:
  one fit on the whole sample, which looks ahead and marks the result in-sample).

Timing (causal by construction): the decision at bar ``t`` uses z/beta known at ``t``'s close and
executes at bar ``t+1`` — its open when bars with ``open`` are given (``fill="open"``), its close
when only closes exist (``fill="close"``). Bars are labelled by their open time (UTC).

Accounting (quote currency, futures-style): equity = initial capital + realised PnL − fees −
slippage + funding received + open-position mark at the close. Per trade: ``gross_pnl = pnl_y +
pnl_x``; ``net_pnl = gross_pnl − fees − slippage + funding``; so the final equity equals the
initial capital plus the sum of ``net_pnl`` (plus the mark of a position left open).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import BacktestError
from . import kernel
from . import metrics as mt

log = logging.getLogger(__name__)

HEDGE_METHODS = ("rolling-ols", "expanding-ols", "kalman", "fixed", "full-ols")
IN_SAMPLE_METHODS = ("full-ols",)

TRADE_COLUMNS = [
    "entry_time", "exit_time", "side", "entry_z", "exit_z", "beta", "qty_y", "qty_x",
    "entry_price_y", "entry_price_x", "exit_price_y", "exit_price_x", "pnl_y", "pnl_x",
    "gross_pnl", "fees", "slippage", "funding", "net_pnl", "bars_held", "exit_reason",
]


class InSampleWarning(UserWarning):
    """A result was fitted on the data it is evaluated on (look-ahead)."""


@dataclass(frozen=True)
class Params:
    """Strategy and cost parameters of one backtest.

    ``entry``/``exit``/``stop`` are z-score levels (``stop=None``: no stop); ``max_hold`` in bars
    (None: unlimited); ``capital`` in quote currency; ``allocation`` the fraction of current
    equity put to work at each entry (gross notional of both legs = allocation × equity ×
    ``leverage``); ``fee_bps`` taker fee per leg per fill; ``slippage_bps`` per leg per fill;
    ``close_at_end`` closes a position still open at the last close (reason ``end_of_data``).
    """

    entry: float = 2.0
    exit: float = 0.0
    stop: float | None = None
    max_hold: int | None = None
    capital: float = 10_000.0
    allocation: float = 0.95
    leverage: float = 1.0
    fee_bps: float = 4.0
    slippage_bps: float = 0.0
    close_at_end: bool = True

    def check(self) -> None:
        """Raise :class:`BacktestError` on inconsistent levels or sizes."""
        if not self.entry > 0:
            raise BacktestError(f"entry must be > 0 (a |z| level), got {self.entry}")
        if not -self.entry < self.exit < self.entry:
            raise BacktestError(f"exit must lie strictly between -entry and entry "
                                f"({-self.entry}, {self.entry}), got {self.exit}")
        if self.stop is not None and not self.stop > self.entry:
            raise BacktestError(f"stop must be > entry ({self.entry}), got {self.stop}")
        if self.max_hold is not None and not self.max_hold >= 1:
            raise BacktestError(f"max_hold must be >= 1 bar, got {self.max_hold}")
        if not self.capital > 0:
            raise BacktestError(f"capital must be > 0, got {self.capital}")
        if not 0 < self.allocation <= 1:
            raise BacktestError(f"allocation must be in (0, 1], got {self.allocation}")
        if not self.leverage > 0:
            raise BacktestError(f"leverage must be > 0, got {self.leverage}")
        if self.fee_bps < 0 or self.slippage_bps < 0:
            raise BacktestError("fee_bps and slippage_bps must be >= 0")


@dataclass
class Signals:
    """Per-bar hedge ratio, intercept, spread and z-score (all known at the bar's close)."""

    beta: np.ndarray
    alpha: np.ndarray
    spread: np.ndarray
    z: np.ndarray
    hedge: str
    in_sample: bool = False


@dataclass
class BacktestResult:
    """One backtest. ``equity``: per-bar account value at the close (Series, quote currency);
    ``positions``: per bar ``side`` (+1 long spread, −1 short), ``qty_y``, ``qty_x`` held after
    the bar's fills, and the ``beta``/``z`` the rule saw; ``trades``: one row per round trip
    (:data:`TRADE_COLUMNS`); ``metrics``: see :mod:`qdash.backtest.metrics`."""

    equity: pd.Series
    positions: pd.DataFrame
    trades: pd.DataFrame
    metrics: dict
    params: dict = field(default_factory=dict)
    in_sample: bool = False

    def metrics_table(self) -> pd.DataFrame:
        """Metrics as a one-column table (``value``), in-sample flag included."""
        m = {**self.metrics, "in_sample": self.in_sample}
        return pd.DataFrame({"value": pd.Series(m, dtype=object)})

    def to_csv(self, directory: str | os.PathLike) -> dict[str, Path]:
        """Write ``trades.csv``, ``equity.csv`` (equity + positions) and ``metrics.csv``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths = {k: d / f"{k}.csv" for k in ("trades", "equity", "metrics")}
        self.trades.to_csv(paths["trades"], index=False)
        self.positions.assign(equity=self.equity).to_csv(paths["equity"])
        self.metrics_table().to_csv(paths["metrics"], index_label="metric")
        return paths


# ---------------------------------------------------------------------------------------------
# inputs

@dataclass
class _Prices:
    index: pd.DatetimeIndex
    exec_y: np.ndarray
    exec_x: np.ndarray
    mark_y: np.ndarray
    mark_x: np.ndarray
    fill: str
    bar_ms: float


def _utc_index(obj, name: str) -> pd.DatetimeIndex:
    idx = obj.index
    if not isinstance(idx, pd.DatetimeIndex):
        raise BacktestError(f"{name} needs a DatetimeIndex (bar open times, UTC), "
                            f"got {type(idx).__name__}")
    return idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")


def _column(obj, col: str, name: str) -> pd.Series:
    if isinstance(obj, pd.DataFrame):
        if col not in obj.columns:
            raise BacktestError(f"{name} has no {col!r} column (columns: {list(obj.columns)})")
        return obj[col]
    return obj


def prepare_prices(y, x, fill: str = "auto", bar_ms: float | None = None) -> _Prices:
    """Align ``y`` and ``x`` (close Series or bar DataFrames) on their common bars.

    ``fill``: ``"open"`` fills at the next bar's open (needs DataFrames with ``open``),
    ``"close"`` at the next bar's close, ``"auto"`` picks open when both have it.
    """
    for obj, name in ((y, "y"), (x, "x")):
        if not isinstance(obj, (pd.Series, pd.DataFrame)):
            raise BacktestError(f"{name} must be a pandas Series of closes or a bar DataFrame, "
                                f"got {type(obj).__name__}")
    yi, xi = _utc_index(y, "y"), _utc_index(x, "x")
    if fill == "auto":
        fill = "open" if all(isinstance(o, pd.DataFrame) and "open" in o.columns
                             for o in (y, x)) else "close"
    if fill not in ("open", "close"):
        raise BacktestError(f"fill must be 'open', 'close' or 'auto', got {fill!r}")
    yc, xc = _column(y, "close", "y"), _column(x, "close", "x")
    yo, xo = (_column(y, "open", "y"), _column(x, "open", "x")) if fill == "open" else (yc, xc)
    index = yi.intersection(xi)
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise BacktestError("bar times must be strictly increasing without duplicates")
    if len(index) < len(yi) or len(index) < len(xi):
        log.warning("aligning y (%d bars) and x (%d bars) keeps their %d common bars",
                    len(yi), len(xi), len(index))
    if len(index) < 2:
        raise BacktestError(f"need at least 2 common bars, got {len(index)}")

    def arr(s, own_index):
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        return v if own_index.equals(index) else v[own_index.get_indexer(index)]

    mark_y, mark_x = arr(yc, yi), arr(xc, xi)
    exec_y, exec_x = arr(yo, yi), arr(xo, xi)
    if bar_ms is None:
        bar_ms = mt.bar_ms_of(index)
    return _Prices(index, exec_y, exec_x, mark_y, mark_x, fill, float(bar_ms))


def funding_per_bar(rates, index: pd.DatetimeIndex, bar_ms: float) -> np.ndarray:
    """Map a funding-rate series (index: settlement times, values: signed rates per period) onto
    bars: each rate lands in the bar whose ``[open, open + bar_ms)`` contains its timestamp;
    several in one bar add up; rates outside every bar (before the first, in a gap between
    bars, after the last) are dropped with a warning in the log."""
    out = np.zeros(len(index))
    if rates is None:
        return out
    if not isinstance(rates, pd.Series) or not isinstance(rates.index, pd.DatetimeIndex):
        raise BacktestError("funding rates must be a pandas Series indexed by settlement time")
    r_idx = rates.index.tz_localize("UTC") if rates.index.tz is None else rates.index
    t = r_idx.as_unit("ms").asi8
    opens = index.as_unit("ms").asi8
    bar = np.searchsorted(opens, t, side="right") - 1
    ok = (bar >= 0) & (t < opens[np.maximum(bar, 0)] + bar_ms)
    vals = rates.to_numpy(dtype=np.float64, na_value=0.0)
    np.add.at(out, bar[ok], vals[ok])
    dropped = int((~ok).sum())
    if dropped:
        log.warning("%d funding settlements fall outside the bars and are ignored", dropped)
    return out


def _per_bar(values, index: pd.DatetimeIndex, name: str) -> np.ndarray:
    if np.isscalar(values):
        return np.full(len(index), float(values))
    if isinstance(values, pd.Series) and isinstance(values.index, pd.DatetimeIndex):
        s = values
        if s.index.tz is None:
            s = s.tz_localize("UTC")
        return s.reindex(index).to_numpy(dtype=np.float64, na_value=np.nan)
    a = np.asarray(values, dtype=np.float64)
    if a.shape != (len(index),):
        raise BacktestError(f"{name} has shape {a.shape}, expected ({len(index)},) — one value "
                            f"per aligned bar")
    return a


# ---------------------------------------------------------------------------------------------
# hedge ratio and z-score (computed by qdash.analytics)

def signals(y_close: pd.Series, x_close: pd.Series, hedge: str = "rolling-ols",
            window: int | None = 500, z_window: int | None = None,
            beta: float | None = None, min_periods: int = 30,
            hedge_options: dict | None = None) -> Signals:
    """Per-bar beta, alpha, spread ``y - beta*x - alpha`` and rolling z-score of the spread.

    ``hedge``: ``rolling-ols`` (OLS with intercept over the last ``window`` bars),
    ``expanding-ols`` (all bars so far), ``kalman`` (filtered, no smoothing), ``fixed`` (the
    given ``beta``, alpha 0), or ``full-ols`` (one fit on all bars: looks ahead, so the result is
    flagged in-sample). ``expanding-ols`` starts after ``min_periods`` bars; ``hedge_options``
    go to :func:`qdash.analytics.hedge_ratio` (e.g. Kalman ``delta`` and ``r``, whose default
    suits prices near 1-100: scale ``r`` with the squared price level). ``z_window`` (default
    ``window``) is the causal rolling window of the z-score. Every value at bar ``t`` uses data
    up to ``t`` only, except ``full-ols``.
    """
    # the estimators live in qdash.analytics; imported here to keep the kernel importable alone
    from ..analytics.hedge import hedge_ratio
    from ..analytics.stats import zscore

    if hedge not in HEDGE_METHODS:
        raise BacktestError(f"unknown hedge method {hedge!r}; choose one of {HEDGE_METHODS}")
    zw = z_window or window
    if not zw or zw < 2:
        raise BacktestError(f"z-score window must be >= 2 bars, got {zw}")
    n = len(y_close)
    if hedge == "fixed":
        if beta is None:
            raise BacktestError("hedge='fixed' needs beta=<value>")
        b, a = np.full(n, float(beta)), np.zeros(n)
    else:
        kw = {"method": _ANALYTICS_METHOD[hedge]}
        if hedge == "rolling-ols":
            if not window or window < 3:
                raise BacktestError(f"rolling-ols needs window >= 3 bars, got {window}")
            kw["window"] = int(window)
        elif hedge == "expanding-ols":
            kw["min_periods"] = int(min_periods)
        res = hedge_ratio(y_close, x_close, **kw, **(hedge_options or {}))
        if res.beta_series is not None:
            b = _per_bar(res.beta_series, y_close.index, "beta")
            a = _per_bar(res.alpha_series, y_close.index, "alpha")
        else:
            b, a = np.full(n, float(res.beta)), np.full(n, float(res.alpha))
    spread = y_close.to_numpy(np.float64) - b * x_close.to_numpy(np.float64) - a
    z = np.asarray(zscore(pd.Series(spread, index=y_close.index), int(zw)),
                   dtype=np.float64)
    return Signals(b, a, spread, z, hedge, in_sample=hedge in IN_SAMPLE_METHODS)


_ANALYTICS_METHOD = {"rolling-ols": "rolling", "expanding-ols": "expanding", "kalman": "kalman",
                     "full-ols": "ols"}


# ---------------------------------------------------------------------------------------------
# one backtest

def _simulate(p: _Prices, beta: np.ndarray, z: np.ndarray, prm: Params, fy: np.ndarray,
              fx: np.ndarray, lo: int = 0, hi: int | None = None, capital: float | None = None):
    s = slice(lo, hi)
    return kernel.simulate(
        p.exec_y[s], p.exec_x[s], p.mark_y[s], p.mark_x[s], beta[s], z[s], fy[s], fx[s],
        float(prm.entry), float(prm.exit), math.inf if prm.stop is None else float(prm.stop),
        np.iinfo(np.int64).max if prm.max_hold is None else int(prm.max_hold),
        float(prm.capital if capital is None else capital), float(prm.allocation),
        float(prm.leverage), prm.fee_bps / 1e4, prm.slippage_bps / 1e4, p.fill == "open",
        bool(prm.close_at_end))


def _trade_arrays(tr: np.ndarray, nt: int) -> tuple[np.ndarray, np.ndarray]:
    t = tr[:nt]
    net = (t[:, kernel.T_PNL_Y] + t[:, kernel.T_PNL_X] - t[:, kernel.T_FEES] - t[:, kernel.T_SLIP]
           + t[:, kernel.T_FUNDING])
    return net, t[:, kernel.T_EXIT_BAR] - t[:, kernel.T_ENTRY_BAR]


def _metrics(out, p: _Prices, capital: float, index=None) -> dict:
    equity, side, _, _, tr, nt, totals = out
    net, held = _trade_arrays(tr, nt)
    idx = p.index if index is None else index
    years = (idx[-1] - idx[0]).total_seconds() * 1000 / (mt.DAYS_PER_YEAR * mt.DAY_MS)
    return mt.compute_all(equity, side, net, held, bar_ms=p.bar_ms, years=years,
                          initial_capital=capital, traded_notional=totals[kernel.S_NOTIONAL],
                          fees=totals[kernel.S_FEES], slippage=totals[kernel.S_SLIP],
                          funding=totals[kernel.S_FUNDING])


def _trades_frame(tr: np.ndarray, nt: int, index: pd.DatetimeIndex) -> pd.DataFrame:
    t = tr[:nt]
    k = kernel
    entry_bar = t[:, k.T_ENTRY_BAR].astype(np.int64)
    exit_bar = t[:, k.T_EXIT_BAR].astype(np.int64)
    gross = t[:, k.T_PNL_Y] + t[:, k.T_PNL_X]
    df = pd.DataFrame({
        "entry_time": index[entry_bar], "exit_time": index[exit_bar],
        "side": pd.array(np.where(t[:, k.T_SIDE] > 0, "long", "short"), dtype="str"),
        "entry_z": t[:, k.T_ENTRY_Z], "exit_z": t[:, k.T_EXIT_Z], "beta": t[:, k.T_BETA],
        "qty_y": t[:, k.T_QTY_Y], "qty_x": t[:, k.T_QTY_X],
        "entry_price_y": t[:, k.T_ENTRY_PY], "entry_price_x": t[:, k.T_ENTRY_PX],
        "exit_price_y": t[:, k.T_EXIT_PY], "exit_price_x": t[:, k.T_EXIT_PX],
        "pnl_y": t[:, k.T_PNL_Y], "pnl_x": t[:, k.T_PNL_X], "gross_pnl": gross,
        "fees": t[:, k.T_FEES], "slippage": t[:, k.T_SLIP], "funding": t[:, k.T_FUNDING],
        "net_pnl": gross - t[:, k.T_FEES] - t[:, k.T_SLIP] + t[:, k.T_FUNDING],
        "bars_held": exit_bar - entry_bar,
        "exit_reason": pd.array([k.REASONS[int(r)] for r in t[:, k.T_REASON]], dtype="str"),
    })
    return df[TRADE_COLUMNS]


def run(y, x, *, hedge: str = "rolling-ols", window: int | None = 500,
        z_window: int | None = None, beta=None, z=None, entry: float = 2.0, exit: float = 0.0,
        stop: float | None = None, max_hold: int | None = None, capital: float = 10_000.0,
        allocation: float = 0.95, leverage: float = 1.0, fee_bps: float = 4.0,
        slippage_bps: float = 0.0, funding_y: pd.Series | None = None,
        funding_x: pd.Series | None = None, fill: str = "auto", close_at_end: bool = True,
        bar_ms: float | None = None, in_sample: bool = False,
        hedge_options: dict | None = None) -> BacktestResult:
    """Backtest the pair mean-reversion rule on ``y`` and ``x``.

    ``y``, ``x``: close Series or bar DataFrames (``open``/``close``) indexed by UTC bar open
    time; they are aligned on common bars. Signals: give per-bar ``beta`` and ``z`` (arrays or
    Series, or a scalar ``beta``) to use them as they are, or let :func:`signals` compute them
    from the closes with ``hedge``/``window``/``z_window`` (``hedge='fixed'`` uses the scalar
    ``beta``). ``in_sample=True`` marks hand-given signals as fitted on this data.
    ``funding_y``/``funding_x``: signed funding rates (Series indexed by settlement time; a
    positive rate makes longs pay), settled on the position held at that time. Other parameters:
    :class:`Params`. Metrics are annualised for a 365-day year at the bar frequency.
    """
    prm = Params(entry, exit, stop, max_hold, capital, allocation, leverage, fee_bps,
                 slippage_bps, close_at_end)
    prm.check()
    p = prepare_prices(y, x, fill, bar_ms)
    if z is not None:
        if beta is None:
            raise BacktestError("z given without beta: pass the per-bar beta used for the spread")
        b, zz = _per_bar(beta, p.index, "beta"), _per_bar(z, p.index, "z")
        label = "given"
    else:
        close_y = pd.Series(p.mark_y, index=p.index)
        close_x = pd.Series(p.mark_x, index=p.index)
        sig = signals(close_y, close_x, hedge, window, z_window, beta,
                      hedge_options=hedge_options)
        b, zz, in_sample, label = sig.beta, sig.z, in_sample or sig.in_sample, hedge
    if in_sample:
        warnings.warn("backtest signals were fitted on the whole sample (look-ahead): "
                      "the result is in-sample", InSampleWarning, stacklevel=2)
    fy = funding_per_bar(funding_y, p.index, p.bar_ms)
    fx = funding_per_bar(funding_x, p.index, p.bar_ms)
    out = _simulate(p, b, zz, prm, fy, fx)
    equity, side, qy, qx, tr, nt, totals = out
    eq = pd.Series(equity, index=p.index, name="equity")
    positions = pd.DataFrame({"side": side, "qty_y": qy, "qty_x": qx, "beta": b, "z": zz},
                             index=p.index)
    params = {**prm.__dict__, "hedge": label, "window": window, "z_window": z_window or window,
              "fill": p.fill, "open_at_end": bool(totals[kernel.S_OPEN])}
    return BacktestResult(eq, positions, _trades_frame(tr, nt, p.index),
                          _metrics(out, p, prm.capital), params, in_sample)


# ---------------------------------------------------------------------------------------------
# research: grids and walk-forward

def _in_notebook() -> bool:
    return "ipykernel" in sys.modules


def _grid(values) -> list:
    return list(values) if isinstance(values, (list, tuple, np.ndarray, range)) else [values]


def sweep(y, x, *, entry=(2.0,), exit=(0.0,), stop=(None,), window=(500,), hedge=("rolling-ols",),
          max_hold=(None,), z_window=None, n_jobs: int | None = None, progress: bool | None = None,
          lo: int = 0, hi: int | None = None, **fixed) -> pd.DataFrame:
    """Backtest every combination of ``entry × exit × stop × window × hedge × max_hold``.

    Returns a tidy DataFrame: one row per combination, its parameters then its metrics
    (:func:`qdash.backtest.metrics.compute_all`). Signals are computed once per (hedge, window);
    the kernels for one signal set run in ``n_jobs`` threads (default: CPU count; the compiled
    loop releases the GIL). Combinations with ``exit >= entry`` or ``stop <= entry`` are skipped.
    ``progress`` shows a tqdm bar (default: on inside a notebook kernel). ``lo``/``hi`` restrict
    trading to bars ``[lo, hi)`` while signals still see the history before ``lo`` (used by
    :func:`walk_forward`). ``fixed`` passes the other :func:`run` parameters (costs, capital,
    ``beta`` for ``hedge='fixed'``, ``fill``, funding).

    Choosing the best row of a sweep is fitting on the data: the frame's ``attrs['in_sample']``
    is True and a best-row result should be confirmed with :func:`walk_forward`.
    """
    beta_fixed = fixed.pop("beta", None)
    fill = fixed.pop("fill", "auto")
    funding_y, funding_x = fixed.pop("funding_y", None), fixed.pop("funding_x", None)
    hedge_options = fixed.pop("hedge_options", None)
    base = Params(**fixed)
    p = prepare_prices(y, x, fill)
    fy = funding_per_bar(funding_y, p.index, p.bar_ms)
    fx = funding_per_bar(funding_x, p.index, p.bar_ms)
    close_y = pd.Series(p.mark_y, index=p.index)
    close_x = pd.Series(p.mark_x, index=p.index)
    index = p.index[lo:hi]
    if any(h in IN_SAMPLE_METHODS for h in _grid(hedge)):
        warnings.warn("sweep includes a full-sample hedge fit (look-ahead): those rows are "
                      "in-sample", InSampleWarning, stacklevel=2)
    rule_grid, last_error = [], None
    for e, xt, st, mh in itertools.product(_grid(entry), _grid(exit), _grid(stop),
                                           _grid(max_hold)):
        prm = Params(**{**base.__dict__, "entry": e, "exit": xt, "stop": st, "max_hold": mh})
        try:
            prm.check()
        except BacktestError as exc:
            last_error = exc
            continue
        rule_grid.append(prm)
    if not rule_grid:
        raise BacktestError(f"no valid parameter combination in the sweep grid ({last_error})")
    groups = list(itertools.product(_grid(hedge), _grid(window)))
    if progress is None:
        progress = _in_notebook()
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(groups) * len(rule_grid), desc="sweep")
    n_jobs = n_jobs or os.cpu_count() or 1
    rows = []
    with ThreadPoolExecutor(max_workers=n_jobs) if n_jobs > 1 else _Inline() as pool:
        for h, w in groups:
            sig = signals(close_y, close_x, h, w, z_window, beta_fixed,
                          hedge_options=hedge_options)

            def one(prm, sig=sig):
                out = _simulate(p, sig.beta, sig.z, prm, fy, fx, lo, hi)
                return _metrics(out, p, prm.capital, index)

            for prm, m in zip(rule_grid, pool.map(one, rule_grid)):
                rows.append({"hedge": h, "window": w, "entry": prm.entry, "exit": prm.exit,
                             "stop": prm.stop, "max_hold": prm.max_hold,
                             "in_sample_hedge": sig.in_sample, **m})
                if bar is not None:
                    bar.update()
    if bar is not None:
        bar.close()
    df = pd.DataFrame(rows)
    df.attrs["in_sample"] = True
    return df


class _Inline:
    """A stand-in for an executor that maps in the calling thread."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def map(fn, items):
        return map(fn, items)


@dataclass
class WalkForwardResult:
    """Out-of-sample results only. ``splits``: per split the train/test bounds, the parameters
    chosen on train, the train objective and the test metrics (``test_*``); ``equity``: the test
    segments chained (each starts from the previous segment's final equity); ``metrics``: computed
    on that chained curve; ``trades``: the test-period trades."""

    splits: pd.DataFrame
    equity: pd.Series
    trades: pd.DataFrame
    metrics: dict


def walk_forward(y, x, *, train_bars: int, test_bars: int, objective: str = "sharpe",
                 entry=(2.0,), exit=(0.0,), stop=(None,), window=(500,),
                 hedge=("rolling-ols",), max_hold=(None,), z_window=None,
                 n_jobs: int | None = None, **fixed) -> WalkForwardResult:
    """Rolling walk-forward: choose parameters on ``train_bars``, report the next ``test_bars``.

    Splits advance by ``test_bars``; the test windows tile the data after the first training
    window without overlap. Signals are causal, so each test run sees the history before its
    window (warm-up) but trades only inside it, starting flat. The parameters maximising
    ``objective`` (a metric name, NaN counts as worst) on the train window are used for the test
    window. Hedge methods that fit on the whole sample are refused.
    """
    for h in _grid(hedge):
        if h in IN_SAMPLE_METHODS:
            raise BacktestError(f"walk_forward needs causal hedge methods; {h!r} fits on the "
                                f"whole sample")
    grid = dict(entry=entry, exit=exit, stop=stop, window=window, hedge=hedge,
                max_hold=max_hold, z_window=z_window, n_jobs=n_jobs)
    p = prepare_prices(y, x, fixed.get("fill", "auto"))
    n = len(p.index)
    if train_bars < 2 or test_bars < 2 or train_bars + test_bars > n:
        raise BacktestError(f"train_bars={train_bars} + test_bars={test_bars} must fit in the "
                            f"{n} bars (each >= 2)")
    initial = capital = fixed.get("capital", Params.capital)
    rows, segments, sides, trade_frames, notional = [], [], [], [], 0.0
    start = 0
    while start + train_bars + 1 < n:
        tr_lo, te_lo = start, start + train_bars
        te_hi = min(te_lo + test_bars, n)
        train = sweep(y, x, lo=tr_lo, hi=te_lo, progress=False, **grid, **fixed)
        score = train[objective].astype(float).fillna(-np.inf)
        best = train.loc[score.idxmax()]
        chosen = {k: _none_if_nan(best[k]) for k in ("hedge", "window", "entry", "exit", "stop",
                                                     "max_hold")}
        test = _run_window(y, x, chosen, z_window, fixed, te_lo, te_hi, capital)
        notional += test.metrics["turnover"] * capital
        capital = test.metrics["final_equity"]
        segments.append(test.equity)
        sides.append(test.positions["side"].to_numpy())
        trade_frames.append(test.trades)
        rows.append({"split": len(rows), "train_start": p.index[tr_lo],
                     "train_end": p.index[te_lo - 1], "test_start": p.index[te_lo],
                     "test_end": p.index[te_hi - 1], **chosen,
                     f"train_{objective}": best[objective],
                     **{f"test_{k}": v for k, v in test.metrics.items()}})
        start += test_bars
    equity = pd.concat(segments)
    trades = pd.concat(trade_frames, ignore_index=True)
    years = (equity.index[-1] - equity.index[0]).total_seconds() * 1000 / \
        (mt.DAYS_PER_YEAR * mt.DAY_MS)
    m = mt.compute_all(equity.to_numpy(), np.concatenate(sides), trades["net_pnl"],
                       trades["bars_held"], bar_ms=p.bar_ms, years=years,
                       initial_capital=initial, traded_notional=notional,
                       fees=sum(r["test_total_fees"] for r in rows),
                       slippage=sum(r["test_total_slippage"] for r in rows),
                       funding=sum(r["test_total_funding"] for r in rows))
    return WalkForwardResult(pd.DataFrame(rows), equity, trades, m)


def _none_if_nan(v):
    return None if isinstance(v, float) and math.isnan(v) else (v.item() if hasattr(v, "item")
                                                                else v)


def _run_window(y, x, chosen: dict, z_window, fixed: dict, lo: int, hi: int,
                capital: float) -> BacktestResult:
    """Backtest ``chosen`` parameters trading only bars ``[lo, hi)`` with signals from all the
    history before ``hi`` (causal), starting flat with ``capital``."""
    fixed = dict(fixed)
    beta_fixed = fixed.pop("beta", None)
    fill = fixed.pop("fill", "auto")
    funding_y, funding_x = fixed.pop("funding_y", None), fixed.pop("funding_x", None)
    hedge_options = fixed.pop("hedge_options", None)
    p = prepare_prices(y, x, fill)
    close_y = pd.Series(p.mark_y[:hi], index=p.index[:hi])
    close_x = pd.Series(p.mark_x[:hi], index=p.index[:hi])
    sig = signals(close_y, close_x, chosen["hedge"], chosen["window"], z_window, beta_fixed,
                  hedge_options=hedge_options)
    ya = _slice_input(y, p.index[lo:hi])
    xa = _slice_input(x, p.index[lo:hi])
    return run(ya, xa, beta=sig.beta[lo:hi], z=sig.z[lo:hi], entry=chosen["entry"],
               exit=chosen["exit"], stop=chosen["stop"], max_hold=chosen["max_hold"],
               funding_y=funding_y, funding_x=funding_x, fill=fill, bar_ms=p.bar_ms,
               **{**fixed, "capital": capital})


def _slice_input(obj, index: pd.DatetimeIndex):
    o = obj.copy()
    o.index = _utc_index(obj, "input")
    return o.loc[index]
