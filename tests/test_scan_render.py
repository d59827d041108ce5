"""The scanner view's render model (pure): table rows (filters, sort, top N) and heatmap cells
from a scan frame built by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from qdash.app.scan_render import (
    NEG_LOG_CAP,
    TABLE_COLUMNS,
    heat_columns,
    heat_value,
    pair_label,
    table_rows,
)
from qdash.errors import QdashError


def _frame() -> pd.DataFrame:
    """A scan frame of three symbols, best first (as scan() sorts it)."""
    rows = [  # y, x, q, coint_t, pass, qv_y, qv_x, half_life
        ("ETHUSDT", "BTCUSDT", 1e-6, -6.0, True, 8e9, 1.5e10, 12.0),
        ("BTCUSDT", "ETHUSDT", 2e-5, -5.2, True, 1.5e10, 8e9, 15.0),
        ("SOLUSDT", "ETHUSDT", 0.03, -3.4, False, 6e8, 8e9, 80.0),
        ("ETHUSDT", "SOLUSDT", 0.2, -2.5, False, 8e9, 6e8, np.nan),
        ("SOLUSDT", "BTCUSDT", 0.0, -9.0, False, 6e8, 1.5e10, np.nan),
        ("BTCUSDT", "SOLUSDT", 0.9, np.nan, False, 1.5e10, 6e8, np.nan),
    ]
    df = pd.DataFrame(rows, columns=["y", "x", "q", "coint_t", "pass", "quote_volume_y",
                                     "quote_volume_x", "half_life"])
    df["coint_p"] = df["q"] / 2
    df["beta"] = 1.0
    for c in ("hurst", "crossings", "test_sharpe", "test_sharpe_se"):
        df[c] = np.nan
    df["reason"] = np.where(df["pass"], "", "coint: q > fdr")
    return df


def test_rows_keep_the_scan_rank_and_the_table_columns():
    rows = table_rows(_frame())
    assert list(rows.columns) == TABLE_COLUMNS
    assert rows["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    assert rows.loc[0, "liquidity"] == 8e9          # the smaller leg
    assert table_rows(None).empty and list(table_rows(None).columns) == TABLE_COLUMNS


def test_filters_passing_liquidity_and_symbol_text():
    f = _frame()
    assert table_rows(f, passing=True)[["y", "x"]].values.tolist() == [
        ["ETHUSDT", "BTCUSDT"], ["BTCUSDT", "ETHUSDT"]]
    liquid = table_rows(f, min_quote_volume=1e9)
    assert set(liquid["rank"]) == {1, 2}
    sol = table_rows(f, text=" sol")
    assert set(sol["rank"]) == {3, 4, 5, 6}
    assert table_rows(f, text="sol", passing=True).empty


def test_sort_by_any_column_and_top_n():
    f = _frame()
    by_t = table_rows(f, sort_by="coint_t")
    assert by_t["coint_t"].iloc[:5].tolist() == [-9.0, -6.0, -5.2, -3.4, -2.5]
    assert math.isnan(by_t["coint_t"].iloc[-1])      # NaN last
    down = table_rows(f, sort_by="q", ascending=False, top=2)
    assert down["q"].tolist() == [0.9, 0.2]
    assert table_rows(f, sort_by="rank", ascending=False, top=1)["rank"].tolist() == [6]
    with pytest.raises(QdashError, match="sort by"):
        table_rows(f, sort_by="nope")


def test_heat_values_neg_log_q_capped_and_neg_t():
    f = _frame()
    v = heat_value(f, "-log10 q")
    np.testing.assert_allclose(v[:4], -np.log10(f["q"].to_numpy()[:4]))
    assert v[4] == NEG_LOG_CAP                        # q = 0
    t = heat_value(f, "-coint t")
    assert t[0] == 6.0 and math.isnan(t[5])
    with pytest.raises(QdashError, match="metric"):
        heat_value(f, "corr")


def test_heat_cells_cover_the_symbols_shown():
    f = _frame()
    symbols, cols = heat_columns(f, table_rows(f, passing=True))
    assert symbols == ["ETHUSDT", "BTCUSDT"]
    assert sorted(zip(cols["y"], cols["x"])) == [("BTCUSDT", "ETHUSDT"), ("ETHUSDT", "BTCUSDT")]
    i = cols["y"].index("ETHUSDT")
    assert cols["value"][i] == pytest.approx(6.0) and cols["label"][i] == "6.0"
    symbols, cols = heat_columns(f, table_rows(f), "-coint t")
    assert len(symbols) == 3 and len(cols["y"]) == 6
    j = list(zip(cols["y"], cols["x"])).index(("BTCUSDT", "SOLUSDT"))
    assert cols["label"][j] == "" and cols["value"][j] == 0.0   # NaN: an empty cell
    assert heat_columns(f, table_rows(f), max_symbols=2)[0] == ["ETHUSDT", "BTCUSDT"]
    assert heat_columns(None, table_rows(None)) == ([], {"y": [], "x": [], "value": [],
                                                          "label": []})


def test_pair_label():
    row = table_rows(_frame()).iloc[0]
    assert pair_label(row) == "#1 ETHUSDT / BTCUSDT  q 1e-06 ✓"
