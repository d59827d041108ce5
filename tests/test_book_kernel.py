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


def _window(price, z, iy, ix, *, fee_rate=5e-4, slip_rate=2e-4, impact=0.0, qv=None,
            sigma=None):
    """Run the kernel over one closing window: pairs ``iy``/``ix`` (symbol columns of
    ``price``), each weighing 0.45 of the gross (under the gross cap together), β = 1, the
    rule's entry 2, exit 0, stop 4; no symbol cap."""
    n, n_sym = price.shape
    n_pairs = len(iy)
    st, acct = tr.K.new_state(n_pairs), np.array([CAPITAL])
    trades = np.zeros(4 * n_pairs, tr.K.BOOK_TRADE)
    out = [np.zeros(n) for _ in range(4)]
    out_qty = np.zeros((n, n_sym))
    fees, fund, entries, totals = (np.zeros(n_pairs), np.zeros(n_pairs), np.zeros(n_pairs),
                                   np.zeros(4))
    nt = tr.K.run_window(
        price, np.ones((n, n_sym), dtype=bool),
        np.full((n, n_sym), np.nan) if qv is None else qv, np.zeros((n, n_sym)),
        np.zeros(n_sym), np.full(n_sym, np.nan) if sigma is None else sigma,
        np.array(iy, dtype=np.int64), np.array(ix, dtype=np.int64),
        np.arange(n_pairs, dtype=np.int64), np.full(n_pairs, 0.45), z,
        np.ones((n_pairs, n)), np.ones((n_pairs, n), dtype=bool),
        np.zeros((n_pairs, n), dtype=bool), st, acct, 0, 1, 2.0, 0.0, 4.0, 1.0, 1e9, fee_rate,
        slip_rate, impact, 0.0, trades, *out, out_qty, fees, fund, entries, totals)
    return trades[:nt], fees, totals, out_qty, acct[0]


def _crossing_book():
    """Three symbols; pair 0 (S0/S1) goes long the spread and pair 1 (S2/S1) short at the same
    close, and both leave at the same later close: their S1 legs cross inside the book."""
    rng = np.random.default_rng(5)
    price = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, (8, 3)), axis=0))
    z = np.array([[-2.5, -2.4, -1.0, 0.5, 0.5, 0.5, 0.5, 0.5],
                  [2.5, 2.4, 1.0, -0.5, -0.5, -0.5, -0.5, -0.5]])
    return price, z


def test_legs_that_cross_inside_the_book_pay_nothing():
    """Orders are netted per symbol and bar: each symbol's order is the change of the book's
    position in it, and only that pays the fee and slippage; a pair alone pays all its legs."""
    price, z = _crossing_book()
    trades, fees, totals, qty, cash = _window(price, z, [0, 2], [1, 1])
    assert len(trades) == 2 and set(trades["exit_bar"]) == {4}
    assert np.all(qty[:, 1] == 0.0) and np.any(qty[:, 0] != 0.0)   # S1 never held
    change = np.abs(np.diff(np.vstack([np.zeros(3), qty]), axis=0)) * price
    assert change[:, 1].sum() == 0.0
    crossed = sum(np.abs(trades["qty_x"][i]) * price[t, 1] for i in range(2) for t in (1, 4))
    assert totals[3] == pytest.approx(crossed, rel=1e-12)           # both S1 legs, both ways
    assert totals[0] == pytest.approx(change.sum(), rel=1e-12)       # turnover: the orders
    assert fees.sum() == pytest.approx(change.sum() * 7e-4, rel=1e-12)
    assert trades["fees"].sum() == pytest.approx(fees.sum(), rel=1e-12)
    # pair 0's part is its S0 leg's cost alone: S1 cost nothing to share
    assert fees[0] == pytest.approx(change[:, 0].sum() * 7e-4, rel=1e-12)
    pnl = (trades["pnl_y"] + trades["pnl_x"]).sum()
    assert cash == pytest.approx(CAPITAL + pnl - fees.sum(), rel=1e-12)
    alone, alone_fees, alone_totals, _, _ = _window(price, z[:1], [0], [1])
    assert alone_fees[0] > 1.9 * fees[0]                             # S1 paid too
    legs = np.abs(alone["qty_y"][0]) * price[[1, 4], 0] + np.abs(alone["qty_x"][0]) * price[
        [1, 4], 1]
    assert alone_totals[0] == pytest.approx(legs.sum(), rel=1e-12)


def test_one_order_per_symbol_pays_the_square_root_impact_of_its_size():
    """Two pairs buying S1 at the same close send one order of the sum: its impact is
    ``Y σ sqrt(Q / V) Q`` of the sum (more than two half orders), shared by notional."""
    price, z = _crossing_book()
    short = np.vstack([z[1], z[1]])                # both short the spread: both buy S1
    qv = np.full((8, 3), 5e6)
    sigma = np.array([0.01, 0.02, 0.015])
    trades, fees, totals, qty, _ = _window(price, short, [0, 2], [1, 1], fee_rate=0.0,
                                           slip_rate=-1.0, impact=0.5, qv=qv, sigma=sigma)
    order = np.diff(np.vstack([np.zeros(3), qty]), axis=0) * price
    assert order[1, 1] > 0 and np.count_nonzero(order[:, 1]) == 2    # one buy, one sell of S1
    expected = sum(0.5 * sigma[s] * math.sqrt(abs(q) / 5e6) * abs(q)
                   for (t, s), q in np.ndenumerate(order) if q != 0.0)
    assert fees.sum() == pytest.approx(expected, rel=1e-12)
    half = order[1, 1] / 2
    separate = 2 * 0.5 * sigma[1] * math.sqrt(half / 5e6) * half
    assert 0.5 * sigma[1] * math.sqrt(order[1, 1] / 5e6) * order[1, 1] > 1.4 * separate
    cost = {s: sum(0.5 * sigma[s] * math.sqrt(abs(q) / 5e6) * abs(q) for q in order[:, s])
            for s in range(3)}
    assert fees[0] == pytest.approx(cost[0] + cost[1] / 2, rel=1e-12)   # S1 shared evenly
    assert trades["fees"].sum() == pytest.approx(fees.sum(), rel=1e-12)
