"""Issue 22, "Trades a trader would place": an entry needs a hedge (β > 0, within the band
around the reference β) and ``entry <= |z| < stop``; the rule is causal (cut the data at T)."""

import numpy as np
import pandas as pd
import pytest

from qdash.analytics import signal as S
from qdash.analytics.signal import SignalSpec, compute_signal
from qdash.backtest import run, sweep, walk_forward
from qdash.errors import AnalyticsError


def _idx(n):
    return pd.date_range("2025-01-01", periods=n, freq="5min", tz="UTC")


def decoupling_pair(seed=7, n=3000):
    """A cointegrated pair (β 0.75 on log prices) whose y follows its own random walk on bars
    1200-1800 and again after 2400: there the rolling β collapses to about 0 and turns
    negative while the spread stretches (the reproduction of SYN018USDT/SYN007USDT)."""
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.normal(0, 0.004, n))
    y = 0.75 * x + rng.normal(0, 0.002, n)
    for lo, hi in ((1200, 1800), (2400, n)):
        y[lo:hi] = y[lo - 1] + np.cumsum(rng.normal(0, 0.004, hi - lo)) - 0.75 * (x[lo:hi]
                                                                                    - x[lo - 1])
    i = _idx(n)
    return pd.Series(np.exp(4 + y), index=i), pd.Series(np.exp(3 + x), index=i)


def _band_ok(res, y, x, band=2.0):
    """Independent check of every entry's β: > 0 and within ``band`` of the OLS slope of the
    log prices over every bar up to the decision bar (numpy's polyfit, not the module)."""
    for t in res.trades.itertuples():
        k = y.index.get_loc(t.entry_time) - 1                  # decided at the bar before
        ref = np.polyfit(np.log(x.to_numpy()[:k + 1]), np.log(y.to_numpy()[:k + 1]), 1)[0]
        assert t.beta > 0 and ref / band <= t.beta <= ref * band, (t.entry_time, t.beta, ref)


def test_no_entry_while_rolling_beta_collapses_or_turns_negative():
    y, x = decoupling_pair()
    sig = compute_signal(y, x, SignalSpec())
    assert (sig["beta"] <= 0).any() and (sig["beta"].between(0, 0.2)).any()   # the trap is set
    res = run(y, x, window=120, entry=2, exit=0)
    assert len(res.trades) > 0
    assert (res.trades["beta"] > 0).all()
    _band_ok(res, y, x)
    assert any(n.startswith("no_entry: beta") for n in res.notes), res.notes
    assert not run(y, x, signal=SignalSpec(beta_band=None)).trades["beta"].le(0).any()


def test_sweep_and_walk_forward_apply_the_hedge_rule():
    y, x = decoupling_pair()
    plain = run(y, x, window=120, entry=1.5, exit=0)
    free = run(y, x, signal=SignalSpec(beta_band=1e9), entry=1.5, exit=0)
    assert len(free.trades) > len(plain.trades)         # the band refuses some entries here
    sw = sweep(y, x, entry=[1.5], window=[120], n_jobs=1)
    assert sw["trades"].iloc[0] == len(plain.trades)
    wf = walk_forward(y, x, train_bars=1000, test_bars=1000, entry=[1.5, 2.0], window=[120],
                      n_jobs=1, objective="total_return")
    _band_ok(wf, y, x)


def test_reference_beta_is_the_expanding_ols_and_uses_no_later_bar():
    y, x = decoupling_pair()
    ref = S.reference_beta(y.to_numpy(), x.to_numpy())
    ly, lx = np.log(y.to_numpy()), np.log(x.to_numpy())
    for k in (1, 50, 1199, 1500, 2999):
        assert ref[k] == pytest.approx(np.polyfit(lx[:k + 1], ly[:k + 1], 1)[0], rel=1e-9)
    assert np.isnan(ref[0])
    cut = 1700
    part = S.reference_beta(y.to_numpy()[:cut], x.to_numpy()[:cut])
    np.testing.assert_array_equal(part, ref[:cut])


def test_hedge_rule_and_trades_are_the_same_with_data_cut_at_t():
    y, x = decoupling_pair()
    spec = SignalSpec()
    full_ok = S.signal_hedge_ok(compute_signal(y, x, spec), spec)
    for cut in (1300, 2000, 2600):
        ok = S.signal_hedge_ok(compute_signal(y.iloc[:cut], x.iloc[:cut], spec), spec)
        assert np.array_equal(ok, full_ok[:cut])
        full = run(y, x, window=120, entry=2, exit=0).trades
        part = run(y.iloc[:cut], x.iloc[:cut], window=120, entry=2, exit=0).trades
        before = y.index[cut - 1]
        a = full[full["exit_time"] < before][["entry_time", "side", "beta", "entry_z"]]
        b = part[part["exit_time"] < before][["entry_time", "side", "beta", "entry_z"]]
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_fixed_beta_is_its_own_reference_and_checked_for_sign():
    y, x = decoupling_pair()
    assert len(run(y, x, hedge="fixed", beta=0.75, entry=1.5).trades) > 0
    res = run(y, x, hedge="fixed", beta=-0.75, entry=1.5)
    assert res.trades.empty and any(n.startswith("no_entry: beta") for n in res.notes)


def test_beta_band_is_a_factor_above_one():
    with pytest.raises(AnalyticsError, match="beta_band"):
        SignalSpec(beta_band=0.5).validate()


def test_no_entry_beyond_the_stop():
    """``run(..., entry=2, exit=0, stop=4)`` entered at z −4.72, beyond its own stop."""
    i = _idx(8)
    y, x = pd.Series(100.0, index=i), pd.Series(50.0, index=i)
    z = [0, -4.72, -4.1, -3.0, -1, 0.5, 0, 0]
    res = run(y, x, beta=1.0, z=z, entry=2, exit=0, stop=4, fee_bps=0)
    assert len(res.trades) == 1
    t = res.trades.iloc[0]
    assert t.entry_z == -3.0 and t.entry_time == i[4]          # entry <= |z| < stop
    assert any(n.startswith("no_entry: stop — 2 bars") for n in res.notes), res.notes
    short = run(y, x, beta=1.0, z=[0, 4.0, 0, 0, 0, 0, 0, 0], entry=2, exit=0, stop=4)
    assert short.trades.empty                                   # |z| == stop is no entry


def test_no_signal_entry_at_or_beyond_the_stop():
    y, x = decoupling_pair()
    res = run(y, x, window=120, entry=2, exit=0, stop=2.5)
    assert (res.trades["entry_z"].abs() < 2.5).all() and (res.trades["entry_z"].abs() >= 2).all()
