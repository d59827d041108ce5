"""Hand-computed cases for every rule, exit reason and cost of qdash.backtest.run."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from qdash.backtest import InSampleWarning
from qdash.backtest import metrics as mt
from qdash.backtest import run as _run
from qdash.errors import BacktestError


def run(*args, **kw):
    """These cases hand-check sizing with a price-space β (``qty_x = β·qty_y``)."""
    return _run(*args, log=False, **kw)

H = pd.Timedelta(hours=1)


def idx(n, start="2024-07-18"):
    return pd.date_range(start, periods=n, freq="1h", tz="UTC")


def closes(y, x):
    i = idx(len(y))
    return pd.Series(y, index=i, dtype=float), pd.Series(x, index=i, dtype=float)


# a short-spread round trip: decided at bar 1 (z=2.5), filled at bar 2's close; exit decided at
# bar 4 (z=-0.2 <= 0), filled at bar 5's close
Y = [100, 100, 102, 101, 99, 98, 98, 98]
X = [50, 50, 50, 51, 50, 49, 49, 49]
Z = [0, 2.5, 1, 0.5, -0.2, 0, 0, 0]
Q = 0.95 * 10_000 / (102 + 2 * 50)  # qty_y at entry: allocation / (py + beta px)


def test_short_round_trip_fills_next_bar_close_and_accounts_by_hand():
    y, x = closes(Y, X)
    r = run(y, x, beta=2.0, z=Z, fee_bps=0)
    assert len(r.trades) == 1
    t = r.trades.iloc[0]
    assert t.side == "short" and t.exit_reason == "exit"
    assert t.entry_time == y.index[2] and t.exit_time == y.index[5]
    assert (t.entry_z, t.exit_z, t.beta) == (2.5, -0.2, 2.0)
    assert t.qty_y == pytest.approx(-Q) and t.qty_x == pytest.approx(2 * Q)
    assert (t.entry_price_y, t.entry_price_x, t.exit_price_y, t.exit_price_x) == (102, 50, 98, 49)
    assert t.pnl_y == pytest.approx(4 * Q) and t.pnl_x == pytest.approx(-2 * Q)
    assert t.gross_pnl == pytest.approx(2 * Q) and t.net_pnl == pytest.approx(2 * Q)
    assert t.bars_held == 3
    # gross notional at entry is the allocation
    assert abs(t.qty_y) * 102 + abs(t.qty_x) * 50 == pytest.approx(9_500)
    # equity marked at each close: flat, flat, entry bar, then the mark, then realised
    mark3 = -Q * (101 - 102) + 2 * Q * (51 - 50)
    mark4 = -Q * (99 - 102) + 2 * Q * (50 - 50)
    expected = [10_000, 10_000, 10_000, 10_000 + mark3, 10_000 + mark4] + [10_000 + 2 * Q] * 3
    np.testing.assert_allclose(r.equity.to_numpy(), expected)
    np.testing.assert_array_equal(r.positions["side"], [0, 0, -1, -1, -1, 0, 0, 0])
    assert r.metrics["trades"] == 1 and r.metrics["win_rate"] == 1.0
    assert r.metrics["exposure"] == pytest.approx(3 / 8)
    assert r.metrics["final_equity"] == pytest.approx(10_000 + 2 * Q)
    assert not r.in_sample


def test_fill_at_next_open_when_bars_have_opens():
    i = idx(6)
    opens_y = [100, 100, 101, 103, 104, 104]
    closes_y = [100, 100, 102, 103, 105, 104]
    y = pd.DataFrame({"open": opens_y, "close": closes_y}, index=i, dtype=float)
    x = pd.DataFrame({"open": [10.0] * 6, "close": [10.0] * 6}, index=i)
    z = [0, -3, -1, 0.1, 0, 0]  # long decided at bar 1, exit decided at bar 3
    r = run(y, x, beta=1.0, z=z, fee_bps=0)
    t = r.trades.iloc[0]
    assert t.side == "long" and r.params["fill"] == "open"
    assert t.entry_time == i[2] and t.entry_price_y == 101  # bar 2's open, not bar 1's close
    assert t.exit_time == i[4] and t.exit_price_y == 104
    q = 9_500 / (101 + 10)
    assert t.qty_y == pytest.approx(q) and t.qty_x == pytest.approx(-q)
    assert r.equity.iloc[2] == pytest.approx(10_000 + q * (102 - 101))  # marked at the close
    assert t.gross_pnl == pytest.approx(q * 3)
    # the same bars forced to fill at closes
    rc = run(y, x, beta=1.0, z=z, fee_bps=0, fill="close")
    assert rc.trades.iloc[0].entry_price_y == 102 and rc.trades.iloc[0].exit_price_y == 105


def test_long_entry_at_minus_entry_and_exit_level_other_than_zero():
    y, x = closes([10] * 7, [5] * 7)
    # long at z <= -2; with exit=-0.5 the long closes when z >= 0.5 * -1 = -0.5
    r = run(y, x, beta=1.0, z=[0, -2.0, -1.0, -0.6, -0.5, 0, 0], exit=0.5, fee_bps=0)
    t = r.trades.iloc[0]
    assert t.side == "long" and t.entry_time == y.index[2]
    assert t.exit_z == -0.5 and t.exit_time == y.index[5]
    # short side mirrored: exits when z <= exit
    r = run(y, x, beta=1.0, z=[0, 2.0, 1.0, 0.6, 0.5, 0, 0], exit=0.5, fee_bps=0)
    assert r.trades.iloc[0].exit_z == 0.5 and r.trades.iloc[0].exit_time == y.index[5]


def test_z_just_inside_entry_does_not_trade():
    y, x = closes([10] * 5, [5] * 5)
    r = run(y, x, beta=1.0, z=[0, 1.999, -1.999, 0, 0])
    assert r.trades.empty and r.metrics["trades"] == 0
    assert (r.equity == 10_000).all()


def test_stop_exit_and_no_reentry_until_z_back_inside_entry():
    y, x = closes([20, 20, 20, 19, 18, 18, 18, 18, 18, 18], [10] * 10)
    z = [0, -2.5, -3, -4.2, -3.5, -2.5, -1.5, -2.2, -1, 0]
    r = run(y, x, beta=1.0, z=z, entry=2, exit=0, stop=4, fee_bps=0)
    first = r.trades.iloc[0]
    assert first.exit_reason == "stop" and first.exit_z == -4.2
    assert first.exit_time == y.index[4] and first.entry_time == y.index[2]
    assert first.gross_pnl < 0  # stop closes at a loss
    # bars 4-5 still have z <= -entry but the long side is blocked; z=-1.5 re-arms; z=-2.2 enters
    second = r.trades.iloc[1]
    assert second.entry_time == y.index[8] and second.entry_z == -2.2
    assert second.exit_reason == "end_of_data" and second.exit_time == y.index[9]


def test_short_stop():
    y, x = closes([10] * 6, [5] * 6)
    r = run(y, x, beta=1.0, z=[0, 2.1, 4.0, 1, 0, 0], stop=4, fee_bps=0)
    t = r.trades.iloc[0]
    assert t.exit_reason == "stop" and t.exit_time == y.index[3]


def test_time_exit_after_max_hold_bars():
    y, x = closes([10] * 8, [5] * 8)
    z = [0, 2.5, 2, 2, 2, 1.9, 1, 1]
    r = run(y, x, beta=1.0, z=z, max_hold=2, fee_bps=0)
    t = r.trades.iloc[0]
    assert t.exit_reason == "time" and t.bars_held == 2
    assert t.entry_time == y.index[2] and t.exit_time == y.index[4]
    # z >= entry persists at the time exit: the short side waits until |z| < entry (bar 5)
    assert len(r.trades) == 1


def test_end_of_data_close_and_open_position_mark():
    y, x = closes([10, 10, 11, 12], [5, 5, 5, 5])
    z = [0, -2.5, -2, -2]
    r = run(y, x, beta=1.0, z=z, fee_bps=10)
    t = r.trades.iloc[0]
    q = 9_500 / (11 + 5)  # filled at bar 2's close
    assert t.exit_reason == "end_of_data" and t.exit_time == y.index[3] and t.exit_price_y == 12
    assert t.fees == pytest.approx(0.001 * (9_500 + q * 12 + q * 5))
    assert r.equity.iloc[-1] == pytest.approx(10_000 + t.net_pnl)
    assert r.positions["side"].iloc[-1] == 0
    # left open: no trade row, the equity carries the mark (entry fee paid)
    ro = run(y, x, beta=1.0, z=z, fee_bps=10, close_at_end=False)
    assert ro.trades.empty and ro.params["open_at_end"]
    assert ro.equity.iloc[-1] == pytest.approx(10_000 - 9.5 + q * (12 - 11))
    assert ro.metrics["total_fees"] == pytest.approx(9.5)


def test_fees_and_slippage_per_leg_per_fill_as_separate_columns():
    y, x = closes(Y, X)
    r = run(y, x, beta=2.0, z=Z, fee_bps=10, slippage_bps=5)
    t = r.trades.iloc[0]
    notional = 9_500 + Q * 98 + 2 * Q * 49  # entry + exit, both legs
    assert t.fees == pytest.approx(0.001 * notional)
    assert t.slippage == pytest.approx(0.0005 * notional)
    assert t.net_pnl == pytest.approx(2 * Q - 0.0015 * notional)
    assert r.equity.iloc[2] == pytest.approx(10_000 - 0.0015 * 9_500)  # entry costs at once
    assert r.metrics["total_fees"] == pytest.approx(t.fees)
    assert r.metrics["total_slippage"] == pytest.approx(t.slippage)
    assert r.metrics["turnover"] == pytest.approx(notional / 10_000)


def test_funding_settled_on_position_held_at_its_timestamp():
    y, x = closes(Y, X)  # short spread held from bar 2's close to bar 5's close
    i = y.index
    fy = pd.Series([0.001, 0.0001, 0.0002, 0.0003],
                   index=[i[1] + H / 2, i[2] + H / 2, i[3], i[5]])
    fx = pd.Series([0.0005], index=[i[4] + H / 4])
    r = run(y, x, beta=2.0, z=Z, fee_bps=0, funding_y=fy, funding_x=fx)
    t = r.trades.iloc[0]
    # bar 1: flat; bar 2: funding before the close fill -> not held; bars 3, 4, 5: held
    # (the exit fills at bar 5's close, after bar 5's funding). Received = -rate * qty * price.
    expected = (-0.0002 * (-Q) * 101) + (-0.0005 * (2 * Q) * 50) + (-0.0003 * (-Q) * 98)
    assert t.funding == pytest.approx(expected)
    assert t.net_pnl == pytest.approx(t.gross_pnl + expected)
    assert r.metrics["total_funding"] == pytest.approx(expected)
    assert r.equity.iloc[-1] == pytest.approx(10_000 + t.net_pnl)


def test_funding_with_open_fills_counts_the_entry_bar():
    i = idx(5)
    y = pd.DataFrame({"open": [10.0] * 5, "close": [10.0] * 5}, index=i)
    x = pd.DataFrame({"open": [5.0] * 5, "close": [5.0] * 5}, index=i)
    q = 9_500 / 15
    fy = pd.Series([0.01], index=[i[2]])  # settles at the open of the entry bar
    r = run(y, x, beta=1.0, z=[-3, -1, 0, 0, 0], fee_bps=0, funding_y=fy)
    # long decided at bar 0, filled at bar 1's open; exit decided at bar 2 -> the position is
    # held at bar 2's open; a positive rate makes the long leg pay
    assert r.trades.iloc[0].funding == pytest.approx(-0.01 * q * 10)


def test_sizing_compounds_equity_and_leverage_scales_quantities():
    y, x = closes([10, 10, 10, 12, 12, 12, 12, 12], [10] * 8)
    z = [0, -3, -1, 0, -3, 0, 0, 0]  # long 2→4 (10 → 12), long again 5→6
    r = run(y, x, beta=1.0, z=z, fee_bps=0)
    t1, t2 = r.trades.iloc[0], r.trades.iloc[1]
    q1 = 9_500 / 20
    assert t1.qty_y == pytest.approx(q1) and t1.gross_pnl == pytest.approx(2 * q1)
    equity_after = 10_000 + 2 * q1
    assert t2.qty_y == pytest.approx(0.95 * equity_after / 22)
    r2 = run(y, x, beta=1.0, z=z, fee_bps=0, leverage=2, allocation=0.5)
    assert r2.trades.iloc[0].qty_y == pytest.approx(2 * 0.5 * 10_000 / 20)


def test_beta_not_above_zero_is_never_entered_and_noted():
    """β ≤ 0 puts both legs on the same side: no pair trade (issue 22, the hedge rule)."""
    y, x = closes([10] * 5, [5] * 5)
    for b in (-0.5, 0.0):
        r = run(y, x, beta=b, z=[0, -3, -3, 0, 0], fee_bps=0)
        assert r.trades.empty
        assert any(n.startswith("no_entry: beta — 2 bars") for n in r.notes), r.notes


def test_beta_and_z_series_aligned_by_time_and_nan_blocks_entry():
    y, x = closes([10] * 5, [5] * 5)
    beta = pd.Series([1.0, np.nan, 1.0, 1.0, 1.0], index=y.index)
    r = run(y, x, beta=beta, z=pd.Series([0, -3, 0, 0, 0], index=y.index))
    assert r.trades.empty  # no beta at the decision bar → no entry
    z = np.array([np.nan, -3, np.nan, np.nan, np.nan])
    r = run(y, x, beta=1.0, z=z, close_at_end=False)
    assert r.positions["side"].tolist() == [0, 0, 1, 1, 1]  # NaN z never exits


def test_flip_from_short_to_long_takes_two_bars():
    y, x = closes([10] * 6, [5] * 6)
    r = run(y, x, beta=1.0, z=[2.5, 1, -2.5, -2.5, 0, 0], fee_bps=0)
    assert r.trades["side"].tolist() == ["short", "long"]
    assert r.trades.iloc[0].exit_time == y.index[3] and r.trades.iloc[1].entry_time == y.index[4]


def test_unaligned_inputs_use_common_bars():
    i = idx(6)
    y = pd.Series([10.0] * 6, index=i)
    x = pd.Series([5.0] * 5, index=i.delete(3))
    r = run(y, x, beta=1.0, z=np.zeros(5))
    assert len(r.equity) == 5 and i[3] not in r.equity.index


@pytest.mark.parametrize("kw", [dict(entry=0), dict(entry=2, exit=2), dict(entry=2, stop=1.5),
                                dict(max_hold=0), dict(capital=-1), dict(allocation=1.5),
                                dict(fee_bps=-1), dict(fill="vwap")])
def test_bad_parameters_raise(kw):
    y, x = closes([10] * 5, [5] * 5)
    with pytest.raises(BacktestError):
        run(y, x, beta=1.0, z=np.zeros(5), **kw)


def test_bad_inputs_raise():
    y, x = closes([10] * 5, [5] * 5)
    with pytest.raises(BacktestError, match="shape"):
        run(y, x, beta=1.0, z=np.zeros(4))
    with pytest.raises(BacktestError, match="beta"):
        run(y, x, z=np.zeros(5))
    with pytest.raises(BacktestError, match="DatetimeIndex"):
        run(y.reset_index(drop=True), x, beta=1.0, z=np.zeros(5))
    with pytest.raises(BacktestError, match="close"):
        run(pd.DataFrame({"open": y}), x, beta=1.0, z=np.zeros(5))


def test_in_sample_signals_warn_and_are_labelled():
    y, x = closes([10] * 5, [5] * 5)
    with pytest.warns(InSampleWarning):
        r = run(y, x, beta=1.0, z=np.zeros(5), in_sample=True)
    assert r.in_sample and r.metrics_table().loc["in_sample", "value"]


def test_csv_export_round_trip(tmp_path):
    y, x = closes(Y, X)
    r = run(y, x, beta=2.0, z=Z, fee_bps=4)
    paths = r.to_csv(tmp_path / "out")
    trades = pd.read_csv(paths["trades"])
    assert list(trades.columns) == list(r.trades.columns)
    assert trades["net_pnl"].iloc[0] == pytest.approx(r.trades["net_pnl"].iloc[0])
    eq = pd.read_csv(paths["equity"], index_col=0)
    np.testing.assert_allclose(eq["equity"], r.equity.to_numpy())
    m = pd.read_csv(paths["metrics"], index_col="metric")["value"]
    assert float(m["final_equity"]) == pytest.approx(r.metrics["final_equity"])


def test_metrics_annualised_at_bar_frequency_with_their_se_and_a_short_sample_flag():
    n = 24 * 40                                   # 40 days of hourly bars
    rng = np.random.default_rng(4)
    y = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    x = 50 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    z = np.where(np.arange(n) % 20 < 10, 3.0, -3.0)
    yy, xx = closes(y, x)
    r = run(yy, xx, beta=2.0, z=z, fee_bps=0)
    ret = r.equity.pct_change().dropna()
    assert not r.metrics["short_sample"]
    assert r.metrics["span_days"] == pytest.approx((n - 1) / 24)
    assert r.metrics["sharpe"] == pytest.approx(ret.mean() / ret.std() * math.sqrt(365 * 24))
    assert not any("short sample" in note for note in r.notes)
    # 20 days: every annualised figure is given, the Sharpe with its SE, flagged short sample
    short = run(yy.iloc[:24 * 20], xx.iloc[:24 * 20], beta=2.0, z=z[:24 * 20], fee_bps=0)
    m = short.metrics
    assert m["short_sample"] and m["span_days"] == pytest.approx((24 * 20 - 1) / 24)
    for k in ("sharpe", "sharpe_se", "sortino", "cagr", "annual_volatility", "calmar",
              "total_return"):
        assert math.isfinite(m[k]), k
    sr = ret.iloc[:24 * 20 - 1]
    sr_bar = sr.mean() / sr.std()
    assert m["sharpe"] == pytest.approx(sr_bar * math.sqrt(365 * 24))
    g3, g4 = sr.skew(), sr.kurt()                 # pandas: bias-corrected, excess kurtosis
    se_bar = math.sqrt((1 - g3 * sr_bar + (g4 + 2) / 4 * sr_bar ** 2) / len(sr))
    assert m["sharpe_se"] == pytest.approx(se_bar * math.sqrt(365 * 24), rel=0.02)
    assert any(note.startswith("short sample: 20.0 days of data (under 30 days)")
               for note in short.notes)
    assert "short sample" in mt.sharpe_text(m) and "±" in mt.sharpe_text(m)


def test_log_beta_sizing_holds_beta_times_the_notional_of_y():
    y, x = closes(Y, X)
    r = _run(y, x, beta=2.0, z=Z, fee_bps=0)          # log-price β: an elasticity
    t = r.trades.iloc[0]
    notional_y = abs(t["qty_y"]) * t["entry_price_y"]
    assert abs(t["qty_x"]) * t["entry_price_x"] == pytest.approx(2.0 * notional_y)
    assert notional_y * 3 == pytest.approx(0.95 * 10_000)
    assert np.sign(t["qty_y"]) == -np.sign(t["qty_x"])


def test_no_warning_for_causal_given_signals():
    y, x = closes(Y, X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(y, x, beta=2.0, z=Z)
