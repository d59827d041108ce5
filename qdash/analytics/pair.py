"""One pair as one object, batch (:meth:`PairAnalytics.from_bars`) and live (:class:`PairState`).

The signal — β, spread and z-score of the chosen hedge method — is defined once in
:mod:`qdash.analytics.signal` (alignment, the gap rule, warm-up); :class:`PairConfig` is a
:class:`~qdash.analytics.signal.SignalSpec` plus what the monitor shows around it. Per aligned bar
the online kernel (:mod:`qdash.analytics._kernels`) advances, in O(1): the signal, rolling OLS
over ``beta_window`` bars and the Kalman filter (both always shown), and rolling correlations of
prices and of log returns over ``corr_window`` bars. The expensive statistics — OLS, Huber,
Theil–Sen, ADF, Engle–Granger cointegration, half-life, Hurst, liquidity — are recomputed by
:meth:`PairState.refresh` on the last ``window`` bars.

Stale legs: a leg's age is the time since its last **trade** (from the tick stream when the live
session reports it with :meth:`PairState.note_trades`, else the close of its last bar with
trades). When it exceeds ``stale_after_s`` the pair is stale: ``zscore`` is NaN (the raw value
stays in ``zscore_raw``) and ``stale`` is True, so nothing downstream acts on a frozen price.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import AnalyticsError
from . import _kernels as K
from .estimators import ESTIMATORS, FitParams, ols
from .liquidity import liquidity_from_arrays, liquidity_score, pair_liquidity_score
from .signal import GivenBeta, SignalSpec, align_bars, kalman_r_arg, kernel_method, run_kernel
from .stats import adf, coint, half_life, hurst, spread_break

log = logging.getLogger(__name__)

MIN_TEST_BARS = 50
"""Below this many bars in the refresh window, ADF / cointegration / half-life are not shown."""
BREAK_LEVEL = 0.05
"""``coint_break`` is 1 when the refresh window's Engle–Granger p-value exceeds this level (no
longer cointegrated) or the spread's CUSUM break test rejects at it (the spread broke)."""


def coint_broke(coint_p: float, break_p: float) -> bool:
    """THE ``coint_break`` rule: the Engle–Granger p-value above :data:`BREAK_LEVEL` (no longer
    cointegrated) or the CUSUM break test's p-value below it (the spread broke)."""
    return bool(coint_p > BREAK_LEVEL or break_p < BREAK_LEVEL)


@dataclass(frozen=True)
class PairConfig(SignalSpec):
    """A pair monitor's parameters: the signal (every :class:`SignalSpec` field) plus symbols,
    the correlation window, the refresh window (``window`` bars) and how many bars of the
    kernel's series to keep (``history``). ``stale_after_s``: a leg with no trade for longer makes
    the pair stale. ``huber_alpha`` is scikit-learn's L2 penalty on β for the refresh's Huber fit
    (0: a plain, scale-equivariant M-estimate; the penalty is meant for standardised features).
    """

    symbol_y: str = "Y"
    symbol_x: str = "X"
    corr_window: int = 120
    window: int = 86_400
    history: int = 86_400
    stale_after_s: float = 30.0
    huber_alpha: float = 0.0
    huber_max_points: int = 5_000
    theil_sen_max_points: int = 1_000
    seed: int = 0
    adf_maxlag: int | None = None
    autolag: str | None = "AIC"

    def validate(self) -> None:
        super().validate()
        if self.corr_window < 2:
            raise AnalyticsError(f"corr_window must be >= 2 bars, got {self.corr_window}")
        if self.window < 10 or self.history < 1:
            raise AnalyticsError("window must be >= 10 bars and history >= 1 bar")


