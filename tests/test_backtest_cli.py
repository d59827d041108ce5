"""``qdash backtest`` over a real SQLite store: stored candles, or candles resampled from ticks."""

import argparse

import numpy as np
import pandas as pd
import pytest

from qdash.backtest import run
from qdash.cli.backtest import add_arguments as add_backtest_arguments
from qdash.cli.backtest import run as run_backtest_cli
from qdash.model import BAR_COLUMNS, tick_frame
from qdash.store import Store


def parse(argv):
    """The command's options; these cases store 1m candles (``-t 1m`` unless a case says)."""
    p = argparse.ArgumentParser(prog="qdash backtest")
    add_backtest_arguments(p)
    given = "-t" in argv or "--timeframe" in argv
    return p.parse_args(argv if given else [*argv, "-t", "1m"])


def candles(close, start="2024-08-08", freq="1min"):
    idx = pd.date_range(start, periods=len(close), freq=freq, tz="UTC", name="open_time")
    c = np.asarray(close, dtype=float)
    o = np.concatenate([[c[0]], c[:-1]])
    df = pd.DataFrame({"open": o, "high": np.maximum(o, c), "low": np.minimum(o, c), "close": c,
                       "volume": 1.0, "trades": 1, "buy_volume": 0.5, "quote_volume": c,
                       "vwap": c}, index=idx)
    return df[BAR_COLUMNS]


def store_pair(db_path, seed: int, n: int, sd_x: float, timeframe: str = "1m"):
    """ETHUSDT = 0.05·BTCUSDT + 100 + an AR(1) spread (0.9, sd 2), BTCUSDT a log walk of step
    sd ``sd_x``: ``n`` candles of each stored at ``timeframe``; returns both candle frames."""
    rng = np.random.default_rng(seed)
    x = 60_000 * np.exp(np.cumsum(rng.normal(0, sd_x, n)))
    e = np.zeros(n)
    for i in range(1, n):
        e[i] = 0.9 * e[i - 1] + rng.normal(0, 2)
    y = 0.05 * x + 100 + e
    freq = pd.Timedelta(timeframe)
    cy, cx = candles(y, freq=freq), candles(x, freq=freq)
    with Store(db_path) as s:
        s.write_bars(cy, "ETHUSDT", timeframe)
        s.write_bars(cx, "BTCUSDT", timeframe)
    return cy, cx


@pytest.fixture
def pair_db(db_path):
    return db_path, *store_pair(db_path, 11, 600, 5e-4)


def test_cli_prints_metrics_and_writes_csvs(pair_db, tmp_path, capsys):
    db, y, x = pair_db
    out = tmp_path / "bt"
    code = run_backtest_cli(parse(["ethusdt", "BTCUSDT", "--db", str(db), "--window", "100",
                                   "--entry", "1.5", "--stop", "4", "--fee-bps", "2",
                                   "--out", str(out)]))
    assert code == 0
    text = capsys.readouterr().out
    assert "sharpe" in text and "max_drawdown" in text and "ETHUSDT vs BTCUSDT" in text
    trades = pd.read_csv(out / "trades.csv")
    equity = pd.read_csv(out / "equity.csv", index_col=0)
    assert (out / "metrics.csv").exists()
    # the same numbers as the Python API on the same bars
    ref = run(y, x, window=100, entry=1.5, stop=4, fee_bps=2)
    assert len(trades) == len(ref.trades) > 0
    np.testing.assert_allclose(equity["equity"], ref.equity.to_numpy())


def test_cli_resamples_ticks_when_no_candles(db_path, tmp_path, capsys):
    rng = np.random.default_rng(5)
    n = 400
    ts = 1_723_075_200_000 + np.arange(n) * 30_000  # two ticks a minute
    x = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    y = 2 * x + rng.normal(0, 0.05, n)
    with Store(db_path) as s:
        s.write_ticks(tick_frame("AAAUSDT", ts, np.arange(n), y, 1.0))
        s.write_ticks(tick_frame("BBBUSDT", ts, np.arange(n), x, 1.0))
    code = run_backtest_cli(parse(["AAAUSDT", "BBBUSDT", "--db", str(db_path), "--window", "30",
                                   "--out", str(tmp_path / "o")]))
    assert code == 0
    eq = pd.read_csv(tmp_path / "o" / "equity.csv", index_col=0)
    assert len(eq) == n // 2


