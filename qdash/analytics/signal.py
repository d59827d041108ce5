"""THE trading signal of a pair: hedge ratio, spread and z-score, defined once.

The charts (spread, bands, z, live dot), the stats table, alerts, the backtest (API, CLI and the
dashboard's button), sweeps, walk-forward and the scanner's out-of-sample check all take a
:class:`SignalSpec` and get their numbers from this module (batch: :func:`compute_signal`) or from
:class:`~qdash.analytics.pair.PairState`, which advances the same kernel one bar at a time. Nothing
else computes a pair's spread or z-score: the public ``qdash.spread``/``qdash.zscore`` (plain
arithmetic on given series, without this alignment and gap rule) are deprecated aliases.

Definition, for aligned closes ``P^y_t``, ``P^x_t`` of two legs (bars labelled by open time, UTC):

* **Alignment and gaps** (:func:`align_bars`): bars of the two legs are joined on open time; a leg
  without a bar carries its previous close for at most ``max_gap_bars`` bars. A leg silent for
  longer is a *hole*: the pair has no bars until both legs trade again, and the next bar starts a
  new **segment** — every window below restarts empty there (no statistic bridges a hole).
* **Working values**: ``y_t = ln P^y_t``, ``x_t = ln P^x_t`` (``log=True``, the default
  everywhere), else the prices themselves. β is in these units: with log prices it is the
  elasticity of y to x (a spread position holds β times y's notional in x).
* **Hedge ratio** ``β_t, α_t``, known at bar t's close, by ``hedge``:

  - ``rolling-ols``: OLS with intercept of y on x over the segment's last ``beta_window`` bars
    including t; undefined until the window is full.
  - ``huber`` / ``theil-sen``: the robust fit (scikit-learn ``HuberRegressor`` without penalty /
    ``scipy.stats.theilslopes``) on the same window, refitted every ``refit_every`` bars from the
    bar the window first fills, held in between.
  - ``kalman``: state (β, a) a random walk, observation ``y_t = β_t (x_t − x_ref) + a_t + v_t``
    with ``x_ref`` the mean of x over the segment's first ``beta_window`` bars (centring makes β
    identified at any price level); ``α_t = a_t − β_t x_ref``. It starts at the bar the first
    window fills, from that window's OLS fit and covariance (``R`` = ``kalman_r``, default the
    OLS residual variance); each later bar predicts ``P ← P/(1 − δ)`` (discount factor: β's
    memory is about ``1/δ`` bars whatever the price level; δ default ``1/beta_window``) and
    updates on the bar.
  - ``fixed``: the given ``beta`` and ``alpha`` (no warm-up).

* **Spread** ``s_t = y_t − (β_t x_t + α_t)``.
* **z-score** ``z_t = (s_t − mean(s)) / std(s)`` over the last ``z_window`` defined spreads of the
  segment **including** ``s_t``, ``ddof = 1``; undefined until ``z_window`` spreads exist.
* **Warm-up**: a segment's first z is at its bar ``beta_window + z_window − 1`` (1-based; for
  ``fixed``, bar ``z_window``): :attr:`SignalSpec.warmup_bars`.
* **Hedge rule** (:func:`hedge_ok`, applied wherever the signal trades: the backtest, sweeps,
  walk-forward, and later the book and the paper trader): a position may be opened at bar t only
  while ``β_t > 0`` and ``β_ref_t / beta_band ≤ β_t ≤ β_ref_t · beta_band``. With ``β ≤ 0`` both
  legs have the same sign (no hedge); a β collapsed towards 0 leaves one leg unhedged. The
  reference ``β_ref_t`` (:func:`reference_beta`) is the expanding OLS fit with intercept of y on
  x over every bar from the first up to and including t, in the signal's working units: the
  longest causal estimate of the pair's relation (no bar after t enters it, so a decision at t
  is the same with or without later data), slow to move where the windowed β is noisy. A
  ``fixed`` β is its own reference (only its sign is checked). Entries refused by the rule are
  recorded as ``no_entry: beta``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from ..errors import AnalyticsError
from . import _kernels as K
from .estimators import ESTIMATORS, SIGNAL_METHODS, Estimator, FitParams, estimator

HEDGE_METHODS = SIGNAL_METHODS
"""The hedge methods of a signal, in the API, the CLI and the dashboard (from the one registry,
:mod:`qdash.analytics.estimators`)."""

SIGNAL_COLUMNS = ("beta", "alpha", "spread", "zscore")


@dataclass(frozen=True)
class SignalSpec:
    """Everything that defines a pair's signal (see the module docstring for the formulas).

    Windows are in bars. ``refit_every``: bars between refits of ``huber``/``theil-sen``
    (rolling OLS and Kalman move every bar). ``beta``/``alpha``: the ``fixed`` hedge, in working
    units. ``kalman_delta`` (None: ``1/beta_window``) and ``kalman_r`` (None: estimated) are the
    filter's discount and observation variance. ``max_gap_bars``: the longest silence of a leg
    that is bridged by carrying its close; a longer one restarts every window.
    The windows' defaults (120 bars) know no bar length: :meth:`for_timeframe` gives the windows
    of :mod:`qdash.defaults`' table, which every entry point uses.
    ``beta_band``: the hedge rule's band, a dimensionless factor (> 1): no entry while β lies
    outside ``[β_ref / beta_band, β_ref · beta_band]`` around the reference β (default 2: from
    half to twice it); None checks only ``β > 0`` (see :func:`hedge_ok`).
    """

    hedge: str = "rolling-ols"
    log: bool = True
    beta_window: int = 120
    z_window: int = 120
    refit_every: int = 10
    beta: float | None = None
    alpha: float = 0.0
    kalman_delta: float | None = None
    kalman_r: float | None = None
    max_gap_bars: int = 60
    huber_epsilon: float = 1.35
    beta_band: float | None = 2.0

    @classmethod
    def for_timeframe(cls, timeframe: str | int | None = None, **fields) -> SignalSpec:
        """A spec with the β and z windows of ``timeframe`` (a name or milliseconds; None: the
        default timeframe) from :func:`qdash.defaults.defaults_for`; ``fields`` override."""
        from ..defaults import defaults_for

        row = defaults_for(timeframe)
        return cls(**{"beta_window": row.beta_window, "z_window": row.z_window, **fields})

    def validate(self) -> None:
        """Raise :class:`AnalyticsError` naming the first inconsistent field."""
        est = estimator(self.hedge, HEDGE_METHODS)
        if self.beta_window < 3:
            raise AnalyticsError(f"beta_window must be >= 3 bars, got {self.beta_window}")
        if self.z_window < 2:
            raise AnalyticsError(f"z_window must be >= 2 bars, got {self.z_window}")
        if self.refit_every < 1:
            raise AnalyticsError(f"refit_every must be >= 1 bar, got {self.refit_every}")
        if est.kind == "given" and (self.beta is None or not math.isfinite(self.beta)):
            raise AnalyticsError("hedge 'fixed' needs beta=<value> (in working units)")
        if self.kalman_delta is not None and not 0 < self.kalman_delta < 1:
            raise AnalyticsError(f"kalman_delta must be in (0, 1), got {self.kalman_delta}")
        if self.kalman_r is not None and not self.kalman_r > 0:
            raise AnalyticsError(f"kalman_r must be > 0, got {self.kalman_r}")
        if self.max_gap_bars < 0:
            raise AnalyticsError(f"max_gap_bars must be >= 0, got {self.max_gap_bars}")
        if self.beta_band is not None and not self.beta_band > 1:
            raise AnalyticsError(f"beta_band must be a factor > 1 (or None), got "
                                 f"{self.beta_band}")

    @property
    def estimator(self) -> Estimator:
        """The registry entry of :attr:`hedge`."""
        return ESTIMATORS[self.hedge]

    @property
    def delta(self) -> float:
        """The Kalman discount δ in use."""
        return self.kalman_delta if self.kalman_delta is not None else 1.0 / self.beta_window

    @property
    def beta_warmup(self) -> int:
        """Bars of a segment before β is first defined (1-based bar of the first β)."""
        return 1 if self.estimator.kind == "given" else self.beta_window

    @property
    def warmup_bars(self) -> int:
        """Bars of a segment up to and including its first z-score."""
        return self.beta_warmup + self.z_window - 1

    @property
    def space(self) -> str:
        """``"log prices"`` or ``"prices"``: the units of β, α and the spread."""
        return "log prices" if self.log else "prices"

    def describe(self) -> str:
        """One line, e.g. ``rolling-ols β over 120 bars of log prices, z over 120 bars``."""
        kind = self.estimator.kind
        if kind == "given":
            hedge = f"fixed β = {self.beta:g}, α = {self.alpha:g} on {self.space}"
        else:
            hedge = f"{self.hedge} β over {self.beta_window} bars of {self.space}"
            if kind == "static":
                hedge += f" (refit every {self.refit_every})"
            if kind == "recursive":
                hedge += f" (δ = {self.delta:.3g})"
        return f"{hedge}, z over {self.z_window} bars"

    def wait_text(self, bars: int) -> str | None:
        """What the z-score still waits for after ``bars`` bars of the current segment, or None.

        E.g. ``z-score: 183 of 239 bars (120-bar β window + 120-bar z window)``."""
        need = self.warmup_bars
        if bars >= need:
            return None
        return f"z-score: {bars:,} of {need:,} bars ({self.warmup_windows})"

    @property
    def warmup_windows(self) -> str:
        """The windows a segment fills before its first z, e.g. ``120-bar β window + 120-bar z
        window``."""
        if self.estimator.kind == "given":
            return f"{self.z_window}-bar z window"
        return f"{self.beta_window}-bar β window + {self.z_window}-bar z window"

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(SignalSpec))

    def signal(self) -> SignalSpec:
        """The :class:`SignalSpec` part of this object (itself for a plain spec)."""
        return SignalSpec(**{k: getattr(self, k) for k in SignalSpec.field_names()})

    def to_dict(self) -> dict:
        return asdict(self.signal())


def kernel_method(spec: SignalSpec) -> int:
    """The pair kernel's source of the signal's β for ``spec.hedge``."""
    return spec.estimator.kernel


def kalman_r_arg(spec: SignalSpec) -> float:
    """The kernel's ``r`` argument (NaN: estimate from the first window)."""
    return math.nan if spec.kalman_r is None else float(spec.kalman_r)


