"""Property tests (hypothesis): accounting identities to the cent, and causality."""

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qdash.backtest import run

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def market(draw, min_n=5, max_n=80):
    """Random positive bar prices (open/close), beta, z and funding for one pair."""
    n = draw(st.integers(min_n, max_n))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-07-18", periods=n, freq="1h", tz="UTC")
    cy = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    cx = 30 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    oy = cy * np.exp(rng.normal(0, 0.005, n))
    ox = cx * np.exp(rng.normal(0, 0.005, n))
    y = pd.DataFrame({"open": oy, "close": cy}, index=idx)
    x = pd.DataFrame({"open": ox, "close": cx}, index=idx)
    beta = rng.normal(2.0, 1.0, n) if draw(st.booleans()) else np.full(n, 2.5)
    z = rng.normal(0, 2.0, n)
    funding = None
    if draw(st.booleans()):
        times = idx[0] + pd.to_timedelta(rng.integers(0, n * 3_600, 6), unit="s")
        funding = pd.Series(rng.normal(0, 0.001, 6), index=times).sort_index()
    params = dict(
        entry=draw(st.sampled_from([1.0, 1.5, 2.0])),
        exit=draw(st.sampled_from([-0.5, 0.0, 0.5])),
        stop=draw(st.sampled_from([None, 2.5, 3.5])),
        max_hold=draw(st.sampled_from([None, 1, 3, 10])),
        fee_bps=draw(st.sampled_from([0.0, 4.0, 10.0])),
        slippage_bps=draw(st.sampled_from([0.0, 2.0])),
        leverage=draw(st.sampled_from([1.0, 3.0])),
        fill=draw(st.sampled_from(["open", "close"])),
        close_at_end=draw(st.booleans()),
        capital=draw(st.sampled_from([1_000.0, 123_456.78])),
    )
    return y, x, beta, z, funding, params


def _run(m):
    y, x, beta, z, funding, params = m
    return run(y, x, beta=beta, z=z, funding_y=funding, funding_x=funding, log=False, **params)


@SETTINGS
@given(market())
def test_accounting_identities_hold_to_the_cent(m):
    y, x, beta, z, funding, params = m
    r = _run(m)
    t = r.trades
    cap = params["capital"]
    # per trade: net = gross - fees - slippage + funding; legs sum to the pair
    assert np.allclose(t["net_pnl"], t["gross_pnl"] - t["fees"] - t["slippage"] + t["funding"],
                       rtol=0, atol=1e-9)
    assert np.allclose(t["pnl_y"] + t["pnl_x"], t["gross_pnl"], rtol=0, atol=1e-9)
    # each leg's PnL from its own quantities and prices
    assert np.allclose(t["pnl_y"], t["qty_y"] * (t["exit_price_y"] - t["entry_price_y"]),
                       rtol=1e-12, atol=1e-9)
    assert np.allclose(t["pnl_x"], t["qty_x"] * (t["exit_price_x"] - t["entry_price_x"]),
                       rtol=1e-12, atol=1e-9)
    # hedge-adjusted sizing qty_x = -beta * qty_y; nothing can fill at bar 0
    assert np.allclose(t["qty_x"], -t["beta"] * t["qty_y"], rtol=1e-12, atol=1e-12)
    assert r.positions["side"].iloc[0] == 0 and r.equity.iloc[0] == cap
    # final equity = capital + sum of net trade PnL (+ open position mark)
    side = r.positions["side"].iloc[-1]
    if side == 0:
        assert round(r.equity.iloc[-1] - (cap + t["net_pnl"].sum()), 2) == 0
    else:
        assert not params["close_at_end"]
        last = r.positions.iloc[-1]
        entry_py = y["open" if params["fill"] == "open" else "close"]
        entry_px = x["open" if params["fill"] == "open" else "close"]
        start = (r.positions["side"] != side).to_numpy().nonzero()[0][-1] + 1
        mark = (last["qty_y"] * (y["close"].iloc[-1] - entry_py.iloc[start])
                + last["qty_x"] * (x["close"].iloc[-1] - entry_px.iloc[start]))
        costs_and_funding = r.equity.iloc[-1] - cap - t["net_pnl"].sum() - mark
        # what is left is the open trade's entry fee+slippage (negative) and its funding
        notional = abs(last["qty_y"]) * entry_py.iloc[start] + \
            abs(last["qty_x"]) * entry_px.iloc[start]
        entry_cost = notional * (params["fee_bps"] + params["slippage_bps"]) / 1e4
        if funding is None:
            assert round(costs_and_funding + entry_cost, 2) == 0
    # the metrics' totals agree with the trades when everything is closed
    if side == 0:
        assert round(r.metrics["total_fees"] - t["fees"].sum(), 2) == 0
        assert round(r.metrics["total_funding"] - t["funding"].sum(), 2) == 0


