"""The book's account loop against independent references: the single-pair backtest
(:func:`qdash.backtest.run`) for the rule, sizing, fees and funding; the square-root impact
formula; Binance's liquidation rule and fee."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from book_support import planted

from qdash.analytics.signal import SignalSpec, compute_signal
from qdash.backtest import run as backtest
from qdash.book import trade as tr
from qdash.book.data import load
from qdash.book.engine import book
from qdash.book.select import allocate, risk_parity

pytestmark = pytest.mark.unit

CAPITAL = 10_000.0


@pytest.fixture(scope="module")
def pair():
    table, _ = planted(days=60, halves=False, walks=1)
    data = load(table[table["symbol"].isin(["CLU0", "CLU1"])], symbols=None, timeframe="1h",
                use_funding=False)
    return data


def _params(**kw) -> tr.TradeParams:
    base = dict(entry=2.0, exit=0.0, stop=4.0, leverage=1.0, max_symbol_weight=1e9,
                fee_rate=5e-4, slip_rate=2e-4, impact=1.0, liq_rate=0.0, capital=CAPITAL,
                close_at_end=True, break_every=10**9, break_bars=100)
    return tr.TradeParams(**{**base, **kw})


def _one_pair(data, prm, start: int, rates=None):
    spec = SignalSpec.for_timeframe("1h", beta_band=None)
    sel = pd.DataFrame({"y": ["CLU0"], "x": ["CLU1"], "beta": [1.0], "alpha": [0.0],
                        "half_life": [5.0], "q": [0.0]})
    if rates is not None:
        data.funding = rates
    w = tr.Window(0, start, len(data.times))
    return tr.trade(data, [w], [sel], [np.array([0.95])], spec, prm), spec


def _reference(data, spec, start: int, **kw):
    idx = data.index
    y, x = (pd.Series(data.close[:, j], index=idx) for j in (0, 1))
    frame = compute_signal(y, x, spec)
    return backtest(y.iloc[start:], x.iloc[start:], beta=frame["beta"].iloc[start:],
                    z=frame["zscore"].iloc[start:], entry=2.0, exit=0.0, stop=4.0,
                    capital=CAPITAL, allocation=0.95, leverage=1.0, fill="close", **kw)


def test_one_pair_without_caps_trades_as_the_backtest(pair):
    start = 400
    rng = np.random.default_rng(3)
    rates = np.zeros_like(pair.close)
    every8 = np.arange(0, len(pair.times), 8)
    rates[every8] = rng.normal(1e-4, 3e-4, (len(every8), 2))
    got, spec = _one_pair(pair, _params(), start, rates)
    fund = {s: pd.Series(rates[every8, j], index=pair.index[every8])
            for j, s in enumerate(pair.symbols)}
    ref = _reference(pair, spec, start, fee_bps=5.0, slippage_bps=2.0, funding_y=fund["CLU0"],
                     funding_x=fund["CLU1"])
    a, b = got.trades, ref.trades
    assert len(a) == len(b) > 5
    assert (a["entry_time"].to_numpy() == b["entry_time"].to_numpy()).all()
    assert (a["exit_time"].to_numpy() == b["exit_time"].to_numpy()).all()
    assert (a["side"].to_numpy() == np.where(b["side"] == "long", 1, -1)).all()
    np.testing.assert_allclose(a["entry_z"], b["entry_z"], rtol=1e-12)
    np.testing.assert_allclose(a["fees"], b["fees"] + b["slippage"], rtol=1e-9)
    np.testing.assert_allclose(a["funding"], b["funding"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a["pnl"], b["net_pnl"], rtol=1e-9, atol=1e-9)
    assert list(a["exit_reason"]) == list(b["exit_reason"])
    np.testing.assert_allclose(got.equity["equity"], ref.equity.to_numpy(), rtol=1e-12)


def test_square_root_impact_on_the_fill_bar_volume(pair):
    start = 400
    prm = _params(slip_rate=-1.0, impact=0.7)
    pair.funding = np.zeros_like(pair.close)
    got, spec = _one_pair(pair, prm, start)
    ref = _reference(pair, spec, start, fee_bps=5.0).trades.iloc[0]   # same size: first trade
    logr = np.diff(np.log(pair.close[:start]), axis=0)
    sigma = logr.std(axis=0, ddof=1)
    t_in = pair.index.get_loc(ref["entry_time"])
    t_out = pair.index.get_loc(ref["exit_time"])
    cost = 0.0
    for t, py, px in ((t_in, ref["entry_price_y"], ref["entry_price_x"]),
                      (t_out, ref["exit_price_y"], ref["exit_price_x"])):
        for j, q, p in ((0, ref["qty_y"], py), (1, ref["qty_x"], px)):
            notional = abs(q) * p
            cost += notional * 5e-4 + 0.7 * sigma[j] * math.sqrt(
                notional / pair.quote_volume[t, j]) * notional
    assert got.trades["fees"].iloc[0] == pytest.approx(cost, rel=1e-9)
    assert got.trades["fees"].iloc[0] > ref["fees"] * 1.01      # the impact is not nothing


def test_a_margin_breach_liquidates_everything_with_the_fee():
    table, _ = planted(days=60, halves=False)
    brackets = {s: 0.33 for s in table["symbol"].unique()}
    res = book(table, timeframe="1h", train="30d", trade="10d", max_pairs=1, leverage=3.0,
               max_symbol_weight=3.0, slippage_bps=2.0, brackets=brackets,
               liquidation_fee=0.01, scheduler=None, baselines=False, capital=CAPITAL)
    liq = res.trades[res.trades["exit_reason"] == "liquidation"]
    assert len(liq) and res.metric("liquidations") >= 1
    eq = res.equity.set_index("open_time")
    for t in liq["exit_time"].unique():
        assert eq.loc[t, "margin_ratio"] >= 1.0
        assert eq.loc[t, "gross_exposure"] == 0.0          # everything closed at that bar
    # fees = notional × (taker + slippage) + the liquidation fee on each symbol's net notional
    close = table.pivot(index="open_time", columns="symbol", values="close")
    close.index = pd.to_datetime(close.index, unit="ms", utc=True)
    pos = res.positions
    liq_notional = 0.0
    for t in liq["exit_time"].unique():
        before = pos[pos["open_time"] < t].groupby("symbol").last()
        for sym, row in before.iterrows():
            qty = row["notional"] / close.loc[row["open_time"], sym]
            liq_notional += abs(qty) * close.loc[t, sym]
    traded = res.metric("turnover") * CAPITAL
    assert res.metric("fees") == pytest.approx(traded * 7e-4 + 0.01 * liq_notional, rel=1e-9)


def test_allocations():
    rng = np.random.default_rng(0)
    r = rng.normal(0, [0.01, 0.02, 0.04], (2000, 3))
    assert allocate("equal", r) == pytest.approx(np.full(3, 1 / 3))
    iv = allocate("inverse-vol", r)
    assert iv == pytest.approx(np.array([4, 2, 1]) / 7, rel=0.05)
    cov = np.array([[1.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 4.0]]) * 1e-4
    w = risk_parity(cov)
    contrib = w * (cov @ w)
    assert w.sum() == pytest.approx(1.0)
    assert contrib == pytest.approx(np.full(3, contrib.mean()), rel=1e-8)


def test_a_store_gives_the_same_book_with_its_stored_funding(tmp_path):
    from book_support import funding_rates

    from qdash.model import BAR_COLUMNS
    from qdash.store import Store

    table, _ = planted(days=45, halves=False, walks=2)
    rates = funding_rates(table)
    with Store(tmp_path / "q.db") as st:
        for sym, g in table.groupby("symbol"):
            c = g["close"].to_numpy()
            bars = pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": 1.0,
                                 "trades": 1, "buy_volume": 0.5,
                                 "quote_volume": g["quote_volume"].to_numpy(), "vwap": c},
                                index=pd.to_datetime(g["open_time"], unit="ms", utc=True))
            st.write_bars(bars[BAR_COLUMNS], sym, "1h")
            r = rates[sym]
            st.write_funding(sym, pd.DataFrame({"funding_time": r.index.as_unit("ms").asi8,
                                                "rate": r.to_numpy(), "mark_price": np.nan}))
    kw = dict(timeframe="1h", train="30d", trade="5d", max_pairs=3, scheduler=None)
    stored = book(db=str(tmp_path / "q.db"), **kw)
    given = book(table, funding_rates=rates, **kw)
    assert stored.metric("funding") != 0.0
    for name in ("windows", "trades", "equity", "positions", "metrics"):
        pd.testing.assert_frame_equal(getattr(stored, name), getattr(given, name))


def test_a_held_pair_keeps_its_orientation():
    from qdash.book.select import SELECTED, choose, keep_orientation

    rows = [("A", "B", 2.0, 1.0), ("B", "A", 0.5, -0.5), ("C", "D", 1.0, 0.0),
            ("E", "F", 1.5, 0.2)]
    passing = pd.DataFrame([{"y": y, "x": x, "beta": b, "alpha": a, "half_life": 3.0,
                             "q": 0.01, "test_sharpe": 1.0} for y, x, b, a in rows])[SELECTED]
    first = choose(passing, 2, set())
    assert list(zip(first["y"], first["x"])) == [("A", "B"), ("C", "D")]
    kept = choose(passing, 2, {("B", "A")})                # B/A passed too: kept that way
    assert list(zip(kept["y"], kept["x"])) == [("B", "A"), ("C", "D")]
    assert kept["beta"].iloc[0] == 0.5                      # the scan's own row of B/A
    only_one = choose(passing, 3, {("F", "E")})            # F/E did not pass: E/F is taken
    assert ("E", "F") in set(zip(only_one["y"], only_one["x"]))
    turned = keep_orientation(passing.iloc[[2, 3]], {("F", "E")})
    r = turned.iloc[1]
    assert (r["y"], r["x"]) == ("F", "E")
    x = np.array([0.3, 1.7])                                # the same line: y = 1.5x + 0.2
    np.testing.assert_allclose(r["beta"] * (1.5 * x + 0.2) + r["alpha"], x)