def window_fit(est: Estimator, y: np.ndarray, x: np.ndarray, epsilon: float = 1.35
               ) -> tuple[float, float]:
    """(β, α) of y on x with intercept by a static estimator over one β window: every point,
    no penalty (NaN when x is constant)."""
    if not np.ptp(x) > 0:
        return math.nan, math.nan
    fit = est.fit(y, x, True, FitParams(epsilon=epsilon, alpha=0.0, max_points=len(y)))
    return fit.beta, fit.alpha


class GivenBeta:
    """β and α of the methods the pair kernel does not compute itself (``huber``,
    ``theil-sen``, ``fixed``), one bar at a time — the same object in batch and live.

    :meth:`push` takes bar t's working values and whether it starts a segment, and returns the
    (β, α) in force at t's close (NaN while the segment's window fills)."""

    def __init__(self, spec: SignalSpec):
        self.spec = spec
        self.active = kernel_method(spec) == K.M_GIVEN
        self._refits = spec.estimator.kind == "static"
        w = spec.beta_window if self._refits else 1
        self._ring = np.empty((2, w))
        self._k = 0
        self._b = self._a = math.nan
        if spec.estimator.kind == "given":
            self._b, self._a = float(spec.beta), float(spec.alpha)

    def push(self, yw: float, xw: float, new_segment: bool) -> tuple[float, float]:
        spec = self.spec
        if not self._refits:
            return self._b, self._a              # fixed, or NaN for the kernel's own methods
        w = spec.beta_window
        if new_segment:
            self._k = 0
            self._b = self._a = math.nan
        self._ring[0, self._k % w] = yw
        self._ring[1, self._k % w] = xw
        self._k += 1
        if self._k >= w and (self._k - w) % spec.refit_every == 0:
            order = np.arange(self._k - w, self._k) % w
            self._b, self._a = window_fit(spec.estimator, self._ring[0, order],
                                          self._ring[1, order], spec.huber_epsilon)
        return self._b, self._a

    def run(self, py: np.ndarray, px: np.ndarray, new_segment: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`push` over whole arrays of raw closes (NaN arrays for kernel methods)."""
        n = len(py)
        b, a = np.full(n, math.nan), np.full(n, math.nan)
        if not self.active:
            return b, a
        if not self._refits:
            return np.full(n, self._b), np.full(n, self._a)
        yw, xw = (np.log(py), np.log(px)) if self.spec.log else (py, px)
        for i in range(n):
            b[i], a[i] = self.push(float(yw[i]), float(xw[i]), bool(new_segment[i]))
        return b, a


def _leg(bars, name: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One leg's open times (ms) and its ``close`` and, where given, ``open``, ``trades`` and
    ``qv`` (quote volume) arrays."""
    if isinstance(bars, pd.Series):
        bars = bars.to_frame("close")
    if not isinstance(bars, pd.DataFrame) or "close" not in bars.columns:
        raise AnalyticsError(f"bars of leg {name} need a 'close' column")
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise AnalyticsError(f"bars of leg {name} need a DatetimeIndex of open times (UTC)")
    idx = bars.index if bars.index.tz is not None else bars.index.tz_localize("UTC")
    if not idx.is_monotonic_increasing or idx.has_duplicates:
        raise AnalyticsError(f"bars of leg {name}: open times must be strictly increasing")
    close = bars["close"].to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(close) & (close > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AnalyticsError(f"bars of leg {name}: close {close[i]!r} at {idx[i]} is not a "
                             "positive price")
    cols = {"close": close}
    for column, key in (("open", "open"), ("trades", "trades"), ("quote_volume", "qv")):
        if column in bars.columns:
            cols[key] = bars[column].to_numpy(dtype=np.float64)
    return idx.as_unit("ms").asi8, cols


def _on(t: np.ndarray, t_leg: np.ndarray, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A leg's columns on the joined open times ``t`` (NaN where the leg has no bar)."""
    if len(t) == len(t_leg):
        return cols
    pos = np.searchsorted(t, t_leg)
    out = {}
    for k, v in cols.items():
        out[k] = np.full(len(t), np.nan)
        out[k][pos] = v
    return out


def _traded_close(leg: dict[str, np.ndarray]) -> np.ndarray:
    """The leg's close where it traded, NaN where it is silent: no bar, or a bar without
    trades (``resample(fill=True)``)."""
    if "trades" not in leg:
        return leg["close"]
    return np.where(leg["trades"] > 0, leg["close"], np.nan)


def _columns(leg: dict[str, np.ndarray], c: np.ndarray, p: np.ndarray, volumes: bool
             ) -> dict[str, np.ndarray]:
    """One leg's aligned ``open`` (the carried close ``p`` where silent) and, with ``volumes``,
    ``trades`` and ``quote_volume`` (0 where silent), for traded closes ``c``."""
    silent = np.isnan(c)
    given = leg.get("open", leg["close"])
    out = {"open": np.where(silent, p, given) if silent.any() else given}
    if volumes:
        trades = leg["trades"] if "trades" in leg else (~np.isnan(leg["close"])).astype(float)
        out["trades"] = np.nan_to_num(trades, nan=0.0)
        out["quote_volume"] = np.where(silent, 0.0, leg.get("qv", np.nan))
    return out


def _aligned(bars_y, bars_x, max_gap_bars: int, timeframe_ms: int | None, gate,
             volumes: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """:func:`align_bars` as (open times in ms, columns) of the bars the pair uses (without the
    trades and quote volume columns unless ``volumes``)."""
    ty, ly = _leg(bars_y, "y")
    tx, lx = _leg(bars_x, "x")
    t = ty if np.array_equal(ty, tx) else np.union1d(ty, tx)
    a, b = _on(t, ty, ly), _on(t, tx, lx)
    if timeframe_ms is None:                   # t is strictly increasing
        timeframe_ms = int(np.diff(t).min()) if len(t) > 1 else 1_000
    cy, cx = _traded_close(a), _traded_close(b)
    acc, new, py, px = K.gate_run(t.astype(np.float64), cy, cx, float(timeframe_ms),
                                  float(max_gap_bars), *(gate or K.new_gate()))
    ay, ax = _columns(a, cy, py, volumes), _columns(b, cx, px, volumes)
    cols = {"price_y": py, "price_x": px}
    for k in ay:
        cols.update({f"{k}_y": ay[k], f"{k}_x": ax[k]})
    cols["segment_start"] = new
    if not acc.all():
        t = t[acc]
        cols = {k: v[acc] for k, v in cols.items()}
    return t, cols


def _open_time(t_ms: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(t_ms.view("M8[ms]"), name="open_time").tz_localize("UTC")


def align_bars(bars_y, bars_x, max_gap_bars: int = 60,
               timeframe_ms: int | None = None, gate=None) -> pd.DataFrame:
    """Aligned bars of two legs by the module's alignment and gap rule.

    ``bars_y``/``bars_x``: candles (or close Series) indexed by UTC open time. Returns one row
    per bar the pair uses, index ``open_time``: ``price_y, price_x`` (closes, a silent leg's
    carried), ``open_y, open_x`` (the bar's open; the carried close on a silent bar),
    ``trades_y, trades_x`` and ``quote_volume_y, quote_volume_x`` (0 on silent bars),
    ``segment_start`` (True where a segment starts). ``timeframe_ms`` defaults to the smallest
    step between open times. ``gate``: the (state, prices) arrays of the gap gate to run (and
    leave where live updates continue, as a :class:`~qdash.analytics.PairState` holds them);
    fresh ones when None."""
    t, cols = _aligned(bars_y, bars_x, max_gap_bars, timeframe_ms, gate)
    return pd.DataFrame(cols, index=_open_time(t), copy=False)


def run_kernel(aligned: pd.DataFrame, spec: SignalSpec, corr_window: int = 2,
               state=None) -> np.ndarray:
    """Run the pair kernel over aligned bars (:func:`align_bars`); one
    :data:`~qdash.analytics._kernels.PAIR_RECORD` a bar.

    ``state``: (float state, counters, ring buffer, :class:`GivenBeta`) to continue from, as a
    live :class:`~qdash.analytics.pair.PairState` holds them; fresh ones when None."""
    if state is None:
        st, cnt = K.new_state()
        buf = np.empty(K.buffer_size(spec.beta_window, corr_window, spec.z_window))
        given = GivenBeta(spec)
    else:
        st, cnt, buf, given = state
    py, px = aligned["price_y"].to_numpy(), aligned["price_x"].to_numpy()
    new = aligned["segment_start"].to_numpy(dtype=np.bool_)
    gb, ga = given.run(py, px, new)
    return K.pair_run(py, px, new, st, cnt, buf, spec.beta_window, corr_window, spec.z_window,
                      1.0 / (1.0 - spec.delta), kalman_r_arg(spec), spec.log,
                      kernel_method(spec), gb, ga)


def compute_signal(bars_y, bars_x, spec: SignalSpec | None = None, *,
                   timeframe_ms: int | None = None, **params) -> pd.DataFrame:
    """Per-bar ``beta, alpha, spread, zscore`` of the pair, causal, by the module's definition.

    ``bars_y``/``bars_x``: candles (``close``, optionally ``open``) or close Series indexed by
    UTC open time. ``params`` override fields of ``spec``. The frame (index ``open_time``) also
    has the aligned ``price_y, price_x, open_y, open_x``, ``segment_start`` and ``segment_bar``
    (0-based bar of the segment); ``frame.attrs["spec"]`` is the spec used.

    The signal's numbers come from :func:`~qdash.analytics._kernels.signal_run`: the pair
    kernel's steps for the signal alone (none of the diagnostics a live pair also shows)."""
    from dataclasses import replace

    spec = replace(spec or SignalSpec(), **params) if params else (spec or SignalSpec())
    spec.validate()
    t, al = _aligned(bars_y, bars_x, spec.max_gap_bars, timeframe_ms, None, volumes=False)
    if not len(t):
        raise AnalyticsError("the two legs have no common bars")
    py, px, new = al["price_y"], al["price_x"], al["segment_start"]
    gb, ga = GivenBeta(spec).run(py, px, new)
    beta, alpha, spread, z, seg = K.signal_run(
        py, px, new, spec.beta_window, spec.z_window, 1.0 / (1.0 - spec.delta),
        kalman_r_arg(spec), spec.log, kernel_method(spec), gb, ga)
    frame = pd.DataFrame({"price_y": py, "price_x": px, "open_y": al["open_y"],
                          "open_x": al["open_x"], "segment_start": new, "beta": beta,
                          "alpha": alpha, "spread": spread, "zscore": z, "segment_bar": seg},
                         index=_open_time(t), copy=False)
    frame.attrs["spec"] = spec.signal()
    return frame


def reference_beta(price_y: np.ndarray, price_x: np.ndarray, log: bool = True) -> np.ndarray:
    """Per bar t, the expanding OLS slope (with intercept) of y on x over bars ``0..t``, in
    working units (log prices when ``log``); NaN while x has not moved. Causal: element t uses
    no bar after t. Sums are taken of values centred on the first bar (no cancellation)."""
    yw = np.log(price_y) if log else np.asarray(price_y, dtype=np.float64)
    xw = np.log(price_x) if log else np.asarray(price_x, dtype=np.float64)
    if not len(yw):
        return np.empty(0)
    yc, xc = yw - yw[0], xw - xw[0]
    n = np.arange(1, len(yc) + 1, dtype=np.float64)
    sx, sy = np.cumsum(xc), np.cumsum(yc)
    sxx = np.cumsum(xc * xc) - sx * sx / n
    sxy = np.cumsum(xc * yc) - sx * sy / n
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = sxy / sxx
    ref[~(sxx > 0)] = np.nan
    return ref


class ReferenceBeta:
    """:func:`reference_beta` one bar at a time (a live trader's hedge rule): :meth:`push` takes
    bar t's *working* values (log prices when the signal is on log prices) and returns β_ref_t,
    the expanding OLS slope over every bar pushed so far. The same centred sums in the same
    order as the batch function, so both agree to rounding."""

    def __init__(self):
        self.n = 0
        self._y0 = self._x0 = 0.0
        self._sx = self._sy = self._sxx = self._sxy = 0.0

    def push(self, yw: float, xw: float) -> float:
        if not self.n:
            self._y0, self._x0 = yw, xw
        yc, xc = yw - self._y0, xw - self._x0
        self.n += 1
        self._sx += xc
        self._sy += yc
        self._sxx += xc * xc
        self._sxy += xc * yc
        sxx = self._sxx - self._sx * self._sx / self.n
        if not sxx > 0:
            return math.nan
        return (self._sxy - self._sx * self._sy / self.n) / sxx


def hedge_ok(beta: np.ndarray, beta_ref: np.ndarray | None, band: float | None) -> np.ndarray:
    """THE hedge rule, per bar: may a position be opened with hedge ratio ``beta``?

    True where ``beta > 0`` and, unless ``beta_ref`` is None (a stated β: its own reference) or
    ``band`` is None, ``beta_ref > 0`` and ``beta_ref / band <= beta <= beta_ref * band``
    (``band`` a factor > 1). NaN anywhere counts as False."""
    beta = np.asarray(beta, dtype=np.float64)
    ok = beta > 0
    if beta_ref is None or band is None:
        return ok
    ref = np.asarray(beta_ref, dtype=np.float64)
    return ok & (ref > 0) & (beta >= ref / band) & (beta <= ref * band)


def signal_hedge_ok(frame: pd.DataFrame, spec: SignalSpec) -> np.ndarray:
    """:func:`hedge_ok` of a signal frame (:func:`compute_signal`) under ``spec``: the
    reference is :func:`reference_beta` of its aligned prices, the given β for ``fixed``."""
    beta = frame["beta"].to_numpy()
    if spec.estimator.kind == "given" or spec.beta_band is None:
        return hedge_ok(beta, None, None)
    ref = reference_beta(frame["price_y"].to_numpy(), frame["price_x"].to_numpy(), spec.log)
    return hedge_ok(beta, ref, spec.beta_band)
