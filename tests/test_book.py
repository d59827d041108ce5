"""The walk-forward book: its identities, caps, look-ahead freedom, and what it selects.

Data: planted pairs (:mod:`book_support`: a cointegrated cluster, a pair cointegrated only in
the first half, one only in the second, unrelated walks) on 1h bars, and the simulator's
universe (:mod:`qdash.sim.universe`, planted clusters) on 5m bars, all generated in-process.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from book_support import START_MS, funding_rates, planted

import qdash
from qdash.book import BOOK_TABLES, BookResult
from qdash.book.engine import book, windows_of

pytestmark = pytest.mark.unit

CAPITAL = 100_000.0
FEE_BPS, SLIP_BPS = 5.0, 2.0
LEVERAGE, MAX_W = 2.0, 0.3


@pytest.fixture(scope="module")
def data():
    table, info = planted(days=100)
    return table, info, funding_rates(table)


@pytest.fixture(scope="module")
def run(data):
    """Tight caps, fixed slippage, funding, positions left open at the end."""
    table, _, rates = data
    return book(table, timeframe="1h", train="30d", trade="7d", max_pairs=5, capital=CAPITAL,
                leverage=LEVERAGE, max_symbol_weight=MAX_W, fee_bps=FEE_BPS,
                slippage_bps=SLIP_BPS, funding_rates=rates, close_at_end=False,
                scheduler=None)


def test_tables_have_the_contract_columns(run):
    assert isinstance(run, BookResult)
    for name, cols in BOOK_TABLES.items():
        assert tuple(getattr(run, name).columns) == cols
    assert run.metric("windows") == len(run.windows["window_start"].unique())
    assert "no_coint_gate" in run.baselines
    assert [k for k in run.baselines if k.startswith("hold_")]
    assert len(run.fingerprint) == 64 and run.versions["numpy"]
    assert run.spec["train"] == "30d" and run.spec["trade"] == "7d"


def test_trades_plus_open_mark_equal_equity_change(run, data):
    table, _, rates = data
    change = run.equity["equity"].iloc[-1] - CAPITAL
    assert run.trades["pnl"].sum() + run.metric("open_mark") == pytest.approx(change, abs=1e-6)
    longest = run.trades.loc[(run.trades["exit_time"] - run.trades["entry_time"]).idxmax()]
    middle = longest["entry_time"] + (longest["exit_time"] - longest["entry_time"]) / 2
    cut = book(table[table["open_time"] < middle.value // 1_000_000], timeframe="1h",
               train="30d", trade="7d", max_pairs=5, capital=CAPITAL, leverage=LEVERAGE,
               max_symbol_weight=MAX_W, fee_bps=FEE_BPS, slippage_bps=SLIP_BPS,
               funding_rates=rates, close_at_end=False, scheduler=None, baselines=False)
    assert cut.metric("open_mark") != 0.0                # an open position is marked
    change = cut.equity["equity"].iloc[-1] - CAPITAL
    assert cut.trades["pnl"].sum() + cut.metric("open_mark") == pytest.approx(change, abs=1e-6)
    assert cut.windows["pnl"].sum() == pytest.approx(change, abs=1e-6)


def test_windows_pnl_adds_up_to_the_equity_change(run):
    change = run.equity["equity"].iloc[-1] - CAPITAL
    assert run.windows["pnl"].sum() == pytest.approx(change, abs=1e-6)
    assert run.windows["fees"].sum() == pytest.approx(run.metric("fees"), rel=1e-12)
    assert run.windows["funding"].sum() == pytest.approx(run.metric("funding"), rel=1e-12)


def test_fees_are_the_orders_notional_times_rate_plus_slippage(run, data):
    """The traded notional is that of one order per symbol and bar: the change of the book's
    net position in the symbol (pairs' legs that cross inside the book never reach it)."""
    notional = run.metric("turnover") * CAPITAL
    assert notional > 0
    assert run.metric("fees") == pytest.approx(notional * (FEE_BPS + SLIP_BPS) / 1e4, rel=1e-12)
    table = data[0]
    close = table.pivot(index="open_time", columns="symbol", values="close")
    close.index = pd.to_datetime(close.index, unit="ms", utc=True)
    pos = run.positions
    p = close.stack().reindex(pd.MultiIndex.from_arrays([pos["open_time"], pos["symbol"]]))
    qty = pd.Series(pos["notional"].to_numpy() / p.to_numpy(), index=pos.index)
    change = qty.groupby(pos["symbol"]).diff().fillna(qty).abs() * p.to_numpy()
    assert notional == pytest.approx(change.sum(), rel=1e-9)


def test_funding_is_position_times_rate_at_each_settlement(run, data):
    table, _, rates = data
    close = table.pivot(index="open_time", columns="symbol", values="close")
    close.index = pd.to_datetime(close.index, unit="ms", utc=True)
    pos = run.positions.copy()
    price = close.stack().rename("close")
    pos["qty"] = pos["notional"].to_numpy() / price.reindex(
        pd.MultiIndex.from_arrays([pos["open_time"], pos["symbol"]])).to_numpy()
    held = pos.pivot(index="open_time", columns="symbol", values="qty").reindex(
        close.index).ffill().fillna(0.0)
    before_fill = held.shift(1).fillna(0.0)              # fills are at the close
    expected = 0.0
    for sym in held.columns:
        r = rates[sym]
        bar = r.index.floor("1h")
        inside = bar.isin(run.equity["open_time"])
        q = before_fill[sym].reindex(bar[inside]).to_numpy()
        p = close[sym].reindex(bar[inside]).to_numpy()
        expected += float(np.sum(-r.to_numpy()[inside] * q * p))
    assert abs(run.metric("funding")) > 1.0
    assert run.metric("funding") == pytest.approx(expected, rel=1e-9)


def check_caps(run, leverage: float, max_w: float) -> int:
    """At every bar where an entry filled: gross <= leverage × equity and, for the entered
    pair's symbols, |net| <= max_w × equity. Returns the entries checked."""
    eq = run.equity.set_index("open_time")
    pos = run.positions.set_index(["open_time", "symbol"])["notional"]
    last = run.positions.groupby("symbol")
    n = 0
    for t in run.trades.itertuples():
        e = eq.loc[t.entry_time]
        assert e["gross_exposure"] <= leverage * e["equity"] * (1 + 1e-12)
        for sym in (t.y, t.x):
            rows = last.get_group(sym)
            held = rows[rows["open_time"] <= t.entry_time]["notional"].iloc[-1]
            assert (t.entry_time, sym) in pos.index
            assert abs(held) <= max_w * e["equity"] * (1 + 1e-12), (t, sym, held, e["equity"])
        n += 1
    return n


def test_net_and_gross_caps_hold_at_every_entry(run):
    assert check_caps(run, LEVERAGE, MAX_W) > 10
    # the caps bind: some net position sits at the cap
    eq = run.equity.set_index("open_time")["equity"]
    ratio = run.positions["notional"].abs().to_numpy() / eq.reindex(
        run.positions["open_time"]).to_numpy()
    assert ratio.max() == pytest.approx(MAX_W, rel=0.05)


def test_pairs_cointegrated_in_one_half_trade_only_there(run, data):
    mid = data[1]["mid"]
    legs = run.trades.apply(lambda r: frozenset((r["y"], r["x"])), axis=1)
    first = run.trades[legs == frozenset(("FH_Y", "FH_X"))]
    second = run.trades[legs == frozenset(("SH_Y", "SH_X"))]
    assert len(first) and len(second)
    # the break is seen at the first daily coint_break check after it, not at its bar: no
    # entry of the first-half pair later than one check interval after the break
    assert first["entry_time"].max() < mid + pd.Timedelta(days=1)
    late = first[first["exit_time"] > mid]
    assert late["exit_reason"].isin(["break", "stop", "deselected"]).all()
    assert second["entry_time"].min() >= mid
    sel = run.windows.assign(legs=run.windows.apply(lambda r: frozenset((r["y"], r["x"])),
                                                    axis=1))
    assert (sel[sel["legs"] == frozenset(("SH_Y", "SH_X"))]["window_start"] >= mid).all()


@pytest.mark.parametrize("days", [47, 61.5, 80])
def test_cut_at_T_makes_the_same_decisions_before_T(data, days):
    table, _, rates = data
    kw = dict(timeframe="1h", train="30d", trade="7d", max_pairs=4, capital=CAPITAL,
              leverage=LEVERAGE, max_symbol_weight=MAX_W, fee_bps=FEE_BPS,
              funding_rates=rates, scheduler=None, baselines=False)
    full = book(table, **kw)
    cut_ms = START_MS + int(days * 86_400_000)
    cut = book(table[table["open_time"] < cut_ms], **kw)
    t_cut = pd.Timestamp(cut_ms, unit="ms", tz="UTC")
    last = cut.equity["open_time"].iloc[-1]
    cols = ["window_start", "y", "x", "beta", "half_life", "coint_q", "weight"]
    a, b = (r.windows[r.windows["window_start"] < t_cut][cols].reset_index(drop=True)
            for r in (full, cut))
    assert len(a) and a.equals(b)
    ea, eb = (r.equity[r.equity["open_time"] < last].reset_index(drop=True)
              for r in (full, cut))
    pd.testing.assert_frame_equal(ea, eb)
    ta, tb = (r.trades[(r.trades["exit_time"] < last)].reset_index(drop=True)
              for r in (full, cut))
    assert len(ta) > 3
    pd.testing.assert_frame_equal(ta, tb)
    pa, pb = (r.positions[r.positions["open_time"] < last].reset_index(drop=True)
              for r in (full, cut))
    pd.testing.assert_frame_equal(pa, pb)


def test_windows_tile_the_data_after_the_train_span():
    bar = 3_600_000
    times = START_MS + np.arange(24 * 50, dtype=np.int64) * bar
    ws = windows_of(times, 30 * 86_400_000, 7 * 86_400_000)
    assert [w.start for w in ws] == [720, 888, 1056]
    assert [w.end for w in ws] == [888, 1056, 1200]
    assert all(w.lo == w.start - 720 for w in ws)


def test_qdash_book_is_callable_like_scan(data):
    table, _, _ = data
    res = qdash.book(table, timeframe="1h", train="30d", trade="20d", max_pairs=2,
                     scheduler=None, baselines=False)
    assert isinstance(res, BookResult)
    assert callable(qdash.book) and hasattr(qdash.book, "result")


def test_bad_arguments_are_named(data):
    table, _, _ = data
    with pytest.raises(qdash.QdashError, match="allocation"):
        book(table, timeframe="1h", allocation="kelly", scheduler=None)
    with pytest.raises(qdash.QdashError, match="train span"):
        book(table, timeframe="1h", train="200d", scheduler=None)
    with pytest.raises(qdash.QdashError, match="warm up"):
        book(table, timeframe="1h", train="3d", trade="1d", scheduler=None)


def test_on_the_simulator_universe_the_book_selects_cluster_pairs_within_caps():
    from qdash.sim.universe import make_universe, universe_klines

    uni = make_universe(16, seed=0)
    cluster = {u.symbol: u.cluster for u in uni}
    k = universe_klines(uni, "5m", START_MS, START_MS + 45 * 86_400_000, seed=0)
    res = book(k[["symbol", "open_time", "close", "quote_volume"]], train="30d", trade="7d",
               max_pairs=6, leverage=LEVERAGE, max_symbol_weight=0.2, scheduler=None,
               baselines=False)
    same = [cluster[y] is not None and cluster[y] == cluster[x]
            for y, x in zip(res.windows["y"], res.windows["x"])]
    assert len(same) >= 6 and np.mean(same) >= 0.8
    traded = [cluster[y] == cluster[x] for y, x in zip(res.trades["y"], res.trades["x"])]
    assert len(traded) > 10 and np.mean(traded) >= 0.8
    assert check_caps(res, LEVERAGE, 0.2) == len(res.trades)


def test_a_window_whose_scan_cannot_run_selects_nothing_and_says_why():
    table, _ = planted(days=60, halves=False, walks=0, cluster=2)
    late = (table["symbol"] == "CLU1") & (table["open_time"] < START_MS + 25 * 86_400_000)
    res = book(table[~late], timeframe="1h", train="30d", trade="7d", scheduler=None,
               baselines=False)
    errors = res.spec["window_errors"]
    assert len(errors) == 4 and all("fewer than 2 symbols" in e for e in errors.values())
    starts = res.windows["window_start"].astype(str).unique()
    assert len(starts) and not set(starts) & set(errors)


def test_dropped_pairs_close_at_the_next_windows_first_bar_and_kept_ones_carry(run):
    w, t = run.windows, run.trades
    starts = sorted(w["window_start"].unique())
    chosen = {s: set(zip(g["y"], g["x"])) for s, g in w.groupby("window_start")}
    dropped = t[t["exit_reason"] == "deselected"]
    assert len(dropped)
    for r in dropped.itertuples():
        assert r.exit_time in starts                     # the first bar of a window
        assert (r.y, r.x) not in chosen[r.exit_time]     # which no longer selects the pair
    carried = [r for r in t.itertuples() if any(r.entry_time < s < r.exit_time for s in starts)
               and r.exit_reason != "deselected"]
    assert carried                                       # positions cross window bounds
    for r in carried:
        crossed = [s for s in starts if r.entry_time < s <= r.exit_time]
        assert all((r.y, r.x) in chosen[s] for s in crossed)


def test_a_short_book_reports_its_sharpe_marked_short_not_blank(data):
    """Under 30 days the annualised figures are given with their span and marked, never NaN
    (issue 22's rule); the full run is not marked."""
    table, _, rates = data
    short = book(table[table["open_time"] < table["open_time"].min() + 50 * 86_400_000],
                 timeframe="1h", train="30d", trade="7d", max_pairs=5, capital=CAPITAL,
                 funding_rates=rates, scheduler=None)
    assert short.metric("span_days") < 30 and short.metric("short_sample") == 1
    for name in ("sharpe", "sharpe_se", "deflated_sharpe"):
        assert np.isfinite(short.metric(name)), name
    assert short.metric("sharpe_se") > 0