def compute_refresh(py: np.ndarray, px: np.ndarray, qv_y: np.ndarray, qv_x: np.ndarray,
                    tr_y: np.ndarray, tr_x: np.ndarray, timeframe_ms: int,
                    cfg: PairConfig) -> dict[str, Any]:
    """The expensive statistics on one window of aligned raw closes (thread-safe, pure).

    Returns the refresh keys documented in :meth:`PairState.metrics`. Safe to run in a worker
    thread on a :meth:`PairState.snapshot`.
    """
    y, x = (np.log(py), np.log(px)) if cfg.log else (py, px)
    out: dict[str, Any] = {"refresh_bars": len(y)}
    try:
        b_ols, a_ols = ols(y, x, True)
    except AnalyticsError:
        b_ols, a_ols = math.nan, math.nan
    out.update(beta_ols=b_ols, alpha_ols=a_ols)
    ok = np.isfinite(b_ols)
    for name, key, points in (("huber", "huber", cfg.huber_max_points),
                              ("theil-sen", "theil_sen", cfg.theil_sen_max_points)):
        fit = ESTIMATORS[name].fit(y, x, True, FitParams(
            epsilon=cfg.huber_epsilon, alpha=cfg.huber_alpha, max_points=points,
            seed=cfg.seed)) if ok else None
        out[f"beta_{key}"] = fit.beta if fit else math.nan
        out[f"alpha_{key}"] = fit.alpha if fit else math.nan
    keys = ("adf_stat", "adf_p", "coint_stat", "coint_p", "coint_crit_5", "half_life_bars",
            "half_life_s", "hurst", "break_stat", "break_p", "coint_break")
    out.update(dict.fromkeys(keys, math.nan))
    if ok:
        spread = y - (b_ols * x + a_ols)
        try:
            res = adf(spread, "c", cfg.adf_maxlag, cfg.autolag)
            out.update(adf_stat=res.stat, adf_p=res.pvalue)
            co = coint(y, x, "c", cfg.adf_maxlag, cfg.autolag)
            out.update(coint_stat=co.stat, coint_p=co.pvalue,
                       coint_crit_5=co.critical_values["5%"])
            hl = half_life(spread)
            out.update(half_life_bars=hl, half_life_s=hl * timeframe_ms / 1000.0,
                       hurst=hurst(spread))
            b_stat, b_p = spread_break(spread)
            out.update(break_stat=b_stat, break_p=b_p,
                       coint_break=float(coint_broke(co.pvalue, b_p)))
        except AnalyticsError as exc:
            log.info("pair %s/%s refresh: %s", cfg.symbol_y, cfg.symbol_x, exc)
    minutes = len(y) * timeframe_ms / 60_000.0
    ly = liquidity_from_arrays(cfg.symbol_y, py, qv_y, tr_y, minutes)
    lx = liquidity_from_arrays(cfg.symbol_x, px, qv_x, tr_x, minutes)
    out.update(liquidity_y=liquidity_score(ly), liquidity_x=liquidity_score(lx),
               liquidity_pair=pair_liquidity_score(ly, lx),
               quote_volume_per_min_y=ly.quote_volume_per_min,
               quote_volume_per_min_x=lx.quote_volume_per_min,
               trades_per_min_y=ly.trades_per_min, trades_per_min_x=lx.trades_per_min,
               spread_proxy_bps_y=ly.spread_proxy_bps, spread_proxy_bps_x=lx.spread_proxy_bps)
    return out


