"""The universe scan end to end, in process: planted pairs recovered, the false discovery rate,
a broken pair failing out of sample, the output table, input checking, the CLI."""

import numpy as np
import pandas as pd
import pytest
from scan_support import BAR, T0, planted_universe

import qdash
from qdash.cli import main
from qdash.errors import DataFormatError, QdashError
from qdash.scan import OUTPUT_COLUMNS, build_panel, read_table, scan, screen
from qdash.store import Store


@pytest.fixture(scope="module")
def planted():
    table, truth = planted_universe(0)
    return table, truth, scan(table, scheduler=None, fdr=0.1, progress=False)


def test_planted_pairs_pass_with_their_hedge_ratios(planted):
    _, truth, r = planted
    by_pair = r.set_index(["y", "x"])
    for y, x, beta in truth:
        row = by_pair.loc[(y, x)]
        assert row["pass"], (y, x, row["reason"])
        assert row["beta"] == pytest.approx(beta, abs=0.01)
        back = by_pair.loc[(x, y)]                        # the other direction: 1/beta
        assert back["q"] <= 0.1
        assert back["beta"] == pytest.approx(1 / beta, rel=0.01)
        assert row["pass_train"] and row["pass_test"]
        assert row["half_life"] < 10 and row["hurst"] < 0.5 and row["crossings"] > 100
        # a test window of 600 bars of 5m (2.1 days): a Sharpe all the same, with its SE
        assert row["test_trades"] > 0 and np.isfinite(row["test_return"])
        assert np.isfinite(row["test_sharpe"]) and row["test_sharpe_se"] > 0
        assert row["test_days"] == pytest.approx(599 / 288)


def test_output_has_every_directed_pair_and_the_first_failed_rule(planted):
    table, _, r = planted
    k = table["symbol"].nunique()
    assert list(r.columns) == OUTPUT_COLUMNS
    assert len(r) == k * (k - 1) and not r.duplicated(["y", "x"]).any()
    assert (r["n"] == 2000).all()
    rejected = r[r["q"] > 0.1]
    assert rejected["reason"].str.startswith("coint: q ").all()
    assert rejected["half_life"].isna().all() and rejected["pass_test"].isna().all()
    assert (r.loc[r["pass"], "reason"] == "").all()
    assert not r.loc[~r["pass"], "reason"].eq("").any()
    assert r["pass"].iloc[0] and list(r["pass"]) == sorted(r["pass"], reverse=True)
    assert r["quote_volume_y"].gt(0).all()
    assert r.attrs["skipped"] == [] and set(r.attrs["timings"]) == {"read", "screen",
                                                                      "validate"}


def test_false_discoveries_stay_within_the_fdr():
    """Mean false-discovery proportion of stage 1 over 30 seeds at fdr = 0.1.

    BH bounds the FDR by fdr·m0/m for independent or positively dependent tests; pair tests
    that share a leg are positively dependent, so one walk that happens to look stationary
    brings many false pairs at once and a single run's proportion varies a lot. The mean over
    30 universes must stay under fdr with a slack of half of it (1.5 × fdr), and every planted
    pair must be found.
    """
    fdr, fdps = 0.1, []
    for seed in range(30):
        table, truth = planted_universe(seed)
        r = screen(build_panel(table), lags=1)
        true = {(y, x) for y, x, _ in truth} | {(x, y) for y, x, _ in truth}
        found = set(zip(r.loc[r["q"] <= fdr, "y"], r.loc[r["q"] <= fdr, "x"]))
        assert true <= found
        fdps.append(len(found - true) / len(found))
    assert np.mean(fdps) <= 1.5 * fdr


def test_a_pair_that_breaks_in_the_test_window_fails_out_of_sample():
    n = 4000
    table, truth = planted_universe(6, n_walks=4, n_pairs=2, n=n)
    y, x, _ = truth[0]
    drift = np.zeros(n)                                   # from bar 3400 y walks off on its own
    drift[3400:] = np.cumsum(np.random.default_rng(105).normal(0, 0.001, n - 3400))
    leg = table["symbol"] == y
    table.loc[leg, "close"] = table.loc[leg, "close"].to_numpy() * np.exp(drift)
    r = scan(table, scheduler=None, progress=False).set_index(["y", "x"])
    row = r.loc[(y, x)]
    assert row["q"] <= 0.05                               # still found on the whole sample
    assert row["pass_train"] and not row["pass_test"] and not row["pass"]
    assert row["reason"].startswith("test: ADF p ")
    held = r.loc[(truth[1][0], truth[1][1])]
    assert held["pass_test"] and held["pass"]