@pytest.mark.parametrize(("argv", "message"), [
    (["ETHUSDT", "NOPEUSDT"], "unknown symbol NOPEUSDT: "),
    (["ETHUSDT", "ethusdt"], "a pair needs two different symbols, got ETHUSDT twice"),
    (["--entry", "1", "--exit", "2"], "exit must lie strictly between -entry and entry"),
    (["--entry", "-1"], "entry must be > 0"),
    (["--stop", "1"], "stop must be > entry"),
    (["--window", "1"], "beta_window must be >= 3 bars"),
    (["--hedge", "fixed"], "hedge 'fixed' needs beta="),
    (["--fee-bps", "-1"], "fee_bps and slippage_bps must be >= 0"),
    (["--max-hold", "0"], "max_hold must be >= 1 bar"),
    (["-t", "7x"], "bad timeframe '7x'"),
    (["--start", "2024-08-09", "--end", "2024-08-08"], "--start 2024-08-09 is not before --end"),
    (["--start", "garbage"], "argument --start: 'garbage' is not a time"),
    (["--hedge", "ols-ish"], "argument --hedge: invalid choice"),
])
def test_usage_errors_exit_2_naming_what_is_wrong_and_write_nothing(pair_db, tmp_path, capsys,
                                                                    argv, message):
    from qdash.cli import main

    db, _, _ = pair_db
    out = tmp_path / "bt"
    legs = [] if argv[0].endswith("USDT") else ["ETHUSDT", "BTCUSDT"]
    timeframe = [] if "-t" in argv else ["-t", "1m"]  # the stored candles' unless a case says
    try:
        code = main(["backtest", *legs, *argv, *timeframe, "--db", str(db), "--out", str(out)])
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert "Traceback" not in err and not out.exists()


def test_a_leg_without_bars_in_the_range_exits_1(pair_db, tmp_path, capsys):
    db, _, _ = pair_db
    code = run_backtest_cli(parse(["ETHUSDT", "BTCUSDT", "--db", str(db), "--start",
                                   "2020-01-01", "--end", "2020-02-01",
                                   "--out", str(tmp_path / "x")]))
    assert code == 1 and "no 1m candles or ticks stored for ETHUSDT in that range" in \
        capsys.readouterr().err


def test_cli_20_day_backtest_prints_sharpe_with_its_se_flagged_short_sample(db_path, tmp_path,
                                                                           capsys):
    """Issue 22: 20 days of 5m bars gave no Sharpe, Sortino or Calmar (n/a under 30 days)."""
    store_pair(db_path, 5, 20 * 288, 1e-3, "5m")
    out = tmp_path / "bt"
    assert run_backtest_cli(parse(["ETHUSDT", "BTCUSDT", "--db", str(db_path), "--timeframe",
                                   "5m", "--window", "100", "--out", str(out)])) == 0
    text = capsys.readouterr().out
    m = pd.read_csv(out / "metrics.csv", index_col="metric")["value"]
    sr, se = float(m["sharpe"]), float(m["sharpe_se"])
    assert np.isfinite(sr) and se > 0 and m["short_sample"] == "True"
    for k in ("sortino", "calmar", "cagr"):
        assert np.isfinite(float(m[k])), k
    assert f"{sr:.3g} ± {se:.2g} (annualised, 20.0 days, short sample)" in text
    assert "note: short sample: 20.0 days of data" in text and "n/a" not in text


