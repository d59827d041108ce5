"""Metrics by hand and against pandas; Chan's GLD/GDX pair as a known answer."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import REFERENCE_SERIES

from qdash.backtest import metrics as mt
from qdash.backtest import run


def test_periods_per_year_is_a_365_day_year_at_the_bar():
    assert mt.periods_per_year(60_000) == 525_600
    assert mt.periods_per_year(3_600_000) == 8_760
    assert mt.periods_per_year(86_400_000) == 365
    with pytest.raises(ValueError):
        mt.periods_per_year(0)


def test_bar_length_is_the_median_spacing():
    idx = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 00:01", "2024-01-01 00:02",
                            "2024-01-01 00:10"], tz="UTC")
    assert mt.bar_ms_of(idx) == 60_000


def test_ratios_against_pandas():
    rng = np.random.default_rng(3)
    eq = 1_000 * np.cumprod(1 + rng.normal(2e-4, 1e-2, 500))
    r = pd.Series(eq).pct_change().dropna()
    ppy = mt.periods_per_year(3_600_000)
    assert mt.sharpe(eq, ppy) == pytest.approx(r.mean() / r.std() * math.sqrt(8_760))
    assert mt.annual_volatility(eq, ppy) == pytest.approx(r.std() * math.sqrt(8_760))
    down = np.sqrt((r.clip(upper=0) ** 2).mean())
    assert mt.sortino(eq, ppy) == pytest.approx(r.mean() / down * math.sqrt(8_760))
    dd = 1 - pd.Series(eq) / pd.Series(eq).cummax()
    assert mt.max_drawdown(eq) == pytest.approx(dd.max())


def test_flat_curve_has_no_ratio():
    eq = np.full(10, 100.0)
    assert math.isnan(mt.sharpe(eq, 365)) and math.isnan(mt.sortino(eq, 365))
    assert mt.max_drawdown(eq) == 0 and math.isnan(mt.calmar(0.1, 0.0))


def test_sharpe_se_is_the_formula_of_statistics_md():
    """Mertens (2002) with scipy's moments; normal moments reduce it to Lo's (2002) iid SE;
    both annualised by sqrt(bars per 365-day year)."""
    from scipy import stats

    rng = np.random.default_rng(8)
    r = np.where(rng.random(3_000) < 0.3, rng.standard_t(4, 3_000) * 1e-3 + 2e-4, 0.0)
    eq = 1_000 * np.cumprod(np.concatenate([[1.0], 1 + r]))
    ret = eq[1:] / eq[:-1] - 1
    t = len(ret)
    sr = ret.mean() / ret.std(ddof=1)
    g3, g4 = stats.skew(ret), stats.kurtosis(ret, fisher=False)
    assert g4 > 5                                 # flat bars and fat tails: far from normal
    mertens = math.sqrt((1 - g3 * sr + (g4 - 1) / 4 * sr ** 2) / t)
    assert mt.return_moments(ret) == pytest.approx((g3, g4), rel=1e-9)
    assert mt.sharpe_se(sr, t, g3, g4) == pytest.approx(mertens, rel=1e-12)
    assert mt.sharpe_se(sr, t) == pytest.approx(math.sqrt((1 + sr ** 2 / 2) / t), rel=1e-12)
    k = 365 * 24 * 3600 / 60                      # 1m bars
    ann, ann_se = mt.sharpe_with_se(eq, mt.periods_per_year(60_000))
    assert ann == pytest.approx(sr * math.sqrt(k), rel=1e-12)
    assert ann_se == pytest.approx(mertens * math.sqrt(k), rel=1e-9)
    assert all(math.isnan(v) for v in mt.sharpe_with_se(np.full(5, 1.0), k))  # flat: no risk


def test_sharpe_se_sizes_of_statistics_md():
    """SR ≈ 0 on 1m bars: SE_ann ≈ 19 after one day, ≈ 3.5 after thirty."""
    k = mt.periods_per_year(60_000)
    assert mt.sharpe_se(0.0, 1_440) * math.sqrt(k) == pytest.approx(19.1, abs=0.1)
    assert mt.sharpe_se(0.0, 30 * 1_440) * math.sqrt(k) == pytest.approx(3.49, abs=0.01)


@pytest.mark.parametrize("draw", ["normal", "student-t 5"])
def test_sharpe_se_matches_the_spread_of_sharpe_estimates(draw):
    """Monte Carlo: over 4,000 simulated iid return series of 250 bars, the standard deviation
    of the Sharpe estimates matches the SE the formula gives (mean over the series)."""
    rng = np.random.default_rng(11)
    n_sims, t, mu = 4_000, 250, 0.1
    z = rng.standard_normal((n_sims, t)) if draw == "normal" else (
        rng.standard_t(5, (n_sims, t)) / math.sqrt(5 / 3))
    r = 1e-3 * (mu + z)
    estimates, ses = [], []
    for row in r:
        eq = np.cumprod(np.concatenate([[1.0], 1 + row]))
        s, se = mt.sharpe_with_se(eq, 1.0)        # one period per year: per-bar figures
        estimates.append(s)
        ses.append(se)
    spread = np.std(estimates, ddof=1)            # sampling error of this: ~1.1 %
    assert np.mean(ses) == pytest.approx(spread, rel=0.05)


def test_deflated_sharpe_known_answer_and_formula():
    """Bailey and López de Prado (2014), section 6: SR 2.5 a year over 5 years of daily
    returns (T 1250, 250 days a year), skewness −3, kurtosis 10, N = 100 trials whose annual
    Sharpes vary by V = 0.5: DSR ≈ 0.9004. The denominator is THE Sharpe standard error."""
    from scipy import stats

    sr, t, g3, g4, n, v = 2.5 / math.sqrt(250), 1250, -3.0, 10.0, 100, 0.5 / 250
    assert mt.deflated_sharpe(sr, t, g3, g4, n, v) == pytest.approx(0.9004, abs=1e-4)
    gamma = 0.5772156649
    sr0 = math.sqrt(v) * ((1 - gamma) * stats.norm.ppf(1 - 1 / n)
                          + gamma * stats.norm.ppf(1 - 1 / (n * math.e)))
    dsr = stats.norm.cdf((sr - sr0) * math.sqrt(t - 1)
                         / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr ** 2))
    assert mt.deflated_sharpe(sr, t, g3, g4, n, v) == pytest.approx(dsr, rel=1e-9)
    assert mt.deflated_sharpe(sr, t, g3, g4, n, v) == pytest.approx(
        stats.norm.cdf((sr - sr0) / mt.sharpe_se(sr, t - 1, g3, g4)), rel=1e-12)
    # one trial: no deflation, the probability that the true Sharpe exceeds 0
    assert mt.deflated_sharpe(sr, t, g3, g4, 1, v) == pytest.approx(
        stats.norm.cdf(sr / mt.sharpe_se(sr, t - 1, g3, g4)), rel=1e-12)


def test_drawdown_and_duration_by_hand():
    eq = [100, 110, 99, 104, 110, 120, 90, 95]
    assert mt.max_drawdown(eq) == pytest.approx(0.25)  # 120 → 90
    # under water: bars 2-3 (2 bars), bars 6-7 (2 bars, never recovered)
    assert mt.max_drawdown_duration(eq) == 2
    assert mt.max_drawdown_duration([100, 90, 80, 85, 99, 100, 101]) == 4


def test_return_cagr_and_calmar():
    assert mt.total_return([100, 150]) == pytest.approx(0.5)
    assert mt.cagr([100, 200], years=1.0) == pytest.approx(1.0)
    assert mt.cagr([100, 400], years=2.0) == pytest.approx(1.0)
    assert mt.cagr([100, 0], years=1.0) == -1.0
    assert mt.calmar(0.3, 0.15) == pytest.approx(2.0)


def test_trade_statistics_by_hand():
    net = [10.0, -5.0, 20.0, -5.0]
    assert mt.number_of_trades(net) == 4
    assert mt.win_rate(net) == 0.5
    assert mt.profit_factor(net) == pytest.approx(3.0)
    assert mt.profit_factor([1.0, 2.0]) == math.inf
    assert math.isnan(mt.win_rate([]))
    assert mt.average_holding_bars([2, 4]) == 3
    assert mt.exposure([0, 1, -1, 0]) == 0.5
    assert mt.turnover(30_000, 10_000) == 3.0


def test_compute_all_reports_every_metric():
    m = mt.compute_all([100, 101, 100.5, 102], [0, 1, 1, 0], [2.0], [2], bar_ms=60_000,
                       years=3 / 525_600, initial_capital=100, traded_notional=380, fees=0.1,
                       slippage=0.05, funding=-0.01)
    for key in ("total_return", "cagr", "annual_volatility", "sharpe", "sortino",
                "max_drawdown", "max_drawdown_bars", "calmar", "trades", "win_rate",
                "profit_factor", "avg_holding_bars", "avg_holding_hours", "exposure", "turnover",
                "total_fees", "total_slippage", "total_funding", "final_equity"):
        assert key in m
    assert m["avg_holding_hours"] == pytest.approx(2 / 60)
    assert m["turnover"] == 3.8 and m["total_funding"] == -0.01


# --- known answer: E. P. Chan, Quantitative Trading (2008), Example 3.6, GLD/GDX --------------

def _chan_pair():
    def adj(name):
        df = pd.read_csv(REFERENCE_SERIES / name, index_col="Date", parse_dates=True)
        return df["Adj Close"]

    df = pd.concat({"GLD": adj("GLD_chan_2004_2007.csv"), "GDX": adj("GDX_chan_2006_2007.csv")},
                   axis=1, join="inner").sort_index()
    df.index = df.index.tz_localize("UTC")
    return df


def test_chan_gld_gdx_positions_and_sharpe_ratios():
    """Chan's rule: hedge ratio by OLS without intercept on the first 252 days, z-score with the
    training mean/std, long at z <= -2, short at z >= 2, flat at |z| <= 1. The book reports
    Sharpe 2.3 (train) and 1.5 (test) for daily returns of the +1/-1 dollar positions held from
    the decision close, annualised with sqrt(252) (equities). Our state machine, fed the same z,
    must hold exactly Chan's positions (shifted by the one-bar execution delay) and reproduce
    both published ratios; our sharpe() reproduces them given 252 periods per year."""
    df = _chan_pair()
    y, x = df["GLD"].to_numpy(), df["GDX"].to_numpy()
    train = slice(0, 252)
    hedge = float(np.linalg.lstsq(x[train, None], y[train], rcond=None)[0][0])
    spread = y - hedge * x
    z = (spread - spread[train].mean()) / spread[train].std(ddof=1)

    # Chan's MATLAB positions, transcribed
    chan = np.full(len(z), np.nan)
    chan[z >= 2], chan[z <= -2], chan[np.abs(z) <= 1] = -1, 1, 0
    chan = pd.Series(chan).ffill().fillna(0).to_numpy()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = run(df["GLD"], df["GDX"], beta=hedge, z=z, entry=2, exit=1, fee_bps=0,
                in_sample=True)
    decided = np.append(r.positions["side"].to_numpy()[1:], 0)  # state decided at each close
    np.testing.assert_array_equal(decided, chan)

    dret = df.pct_change().to_numpy()
    pnl = np.nansum(np.column_stack([decided, -decided])[:-1] * dret[1:], axis=1)
    pnl = np.concatenate([[0.0], pnl])
    train_curve = np.cumprod(1 + pnl[1:252])
    test_curve = np.cumprod(1 + pnl[252:])
    assert round(mt.sharpe(np.concatenate([[1.0], train_curve]), 252), 1) == 2.3
    assert round(mt.sharpe(np.concatenate([[1.0], test_curve]), 252), 1) == 1.5
    assert r.trades["exit_reason"].eq("exit").all() and len(r.trades) >= 5