def _bar_fields(bar) -> tuple[float, float, float, int | None, int | None]:
    """(close or NaN, trades, quote_volume, open_time ms, last trade ms) of a float, None or
    mapping bar. A bar with ``trades == 0`` is a silent bar (close NaN)."""
    nan = math.nan
    if type(bar) is float:                        # the hot path: a close price
        return bar, nan, nan, None, None
    if bar is None:
        return nan, 0.0, 0.0, None, None
    if isinstance(bar, (int, float, np.floating, np.integer)):
        return float(bar), nan, nan, None, None
    if isinstance(bar, (Mapping, pd.Series)):
        trades = float(bar.get("trades", 1.0))
        t = bar.get("open_time")
        if t is None and isinstance(bar, pd.Series) and isinstance(bar.name, pd.Timestamp):
            t = bar.name
        t_ms = None if t is None else (int(t.value // 1_000_000) if isinstance(t, pd.Timestamp)
                                       else int(t))
        last = bar.get("last_trade_ms")
        close = float(bar["close"]) if trades > 0 else nan
        return (close, trades, float(bar.get("quote_volume", nan)), t_ms,
                None if last is None else int(last))
    raise AnalyticsError(f"a bar is a close price, None or a mapping with 'close', got {bar!r}")


class PairState:
    """Live analytics of one pair: O(1) :meth:`update` per aligned bar, periodic :meth:`refresh`.

    Not thread-safe: call :meth:`update` from one thread (the event loop). To refresh off the loop:
    ``res = await asyncio.to_thread(compute_refresh, *state.snapshot())`` then
    ``state.apply_refresh(res)``; :meth:`refresh` does both synchronously.
    """

    def __init__(self, config: PairConfig | None = None, timeframe_ms: int = 1_000, **params):
        cfg = replace(config or PairConfig(), **params)
        cfg.validate()
        self.config = cfg
        self.spec = cfg.signal()
        self.timeframe_ms = int(timeframe_ms)
        self._inv_keep = 1.0 / (1.0 - cfg.delta)
        self._r = kalman_r_arg(cfg)
        self._method = kernel_method(cfg)
        self._st, self._cnt = K.new_state()
        self._buf = np.empty(K.buffer_size(cfg.beta_window, cfg.corr_window, cfg.z_window))
        self._given = GivenBeta(self.spec)
        self._gate, self._gate_p = K.new_gate()
        self._out = np.full(cfg.history, np.nan, K.PAIR_RECORD)
        self._out_t = np.zeros(cfg.history, dtype=np.int64)
        self._raw = np.full((6, cfg.window), np.nan)  # price_y, price_x, qv_y, qv_x, trades_y/x
        self._n = 0                               # aligned bars processed
        self._t: int | None = None                # open time (ms) of the last bar used
        self._last_trade: list[int | None] = [None, None]  # each leg's last trade time (ms)
        self._exact = [False, False]              # last trade times come from the tick stream
        self._refresh: dict[str, Any] = {}

    # -- live ----------------------------------------------------------------------------------
    def update(self, bar_y, bar_x, open_time: int | pd.Timestamp | None = None) -> bool:
        """Advance by one interval of each leg. Returns False when the pair did not use it.

        A bar is a close price (a trade happened), ``None`` (no bar for this leg: its previous
        close is carried, as "no trade", within the gap rule of :mod:`~qdash.analytics.signal`)
        or a mapping/Series with ``close`` and optionally ``trades``, ``quote_volume``,
        ``open_time`` (ms or Timestamp; a Series' name is used too) and ``last_trade_ms``.
        Without any time, bars are spaced by the timeframe.
        """
        cy, ny, qy, t_y, ly = _bar_fields(bar_y)
        cx, nx, qx, t_x, lx = _bar_fields(bar_x)
        if open_time is not None:
            t = int(open_time.value // 1_000_000) if isinstance(open_time, pd.Timestamp) \
                else int(open_time)
        else:
            t = t_y if t_y is not None else t_x
            if t is None:
                t = 0 if self._t is None else self._t + self.timeframe_ms
        tf = self.timeframe_ms
        if cy == cy and not self._exact[0]:
            seen = ly if ly is not None else t + tf
            prev = self._last_trade[0]
            self._last_trade[0] = seen if prev is None or seen > prev else prev
        if cx == cx and not self._exact[1]:
            seen = lx if lx is not None else t + tf
            prev = self._last_trade[1]
            self._last_trade[1] = seen if prev is None or seen > prev else prev
        cfg = self.config
        if self._given.active:
            return self._update_given(t, cy, cx, ny, nx, qy, qx)
        if not K.pair_update(float(t), float(tf), cy, cx, float(cfg.max_gap_bars), self._gate,
                             self._gate_p, self._st, self._cnt, self._buf, cfg.beta_window,
                             cfg.corr_window, cfg.z_window, self._inv_keep, self._r, cfg.log,
                             self._method, math.nan, math.nan, self._out, self._n % cfg.history,
                             self._raw, self._n % cfg.window, qy, qx, ny, nx):
            return False
        self._out_t[self._n % cfg.history] = t
        self._t = t
        self._n += 1
        return True

    def _update_given(self, t, cy, cx, ny, nx, qy, qx) -> bool:
        """:meth:`update` for a β the kernel does not compute (Huber, Theil–Sen, fixed)."""
        ok, new, py, px = K.gate_step(self._gate, self._gate_p, float(t),
                                      float(self.timeframe_ms), cy, cx,
                                      float(self.config.max_gap_bars))
        if not ok:
            return False
        traded_y, traded_x = cy == cy, cx == cx
        self._step(py, px, new, ny if traded_y else 0.0, nx if traded_x else 0.0,
                   qy if traded_y else 0.0, qx if traded_x else 0.0, t)
        return True

    def preview(self, close_y: float, close_x: float, open_time: int) -> dict[str, float] | None:
        """The signal (``beta, alpha, spread, zscore, spread_mean, spread_std``) that a bar
        opened at ``open_time`` and closing now at these closes would give — the dashboard's live
        dot — computed by the same kernel on a copy of the state (the state is untouched).
        None when the pair would not use that bar."""
        import copy

        cfg = self.config
        g, gp = self._gate.copy(), self._gate_p.copy()
        ok, new, py, px = K.gate_step(g, gp, float(open_time), float(self.timeframe_ms),
                                      float(close_y), float(close_x), float(cfg.max_gap_bars))
        if not ok:
            return None
        given = copy.deepcopy(self._given)
        yw, xw = (math.log(py), math.log(px)) if cfg.log else (py, px)
        gb, ga = given.push(yw, xw, bool(new))
        out = np.empty(1, K.PAIR_RECORD)
        K.pair_step(py, px, bool(new), self._st.copy(), self._cnt.copy(), self._buf.copy(),
                    cfg.beta_window, cfg.corr_window, cfg.z_window, self._inv_keep, self._r,
                    cfg.log, self._method, gb, ga, out, 0)
        row = out[0]
        return {"beta": float(row["beta"]), "alpha": float(row["alpha"]),
                "spread": float(row["spread"]), "zscore": float(row["zscore_raw"]),
                "spread_mean": float(row["spread_mean"]), "spread_std": float(row["spread_std"])}

    def note_trades(self, last_y_ms: int | None, last_x_ms: int | None) -> None:
        """Each leg's last trade time (exchange ms) as the tick stream saw it (for staleness);
        from then on it replaces the bar-close estimate for that leg."""
        for leg, v in enumerate((last_y_ms, last_x_ms)):
            if v is not None:
                prev = self._last_trade[leg] if self._exact[leg] else None
                self._last_trade[leg] = int(v) if prev is None else max(prev, int(v))
                self._exact[leg] = True

    def _step(self, py, px, new, ny, nx, qy, qx, t) -> None:
        cfg = self.config
        row = self._n % cfg.history
        yw, xw = (math.log(py), math.log(px)) if cfg.log else (py, px)
        gb, ga = self._given.push(yw, xw, bool(new))
        K.pair_step(py, px, bool(new), self._st, self._cnt, self._buf, cfg.beta_window,
                    cfg.corr_window, cfg.z_window, self._inv_keep, self._r, cfg.log,
                    self._method, gb, ga, self._out, row)
        self._out_t[row] = t
        j = self._n % cfg.window
        raw = self._raw
        raw[0, j] = py
        raw[1, j] = px
        raw[2, j] = qy
        raw[3, j] = qx
        raw[4, j] = ny
        raw[5, j] = nx
        self._t = t
        self._n += 1

    def _load_history(self, out: np.ndarray, t_ms: np.ndarray, raw: np.ndarray) -> None:
        """Fill the rings of a fresh state from batch results (last ``history``/``window`` rows)."""
        n, cfg = len(out), self.config
        m = min(n, cfg.history)
        rows = np.arange(n - m, n)
        self._out[rows % cfg.history] = out[rows]
        self._out_t[rows % cfg.history] = t_ms[rows]
        m = min(n, cfg.window)
        rows = np.arange(n - m, n)
        self._raw[:, rows % cfg.window] = raw[:, rows]

    # -- refresh ---------------------------------------------------------------------------------
    def snapshot(self) -> tuple:
        """Arguments of :func:`compute_refresh` for the last ``window`` bars (copies, in order)."""
        w = self.config.window
        m = min(self._n, w)
        order = (np.arange(self._n - m, self._n) % w)
        raw = self._raw[:, order]
        return (raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], self.timeframe_ms, self.config)

    def apply_refresh(self, result: dict[str, Any]) -> None:
        """Install the result of :func:`compute_refresh` (stamped with the current bar time)."""
        self._refresh = {**result, "refreshed_ms": self._t}

    def refresh(self) -> dict[str, Any]:
        """Recompute the expensive statistics on the last ``window`` bars, now, in this thread."""
        if self._n < 10:
            raise AnalyticsError(f"refresh needs at least 10 aligned bars, have {self._n}")
        self.apply_refresh(compute_refresh(*self.snapshot()))
        return self._refresh

    # -- read ----------------------------------------------------------------------------------
    @property
    def bars(self) -> int:
        """Aligned bars processed so far."""
        return self._n

    @property
    def segment_bars(self) -> int:
        """Bars of the current segment (since the start or the last hole)."""
        if not self._n:
            return 0
        return int(self._out["segment_bar"][(self._n - 1) % self.config.history]) + 1

    def ages(self, now_ms: int | None = None) -> tuple[float, float]:
        """Seconds since each leg's last trade at ``now_ms`` (default: the last bar's close)."""
        now = (None if self._t is None else self._t + self.timeframe_ms) if now_ms is None \
            else int(now_ms)
        return tuple(math.inf if lt is None or now is None else max(now - lt, 0) / 1000.0
                     for lt in self._last_trade)

    def waiting_for(self) -> list[str]:
        """What the statistics still wait for, with exact counts (empty when all are shown)."""
        out = []
        z = self.spec.wait_text(self.segment_bars)
        if z:
            out.append(z)
        have = min(self._n, self.config.window)
        if have < MIN_TEST_BARS:
            out.append(f"ADF / cointegration / half-life: {have:,} of {MIN_TEST_BARS} bars")
        elif not self._refresh:
            out.append("ADF / cointegration / half-life: first refresh pending")
        return out

    def metrics(self, now_ms: int | None = None) -> dict[str, Any]:
        """Current metrics as one flat dict (NaN where undefined); every key is declared, with
        its unit and meaning, in :data:`qdash.analytics.metrics.PAIR_METRICS`."""
        cfg = self.config
        row = (self._out[(self._n - 1) % cfg.history] if self._n
               else np.full(1, np.nan, K.PAIR_RECORD)[0])
        cur = dict(zip(K.OUT_COLUMNS, row.tolist(), strict=True))
        age_y, age_x = self.ages(now_ms)
        stale_y, stale_x = age_y > cfg.stale_after_s, age_x > cfg.stale_after_s
        stale = stale_y or stale_x
        m: dict[str, Any] = {
            "symbol_y": cfg.symbol_y, "symbol_x": cfg.symbol_x, "ts_ms": self._t,
            "bars": self._n, "segment_bars": self.segment_bars,
            "price_y": float(self._gate_p[0]), "price_x": float(self._gate_p[1]),
            "zscore": math.nan if stale else cur["zscore_raw"],
        }
        m.update((k, v) for k, v in cur.items()
                 if k not in ("y", "x", "segment_bar", "spread_mean", "spread_std"))
        m.update(corr=cur["corr_returns"], age_y_s=age_y, age_x_s=age_x, stale_y=stale_y,
                 stale_x=stale_x, stale=stale)
        keys = ("beta_ols", "alpha_ols", "beta_huber", "alpha_huber", "beta_theil_sen",
                "alpha_theil_sen", "adf_stat", "adf_p", "coint_stat", "coint_p", "coint_crit_5",
                "half_life_bars", "half_life_s", "hurst", "break_stat", "break_p", "coint_break",
                "liquidity_y", "liquidity_x",
                "liquidity_pair", "quote_volume_per_min_y", "quote_volume_per_min_x",
                "trades_per_min_y", "trades_per_min_x", "spread_proxy_bps_y",
                "spread_proxy_bps_x", "refresh_bars", "refreshed_ms")
        m.update((k, self._refresh.get(k, math.nan)) for k in keys)
        betas = np.array([m["beta_ols"], m["beta_huber"], m["beta_theil_sen"],
                          m["beta_rolling"], m["beta_kalman"]], dtype=np.float64)
        betas = betas[np.isfinite(betas)]
        med = float(np.median(betas)) if len(betas) else math.nan
        m["beta_disagreement"] = (float((betas.max() - betas.min()) / abs(med))
                                  if len(betas) >= 2 and med != 0 else math.nan)
        return m

    def frame(self, last: int | None = None) -> pd.DataFrame:
        """The kernel's per-bar series for the last ``last`` bars kept (up to ``history``)."""
        h = self.config.history
        m = min(self._n, h) if last is None else min(self._n, h, int(last))
        order = np.arange(self._n - m, self._n) % h
        index = pd.to_datetime(self._out_t[order], unit="ms", utc=True).as_unit("ms")
        df = pd.DataFrame(self._out[order], index=index)
        df.index.name = "open_time"
        return df


class PairAnalytics:
    """Batch analytics of one pair over history, ending in a live :class:`PairState`.

    ``series``: per aligned bar — ``price_y, price_x`` (raw closes), ``y, x`` (working values),
    the kernel columns (``beta, alpha, spread, zscore_raw``: the signal; ``beta_rolling``,
    ``beta_kalman``, ...; see :mod:`qdash.analytics.signal`), ``segment_start``, ``spread_ols``
    (static OLS of the refresh window), ``age_y_s, age_x_s, stale`` and ``zscore`` (NaN where
    stale). ``estimators``: a tidy table, one row a hedge-ratio method, columns ``beta, alpha``.
    ``summary``: the flat metrics dict at the last bar. ``state``: continues live with
    :meth:`update`.
    """

    def __init__(self, state: PairState, series: pd.DataFrame):
        self.state = state
        self.series = series
        self.summary = state.metrics()
        s = self.summary
        self.estimators = pd.DataFrame(
            {"beta": [s["beta_ols"], s["beta_huber"], s["beta_theil_sen"], s["beta_rolling"],
                      s["beta_kalman"]],
             "alpha": [s["alpha_ols"], s["alpha_huber"], s["alpha_theil_sen"],
                       s["alpha_rolling"], s["alpha_kalman"]]},
            index=pd.Index(["ols", "huber", "theil-sen", "rolling-ols", "kalman"],
                           name="method"))

    @classmethod
    def from_bars(cls, bars_y: pd.DataFrame, bars_x: pd.DataFrame,
                  config: PairConfig | None = None, *, timeframe_ms: int | None = None,
                  **params) -> PairAnalytics:
        """Align the legs' candles, run the online kernel over all bars and refresh once.

        ``bars_y``/``bars_x``: candles indexed by UTC ``open_time`` with ``close`` and optionally
        ``trades``/``quote_volume``. ``params`` override :class:`PairConfig` fields. The
        refresh window is the last ``window`` bars; ``timeframe_ms`` is inferred from the
        smallest step of the aligned index when not given.
        """
        cfg = replace(config or PairConfig(), **params)
        cfg.validate()
        g, gp = K.new_gate()
        al = align_bars(bars_y, bars_x, cfg.max_gap_bars, timeframe_ms, (g, gp))
        if len(al) < 10:
            raise AnalyticsError(f"{cfg.symbol_y}/{cfg.symbol_x}: only {len(al)} aligned bars, "
                                 "need at least 10")
        t_ms = al.index.asi8
        if timeframe_ms is None:
            timeframe_ms = int(np.diff(t_ms).min())
        state = PairState(cfg, timeframe_ms)
        state._gate, state._gate_p = g, gp
        py, px = al["price_y"].to_numpy(), al["price_x"].to_numpy()
        ty, tx = al["trades_y"].to_numpy(), al["trades_x"].to_numpy()
        qy, qx = al["quote_volume_y"].to_numpy(), al["quote_volume_x"].to_numpy()
        out = run_kernel(al, state.spec, cfg.corr_window,
                         (state._st, state._cnt, state._buf, state._given))
        n = len(py)
        state._load_history(out, t_ms, np.vstack([py, px, qy, qx, ty, tx]))
        state._n = n
        state._t = int(t_ms[-1])
        for i, tr in enumerate((ty, tx)):
            idx = np.flatnonzero(tr > 0)
            state._last_trade[i] = int(t_ms[idx[-1]]) + timeframe_ms if len(idx) else None
        state.refresh()
        series = pd.DataFrame(out, index=al.index)
        series.insert(0, "price_y", py)
        series.insert(1, "price_x", px)
        series["segment_start"] = al["segment_start"].to_numpy()
        ref = state._refresh
        series["spread_ols"] = series["y"] - (ref["beta_ols"] * series["x"] + ref["alpha_ols"])
        series["age_y_s"] = _ages(t_ms, ty > 0, timeframe_ms)
        series["age_x_s"] = _ages(t_ms, tx > 0, timeframe_ms)
        series["stale"] = ((series["age_y_s"] > cfg.stale_after_s)
                           | (series["age_x_s"] > cfg.stale_after_s))
        series["zscore"] = series["zscore_raw"].where(~series["stale"])
        return cls(state, series)

    def update(self, bar_y, bar_x, open_time=None) -> bool:
        """Live continuation: :meth:`PairState.update`."""
        return self.state.update(bar_y, bar_x, open_time)

    def metrics(self, now_ms: int | None = None) -> dict[str, Any]:
        """:meth:`PairState.metrics` of the live state."""
        return self.state.metrics(now_ms)


def _ages(t_ms: np.ndarray, traded: np.ndarray, tf_ms: int) -> np.ndarray:
    """Seconds from each leg's last trade (the close of its last traded bar) to each bar's
    close; inf before the first."""
    last = np.where(traded, t_ms + tf_ms, np.iinfo(np.int64).min).astype(np.int64)
    last = np.maximum.accumulate(last)
    age = (t_ms + tf_ms - last) / 1000.0
    age[last == np.iinfo(np.int64).min] = np.inf
    return age
