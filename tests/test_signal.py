"""One signal from chart to alert to backtest (qdash.analytics.signal), on real captures.

Batch (:func:`compute_signal`) == live :class:`PairState` == the backtest's signals, bar for bar,
for every hedge method; the table's z is the series' last value; an alert on ``zscore`` fires on
the bar the series crosses; holes restart every window; staleness runs from the last trade.
"""

import math

import numpy as np
import pandas as pd
import pytest
from conftest import AUGUST, JULY, JULY_TRADES

from qdash.alerts import AlertManager, CallbackSink
from qdash.analytics import HEDGE_METHODS, PairAnalytics, PairConfig, PairState, compute_signal
from qdash.analytics.pair_metrics import PAIR_METRICS, RULE_METRICS
from qdash.app.render import pair_columns, signal_rows
from qdash.backtest import run
from qdash.bars import resample
from qdash.errors import RuleSyntaxError
from qdash.feeds.base import TickFeed
from qdash.io import read_ticks
from qdash.live import LiveSession

WINDOWS = {"beta_window": 60, "z_window": 40, "refit_every": 5}


def _bars(path, timeframe="1s"):
    t = read_ticks(path)
    return (resample(t, timeframe, symbol="ETHUSDT"), resample(t, timeframe, symbol="BTCUSDT"))


@pytest.fixture(scope="module")
def july():
    return _bars(JULY / f"{JULY_TRADES}.csv.gz")


@pytest.fixture(scope="module")
def july_august(july):
    aug = _bars(AUGUST / "usdm_trades_BTCUSDT_ETHUSDT_2024-08-08_2354-2400.csv.gz")
    return pd.concat([july[0], aug[0]]), pd.concat([july[1], aug[1]])


def _spec(hedge):
    """Windows for a hedge method; the robust ones refit every 20 bars (each scikit-learn
    Huber fit costs milliseconds)."""
    refit = {"refit_every": 20} if hedge in ("huber", "theil-sen") else {}
    return {**WINDOWS, "hedge": hedge, **refit, **({"beta": 0.8} if hedge == "fixed" else {})}


@pytest.mark.parametrize("hedge", HEDGE_METHODS)
def test_batch_live_and_backtest_signals_are_the_same_series(july, hedge):
    by, bx = july
    batch = compute_signal(by, bx, **_spec(hedge))
    assert batch["zscore"].notna().sum() > 200
    live = PairState(PairConfig(**_spec(hedge), window=200, corr_window=30), timeframe_ms=1000)
    index = by.index.union(bx.index)
    for t in index:
        live.update(by.loc[t] if t in by.index else None, bx.loc[t] if t in bx.index else None,
                    open_time=t)
    lf = live.frame()
    pd.testing.assert_index_equal(lf.index, batch.index, check_names=False)
    for col in ("beta", "alpha", "spread"):
        np.testing.assert_array_equal(lf[col].to_numpy(), batch[col].to_numpy(), col)
    np.testing.assert_array_equal(lf["zscore_raw"].to_numpy(), batch["zscore"].to_numpy())
    bt = run(by, bx, PairConfig(**_spec(hedge)), entry=1.0)
    pd.testing.assert_frame_equal(bt.signals, batch)
    np.testing.assert_array_equal(bt.positions["z"].to_numpy(), batch["zscore"].to_numpy())
    # the stats table shows the series' last value
    m = live.metrics()
    assert m["zscore_raw"] == batch["zscore"].iloc[-1]
    rows = dict(signal_rows({**m, "stale": False, "zscore": m["zscore_raw"]}, live.spec, []))
    assert rows["z-score (chart, alerts, backtest)"] == f"{batch['zscore'].iloc[-1]:,.3g}"


def test_history_then_live_gives_the_batch_series(july):
    by, bx = july
    full = PairAnalytics.from_bars(by, bx, **_spec("theil-sen"), window=200)
    cut = by.index[250]
    head = PairAnalytics.from_bars(by[by.index < cut], bx[bx.index < cut], **_spec("theil-sen"),
                                   window=200)
    for t in by.index.union(bx.index)[by.index.union(bx.index) >= cut]:
        head.update(by.loc[t] if t in by.index else None, bx.loc[t] if t in bx.index else None,
                    open_time=t)
    np.testing.assert_array_equal(head.state.frame()["zscore_raw"].to_numpy(),
                                  full.series["zscore_raw"].to_numpy())


