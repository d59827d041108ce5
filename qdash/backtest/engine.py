"""Pair mean-reversion backtest: ``run`` (one backtest), ``sweep`` (a grid), ``walk_forward``.

The strategy trades the spread ``y - beta * x - alpha`` of two aligned price series on its
z-score: short the spread when ``z >= entry``, long when ``z <= -entry``, flat again when z comes
back to ``exit`` (0 = the mean), with an optional ``stop`` (|z| beyond it) and ``max_hold`` (bars).

Signals: by default the strategy trades THE pair signal of :mod:`qdash.analytics.signal` — a
:class:`~qdash.analytics.signal.SignalSpec` (hedge method, log prices by default, windows, the gap
rule) turned into per-bar ``beta``, ``alpha``, ``spread``, ``zscore`` by
:func:`~qdash.analytics.signal.compute_signal`, the same numbers the dashboard charts and alerts
fire on; ``result.signals`` holds them. Hand-made per-bar ``beta`` and ``z`` can be given instead
(``run(y, x, beta=..., z=...)``). Entries obey the signal's hedge rule
(:func:`~qdash.analytics.signal.hedge_ok`: no entry while β ≤ 0 or outside the spec's band
around the reference β; a given β is checked for its sign only) and ``entry ≤ |z| < stop``;
the bars refused are counted in ``result.notes`` (``no_entry: beta``, ``no_entry: stop``).
At the last bar before a hole in the data an open position is closed (exit reason ``gap``);
after it nothing is entered until the signal's windows refill.

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

from ..analytics.signal import SignalSpec, compute_signal, hedge_ok, signal_hedge_ok
from ..errors import AnalyticsError, BacktestError
from ..io.export import write_csv
from . import kernel
from . import metrics as mt

log = logging.getLogger(__name__)


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
class BacktestResult:
    """One backtest. ``equity``: per-bar account value at the close (Series, quote currency);
    ``positions``: per bar ``side`` (+1 long spread, −1 short), ``qty_y``, ``qty_x`` held after
    the bar's fills, and the ``beta``/``z`` the rule saw; ``trades``: one row per round trip
    (:data:`TRADE_COLUMNS`; ``beta`` in the signal's price space, see ``params["space"]``);
    ``metrics``: see :mod:`qdash.backtest.metrics`; ``signals``: per bar ``beta, alpha, spread,
    zscore`` traded on; ``notes``: what to read a number with (no trades, a short sample).
    """

    equity: pd.Series
    positions: pd.DataFrame
    trades: pd.DataFrame
    metrics: dict
    params: dict = field(default_factory=dict)
    in_sample: bool = False
    signals: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    def metrics_table(self) -> pd.DataFrame:
        """Metrics as a one-column table (``value``), in-sample flag included."""
        m = {**self.metrics, "in_sample": self.in_sample}
        return pd.DataFrame({"value": pd.Series(m, dtype=object)})

    def to_csv(self, directory: str | os.PathLike) -> dict[str, Path]:
        """Write ``trades.csv``, ``equity.csv`` (equity + positions), ``metrics.csv`` and, when
        the signal was computed here, ``signals.csv`` (``beta``, ``alpha``, ``spread``,
        ``zscore``: the exact series traded on); every time in every file is ISO 8601 UTC
        (:func:`qdash.io.export.iso_utc`)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        names = ("trades", "equity", "metrics") + (("signals",) if self.signals is not None
                                                   else ())
        paths = {k: d / f"{k}.csv" for k in names}
        write_csv(self.trades, paths["trades"], index=False)
        write_csv(self.positions.assign(equity=self.equity), paths["equity"])
        write_csv(self.metrics_table(), paths["metrics"], index_label="metric")
        if self.signals is not None:
            write_csv(self.signals[["beta", "alpha", "spread", "zscore"]], paths["signals"],
                      index_label="open_time", float_format="%.10g")
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
    seg_end: np.ndarray | None = None
    log_beta: bool = True
    slip_bps: tuple[np.ndarray, np.ndarray] | None = None  # per-bar slippage of y, x (NaN: flat)

    def __post_init__(self):
        if self.seg_end is None:
            self.seg_end = np.zeros(len(self.index), dtype=np.bool_)

    def fill_times_ms(self) -> np.ndarray:
        """When each bar's fills happen (int ms UTC): its open, or its close (open + bar)
        when fills are at the close."""
        open_ms = self.index.as_unit("ms").asi8
        return open_ms if self.fill == "open" else open_ms + int(self.bar_ms)

    def slip_rates(self, flat_bps: float) -> tuple[np.ndarray, np.ndarray]:
        """Each leg's slippage per bar as a fraction: the model's where it has one, else
        ``flat_bps``."""
        n = len(self.index)
        if self.slip_bps is None:
            flat = np.full(n, flat_bps / 1e4)
            return flat, flat
        return tuple(np.where(np.isfinite(b), b, flat_bps) / 1e4 for b in self.slip_bps)


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
# the signal (qdash.analytics.signal) and the prices it was computed on

def spec_of(signal: SignalSpec | None = None, *, hedge: str | None = None,
            window: int | None = None, z_window: int | None = None, beta: float | None = None,
            log: bool | None = None, bar_ms: float | None = None) -> SignalSpec:
    """The :class:`SignalSpec` of a backtest: ``signal`` (default: the windows of the bars'
    timeframe ``bar_ms`` in :mod:`qdash.defaults`, :meth:`SignalSpec.for_timeframe`) with the
    shortcuts applied — ``window`` is the β window (and the z window unless ``z_window``)."""
    from dataclasses import replace

    if signal is not None:
        spec = signal.signal()
    else:
        spec = SignalSpec.for_timeframe(None if bar_ms is None else int(bar_ms))
    kw: dict = {}
    if hedge is not None:
        kw["hedge"] = hedge
    if window is not None:
        kw["beta_window"] = int(window)
        kw["z_window"] = int(window)
    if z_window is not None:
        kw["z_window"] = int(z_window)
    if beta is not None:
        kw["beta"] = float(beta)
    if log is not None:
        kw["log"] = bool(log)
    spec = replace(spec, **kw)
    try:
        spec.validate()
    except AnalyticsError as e:
        raise BacktestError(str(e)) from None
    return spec


def bar_ms_of_legs(y, x) -> float:
    """The bar length (ms) of two legs: the median spacing of ``y``'s open times (of ``x``'s
    when ``y`` has fewer than two bars)."""
    for obj, name in ((y, "y"), (x, "x")):
        if not isinstance(obj, (pd.Series, pd.DataFrame)):
            raise BacktestError(f"{name} must be a pandas Series of closes or a bar DataFrame, "
                                f"got {type(obj).__name__}")
    idx = _utc_index(y, "y") if len(y) > 1 else _utc_index(x, "x")
    if len(idx) < 2:
        raise BacktestError(f"need at least 2 common bars, got {len(idx)}")
    return mt.bar_ms_of(idx)


def signal_prices(y, x, spec: SignalSpec, fill: str = "auto",
                  bar_ms: float | None = None) -> tuple[_Prices, pd.DataFrame]:
    """The signal frame of ``y``/``x`` (:func:`~qdash.analytics.signal.compute_signal`) and the
    prices to trade it at: the aligned closes, and the next bar's opens when ``fill`` is
    ``open`` (``auto``: when both legs have an ``open`` column)."""
    for obj, name in ((y, "y"), (x, "x")):
        if not isinstance(obj, (pd.Series, pd.DataFrame)):
            raise BacktestError(f"{name} must be a pandas Series of closes or a bar DataFrame, "
                                f"got {type(obj).__name__}")
        _utc_index(obj, name)
    has_open = all(isinstance(o, pd.DataFrame) and "open" in o.columns for o in (y, x))
    if fill == "auto":
        fill = "open" if has_open else "close"
    if fill not in ("open", "close"):
        raise BacktestError(f"fill must be 'open', 'close' or 'auto', got {fill!r}")
    if fill == "open" and not has_open:
        raise BacktestError("fill='open' needs bar DataFrames with an 'open' column")
    try:
        frame = compute_signal(y, x, spec)
    except AnalyticsError as e:
        raise BacktestError(str(e)) from None
    if len(frame) < 2:
        raise BacktestError(f"need at least 2 common bars, got {len(frame)}")
    mark_y, mark_x = frame["price_y"].to_numpy(), frame["price_x"].to_numpy()
    exec_y, exec_x = ((frame["open_y"].to_numpy(), frame["open_x"].to_numpy()) if fill == "open"
                      else (mark_y, mark_x))
    seg_end = np.zeros(len(frame), dtype=np.bool_)
    seg_end[:-1] = frame["segment_start"].to_numpy()[1:]
    index = pd.DatetimeIndex(frame.index)
    if bar_ms is None:
        bar_ms = mt.bar_ms_of(index)
    return _Prices(index, exec_y, exec_x, mark_y, mark_x, fill, float(bar_ms), seg_end,
                   spec.log), frame


def no_trade_reason(frame: pd.DataFrame, spec: SignalSpec, entry: float) -> str:
    """Why a backtest on ``frame`` (:func:`signal_prices`) made no trade, with exact counts."""
    n = len(frame)
    longest = int(frame["segment_bar"].max()) + 1 if n else 0
    need = spec.warmup_bars
    why = f"the {spec.warmup_windows}"
    if longest < need:
        where = ("bars" if longest == n else
                 f"bars in the longest stretch without a hole ({n:,} in all)")
        return f"0 trades: {longest:,} {where}, {why} need {need:,}"
    z = frame["zscore"].to_numpy()
    zmax = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else math.nan
    return (f"0 trades: |z| never reached the entry level {entry:g} "
            f"(largest |z| {zmax:.2f} over {int(np.isfinite(z).sum()):,} bars with a z-score)")


# ---------------------------------------------------------------------------------------------
# one backtest

def _simulate(p: _Prices, beta: np.ndarray, z: np.ndarray, ok: np.ndarray, prm: Params,
              fy: np.ndarray, fx: np.ndarray, lo: int = 0, hi: int | None = None,
              capital: float | None = None):
    """:func:`kernel.simulate` over bars ``lo:hi`` (``ok``: the hedge rule per bar); its totals
    as one record."""
    s = slice(lo, hi)
    slip_y, slip_x = p.slip_rates(prm.slippage_bps)
    *out, totals = kernel.simulate(
        p.exec_y[s], p.exec_x[s], p.mark_y[s], p.mark_x[s], beta[s], z[s], ok[s], p.seg_end[s],
        fy[s],
        fx[s], float(prm.entry), float(prm.exit),
        math.inf if prm.stop is None else float(prm.stop),
        np.iinfo(np.int64).max if prm.max_hold is None else int(prm.max_hold),
        float(prm.capital if capital is None else capital), float(prm.allocation),
        float(prm.leverage), prm.fee_bps / 1e4, slip_y[s], slip_x[s], p.fill == "open",
        bool(prm.close_at_end), bool(p.log_beta))
    return (*out, totals[0])


def _trade_arrays(tr: np.ndarray, nt: int) -> tuple[np.ndarray, np.ndarray]:
    """(net PnL, bars held) of the first ``nt`` trade records."""
    t = tr[:nt]
    net = t["pnl_y"] + t["pnl_x"] - t["fees"] - t["slippage"] + t["funding"]
    return net, t["exit_bar"] - t["entry_bar"]


def _metrics(out, p: _Prices, capital: float, index=None) -> dict:
    equity, side, _, _, tr, nt, totals = out
    net, held = _trade_arrays(tr, nt)
    idx = p.index if index is None else index
    years = (idx[-1] - idx[0]).total_seconds() * 1000 / (mt.DAYS_PER_YEAR * mt.DAY_MS)
    return mt.compute_all(equity, side, net, held, bar_ms=p.bar_ms, years=years,
                          initial_capital=capital, traded_notional=totals["notional"],
                          fees=totals["fees"], slippage=totals["slippage"],
                          funding=totals["funding"])


def _trades_frame(tr: np.ndarray, nt: int, index: pd.DatetimeIndex) -> pd.DataFrame:
    t = tr[:nt]
    entry_bar, exit_bar = t["entry_bar"], t["exit_bar"]
    net, held = _trade_arrays(tr, nt)
    same = ("entry_z", "exit_z", "beta", "qty_y", "qty_x", "entry_price_y", "entry_price_x",
            "exit_price_y", "exit_price_x", "pnl_y", "pnl_x", "fees", "slippage", "funding")
    df = pd.DataFrame({
        "entry_time": index[entry_bar], "exit_time": index[exit_bar],
        "side": pd.array(np.where(t["side"] > 0, "long", "short"), dtype="str"),
        **{c: t[c] for c in same}, "gross_pnl": t["pnl_y"] + t["pnl_x"], "net_pnl": net,
        "bars_held": held,
        "exit_reason": pd.array([kernel.REASONS[int(r)] for r in t["reason"]], dtype="str"),
    })
    return df[TRADE_COLUMNS]


def _no_entry_notes(totals, prm: Params, spec: SignalSpec | None) -> list[str]:
    """The ``no_entry`` notes of a run: bars flat with ``|z| >= entry`` left alone, by reason."""
    notes = []
    if totals["no_entry_beta"]:
        band = None if spec is None or spec.estimator.kind == "given" else spec.beta_band
        rule = "β ≤ 0" if band is None else (f"β ≤ 0 or outside [β_ref/{band:g}, "
                                             f"β_ref·{band:g}] of the expanding OLS β_ref")
        notes.append(f"no_entry: beta — {int(totals['no_entry_beta']):,} bars with |z| ≥ "
                     f"{prm.entry:g} not entered: {rule}")
    if totals["no_entry_stop"]:
        notes.append(f"no_entry: stop — {int(totals['no_entry_stop']):,} bars with |z| ≥ "
                     f"the stop {prm.stop:g} not entered")
    return notes


def _result(p: _Prices, b: np.ndarray, zz: np.ndarray, ok: np.ndarray, prm: Params, fy, fx,
            params: dict, in_sample: bool, frame: pd.DataFrame | None, spec: SignalSpec | None,
            lo: int = 0, hi: int | None = None) -> BacktestResult:
    out = _simulate(p, b, zz, ok, prm, fy, fx, lo, hi)
    equity, side, qy, qx, tr, nt, totals = out
    index = p.index[lo:hi]
    eq = pd.Series(equity, index=index, name="equity")
    positions = pd.DataFrame({"side": side, "qty_y": qy, "qty_x": qx, "beta": b[lo:hi],
                              "z": zz[lo:hi]}, index=index)
    metrics = _metrics(out, p, prm.capital, index)
    notes = []
    if nt == 0:
        notes.append(no_trade_reason(frame.iloc[lo:hi], spec, prm.entry) if frame is not None
                     else f"0 trades: |z| never reached the entry level {prm.entry:g}")
    notes += _no_entry_notes(totals, prm, spec)
    if metrics["short_sample"]:
        notes.append(mt.short_sample_note(metrics["span_days"]))
    params = {**prm.__dict__, **params, "fill": p.fill, "open_at_end": bool(totals["open"])}
    return BacktestResult(eq, positions, _trades_frame(tr, nt, index), metrics, params,
                          in_sample, None if frame is None else frame.iloc[lo:hi], notes)


def run(y, x, signal: SignalSpec | None = None, *, hedge: str | None = None,
        window: int | None = None, z_window: int | None = None, log: bool | None = None,
        beta=None, z=None, entry: float = 2.0, exit: float = 0.0,
        stop: float | None = None, max_hold: int | None = None, capital: float = 10_000.0,
        allocation: float = 0.95, leverage: float = 1.0, fee_bps: float = 4.0,
        slippage_bps: float = 0.0, funding_y: pd.Series | None = None,
        funding_x: pd.Series | None = None, fill: str = "auto", close_at_end: bool = True,
        bar_ms: float | None = None, in_sample: bool = False,
        slippage_model=None) -> BacktestResult:
    """Backtest the pair mean-reversion rule on ``y`` and ``x``.

    ``y``, ``x``: close Series or bar DataFrames (``open``/``close``) indexed by UTC bar open
    time. Signals: ``signal`` (a :class:`~qdash.analytics.signal.SignalSpec`, default rolling
    OLS on log prices over the windows of the bars' timeframe in :mod:`qdash.defaults`, e.g.
    864 bars on 5m) with the shortcuts ``hedge``, ``window`` (β and z window),
    ``z_window``, ``log`` and ``beta`` (for ``hedge='fixed'``) applied; the legs are aligned
    and gaps handled by that module. Or give per-bar ``beta`` and ``z`` arrays (Series or arrays
    over the legs' common bars) to trade them as they are (``log`` says whether that β is on log
    prices, default True; ``in_sample=True`` marks them as fitted on this data).
    ``funding_y``/``funding_x``: signed funding rates (Series indexed by settlement time; a
    positive rate makes longs pay), settled on the position held at that time.
    ``slippage_model``: each leg's slippage per bar instead of the flat ``slippage_bps``, a
    callable ``fill_times_ms -> (bps_y, bps_x)`` (arrays over the bars; NaN: ``slippage_bps``
    there), e.g. :meth:`DepthSlippage.pair <qdash.analytics.liquidity.DepthSlippage.pair>`
    from recorded order books; it is asked at each bar's fill time (the open, or the close),
    so a causal model gives no look-ahead. Other parameters: :class:`Params`. Under
    :data:`~qdash.backtest.metrics.SHORT_SAMPLE_DAYS` the metrics are flagged ``short_sample``
    (and a note says so); the Sharpe always has its ``sharpe_se``.
    """
    prm = Params(entry, exit, stop, max_hold, capital, allocation, leverage, fee_bps,
                 slippage_bps, close_at_end)
    prm.check()
    frame, spec = None, None
    if z is not None:
        if beta is None:
            raise BacktestError("z given without beta: pass the per-bar beta used for the spread")
        p = prepare_prices(y, x, fill, bar_ms)
        p.log_beta = True if log is None else bool(log)
        b, zz = _per_bar(beta, p.index, "beta"), _per_bar(z, p.index, "z")
        ok = hedge_ok(b, None, None)
        params = {"hedge": "given", "space": "log prices" if p.log_beta else "prices"}
    else:
        spec = spec_of(signal, hedge=hedge, window=window, z_window=z_window,
                       beta=None if beta is None else float(beta), log=log,
                       bar_ms=bar_ms or bar_ms_of_legs(y, x))
        p, frame = signal_prices(y, x, spec, fill, bar_ms)
        b, zz = frame["beta"].to_numpy(), frame["zscore"].to_numpy()
        ok = signal_hedge_ok(frame, spec)
        params = {**spec.to_dict(), "space": spec.space}
    if in_sample:
        warnings.warn("backtest signals were fitted on the whole sample (look-ahead): "
                      "the result is in-sample", InSampleWarning, stacklevel=2)
    fy = funding_per_bar(funding_y, p.index, p.bar_ms)
    fx = funding_per_bar(funding_x, p.index, p.bar_ms)
    if _apply_slippage_model(slippage_model, p):
        params["slippage_model"] = True
    return _result(p, b, zz, ok, prm, fy, fx, params, in_sample, frame, spec)


def _apply_slippage_model(model, p: _Prices) -> bool:
    """``p``'s per-bar slippage from ``model`` (``run``'s ``slippage_model``); False: no model,
    ``p`` keeps the flat ``slippage_bps``."""
    if model is None:
        return False
    p.slip_bps = _model_slippage(model, p)
    return True


def _model_slippage(model, p: _Prices) -> tuple[np.ndarray, np.ndarray]:
    """The model's (bps_y, bps_x) at the bars' fill times, checked."""
    got = model(p.fill_times_ms())
    out = tuple(np.asarray(g, dtype=np.float64) for g in got)
    n = len(p.index)
    if len(out) != 2 or any(o.shape != (n,) for o in out):
        raise BacktestError(f"slippage_model must return (bps_y, bps_x), {n} values each, got "
                            f"shapes {[o.shape for o in out]}")
    if any((o < 0).any() for o in out):
        raise BacktestError("slippage_model returned a negative slippage")
    return out


# ---------------------------------------------------------------------------------------------
# research: grids and walk-forward

def _in_notebook() -> bool:
    return "ipykernel" in sys.modules


def _grid(values) -> list:
    return list(values) if isinstance(values, (list, tuple, np.ndarray, range)) else [values]


def _split_fixed(fixed: dict) -> tuple[dict, dict]:
    """(run-only options, :class:`Params` fields) of a sweep's ``fixed`` keywords."""
    fixed = dict(fixed)
    opts = {k: fixed.pop(k, None) for k in ("signal", "beta", "z_window", "log", "funding_y",
                                            "funding_x", "slippage_model")}
    opts["fill"] = fixed.pop("fill", "auto")
    return opts, fixed


def sweep(y, x, *, entry=(2.0,), exit=(0.0,), stop=(None,), window=(None,),
          hedge=("rolling-ols",),
          max_hold=(None,), n_jobs: int | None = None, progress: bool | None = None,
          lo: int = 0, hi: int | None = None, **fixed) -> pd.DataFrame:
    """Backtest every combination of ``entry × exit × stop × window × hedge × max_hold``.

    ``window`` None: the β and z windows of the bars' timeframe (:mod:`qdash.defaults`).
    Returns a tidy DataFrame: one row per combination, its parameters then its metrics
    (:func:`qdash.backtest.metrics.compute_all`). The signal is computed once per (hedge,
    window) by :func:`~qdash.analytics.signal.compute_signal` (``window`` is the β and z window
    unless ``z_window`` is fixed; ``signal=`` gives the other spec fields); the kernels for one
    signal run in ``n_jobs`` threads (default: CPU count; the compiled loop releases the GIL).
    Combinations with ``exit >= entry`` or ``stop <= entry`` are skipped. ``progress`` shows a
    tqdm bar (default: on inside a notebook kernel). ``lo``/``hi`` restrict trading to aligned
    bars ``[lo, hi)`` while signals still see the history before ``lo`` (used by
    :func:`walk_forward`). ``fixed`` passes the other :func:`run` parameters (costs, capital,
    ``beta`` for ``hedge='fixed'``, ``fill``, funding, ``slippage_model``: asked at the fill
    times of every bar, so a causal model, such as recorded order books, keeps each window's
    costs its own).

    Choosing the best row of a sweep is fitting on the data: the frame's ``attrs['in_sample']``
    is True and a best-row result should be confirmed with :func:`walk_forward`.
    """
    opts, fixed = _split_fixed(fixed)
    bar_ms = None if opts["signal"] is not None else bar_ms_of_legs(y, x)
    base = Params(**fixed)
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
            spec = spec_of(opts["signal"], hedge=h, window=w, z_window=opts["z_window"],
                           beta=opts["beta"], log=opts["log"], bar_ms=bar_ms)
            p, frame = signal_prices(y, x, spec, opts["fill"])
            _apply_slippage_model(opts["slippage_model"], p)
            fy = funding_per_bar(opts["funding_y"], p.index, p.bar_ms)
            fx = funding_per_bar(opts["funding_x"], p.index, p.bar_ms)
            b, z = frame["beta"].to_numpy(), frame["zscore"].to_numpy()
            ok = signal_hedge_ok(frame, spec)
            index = p.index[lo:hi]

            def one(prm, p=p, b=b, z=z, ok=ok, fy=fy, fx=fx, index=index):
                return _metrics(_simulate(p, b, z, ok, prm, fy, fx, lo, hi), p, prm.capital,
                                index)

            for prm, m in zip(rule_grid, pool.map(one, rule_grid)):
                rows.append({"hedge": h, "window": spec.beta_window, "entry": prm.entry,
                             "exit": prm.exit, "stop": prm.stop, "max_hold": prm.max_hold, **m})
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
                 entry=(2.0,), exit=(0.0,), stop=(None,), window=(None,),
                 hedge=("rolling-ols",), max_hold=(None,), n_jobs: int | None = None,
                 **fixed) -> WalkForwardResult:
    """Rolling walk-forward: choose parameters on ``train_bars``, report the next ``test_bars``.

    Bars are the pair's aligned bars (:func:`~qdash.analytics.signal.align_bars`). Splits
    advance by ``test_bars``; the test windows tile the data after the first training window
    without overlap. Signals are causal, so each test run sees the history before its window
    (warm-up) but trades only inside it, starting flat. The parameters maximising ``objective``
    (a metric name, NaN counts as worst) on the train window are used for the test window.
    On windows shorter than :data:`~qdash.backtest.metrics.SHORT_SAMPLE_DAYS` an annualised
    objective (``sharpe``...) is noisy: its ``sharpe_se`` says how noisy. ``fixed``: as
    :func:`sweep`'s (costs, funding, ``slippage_model``), the same in train and test windows.
    """
    grid = dict(entry=entry, exit=exit, stop=stop, window=window, hedge=hedge,
                max_hold=max_hold, n_jobs=n_jobs)
    opts, params = _split_fixed(fixed)
    bar_ms = None if opts["signal"] is not None else bar_ms_of_legs(y, x)
    spec0 = spec_of(opts["signal"], hedge=_grid(hedge)[0], window=_grid(window)[0],
                    z_window=opts["z_window"], beta=opts["beta"], log=opts["log"], bar_ms=bar_ms)
    p0, _ = signal_prices(y, x, spec0, opts["fill"])
    n = len(p0.index)
    if train_bars < 2 or test_bars < 2 or train_bars + test_bars > n:
        raise BacktestError(f"train_bars={train_bars} + test_bars={test_bars} must fit in the "
                            f"{n} aligned bars (each >= 2)")
    initial = capital = params.get("capital", Params.capital)
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
        spec = spec_of(opts["signal"], hedge=chosen["hedge"], window=chosen["window"],
                       z_window=opts["z_window"], beta=opts["beta"], log=opts["log"],
                       bar_ms=bar_ms)
        p, frame = signal_prices(y, x, spec, opts["fill"])
        _apply_slippage_model(opts["slippage_model"], p)
        prm = Params(**{**params, "capital": capital, "entry": chosen["entry"],
                        "exit": chosen["exit"], "stop": chosen["stop"],
                        "max_hold": chosen["max_hold"]})
        fy = funding_per_bar(opts["funding_y"], p.index, p.bar_ms)
        fx = funding_per_bar(opts["funding_x"], p.index, p.bar_ms)
        test = _result(p, frame["beta"].to_numpy(), frame["zscore"].to_numpy(),
                       signal_hedge_ok(frame, spec), prm, fy, fx,
                       {**spec.to_dict(), "space": spec.space}, False, frame, spec,
                       te_lo, te_hi)
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
                       trades["bars_held"], bar_ms=p0.bar_ms, years=years,
                       initial_capital=initial, traded_notional=notional,
                       fees=sum(r["test_total_fees"] for r in rows),
                       slippage=sum(r["test_total_slippage"] for r in rows),
                       funding=sum(r["test_total_funding"] for r in rows))
    return WalkForwardResult(pd.DataFrame(rows), equity, trades, m)


def _none_if_nan(v):
    return None if isinstance(v, float) and math.isnan(v) else (v.item() if hasattr(v, "item")
                                                                else v)
