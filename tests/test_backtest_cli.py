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


@pytest.fixture
def pair_db(db_path):
    rng = np.random.default_rng(11)
    n = 600
    x = 60_000 * np.exp(np.cumsum(rng.normal(0, 5e-4, n)))
    e = np.zeros(n)
    for i in range(1, n):
        e[i] = 0.9 * e[i - 1] + rng.normal(0, 2)
    y = 0.05 * x + 100 + e
    with Store(db_path) as s:
        s.write_bars(candles(y), "ETHUSDT", "1m")
        s.write_bars(candles(x), "BTCUSDT", "1m")
    return db_path, candles(y), candles(x)


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


def test_cli_missing_symbol_and_bad_params_exit_1(pair_db, tmp_path, capsys):
    db, _, _ = pair_db
    assert run_backtest_cli(parse(["ETHUSDT", "NOPEUSDT", "--db", str(db)])) == 1
    assert "NOPEUSDT" in capsys.readouterr().err
    code = run_backtest_cli(parse(["ETHUSDT", "BTCUSDT", "--db", str(db), "--entry", "1",
                                   "--exit", "2", "--out", str(tmp_path / "x")]))
    assert code == 1 and "exit must lie" in capsys.readouterr().err


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