def test_an_alert_on_zscore_fires_on_the_bar_the_series_crosses(july):
    by, bx = july
    series = compute_signal(by, bx, **_spec("rolling-ols"))["zscore"]
    fired = []
    alerts = AlertManager(None, sinks=[CallbackSink(fired.append, name="cb")])
    alerts.add("zscore crosses above 1", name="up", cooldown_s=0)
    state = PairState(PairConfig(**_spec("rolling-ols"), window=200, stale_after_s=1e9),
                      timeframe_ms=1000)
    for t in by.index.union(bx.index):
        if state.update(by.loc[t] if t in by.index else None,
                        bx.loc[t] if t in bx.index else None, open_time=t):
            m = state.metrics()
            alerts.update("ETHUSDT/BTCUSDT", m, m["ts_ms"])
    z = series.to_numpy()
    crosses = [series.index[i] for i in range(1, len(z))
               if z[i - 1] <= 1 and z[i] > 1 and np.isfinite(z[i - 1])]
    assert crosses, "the capture has crossings"
    fired_at = [pd.Timestamp(a.ts, unit="ms", tz="UTC") for a in alerts.recent]
    assert fired_at == crosses


def test_metrics_are_declared_once_and_rules_on_others_are_rejected(july):
    by, bx = july
    m = PairAnalytics.from_bars(by, bx, **_spec("kalman"), window=200).metrics()
    assert set(m) == set(PAIR_METRICS)
    assert {"zscore", "beta", "stale", "coint_p"} <= set(RULE_METRICS)
    alerts = AlertManager(None)
    with pytest.raises(RuleSyntaxError) as e:
        alerts.add("zscroe > 1")
    assert "did you mean 'zscore'" in str(e.value) and "^^^^^^" in str(e.value)


def test_a_hole_restarts_every_window_and_the_backtest_closes_before_it(july_august):
    by, bx = july_august
    sig = compute_signal(by, bx, **_spec("rolling-ols"))
    after = sig.index >= pd.Timestamp("2024-08-01", tz="UTC")
    first = int(np.flatnonzero(after)[0])
    assert sig["segment_start"].iloc[first] and sig["segment_start"].sum() == 2
    warm = 60 + 40 - 1
    assert sig["zscore"].iloc[first:first + warm - 1].isna().all()
    assert sig["zscore"].iloc[first + warm - 1:].notna().any()
    bt = run(by, bx, hedge="rolling-ols", window=60, z_window=40, entry=0.5, exit=0.0,
             fee_bps=0)
    tr = bt.trades
    hole_start, hole_end = sig.index[first - 1], sig.index[first]
    assert not ((tr["entry_time"] <= hole_start) & (tr["exit_time"] >= hole_end)).any()
    assert not ((tr["entry_time"] >= hole_end)
                & (tr["entry_time"] <= sig.index[first + warm - 1])).any()
    assert (bt.positions["side"].iloc[first - 1:first + warm] == 0).all()


def test_a_position_open_at_a_hole_exits_with_reason_gap():
    n = 400
    rng = np.random.default_rng(2)
    t = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    t = t.append(pd.date_range("2024-01-02", periods=n, freq="1min", tz="UTC"))
    x = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, 2 * n)))
    spread = np.sin(np.arange(2 * n) / 9) * 2e-3
    spread[n - 60:n] += np.linspace(0, 0.05, 60)     # runs away before the hole: short, held
    y = 50 * np.exp(0.5 * np.log(x / 100) + spread)
    by, bx = pd.Series(y, index=t), pd.Series(x, index=t)
    bt = run(by, bx, hedge="fixed", beta=0.5, window=30, entry=2.0, exit=0.0, fee_bps=0)
    gap = bt.trades[bt.trades["exit_reason"] == "gap"]
    assert len(gap) == 1 and gap["exit_time"].iloc[0] == t[n - 1]
    assert (bt.positions["side"].iloc[n:n + 30 - 1] == 0).all()


def test_charts_break_their_lines_at_a_hole(july_august):
    by, bx = july_august
    pa = PairAnalytics.from_bars(by, bx, **_spec("rolling-ols"), window=200)
    s = pa.series
    cols = pair_columns(s, pa.summary, pa.state.spec, (1.0, 1.0), continues=False)
    assert len(cols["t"]) == len(s) + 1
    k = int(np.flatnonzero(s["segment_bar"].to_numpy() == 0)[1])
    assert math.isnan(cols["spread"][k]) and math.isnan(cols["z"][k])
    assert cols["t"][k] < cols["t"][k + 1] == s.index[k].value // 1_000_000
    ok = np.isfinite(s["zscore_raw"].to_numpy())
    z = np.delete(np.asarray(cols["z"]), k)
    mean, upper = np.delete(np.asarray(cols["mean"]), k), np.delete(np.asarray(cols["upper"]), k)
    std = (upper - mean) / 2
    np.testing.assert_allclose(((s["spread"].to_numpy() - mean) / std)[ok], z[ok], rtol=1e-9)


