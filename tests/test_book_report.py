"""The book's ``report.html`` data: per-pair attribution, holding times against half-lives, the
exposure steps, the embedded provenance, and a page that asks for no URL."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from book_result_support import BAR, TRADES, book_result

from qdash.backtest.metrics import drawdown
from qdash.book.report import (
    attribution,
    exposure_frame,
    exposure_grid,
    holding_times,
    largest_exposures,
    metrics_table,
    read_provenance,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def result():
    return book_result()


@pytest.fixture(scope="module")
def page(result, tmp_path_factory):
    path = result.report(tmp_path_factory.mktemp("report") / "out" / "report.html")
    return path.read_text(encoding="utf-8")


def test_attribution_splits_each_pairs_net_pnl_into_price_fees_and_funding(result):
    att = attribution(result.windows)
    assert len(att) == 3 and list(att["pnl"]) == sorted(att["pnl"], reverse=True)
    np.testing.assert_allclose(att["price"] - att["fees"] + att["funding"], att["pnl"])
    assert att["pnl"].sum() == pytest.approx(result.windows["pnl"].sum())
    # independently from the trades (the fixture books every trade to one of its pair's windows)
    by_pair = {}
    for y, x, _a, _b, _s, pnl, fees, fund, _r in TRADES:
        p = by_pair.setdefault((y, x), np.zeros(3))
        p += [pnl, fees, fund]
    for row in att.itertuples():
        pnl, fees, fund = by_pair[(row.y, row.x)]
        assert (row.pnl, row.fees, row.funding) == pytest.approx((pnl, fees, fund))
        assert row.price == pytest.approx(pnl + fees - fund)


def test_attribution_of_no_window_is_an_empty_table(result):
    assert attribution(result.windows.iloc[:0]).empty


def test_holding_time_is_in_bars_and_meets_the_half_life_of_the_entry_window(result):
    ht = holding_times(result.trades, result.windows, "5m")
    closed = [t for t in TRADES if t[3] is not None]
    assert len(ht) == len(closed)          # the open round trip is left out
    assert list(ht["holding_bars"]) == [float(b - a) for _y, _x, a, b, *_ in closed]
    # ETH/BTC entered at bar 250 (window 0, half-life 40) and left in window 1 (half-life 45)
    across = ht[(ht["y"] == "ETHUSDT") & (ht["entry_time"] == result.trades["entry_time"][2])]
    assert across["half_life"].item() == 40.0 and across["ratio"].item() == 80 / 40
    np.testing.assert_allclose(ht["ratio"], ht["holding_bars"] / ht["half_life"])


def test_holding_time_counts_bars_of_the_specs_timeframe(result):
    one_minute = holding_times(result.trades, result.windows, "1m")
    five = holding_times(result.trades, result.windows, "5m")
    np.testing.assert_allclose(one_minute["holding_bars"], 5 * five["holding_bars"])


def test_a_trade_entered_outside_its_pairs_windows_has_no_half_life(result):
    trades = result.trades.copy()
    trades.loc[0, ["entry_time", "exit_time"]] = [pd.Timestamp("2026-10-01", tz="UTC"),
                                                  pd.Timestamp("2026-10-01 01:00", tz="UTC")]
    ht = holding_times(trades, result.windows, "5m")
    assert np.isnan(ht["half_life"].iloc[0]) and ht["holding_bars"].iloc[0] == 12.0
    assert ht["half_life"].iloc[1:].notna().all()


def test_exposure_holds_each_symbols_last_notional_until_it_changes(result):
    end = result.equity["open_time"].iloc[-1]
    wide = exposure_frame(result.positions, end)
    assert set(wide.columns) == set(result.positions["symbol"]) and wide.index[-1] == end
    for sym, rows in result.positions.groupby("symbol"):
        for t, notional in zip(rows["open_time"], rows["notional"]):
            assert wide.loc[t, sym] == notional
        first = rows["open_time"].iloc[0]
        assert (wide.loc[wide.index < first, sym] == 0).all()
        # between two changes of this symbol, its value stays
        after = wide.loc[wide.index >= rows["open_time"].iloc[-1], sym]
        assert (after == rows["notional"].iloc[-1]).all()


def test_the_report_embeds_the_runs_spec_fingerprint_and_versions(result, page):
    prov = read_provenance(page)
    assert prov == json.loads(json.dumps({"spec": result.spec, "fingerprint": result.fingerprint,
                                          "versions": result.versions}))
    assert result.fingerprint in page
    for lib, version in result.versions.items():
        assert f"<td>{lib}</td>" in page and f"<td>{version}</td>" in page
    assert '"max_symbol_weight"' in page or "max_symbol_weight" in page


def test_a_spec_value_with_a_closing_script_tag_stays_inside_the_json(tmp_path):
    r = book_result({"note": "</script><script>alert(1)</script>"})
    text = r.report(tmp_path / "r.html").read_text()
    assert read_provenance(text)["spec"]["note"] == "</script><script>alert(1)</script>"
    assert "<script>alert(1)" not in text


def test_the_report_loads_nothing_from_the_network(page):
    srcs = re.findall(r"<(?:script|link|img)\b[^>]*\b(?:src|href)\s*=\s*['\"]([^'\"]+)", page)
    assert not [s for s in srcs if re.match(r"(?i)(https?:)?//", s)], srcs
    assert "cdn.bokeh.org" not in page
    assert "Bokeh" in page and len(page) > 500_000     # BokehJS itself is inline


def test_the_report_shows_the_window_table_and_the_metrics(result, page):
    for col in result.windows.columns:
        assert f"<th>{col}</th>" in page
    assert page.count("<tr>") >= len(result.windows) + len(result.metrics)
    for column in ("book", "no_coint_gate", "hold_BTCUSDT"):    # the metrics, side by side
        assert f"<th>{column}</th>" in page


def test_the_drawdown_drawn_is_qdashs(result):
    from qdash.app.render import equity_columns

    curve = pd.Series(result.equity["equity"].to_numpy(), index=result.equity["open_time"])
    np.testing.assert_allclose(equity_columns(curve)["drawdown"], drawdown(curve))
    assert BAR == pd.Timedelta(minutes=5)


def test_the_exposure_plot_keeps_the_largest_symbols(result):
    wide = exposure_frame(result.positions)
    peak = wide.abs().max()
    top = largest_exposures(wide, 2)
    assert len(top) == 2 and peak[top].min() >= peak.drop(top).max()
    order = peak.sort_values(ascending=False, kind="stable").index
    assert largest_exposures(wide, 10) == list(order)


def test_the_metrics_table_puts_each_baseline_beside_the_book():
    metrics = pd.DataFrame({"name": ["sharpe", "max_drawdown", "baseline_no_coint_gate_sharpe",
                                     "baseline_no_coint_gate_max_drawdown",
                                     "baseline_hold_BTCUSDT_sharpe"],
                            "value": [1.5, 0.1, 0.7, 0.2, -0.3]})
    t = metrics_table(metrics)
    assert list(t.columns) == ["book", "no_coint_gate", "hold_BTCUSDT"]
    assert list(t.index) == ["sharpe", "max_drawdown"]
    assert t.loc["sharpe"].tolist() == [1.5, 0.7, -0.3]
    assert t.loc["max_drawdown", "no_coint_gate"] == 0.2
    assert np.isnan(t.loc["max_drawdown", "hold_BTCUSDT"])


def test_the_exposure_grid_holds_the_notional_in_force_at_each_cell(result):
    wide = exposure_frame(result.positions, result.equity["open_time"].iloc[-1])
    times, grid = exposure_grid(wide, 50)
    assert grid.shape == (wide.shape[1], 50) and times[0] == wide.index[0]
    assert times[-1] == wide.index[-1]
    for j in (0, 7, 23, 49):
        in_force = wide[wide.index <= times[j]].iloc[-1]
        np.testing.assert_array_equal(grid[:, j], in_force.to_numpy())


def test_a_book_that_never_traded_still_has_a_report(result, tmp_path):
    from qdash.book.result import BookResult

    empty = BookResult(windows=result.windows.iloc[:0], trades=result.trades.iloc[:0],
                       equity=result.equity, positions=result.positions.iloc[:0],
                       metrics=result.metrics, spec=result.spec, fingerprint="00" * 32)
    page = empty.report(tmp_path / "r.html").read_text()
    assert read_provenance(page)["fingerprint"] == "00" * 32
    assert attribution(empty.windows).empty and exposure_frame(empty.positions).empty
    assert holding_times(empty.trades, empty.windows, "5m").empty
