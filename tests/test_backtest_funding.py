"""``qdash backtest`` settles both legs' stored funding: the same result as ``run(...,
funding_y=..., funding_x=...)`` by hand, and, on a single round trip, exactly the total funding
away from ``--no-funding``."""

import numpy as np
import pandas as pd
import pytest
from test_backtest_cli import candles as hourly_candles
from test_backtest_cli import parse

from qdash.backtest import run
from qdash.backtest.funding import settlements_applied, stored_funding
from qdash.cli.backtest import run as run_backtest_cli
from qdash.store import Store

H = 3_600_000
EIGHT_H = 8 * H


def candles(close, start):
    return hourly_candles(close, start, freq="1h")


@pytest.fixture
def stored(db_path):
    """600 hourly bars: y = x · e^s with s a small smooth wave and one 30-hour excursion (one
    short-spread round trip), and funding every 8 h for both legs, a day beyond the bars too."""
    n = 600
    rng = np.random.default_rng(3)
    x = 60_000 * np.exp(np.cumsum(rng.normal(0, 2e-3, n)))
    t = np.arange(n)
    s = 1e-3 * np.sin(2 * np.pi * t / 40)
    s[300:330] += 0.02
    y = x * np.exp(s) / 20
    start = pd.Timestamp("2026-03-01", tz="UTC")
    by, bx = candles(y, start), candles(x, start)
    times = np.arange(start.value // 10**6 - 86_400_000,
                      start.value // 10**6 + (n + 24) * H, EIGHT_H)
    k = np.arange(len(times))
    fy = pd.DataFrame({"funding_time": times, "rate": 1e-4 + 3e-4 * np.sin(k), "mark_price": 1.0})
    fx = pd.DataFrame({"funding_time": times, "rate": -2e-4 + 1e-4 * np.cos(k),
                       "mark_price": np.nan})
    with Store(db_path) as st:
        st.write_bars(by, "ETHUSDT", "1h")
        st.write_bars(bx, "BTCUSDT", "1h")
        st.write_funding("ETHUSDT", fy)
        st.write_funding("BTCUSDT", fx)
    return db_path, by, bx, fy, fx


ARGS = ["--timeframe", "1h", "--hedge", "fixed", "--beta", "1", "--window", "60",
        "--entry", "3", "--exit", "0", "--fee-bps", "2"]


def _series(f: pd.DataFrame, bars: pd.DataFrame) -> pd.Series:
    """The settlements within the bars' span, as run() takes them (built independently)."""
    t = pd.to_datetime(f["funding_time"], unit="ms", utc=True)
    inside = (t >= bars.index[0]) & (t < bars.index[-1] + pd.Timedelta(hours=1))
    return pd.Series(f["rate"].to_numpy()[inside], index=pd.DatetimeIndex(t[inside]))


def test_stored_funding_is_used_automatically_and_matches_run_by_hand(stored, tmp_path,
                                                                      capsys):
    db, by, bx, fy, fx = stored
    code = run_backtest_cli(parse(["ETHUSDT", "BTCUSDT", "--db", str(db), *ARGS,
                                   "--out", str(tmp_path / "with")]))
    assert code == 0
    out_with = capsys.readouterr().out
    assert run_backtest_cli(parse(["ETHUSDT", "BTCUSDT", "--db", str(db), *ARGS, "--no-funding",
                                   "--out", str(tmp_path / "without")])) == 0
    out_without = capsys.readouterr().out
    assert "funding: off (--no-funding)" in out_without

    sy, sx = _series(fy, by), _series(fx, bx)
    ref = run(by, bx, hedge="fixed", beta=1.0, window=60, entry=3, exit=0, fee_bps=2,
              funding_y=sy, funding_x=sx)
    eq_with = pd.read_csv(tmp_path / "with" / "equity.csv", index_col=0)["equity"]
    eq_without = pd.read_csv(tmp_path / "without" / "equity.csv", index_col=0)["equity"]
    np.testing.assert_allclose(eq_with.to_numpy(), ref.equity.to_numpy(), rtol=1e-12)

    # one round trip: funding is the only difference between the two runs
    trades = ref.trades
    assert len(trades) == 1
    total = ref.metrics["total_funding"]
    assert total != 0
    assert eq_with.iloc[-1] - eq_without.iloc[-1] == pytest.approx(total, rel=1e-9)
    # settlements while the position was held (fills at the open, funding after them): those
    # at or after the entry bar's open and before the exit bar's
    entry, exit_ = trades["entry_time"].iloc[0], trades["exit_time"].iloc[0]
    held = sum(int(((s.index >= entry) & (s.index < exit_)).sum()) for s in (sy, sx))
    assert held >= 6
    assert settlements_applied(ref, sy, sx) == held
    assert f"funding: {held} settlements applied, total {total:+,.6g}" in out_with
    # the store read gives exactly the independent series
    pd.testing.assert_series_equal(stored_funding(Store(db), "ETHUSDT", by), sy,
                                   check_names=False, check_index_type=False)


def test_a_leg_without_stored_funding_is_named(db_path, capsys):
    n = 200
    x = 60_000 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 2e-3, n)))
    start = pd.Timestamp("2026-03-01", tz="UTC")
    with Store(db_path) as st:
        st.write_bars(candles(x / 20, start), "ETHUSDT", "1h")
        st.write_bars(candles(x, start), "BTCUSDT", "1h")
    assert run_backtest_cli(parse(["ETHUSDT", "BTCUSDT", "--db", str(db_path), "--timeframe",
                                   "1h", "--out", str(db_path.parent / "bt")])) == 0
    out = capsys.readouterr().out
    assert "funding: 0 settlements applied" in out
    assert "no stored funding for ETHUSDT, BTCUSDT" in out