@pytest.mark.parametrize("timeframe, tf_ms", [("1s", 1_000), ("1m", 60_000), ("5m", 300_000),
                                              ("1h", 3_600_000)])
def test_a_leg_is_stale_by_its_last_trade_whatever_the_timeframe(timeframe, tf_ms):
    """Two legs trading every 10 s (1s bars: 0.5 s) for 40 bars, fed as ticks to a LiveSession:
    the pair is fresh on every timeframe; then y goes quiet and is stale 30 s after its last
    trade."""
    session = LiveSession(TickFeed(), y="AAAUSDT", x="BBBUSDT", timeframe=timeframe,
                          pair_config=PairConfig(beta_window=5, z_window=5, corr_window=5,
                                                 window=50, stale_after_s=30))
    rng = np.random.default_rng(0)
    t0 = 1_700_000_000_000 - 1_700_000_000_000 % tf_ms
    times = np.arange(t0, t0 + 40 * tf_ms, min(10_000, tf_ms // 2))
    px = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, len(times))))
    py = 2 * px * np.exp(rng.normal(0, 1e-4, len(times)))
    ticks = pd.concat([pd.DataFrame({"symbol": sym, "ts": times,
                                     "trade_id": np.arange(len(times)), "price": p, "qty": 1.0})
                       for sym, p in (("AAAUSDT", py), ("BBBUSDT", px))]).sort_values("ts")
    for chunk in np.array_split(np.arange(len(ticks)), min(20, len(ticks) // 2)):
        session.on_ticks(ticks.iloc[chunk])
    m = session.metrics()
    assert m["bars"] >= 25 and not m["stale"], (m["age_y_s"], m["age_x_s"])
    assert m["zscore"] == m["zscore_raw"] and math.isfinite(m["zscore"])
    last = int(times[-1])
    session.on_ticks(pd.DataFrame({"symbol": "BBBUSDT", "ts": [last + 31_000],
                                   "trade_id": [10**6], "price": [px[-1]], "qty": [1.0]}))
    m = session.metrics()
    assert m["stale_y"] and not m["stale_x"] and m["age_y_s"] == 31.0
    assert math.isnan(m["zscore"])


def test_waiting_for_says_what_is_missing_with_exact_counts():
    st = PairState(PairConfig(beta_window=120, z_window=120, window=400), timeframe_ms=60_000)
    rng = np.random.default_rng(1)
    for i in range(183):
        st.update(100 + rng.normal(), 50 + rng.normal(), open_time=i * 60_000)
    assert st.waiting_for()[0] == ("z-score: 183 of 239 bars (120-bar β window + 120-bar z "
                                   "window)")
    assert st.waiting_for()[1] == "ADF / cointegration / half-life: first refresh pending"


def test_a_breakdown_metric_fires_an_alert_when_the_pair_stops_cointegrating():
    rng = np.random.default_rng(0)
    n = 2_000
    x = np.log(60_000) + np.cumsum(rng.normal(0, 1e-3, n))
    e = np.zeros(n)
    for i in range(1, n):
        e[i] = 0.9 * e[i - 1] + rng.normal(0, 3e-4)
    y = np.log(3_000) + (x - x[0]) + e
    y[1_500:] += np.cumsum(rng.normal(0, 1e-3, n - 1_500))   # the spread starts to wander
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    by, bx = pd.Series(np.exp(y), index=idx), pd.Series(np.exp(x), index=idx)
    before = PairAnalytics.from_bars(by.iloc[:1_400], bx.iloc[:1_400], window=1_000).summary
    after = PairAnalytics.from_bars(by, bx, window=1_000).summary
    assert before["coint_break"] == 0 and before["coint_p"] < 0.01
    assert after["coint_break"] == 1 and after["coint_p"] > 0.05
    alerts = AlertManager(None)
    alerts.add("coint_break > 0", name="broke", cooldown_s=0)
    assert not alerts.update("P", before, 1) and len(alerts.update("P", after, 2)) == 1


def test_the_gates_shortcut_over_unbroken_bars_equals_its_steps():
    from qdash.analytics import _kernels as K

    rng = np.random.default_rng(5)
    t = np.arange(500) * 60_000.0
    cy, cx = 100 + rng.random(500), 50 + rng.random(500)
    g, gp = K.new_gate()
    got = K.gate_run(t, cy, cx, 60_000.0, 3.0, g, gp)
    g2, gp2 = K.new_gate()
    steps = [K.gate_step(g2, gp2, t[i], 60_000.0, cy[i], cx[i], 3.0) for i in range(500)]
    want = [np.array(col) for col in zip(*steps, strict=True)]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(g, g2)
    np.testing.assert_array_equal(gp, gp2)
