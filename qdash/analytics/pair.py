"""One pair as one object, batch (:meth:`PairAnalytics.from_bars`) and live (:class:`PairState`).

Bars of the two legs are aligned by the policy of :func:`align_bars`: outer join on ``open_time``;
a leg absent at an open time is forward-filled from its previous close for at most ``ffill_limit``
bars (default 60) and counts as "no trade" there; rows where a leg is still missing (before its
first bar, or after a longer gap) are dropped. A bar with ``trades == 0`` (``resample(fill=True)``)
also counts as "no trade".

Per aligned bar the online kernel (:mod:`qdash.analytics._kernels`) advances, in O(1): rolling OLS
over ``beta_window`` bars, the Kalman filter, the causal rolling z-score over ``z_window`` bars of
the chosen spread (``z_on="rolling"``: the rolling-OLS spread, ``"kalman"``: the Kalman spread),
and rolling correlations of prices and of log returns over ``corr_window`` bars. The expensive
statistics — OLS, Huber, Theil–Sen, ADF, Engle–Granger cointegration, half-life, Hurst,
liquidity — are recomputed by :meth:`PairState.refresh` on the last ``window`` bars.

Stale legs: a leg's age is the time since the open of its last bar with at least one trade. When
it exceeds ``stale_after_s`` the pair is stale: ``zscore`` is NaN (the raw value stays in
``zscore_raw``) and ``stale`` is True, so nothing downstream acts on a frozen price.
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
from .hedge import _huber, _theil_sen, ols
from .liquidity import liquidity_from_arrays, liquidity_score, pair_liquidity_score
from .stats import adf, coint, half_life, hurst

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairConfig:
    """Parameters of a pair's analytics. Windows are in bars; ``r`` in squared units of y
    (working units: log prices when ``log=True``).

    ``huber_alpha`` is scikit-learn's L2 penalty on β. It defaults to 0 here (a plain Huber
    M-estimate): the penalty is meant for standardised features, and on log prices over a short
    window (x varies by ~1e-3) sklearn's default 1e-4 shrinks β to about 0.
    """

    symbol_y: str = "Y"
    symbol_x: str = "X"
    log: bool = False
    beta_window: int = 300
    z_window: int = 300
    corr_window: int = 300
    z_on: str = "rolling"
    delta: float = 1e-4
    r: float = 1e-3
    p0: float = 1.0
    beta0: float = 0.0
    alpha0: float = 0.0
    window: int = 86_400
    history: int = 86_400
    ffill_limit: int = 60
    stale_after_s: float = 30.0
    huber_epsilon: float = 1.35
    huber_alpha: float = 0.0
    huber_max_points: int = 5_000
    theil_sen_max_points: int = 1_000
    seed: int = 0
    adf_maxlag: int | None = None
    autolag: str | None = "AIC"

    def validate(self) -> None:
        for name in ("beta_window", "z_window", "corr_window"):
            if getattr(self, name) < 2:
                raise AnalyticsError(f"{name} must be >= 2 bars, got {getattr(self, name)}")
        if self.z_on not in ("rolling", "kalman"):
            raise AnalyticsError(f"z_on={self.z_on!r}: use 'rolling' or 'kalman'")
        if not 0 < self.delta < 1:
            raise AnalyticsError(f"delta must be in (0, 1), got {self.delta}")
        if self.window < 10 or self.history < 1:
            raise AnalyticsError("window must be >= 10 bars and history >= 1 bar")


def _leg_frame(bars: pd.DataFrame, name: str) -> pd.DataFrame:
    if "close" not in bars.columns:
        raise AnalyticsError(f"bars of leg {name} need a 'close' column")
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise AnalyticsError(f"bars of leg {name} need a DatetimeIndex of open times (UTC)")
    n = len(bars)
    trades = (bars["trades"].to_numpy(dtype=np.float64) if "trades" in bars.columns
              else np.ones(n))
    qv = (bars["quote_volume"].to_numpy(dtype=np.float64) if "quote_volume" in bars.columns
          else np.full(n, np.nan))
    return pd.DataFrame({"close": bars["close"].to_numpy(dtype=np.float64), "trades": trades,
                         "qv": qv}, index=bars.index.as_unit("ms"))


def align_bars(bars_y: pd.DataFrame, bars_x: pd.DataFrame, ffill_limit: int = 60) -> pd.DataFrame:
    """Aligned closes of two legs by the module's policy.

    Columns ``price_y, price_x`` (closes), ``trades_y, trades_x`` (0 on filled rows),
    ``quote_volume_y, quote_volume_x`` (0 on filled rows), index ``open_time`` (UTC).
    """
    a, b = _leg_frame(bars_y, "y"), _leg_frame(bars_x, "x")
    df = a.add_suffix("_y").join(b.add_suffix("_x"), how="outer", sort=True)
    for leg in ("y", "x"):
        missing = df[f"close_{leg}"].isna()
        df[f"close_{leg}"] = df[f"close_{leg}"].ffill(limit=ffill_limit)
        df.loc[missing, f"trades_{leg}"] = 0.0
        df.loc[missing, f"qv_{leg}"] = 0.0
    df = df[df["close_y"].notna() & df["close_x"].notna()]
    out = pd.DataFrame({"price_y": df["close_y"], "price_x": df["close_x"],
                        "trades_y": df["trades_y"], "trades_x": df["trades_x"],
                        "quote_volume_y": df["qv_y"], "quote_volume_x": df["qv_x"]})
    out.index.name = "open_time"
    return out


def _ages(t_ms: np.ndarray, traded: np.ndarray) -> np.ndarray:
    """Seconds since the open of the last traded bar at each row (inf before the first)."""
    last = np.where(traded, t_ms, np.iinfo(np.int64).min).astype(np.int64)
    last = np.maximum.accumulate(last)
    age = (t_ms - last) / 1000.0
    age[last == np.iinfo(np.int64).min] = np.inf
    return age


def compute_refresh(py: np.ndarray, px: np.ndarray, qv_y: np.ndarray, qv_x: np.ndarray,
                    tr_y: np.ndarray, tr_x: np.ndarray, timeframe_ms: int,
                    cfg: PairConfig) -> dict[str, Any]:
    """The expensive statistics on one window of aligned raw closes (thread-safe, pure).

    Returns the refresh keys documented in :meth:`PairState.metrics`. Safe to run in a worker
    thread on a :meth:`PairState.snapshot`.
    """
    y, x = (np.log(py), np.log(px)) if cfg.log else (py, px)
    out: dict[str, Any] = {"refresh_bars": len(y)}
    nan3 = (math.nan, math.nan, {})
    try:
        b_ols, a_ols = ols(y, x, True)
    except AnalyticsError:
        b_ols, a_ols = math.nan, math.nan
    out.update(beta_ols=b_ols, alpha_ols=a_ols)
    ok = np.isfinite(b_ols)
    b_h, a_h, _ = _huber(y, x, True, cfg.huber_epsilon, cfg.huber_alpha, 1000,
                         cfg.huber_max_points, cfg.seed) if ok else nan3
    b_t, a_t, _ = _theil_sen(y, x, True, cfg.theil_sen_max_points, cfg.seed) if ok else nan3
    out.update(beta_huber=b_h, alpha_huber=a_h, beta_theil_sen=b_t, alpha_theil_sen=a_t)
    keys = ("adf_stat", "adf_p", "coint_stat", "coint_p", "coint_crit_5", "half_life_bars",
            "half_life_s", "hurst")
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


def _bar_fields(bar) -> tuple[float | None, bool, float, float, int | None]:
    """(close, traded, trades, quote_volume, open_time ms) from a float, None or mapping bar."""
    if bar is None:
        return None, False, 0.0, 0.0, None
    if isinstance(bar, (int, float, np.floating, np.integer)):
        return float(bar), True, math.nan, math.nan, None
    if isinstance(bar, (Mapping, pd.Series)):
        trades = float(bar.get("trades", 1.0))
        t = bar.get("open_time")
        if t is None and isinstance(bar, pd.Series) and isinstance(bar.name, pd.Timestamp):
            t = bar.name
        t_ms = None if t is None else (int(t.value // 1_000_000) if isinstance(t, pd.Timestamp)
                                       else int(t))
        return (float(bar["close"]), trades > 0, trades, float(bar.get("quote_volume", math.nan)),
                t_ms)
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
        self.timeframe_ms = int(timeframe_ms)
        self._q = cfg.delta / (1.0 - cfg.delta)
        self._st, self._cnt = K.new_state(cfg.p0, cfg.beta0, cfg.alpha0)
        self._buf = np.empty(K.buffer_size(cfg.beta_window, cfg.corr_window, cfg.z_window))
        self._out = np.full((cfg.history, K.N_OUT), np.nan)
        self._out_t = np.zeros(cfg.history, dtype=np.int64)
        w = cfg.window
        self._raw = np.full((6, w), np.nan)       # price_y, price_x, qv_y, qv_x, trades_y/x
        self._n = 0                               # aligned bars processed
        self._t = None                            # open time (ms) of the last bar
        self._last_trade = [None, None]           # open time of each leg's last traded bar
        self._miss = [0, 0]                       # consecutive bars a leg was missing
        self._prev = [math.nan, math.nan]         # last close of each leg
        self._refresh: dict[str, Any] = {}

    # -- live ----------------------------------------------------------------------------------
    def update(self, bar_y, bar_x, open_time: int | pd.Timestamp | None = None) -> bool:
        """Advance by one aligned bar of each leg. Returns False when the bar was not used.

        A bar is a close price (a trade happened), ``None`` (no bar for this leg: its previous
        close is carried, as "no trade", for at most ``ffill_limit`` bars) or a mapping/Series
        with ``close`` and optionally ``trades``, ``quote_volume``, ``open_time`` (ms or
        Timestamp; a Series' name is used too). Without any time, bars are spaced by the
        timeframe.
        """
        cy, ty, ny, qy, t_y = _bar_fields(bar_y)
        cx, tx, nx, qx, t_x = _bar_fields(bar_x)
        if open_time is not None:
            t = int(open_time.value // 1_000_000) if isinstance(open_time, pd.Timestamp) \
                else int(open_time)
        else:
            t = t_y if t_y is not None else t_x
            if t is None:
                t = 0 if self._t is None else self._t + self.timeframe_ms
        closes = [cy, cx]
        for i in (0, 1):
            if closes[i] is None:
                self._miss[i] += 1
                closes[i] = self._prev[i]
            else:
                self._miss[i] = 0
                self._prev[i] = closes[i]
        if (not (closes[0] == closes[0]) or not (closes[1] == closes[1])
                or self._miss[0] > self.config.ffill_limit
                or self._miss[1] > self.config.ffill_limit):
            return False                          # a leg missing too long (or not started)
        self._step(closes[0], closes[1], ty, tx, ny if cy is not None else 0.0,
                   nx if cx is not None else 0.0, qy if cy is not None else 0.0,
                   qx if cx is not None else 0.0, t)
        return True

    def _step(self, py, px, ty, tx, ny, nx, qy, qx, t) -> None:
        cfg = self.config
        row = self._n % cfg.history
        K.pair_step(py, px, self._st, self._cnt, self._buf, cfg.beta_window, cfg.corr_window,
                    cfg.z_window, self._q, cfg.r, cfg.log, cfg.z_on == "kalman", self._out, row)
        self._out_t[row] = t
        j = self._n % cfg.window
        raw = self._raw
        raw[0, j] = py
        raw[1, j] = px
        raw[2, j] = qy
        raw[3, j] = qx
        raw[4, j] = ny
        raw[5, j] = nx
        if ty:
            self._last_trade[0] = t
        if tx:
            self._last_trade[1] = t
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

    def ages(self, now_ms: int | None = None) -> tuple[float, float]:
        """Seconds since each leg's last traded bar opened, at ``now_ms`` (default: last bar)."""
        now = self._t if now_ms is None else int(now_ms)
        return tuple(math.inf if lt is None or now is None else (now - lt) / 1000.0
                     for lt in self._last_trade)

    def metrics(self, now_ms: int | None = None) -> dict[str, Any]:
        """Current metrics as one flat dict (NaN where undefined). Keys:

        * ``symbol_y, symbol_x``; ``ts_ms`` open time of the last bar; ``bars`` processed;
        * ``price_y, price_x``: last closes (raw prices, even when ``log=True``);
        * ``spread``: the z-score's spread (see ``z_on``) at the last bar, in working units;
          ``zscore``: its rolling z-score, NaN when ``stale``; ``zscore_raw``: the same, unflagged;
        * ``beta_rolling, alpha_rolling, spread_rolling``: rolling OLS over ``beta_window``;
        * ``beta_kalman, alpha_kalman, spread_kalman, innovation, innovation_var,
          innovation_z``: Kalman filter state after the last bar and its break signals;
        * ``corr`` (= ``corr_returns``, log returns) and ``corr_prices`` over ``corr_window``;
        * ``age_y_s, age_x_s``: seconds since each leg's last traded bar opened (at ``now_ms``
          when given, e.g. wall-clock time in ms, else at the last bar); ``stale_y, stale_x,
          stale``: age > ``stale_after_s``;
        * from the last refresh (NaN before the first): ``beta_ols, alpha_ols, beta_huber,
          alpha_huber, beta_theil_sen, alpha_theil_sen``; ``beta_disagreement`` = (max − min) /
          |median| of the five betas (OLS, Huber, Theil–Sen, rolling, Kalman); ``adf_stat,
          adf_p``: ADF of the OLS spread with Dickey–Fuller p-value — a stationarity diagnostic,
          NOT a cointegration test; ``coint_stat, coint_p, coint_crit_5``: Engle–Granger with
          MacKinnon cointegration values; ``half_life_bars, half_life_s``; ``hurst``;
          ``liquidity_y, liquidity_x, liquidity_pair`` scores in [0, 1],
          ``quote_volume_per_min_y/x, trades_per_min_y/x, spread_proxy_bps_y/x``;
          ``refresh_bars`` (window length) and ``refreshed_ms`` (bar time of the refresh).
        """
        cfg = self.config
        row = self._out[(self._n - 1) % cfg.history] if self._n else np.full(K.N_OUT, np.nan)
        cur = dict(zip(K.OUT_COLUMNS, (float(v) for v in row), strict=True))
        age_y, age_x = self.ages(now_ms)
        stale_y, stale_x = age_y > cfg.stale_after_s, age_x > cfg.stale_after_s
        stale = stale_y or stale_x
        m: dict[str, Any] = {
            "symbol_y": cfg.symbol_y, "symbol_x": cfg.symbol_x, "ts_ms": self._t,
            "bars": self._n, "price_y": self._prev[0], "price_x": self._prev[1],
            "spread": cur["spread_kalman" if cfg.z_on == "kalman" else "spread_rolling"],
            "zscore": math.nan if stale else cur["zscore_raw"],
        }
        m.update((k, v) for k, v in cur.items() if k not in ("y", "x"))
        m.update(corr=cur["corr_returns"], age_y_s=age_y, age_x_s=age_x, stale_y=stale_y,
                 stale_x=stale_x, stale=stale)
        keys = ("beta_ols", "alpha_ols", "beta_huber", "alpha_huber", "beta_theil_sen",
                "alpha_theil_sen", "adf_stat", "adf_p", "coint_stat", "coint_p", "coint_crit_5",
                "half_life_bars", "half_life_s", "hurst", "liquidity_y", "liquidity_x",
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
        df = pd.DataFrame(self._out[order], columns=list(K.OUT_COLUMNS), index=index)
        df.index.name = "open_time"
        return df


class PairAnalytics:
    """Batch analytics of one pair over history, ending in a live :class:`PairState`.

    ``series``: per aligned bar — ``price_y, price_x`` (raw closes), ``y, x`` (working values),
    the kernel columns (see :meth:`PairState.metrics`), ``spread_ols`` (static OLS of the refresh
    window), ``age_y_s, age_x_s, stale`` and ``zscore`` (NaN where stale). ``estimators``: a tidy
    table, one row a hedge-ratio method, columns ``beta, alpha``. ``summary``: the flat metrics
    dict at the last bar. ``state``: continues live with :meth:`update`.
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
            index=pd.Index(["ols", "huber", "theil-sen", "rolling", "kalman"], name="method"))

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
        al = align_bars(bars_y, bars_x, cfg.ffill_limit)
        if len(al) < 10:
            raise AnalyticsError(f"{cfg.symbol_y}/{cfg.symbol_x}: only {len(al)} aligned bars, "
                                 "need at least 10")
        t_ms = al.index.asi8
        if timeframe_ms is None:
            timeframe_ms = int(np.diff(t_ms).min())
        state = PairState(cfg, timeframe_ms)
        py, px = al["price_y"].to_numpy(), al["price_x"].to_numpy()
        ty, tx = al["trades_y"].to_numpy(), al["trades_x"].to_numpy()
        qy, qx = al["quote_volume_y"].to_numpy(), al["quote_volume_x"].to_numpy()
        out = K.pair_run(py, px, state._st, state._cnt, state._buf, cfg.beta_window,
                         cfg.corr_window, cfg.z_window, state._q, cfg.r, cfg.log,
                         cfg.z_on == "kalman")
        n = len(py)
        state._load_history(out, t_ms, np.vstack([py, px, qy, qx, ty, tx]))
        state._n = n
        state._t = int(t_ms[-1])
        for i, tr in enumerate((ty, tx)):
            idx = np.flatnonzero(tr > 0)
            state._last_trade[i] = int(t_ms[idx[-1]]) if len(idx) else None
        state._prev = [float(py[-1]), float(px[-1])]
        state.refresh()
        series = pd.DataFrame(out, columns=list(K.OUT_COLUMNS), index=al.index)
        series.insert(0, "price_y", py)
        series.insert(1, "price_x", px)
        ref = state._refresh
        series["spread_ols"] = series["y"] - (ref["beta_ols"] * series["x"] + ref["alpha_ols"])
        series["age_y_s"] = _ages(t_ms, ty > 0)
        series["age_x_s"] = _ages(t_ms, tx > 0)
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

