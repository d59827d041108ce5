"""Signals from qdash.analytics, sweeps and walk-forward."""

import warnings

import numpy as np
import pandas as pd
import pytest

from qdash.analytics import SignalSpec, compute_signal
from qdash.analytics.hedge import hedge_ratio
from qdash.analytics.stats import zscore
from qdash.backtest import InSampleWarning, run, sweep, walk_forward
from qdash.errors import BacktestError


def pair(n=3_000, seed=7):
    """A cointegrated pair of 1-minute closes: y = 1.5 x + 5 + AR(1) noise."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-08-08", periods=n, freq="1min", tz="UTC")
    x = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    e = np.zeros(n)
    for i in range(1, n):
        e[i] = 0.97 * e[i - 1] + rng.normal(0, 0.05)
    return pd.Series(1.5 * x + 5 + e, index=idx), pd.Series(x, index=idx)


def test_rolling_ols_signals_come_from_analytics():
    y, x = pair(600)
    r = run(y, x, hedge="rolling-ols", window=100, z_window=50)
    ref = hedge_ratio(y, x, method="rolling-ols", window=100, log=True)
    np.testing.assert_allclose(r.signals["beta"], ref.beta_series.to_numpy(), equal_nan=True)
    spread = (np.log(y) - ref.beta_series * np.log(x) - ref.alpha_series).to_numpy()
    np.testing.assert_allclose(r.signals["zscore"], zscore(pd.Series(spread), 50).to_numpy(),
                               rtol=1e-7, atol=1e-9, equal_nan=True)
    np.testing.assert_array_equal(r.positions["z"], r.signals["zscore"])
    assert np.isnan(r.signals["beta"].to_numpy()[:99]).all() and not r.in_sample
    pd.testing.assert_frame_equal(
        r.signals, compute_signal(y, x, SignalSpec(beta_window=100, z_window=50)))


@pytest.mark.parametrize("hedge", ["rolling-ols", "huber", "theil-sen", "kalman"])
def test_full_pipeline_is_causal(hedge):
    y, x = pair(800)
    kw = dict(hedge=hedge, window=120, entry=1.5, fee_bps=4, close_at_end=False)
    full = run(y, x, **kw)
    cut = 500
    y2, x2 = y.copy(), x.copy()
    y2.iloc[cut + 1:] *= 1.3
    x2.iloc[cut + 1:] *= 0.8
    part = run(y2, x2, **kw)
    pd.testing.assert_series_equal(full.equity.iloc[:cut + 1], part.equity.iloc[:cut + 1])
    pd.testing.assert_frame_equal(full.positions.iloc[:cut + 1], part.positions.iloc[:cut + 1])
    assert full.metrics["trades"] > 0


def test_mean_reverting_pair_makes_money_before_costs():
    y, x = pair()
    r = run(y, x, hedge="rolling-ols", window=300, fee_bps=0)
    assert r.metrics["trades"] >= 5 and r.metrics["total_return"] > 0


def test_hand_given_signals_fitted_in_sample_are_labelled():
    y, x = pair(500)
    beta = hedge_ratio(y, x, "ols", log=True).beta
    z = compute_signal(y, x, hedge="fixed", beta=beta, z_window=100)["zscore"].to_numpy()
    with pytest.warns(InSampleWarning):
        r = run(y, x, beta=beta, z=z, in_sample=True)
    assert r.in_sample and r.params["hedge"] == "given"
    assert np.unique(r.positions["beta"]).size == 1


def test_fixed_hedge_needs_beta_and_unknown_method_fails():
    y, x = pair(300)
    r = run(y, x, hedge="fixed", beta=1.5, window=60)
    assert (r.positions["beta"] == 1.5).all()
    with pytest.raises(BacktestError, match="beta"):
        run(y, x, hedge="fixed", window=60)
    with pytest.raises(BacktestError, match="unknown hedge"):
        run(y, x, hedge="magic", window=60)


def test_sweep_rows_equal_single_runs():
    y, x = pair(2_000)
    grid = dict(entry=[1.5, 2.0], exit=[0.0, 0.5], stop=[None, 3.0], window=[200, 400])
    df = sweep(y, x, **grid, fee_bps=2, n_jobs=2)
    assert len(df) == 16 and df.attrs["in_sample"]
    assert {"hedge", "window", "entry", "exit", "stop", "sharpe", "total_return"} <= set(df)
    for _, row in df.sample(4, random_state=0).iterrows():
        r = run(y, x, window=int(row.window), entry=row.entry, exit=row.exit,
                stop=None if pd.isna(row.stop) else row.stop, fee_bps=2)
        for k in ("final_equity", "trades", "sharpe", "max_drawdown", "turnover"):
            assert row[k] == pytest.approx(r.metrics[k], nan_ok=True)
    # invalid combinations (exit >= entry) are skipped, not failed
    assert len(sweep(y, x, entry=[0.5, 2.0], exit=[1.0], window=[200], n_jobs=1)) == 1
    with pytest.raises(BacktestError, match="no valid"):
        sweep(y, x, entry=[2.0], window=[200], fee_bps=-1)


def test_walk_forward_reports_out_of_sample_only():
    y, x = pair(3_000)
    grid = dict(entry=[1.0, 2.0], exit=[0.0], window=[200, 300])
    wf = walk_forward(y, x, train_bars=1_000, test_bars=500, objective="total_return", **grid)
    s = wf.splits
    assert len(s) == 4
    assert (s["test_start"] > s["train_end"]).all()
    assert s["test_start"].iloc[0] == y.index[1_000] and s["test_end"].iloc[-1] == y.index[-1]
    # the equity is the test windows only, chained
    assert wf.equity.index[0] == y.index[1_000] and len(wf.equity) == 2_000
    assert wf.metrics["final_equity"] == pytest.approx(s["test_final_equity"].iloc[-1])
    # each split's parameters are the best on its own train window
    k = 1
    train = sweep(y, x, lo=500, hi=1_500, progress=False, n_jobs=1, **grid)
    best = train.loc[train["total_return"].fillna(-np.inf).idxmax()]
    assert (s.loc[k, "entry"], s.loc[k, "window"]) == (best.entry, best.window)
    # data after a test window does not change it
    y2 = y.copy()
    y2.iloc[2_000:] *= 1.2
    wf2 = walk_forward(y2, x, train_bars=1_000, test_bars=500, objective="total_return", **grid)
    pd.testing.assert_series_equal(wf.equity.iloc[:1_000], wf2.equity.iloc[:1_000])


def step_slippage(t_ms: int, before: float, after: float):
    """A slippage model (``run``'s ``slippage_model``): ``before`` bps on both legs for fills
    before ``t_ms``, ``after`` from then on."""
    def model(fill_ms):
        bps = np.where(np.asarray(fill_ms) < t_ms, before, after)
        return bps, bps.copy()
    return model


def test_sweep_and_walk_forward_take_the_backtests_slippage_model():
    y, x = pair(3_000)
    grid = dict(entry=[1.0, 2.0], exit=[0.0], window=[200, 300])
    # a constant model is the flat slippage
    flat = sweep(y, x, **grid, fee_bps=2, slippage_bps=3.0, n_jobs=1)
    model = sweep(y, x, **grid, fee_bps=2, slippage_model=step_slippage(0, 3.0, 3.0), n_jobs=1)
    pd.testing.assert_frame_equal(flat, model)
    # a model that costs more after bar 2,000: each split's costs are its own fills'
    t = int(y.index[2_000].value // 1_000_000)
    kw = dict(train_bars=1_000, test_bars=500, objective="total_return", fee_bps=2, **grid)
    cheap = walk_forward(y, x, slippage_bps=1.0, **kw)
    stepped = walk_forward(y, x, slippage_model=step_slippage(t, 1.0, 20.0), **kw)
    a, b = cheap.splits, stepped.splits
    pd.testing.assert_frame_equal(a.iloc[:1], b.iloc[:1])  # trains and tests before t
    pd.testing.assert_series_equal(cheap.equity.iloc[:500], stepped.equity.iloc[:500])
    assert (b["test_trades"].iloc[2:] > 0).all()
    assert (b["test_total_slippage"].iloc[2:] > 5 * a["test_total_slippage"].iloc[2:]).all()
    assert stepped.metrics["total_slippage"] == pytest.approx(b["test_total_slippage"].sum())
    assert stepped.metrics["total_slippage"] > cheap.metrics["total_slippage"]


def test_sweep_warns_nothing_by_itself_but_flags_in_sample():
    y, x = pair(600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = sweep(y, x, window=[100], n_jobs=1)
    assert df.attrs["in_sample"]