def test_log_prices_and_lags_reach_the_tests(planted):
    table, truth, _ = planted
    small = table[table["symbol"].isin(["S000USDT", "S001USDT", "S020USDT"])]
    r = scan(small, scheduler=None, lags=2, log_prices=False, progress=False)
    from statsmodels.tsa.stattools import coint
    panel = build_panel(small)
    row = r.set_index(["y", "x"]).loc[("S001USDT", "S000USDT")]
    t, p, _ = coint(panel.close[:, 1], panel.close[:, 0], maxlag=2, autolag=None)
    assert row["coint_t"] == pytest.approx(t, abs=1e-6)
    assert r.attrs["params"]["lags"] == 2 and not r.attrs["params"]["log_prices"]


def test_qdash_scan_is_the_package_and_calls_scan(planted):
    import qdash.scan.cluster as cluster  # the package stays importable by its dotted path

    assert cluster.BLOCKS_PER_WORKER >= 1 and qdash.scan.scan is scan
    table, _, r = planted
    small = table[table["symbol"].isin(["S000USDT", "S001USDT", "S020USDT"])]
    got = qdash.scan(small, scheduler=None, fdr=0.1, progress=False)
    ref = scan(small, scheduler=None, fdr=0.1, progress=False)
    pd.testing.assert_frame_equal(got, ref)


# --- input ------------------------------------------------------------------------------------

def _small(n: int = 300, k: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    lp = np.cumsum(rng.normal(0, 0.01, (n, k)), axis=0)
    return pd.DataFrame({"symbol": np.repeat([f"A{i}USDT" for i in range(k)], n),
                         "open_time": np.tile(T0 + np.arange(n) * BAR, k),
                         "close": np.exp(lp.T.ravel()), "quote_volume": 1e5})


def test_missing_column_names_the_file(tmp_path):
    path = tmp_path / "bars.csv"
    _small().drop(columns="close").to_csv(path, index=False)
    with pytest.raises(DataFormatError, match=r"bars\.csv.*missing column\(s\) close"):
        read_table(path)


def test_non_positive_price_names_file_line_and_symbol(tmp_path):
    df = _small()
    df.loc[305, "close"] = 0.0
    path = tmp_path / "bars.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataFormatError) as err:
        build_panel(read_table(path))
    msg = str(err.value)
    assert "bars.csv:307" in msg and "A1USDT" in msg and "not a positive price" in msg
    assert err.value.line == 307 and err.value.column == "close"


def test_duplicate_bar_names_both_rows(tmp_path):
    df = _small()
    df = pd.concat([df, df.iloc[[10]]], ignore_index=True)
    path = tmp_path / "bars.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataFormatError, match=r"bars\.csv:902.*A0USDT: duplicate bar at "
                                              r"open_time 2024-01-01T00:50:00\+00:00 "
                                              r"\(also at 12\)"):
        build_panel(read_table(path))


def test_bad_time_and_nan_price_are_errors():
    df = _small().astype({"open_time": object})
    df.loc[4, "open_time"] = "yesterday"
    with pytest.raises(DataFormatError, match=r"row 5.*'yesterday' is neither"):
        build_panel(df)
    df = _small()
    df.loc[7, "close"] = np.nan
    with pytest.raises(DataFormatError, match=r"row 8.*close nan is not a number"):
        build_panel(df)


def test_skipped_symbols_are_listed_with_the_reason():
    df = _small(k=5)
    df = df[~((df["symbol"] == "A1USDT") & (df["open_time"] > T0 + 100 * BAR))]   # too short
    df.loc[df["symbol"] == "A2USDT", "close"] = 7.0                              # constant
    df.loc[df["symbol"] == "A3USDT", "quote_volume"] = 1.0                       # illiquid
    panel = build_panel(df, symbols=["A0USDT", "A1USDT", "A2USDT", "A3USDT", "A4USDT",
                                     "NOPEUSDT"], min_quote_volume=1e6)
    reasons = {s["symbol"]: s["reason"] for s in panel.skipped}
    assert panel.symbols == ["A0USDT", "A4USDT"]
    assert reasons["NOPEUSDT"] == "no bars in the input"
    assert reasons["A1USDT"].startswith("too few bars: 101 of the window's 300")
    assert reasons["A2USDT"] == "constant close"
    assert reasons["A3USDT"] == "quote volume 288/day < 1,000,000"
    r = scan(df, symbols=["A0USDT", "A1USDT", "A4USDT"], scheduler=None, progress=False,
             z_window=50)
    assert r.attrs["skipped"] == [{"symbol": "A1USDT", "reason": reasons["A1USDT"]}]
    assert set(r["y"]) == {"A0USDT", "A4USDT"}


def test_too_little_left_is_an_error():
    with pytest.raises(QdashError, match="fewer than 2 symbols"):
        build_panel(_small(), symbols=["A0USDT"])
    with pytest.raises(QdashError, match="quote_volume column"):
        build_panel(_small().drop(columns="quote_volume"), min_quote_volume=1.0)
    with pytest.raises(DataFormatError, match="only 50 bars"):
        build_panel(_small(n=50))


