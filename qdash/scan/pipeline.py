"""``qdash.scan``: screen every directed pair of a universe, validate the survivors, rank them.

Order of the rules (a rejected pair's ``reason`` is the first one it failed, like arbitragelab's
selection logs): symbol checks and the liquidity filter (skipped symbols are listed in
``result.attrs["skipped"]``, their pairs are not tested) → Engle–Granger on every directed pair,
Benjamini–Hochberg ``q <= fdr`` across all of them (stage 1, :mod:`qdash.scan.screen`) →
half-life ``<= max_half_life`` → Hurst ``< 0.5`` → ``crossings >= min_crossings`` → train
Engle–Granger ``p <= level`` → test-window ADF ``p <= level`` (stage 2,
:mod:`qdash.scan.validate`). ``test_sharpe`` is reported and ranks, it is not a rule.

Rank: the pairs that pass every rule first, by out-of-sample Sharpe (``test_sharpe``, highest
first; NaN, a test window without a trade, last), then the others; ties and the rest by BH
``q`` and ``coint_t``. The standard error ``test_sharpe_se`` is shown beside the Sharpe and does
not enter the rank: every pair's test window has the same bars, and at a common length the
Sharpe's t-ratio ``SR / SE`` (Lo 2002) is increasing in ``SR``, so ranking on it would give the
same order up to the skewness/kurtosis correction.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import pandas as pd

from ..errors import QdashError
from .io import (
    LOOKBACK_DEFAULT,
    Panel,
    build_panel,
    lookback_ms,
    read_store,
    read_table,
    tqdm_disable,
)
from .screen import bh_qvalues, cross_products, pair_stats
from .validate import ValidateParams, validate_block

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = [
    "y", "x", "n", "beta", "alpha", "coint_t", "coint_p", "q", "corr", "quote_volume_y",
    "quote_volume_x", "half_life", "hurst", "crossings", "beta_train", "alpha_train", "train_p",
    "test_p", "test_trades", "test_return", "test_sharpe", "test_sharpe_se", "test_days",
    "pass_train", "pass_test", "pass",
    "reason",
]
ROW_BLOCK = 64  # y symbols per stage-1 step (bounds memory at ~ROW_BLOCK·N·(L+1)² floats)


def _panel(bars, symbols, timeframe, lookback, min_coverage, min_quote_volume,
           progress) -> Panel:
    if isinstance(bars, Panel):
        return bars
    from ..store import Store

    if isinstance(bars, Store):
        from ..defaults import DEFAULT_TIMEFRAME
        from ..model import timeframe_ms
        tf = timeframe or DEFAULT_TIMEFRAME
        table = read_store(bars, symbols, tf, lookback_ms(lookback, timeframe_ms(tf)), progress)
        if not len(table):
            raise QdashError(f"store {bars.path}: no {tf} candles or ticks for "
                             f"{', '.join(symbols) if symbols else 'any symbol'}: fetch or load "
                             "them first (`qdash load`, `qdash record`)")
    elif isinstance(bars, (str, os.PathLike)):
        table = read_table(bars, symbols)
    elif isinstance(bars, pd.DataFrame):
        table = bars
    else:
        raise QdashError(f"scan needs a long bar DataFrame, a file/directory path or a Store, "
                         f"got {type(bars).__name__}")
    return build_panel(table, symbols=symbols, timeframe=timeframe, lookback=lookback,
                       min_coverage=min_coverage, min_quote_volume=min_quote_volume)


def screen(panel: Panel, *, lags: int = 1, log_prices: bool = True,
           progress: bool | None = None) -> pd.DataFrame:
    """Stage 1 on every directed pair of the panel: ``y, x, n, beta, alpha, coint_t, coint_p,
    q, corr, quote_volume_y, quote_volume_x`` (``q``: Benjamini–Hochberg across all rows)."""
    from tqdm.auto import tqdm

    w = np.log(panel.close) if log_prices else panel.close
    k = w.shape[1]
    cp = cross_products(w, lags)
    parts: dict[str, list[np.ndarray]] = {}
    iy_parts, ix_parts = [], []
    starts = range(0, k, ROW_BLOCK)
    for s in tqdm(starts, desc="screen", unit="block", disable=tqdm_disable(progress),
                  leave=False):
        ys = np.arange(s, min(k, s + ROW_BLOCK))
        st = pair_stats(cp, ys)
        yy, xx = np.nonzero(ys[:, None] != np.arange(k)[None, :])
        iy_parts.append(ys[yy])
        ix_parts.append(xx)
        for name, v in st.items():
            parts.setdefault(name, []).append(v[yy, xx])
    iy, ix = np.concatenate(iy_parts), np.concatenate(ix_parts)
    names = np.array(panel.symbols, dtype=object)
    col = {name: np.concatenate(v) for name, v in parts.items()}
    df = pd.DataFrame({"y": names[iy], "x": names[ix], "n": len(panel.times),
                       "beta": col["beta"], "alpha": col["alpha"], "coint_t": col["coint_t"],
                       "coint_p": col["coint_p"], "q": bh_qvalues(col["coint_p"]),
                       "corr": col["corr"], "quote_volume_y": panel.quote_volume[iy],
                       "quote_volume_x": panel.quote_volume[ix]})
    df.attrs["iy"], df.attrs["ix"] = iy, ix
    return df


def _reasons(df: pd.DataFrame, fdr: float, max_half_life: float, min_crossings: int,
             level: float) -> pd.Series:
    """The first rule each pair failed ('' when it passed them all)."""
    reason = np.full(len(df), "", dtype=object)

    def first(mask, column: str, text) -> None:
        m = np.asarray(mask, dtype=bool) & (reason == "")
        if m.any():
            reason[m] = [text(v) for v in df[column].to_numpy()[m]]

    def half(v) -> str:
        return (f"half-life {v:.1f} bars > {max_half_life:.1f}" if np.isfinite(v)
                else "half-life: no mean reversion")

    first(~(df["q"] <= fdr), "q", lambda v: f"coint: q {v:.3g} > fdr {fdr:g}")
    first(df["error"].notna(), "error", lambda v: f"validation: {v}")
    first(~(df["half_life"] <= max_half_life), "half_life", half)
    first(~(df["hurst"] < 0.5), "hurst", lambda v: f"hurst {v:.2f} >= 0.5")
    first(~(df["crossings"].fillna(0) >= min_crossings), "crossings",
          lambda v: f"crossings {v} < {min_crossings}")
    first(~df["pass_train"].fillna(False).to_numpy(bool), "train_p",
          lambda v: f"train: coint p {v:.3g} > {level:g}")
    first(~df["pass_test"].fillna(False).to_numpy(bool), "test_p",
          lambda v: f"test: ADF p {v:.3g} > {level:g}")
    return pd.Series(reason, index=df.index)


def _validate_here(panel: Panel, args: tuple, block_size: int | None,
                   progress: bool | None) -> pd.DataFrame:
    """Stage 2 in this process, block by block (a progress bar per block)."""
    from tqdm.auto import tqdm

    from .cluster import blocks

    *arrays, params = args
    parts = blocks(len(arrays[0]), 1, block_size or 64)
    if not parts:
        return validate_block(panel, *arrays, params)
    return pd.concat([validate_block(panel, *(a[s] for a in arrays), params)
                      for s in tqdm(parts, desc="validate", unit="block", leave=False,
                                    disable=tqdm_disable(progress))], ignore_index=True)


def _run(bars, scheduler, workers, symbols, timeframe, lookback, min_coverage, min_quote_volume,
         progress, lags, fdr, log_prices, block_size, params: ValidateParams):
    """Read, screen and validate; returns the stage-1 table, the panel, the survivors' rows,
    the stage-2 table and the times (perf_counter) at the end of each step."""
    panel = _panel(bars, symbols, timeframe, lookback, min_coverage, min_quote_volume, progress)
    params.check(len(panel.times))
    if not 0 < fdr < 1:
        raise QdashError(f"fdr must be in (0, 1), got {fdr}")
    t1 = time.perf_counter()
    df = screen(panel, lags=lags, log_prices=log_prices, progress=progress)
    iy, ix = df.attrs.pop("iy"), df.attrs.pop("ix")
    t2 = time.perf_counter()
    surv = np.flatnonzero((df["q"] <= fdr).to_numpy())
    log.info("stage 1: %d of %d directed pairs pass q <= %g", len(surv), len(df), fdr)
    args = (iy[surv], ix[surv], df["beta"].to_numpy()[surv], df["alpha"].to_numpy()[surv],
            params)
    if scheduler is not None and len(surv):
        from .cluster import connect, validate_on_dask

        client, close = connect(scheduler, workers)       # only when there is work for it
        try:
            v = validate_on_dask(client, panel, *args, block_size=block_size,
                                 progress=progress)
        finally:
            close()
    else:
        v = _validate_here(panel, args, block_size, progress)
    return df, panel, surv, v, (t1, t2, time.perf_counter())


def rank(df: pd.DataFrame) -> pd.DataFrame:
    """The scan's order (module docstring): passing pairs first, by ``test_sharpe`` descending
    (NaN last), then by ``q`` and ``coint_t`` ascending."""
    key = df["test_sharpe"].where(df["pass"]).fillna(-np.inf)
    return (df.assign(_key=key)
            .sort_values(["pass", "_key", "q", "coint_t"], ascending=[False, False, True, True],
                         kind="stable", ignore_index=True)
            .drop(columns="_key"))


def scan(bars, *, symbols: list[str] | None = None, timeframe: str | None = None,
         lookback: str | int | None = None, min_quote_volume: float = 0.0, lags: int = 1,
         fdr: float = 0.05, train_frac: float = 0.7, level: float = 0.05,
         log_prices: bool = True, max_half_life: float | None = None, min_crossings: int = 12,
         z_window: int = 500, entry: float = 2.0, exit: float = 0.0, fee_bps: float = 4.0,
         min_coverage: float = 0.9, scheduler="local", workers: int | None = None,
         block_size: int | None = None, progress: bool | None = None) -> pd.DataFrame:
    """Scan a universe for cointegrated pairs: one row per tested directed pair, best first.

    ``bars``: a long bar table (DataFrame with ``symbol``, ``open_time`` ms or ISO, ``close``,
    optional ``quote_volume``; see :mod:`qdash.scan.io`), a CSV/Parquet file or hive-partitioned
    Parquet directory holding one, a :class:`~qdash.store.Store` (candles at ``timeframe``,
    default :data:`qdash.defaults.DEFAULT_TIMEFRAME`) or a :class:`~qdash.scan.io.Panel`.
    ``lookback``: the span scanned before the last bar (``"30d"``, ms, or ``"all"``); None: the
    bar length's default (:mod:`qdash.defaults`: 30 days of 5m bars), as ``qdash scan`` and the
    dashboard's scanner. ``symbols``/``timeframe``/``min_coverage``/``min_quote_volume`` (quote
    currency per day): see :func:`qdash.scan.io.build_panel`. Series are log closes unless
    ``log_prices=False``.

    Stage 1: Engle–Granger (trend ``c``, ``lags`` fixed lagged differences, statsmodels'
    ``coint(y, x, maxlag=lags, autolag=None)``) on every directed pair, BH ``q`` across all of
    them, survivors ``q <= fdr``. Stage 2 on the survivors (:mod:`qdash.scan.validate`):
    ``train_frac``, ``level``, ``z_window``/``entry``/``exit``/``fee_bps`` (the test-window
    backtest); rules ``half_life <= max_half_life`` bars (default: a quarter of the test
    window), ``hurst < 0.5``, ``crossings >= min_crossings``, ``pass_train``, ``pass_test``.
    ``scheduler``: ``"local"`` (a Dask ``LocalCluster`` of ``workers`` processes started here),
    ``"tcp://HOST:PORT"`` (a running Dask scheduler), a ``distributed.Client``, or None (in this
    process, no Dask); the cluster is started (or reached) after stage 1, only when pairs
    survive it. ``progress``: tqdm bars (None: on a terminal only).

    Columns (:data:`OUTPUT_COLUMNS`): ``y, x`` (y = beta·x + alpha + spread, in log prices by
    default), ``n`` bars, ``beta, alpha, coint_t, coint_p`` (full sample), ``q`` (BH), ``corr``
    (of the legs' log returns), ``quote_volume_y/x`` (mean quote volume per day), ``half_life``
    (bars), ``hurst``, ``crossings``, ``beta_train, alpha_train, train_p``, ``test_p`` (ADF of
    the test-window spread), ``test_trades, test_return, test_sharpe, test_sharpe_se`` (the
    test-window backtest; Sharpe and its standard error annualised on the 24/7 bar clock) and
    ``test_days`` (the test window's span), ``pass_train, pass_test, pass``, ``reason`` (the
    first rule failed, '' for a pass). Rows are ranked as the module docstring says. Stage-2
    columns are NaN/NA for pairs stage 1 rejected. ``attrs``: ``skipped`` (symbols not
    scanned, with the reason), ``start``/``end`` (first and last bar, ISO UTC), ``bar_ms``,
    ``timings`` (seconds per stage), ``params``.
    """
    t0 = time.perf_counter()
    if lookback is None:
        lookback = LOOKBACK_DEFAULT
    df, panel, surv, v, t = _run(bars, scheduler, workers, symbols, timeframe, lookback,
                                 min_coverage, min_quote_volume, progress, lags, fdr, log_prices,
                                 block_size,
                                 ValidateParams(lags=lags, train_frac=train_frac, level=level,
                                                log=log_prices, z_window=z_window, entry=entry,
                                                exit=exit, fee_bps=fee_bps))
    n = len(panel.times)
    if max_half_life is None:
        max_half_life = (n - int(train_frac * n)) / 4
    df = df.join(v.set_axis(surv))
    df["reason"] = _reasons(df, fdr, max_half_life, min_crossings, level)
    df["pass"] = (df["reason"] == "").to_numpy()
    df = df.drop(columns="error")[OUTPUT_COLUMNS]
    df = rank(df)
    df.attrs.update(
        skipped=panel.skipped, start=panel.index[0].isoformat(),
        end=panel.index[-1].isoformat(), bar_ms=panel.bar_ms,
        timings={"read": t[0] - t0, "screen": t[1] - t[0], "validate": t[2] - t[1]},
        params={"lags": lags, "fdr": fdr, "train_frac": train_frac, "level": level,
                "log_prices": log_prices, "max_half_life": max_half_life,
                "min_crossings": min_crossings, "min_quote_volume": min_quote_volume})
    return df