@SETTINGS
@given(market())
def test_equity_rebuilt_from_trades_bar_by_bar(m):
    """Without funding, equity at every bar = capital + closed trades' net + open trade's mark
    minus its entry costs."""
    y, x, beta, z, _, params = m
    r = _run((y, x, beta, z, None, params))
    cap = params["capital"]
    px_y = y["open" if params["fill"] == "open" else "close"].to_numpy()
    px_x = x["open" if params["fill"] == "open" else "close"].to_numpy()
    rate = (params["fee_bps"] + params["slippage_bps"]) / 1e4
    expected = np.full(len(y), cap)
    bars = np.arange(len(y))
    entry_bar = r.trades["entry_time"].map(y.index.get_loc).to_numpy()
    exit_bar = r.trades["exit_time"].map(y.index.get_loc).to_numpy()
    for k, t in enumerate(r.trades.itertuples()):
        expected[bars >= exit_bar[k]] += t.net_pnl
        open_ = (bars >= entry_bar[k]) & (bars < exit_bar[k])
        notional = abs(t.qty_y) * t.entry_price_y + abs(t.qty_x) * t.entry_price_x
        expected[open_] += (t.qty_y * (y["close"].to_numpy()[open_] - t.entry_price_y)
                            + t.qty_x * (x["close"].to_numpy()[open_] - t.entry_price_x)
                            - notional * rate)
        assert t.entry_price_y == px_y[entry_bar[k]]
    if r.positions["side"].iloc[-1] != 0:  # left open
        k0 = (r.positions["side"].to_numpy() == 0).nonzero()[0][-1] + 1
        q = r.positions.iloc[-1]
        notional = abs(q["qty_y"]) * px_y[k0] + abs(q["qty_x"]) * px_x[k0]
        tail = bars >= k0
        expected[tail] += (q["qty_y"] * (y["close"].to_numpy()[tail] - px_y[k0])
                           + q["qty_x"] * (x["close"].to_numpy()[tail] - px_x[k0])
                           - notional * rate)
    assert np.allclose(r.equity.to_numpy(), expected, rtol=0, atol=0.005)


@SETTINGS
@given(market(min_n=6), st.data())
def test_changing_data_after_t_never_changes_the_past(m, data):
    y, x, beta, z, funding, params = m
    n = len(y)
    t_cut = data.draw(st.integers(2, n - 2))
    base = _run(m)
    # rewrite everything after t_cut: prices, beta, z, funding; and append bars
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    extra = data.draw(st.integers(0, 10))
    idx2 = pd.date_range(y.index[0], periods=n + extra, freq="1h", tz="UTC")

    def rewrite(frame):
        vals = np.concatenate([frame.to_numpy(), frame.to_numpy()[-1:].repeat(extra, 0)])
        vals[t_cut + 1:] *= rng.uniform(0.5, 1.5, (len(vals) - t_cut - 1, 1))
        return pd.DataFrame(vals, index=idx2, columns=frame.columns)

    y2, x2 = rewrite(y), rewrite(x)
    beta2 = np.concatenate([beta, np.ones(extra)])
    beta2[t_cut + 1:] = rng.normal(1, 1, len(beta2) - t_cut - 1)
    z2 = np.concatenate([z, np.zeros(extra)])
    z2[t_cut + 1:] = rng.normal(0, 3, len(z2) - t_cut - 1)
    f2 = funding
    if funding is not None:
        f2 = funding.copy()
        f2[f2.index >= y.index[t_cut] + pd.Timedelta(hours=1)] *= -7
    other = _run((y2, x2, beta2, z2, f2, {**params, "close_at_end": False}))
    ref = _run((y, x, beta, z, funding, {**params, "close_at_end": False}))
    # the fill at t_cut+1 may differ (its price changed), so everything up to t_cut is equal
    cut = t_cut + 1
    pd.testing.assert_series_equal(ref.equity.iloc[:cut], other.equity.iloc[:cut])
    pd.testing.assert_frame_equal(ref.positions.iloc[:cut], other.positions.iloc[:cut])
    done = ref.trades["exit_time"] <= y.index[t_cut]
    pd.testing.assert_frame_equal(ref.trades[done], other.trades.iloc[:int(done.sum())])
    # closing at the end only touches the last bar
    pd.testing.assert_series_equal(base.equity.iloc[:-1], ref.equity.iloc[:-1])