def test_files_directories_iso_times_and_resampling_agree(tmp_path):
    df = _small()
    ref = build_panel(df)
    df.to_parquet(tmp_path / "bars.parquet", index=False)
    for sym, part in df.groupby("symbol"):
        d = tmp_path / "archive" / f"symbol={sym}"
        d.mkdir(parents=True)
        part.drop(columns="symbol").to_parquet(d / "part-0.parquet", index=False)
    iso = df.assign(open_time=pd.to_datetime(df["open_time"], unit="ms", utc=True)
                    .dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    iso.to_csv(tmp_path / "iso.csv", index=False)
    for source in (tmp_path / "bars.parquet", tmp_path / "archive", tmp_path / "iso.csv"):
        p = build_panel(read_table(source))
        assert p.symbols == ref.symbols and p.bar_ms == BAR
        np.testing.assert_array_equal(p.times, ref.times)
        np.testing.assert_array_equal(p.close, ref.close)
    coarse = build_panel(df, timeframe="15m")
    assert coarse.bar_ms == 900_000 and len(coarse.times) == 100
    np.testing.assert_array_equal(coarse.close, ref.close[2::3])
    np.testing.assert_allclose(coarse.quote_volume, ref.quote_volume)
    with pytest.raises(DataFormatError, match="coarser than the timeframe 1m"):
        build_panel(df, timeframe="1m")
    last = build_panel(df, lookback="10h")
    assert len(last.times) == 120 and last.times[-1] == ref.times[-1]


# --- command line -----------------------------------------------------------------------------

def test_cli_scans_a_file_and_writes_every_pair(tmp_path, capsys):
    table, truth = planted_universe(1, n_walks=4, n_pairs=2)
    src, out = tmp_path / "bars.csv", tmp_path / "scan.parquet"
    table.to_csv(src, index=False)
    code = main(["scan", "--bars", str(src), "--scheduler", "none", "--lookback", "30d",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    r = pd.read_parquet(out)
    assert len(r) == 8 * 7 and list(r.columns) == OUTPUT_COLUMNS
    text = capsys.readouterr().out
    assert "56 directed pairs tested" in text and truth[0][0] in text


def test_cli_scan_of_20_days_gives_every_passing_pair_a_sharpe_and_its_se(tmp_path, capsys):
    """Issue 22: on 20 days of 5m bars (the default 30% test window spans 6 days) every pair
    that passes has a finite out-of-sample Sharpe and standard error, and passing pairs are
    ranked by that Sharpe."""
    table, truth = planted_universe(3, n_walks=4, n_pairs=3, n=20 * 288)
    src, out = tmp_path / "bars.parquet", tmp_path / "scan.csv"
    table.to_parquet(src, index=False)
    assert main(["scan", "--bars", str(src), "--scheduler", "none", "--out", str(out),
                 "--no-progress"]) == 0
    r = pd.read_csv(out)
    passed = r[r["pass"]]
    assert {(y, x) for y, x, _ in truth} <= set(zip(passed["y"], passed["x"]))
    assert np.isfinite(passed["test_sharpe"]).all()
    assert (np.isfinite(passed["test_sharpe_se"]) & (passed["test_sharpe_se"] > 0)).all()
    k = int(0.7 * (20 * 288))                                           # 4031 train bars
    assert passed["test_days"].to_numpy() == pytest.approx((20 * 288 - k - 1) / 288)
    assert list(r["pass"].iloc[:len(passed)]) == [True] * len(passed)   # passing pairs first
    assert passed["test_sharpe"].is_monotonic_decreasing                # by OOS Sharpe
    assert "test_sharpe_se" in capsys.readouterr().out


def test_cli_scans_the_store_and_reports_errors(tmp_path, capsys):
    table, truth = planted_universe(2, n_walks=2, n_pairs=2, n=800)
    db = tmp_path / "q.db"
    store = Store(db)
    for sym, part in table.groupby("symbol"):
        bars = pd.DataFrame({"open": part["close"].to_numpy(), "high": part["close"].to_numpy(),
                             "low": part["close"].to_numpy(), "close": part["close"].to_numpy(),
                             "volume": 1.0, "trades": 1, "buy_volume": 0.5,
                             "quote_volume": part["quote_volume"].to_numpy(),
                             "vwap": part["close"].to_numpy()},
                            index=pd.to_datetime(part["open_time"].to_numpy(), unit="ms",
                                                 utc=True))
        store.write_bars(bars, sym, "5m")
    store.close()
    assert main(["scan", "--db", str(db), "--scheduler", "none", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "30 directed pairs tested" in out
    assert main(["scan", "--db", str(db), "--symbols", "S000USDT", "--scheduler", "none"]) == 2
    assert "at least two symbols" in capsys.readouterr().err
    assert main(["scan", "--bars", str(tmp_path / "none.csv"), "--scheduler", "none"]) == 2
    assert "no such file" in capsys.readouterr().err