def test_cli_writes_the_signals_it_traded_and_explains_zero_trades(pair_db, tmp_path, capsys):
    db, y, x = pair_db
    out = tmp_path / "s"
    code = run_backtest_cli(parse(["ETHUSDT", "BTCUSDT", "--db", str(db), "--hedge", "kalman",
                                   "--window", "100", "--out", str(out)]))
    assert code == 0
    sig = pd.read_csv(out / "signals.csv")
    assert list(sig.columns) == ["open_time", "beta", "alpha", "spread", "zscore"]
    assert sig["open_time"].iloc[0] == "2024-08-08T00:00:00.000Z"
    ref = run(y, x, hedge="kalman", window=100)
    np.testing.assert_allclose(sig["zscore"], ref.signals["zscore"], rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(sig["beta"], ref.signals["beta"], rtol=1e-9, equal_nan=True)
    capsys.readouterr()
    code = run_backtest_cli(parse(["ETHUSDT", "BTCUSDT", "--db", str(db), "--window", "500",
                                   "--out", str(tmp_path / "z")]))
    text = capsys.readouterr().out
    assert code == 0
    assert ("note: 0 trades: 600 bars, the 500-bar β window + 500-bar z window need 999"
            in text)
    assert "sharpe" in text and "n/a" in text


def test_cli_on_real_binance_trades(db_path, tmp_path, capsys):
    """Real BTCUSDT/ETHUSDT trades (2024-07-18 23:57 → 00:05) stored as ticks, backtested on
    1 s candles resampled from them; the accounting identity holds on the written CSVs."""
    from conftest import JULY, JULY_TRADES

    from qdash.io import read_ticks

    ticks = read_ticks(JULY / f"{JULY_TRADES}.csv.gz")
    with Store(db_path) as s:
        s.write_ticks(ticks)
    out = tmp_path / "real"
    code = run_backtest_cli(parse(["ETHUSDT", "BTCUSDT", "-t", "1s", "--db", str(db_path),
                                   "--window", "60", "--entry", "1.5", "--fee-bps", "4",
                                   "--out", str(out)]))
    assert code == 0, capsys.readouterr().err
    trades = pd.read_csv(out / "trades.csv")
    equity = pd.read_csv(out / "equity.csv", index_col=0)
    assert len(equity) > 400 and len(trades) > 0
    assert round(equity["equity"].iloc[-1] - 10_000 - trades["net_pnl"].sum(), 2) == 0
    # capital-aware sizing: gross notional at entry = 95 % of the equity before the fill
    before = equity["equity"].shift(1)
    for t in trades.itertuples():
        notional = abs(t.qty_y) * t.entry_price_y + abs(t.qty_x) * t.entry_price_x
        assert notional == pytest.approx(0.95 * before[t.entry_time], rel=1e-9)


def test_every_csv_of_a_backtest_writes_time_as_iso_utc(pair_db, tmp_path):
    db, _, _ = pair_db
    out = tmp_path / "iso"
    assert run_backtest_cli(parse(["ETHUSDT", "BTCUSDT", "--db", str(db), "--window", "100",
                                   "--entry", "1.5", "--out", str(out)])) == 0
    iso = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"
    trades = pd.read_csv(out / "trades.csv", dtype=str)
    equity = pd.read_csv(out / "equity.csv", dtype=str)
    signals = pd.read_csv(out / "signals.csv", dtype=str)
    assert len(trades) > 0
    for times in (trades["entry_time"], trades["exit_time"], equity.iloc[:, 0],
                  signals["open_time"]):
        assert times.str.match(iso).all(), times.iloc[0]
    assert set(trades["entry_time"]) <= set(signals["open_time"])  # one format: they join


@pytest.mark.integration
def test_a_reader_that_leaves_early_costs_no_csv_and_no_error(pair_db, tmp_path):
    """`qdash backtest ... | head`: the reader closes the pipe before the first line; the CSVs
    are written anyway and the command ends quietly."""
    import os
    import subprocess
    import sys

    db, _, _ = pair_db
    out = tmp_path / "piped"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "qdash", "backtest", "ETHUSDT", "BTCUSDT",
                             "--db", str(db), "--timeframe", "1m", "--window", "100",
                             "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # long before the command prints (its imports take seconds)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Broken pipe" not in err and "Traceback" not in err, err
    assert {p.name for p in out.iterdir()} == {"trades.csv", "equity.csv", "metrics.csv",
                                               "signals.csv"}
