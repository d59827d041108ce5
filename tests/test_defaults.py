"""Issue 22, "Windows that fit the bar": one table of defaults per timeframe
(:mod:`qdash.defaults`), and the CLI, the API and the dashboard's model all open on it."""

import argparse

import numpy as np
import pandas as pd
import pytest

from qdash.analytics.signal import SignalSpec
from qdash.backtest import run as run_backtest
from qdash.defaults import DEFAULT_TIMEFRAME, TABLE, defaults_for
from qdash.model import timeframe_ms

TIMEFRAMES = ["1s", "1m", "5m", "15m", "1h", "4h", "1d"]


def parse(add_arguments, argv):
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(argv)


def bars(timeframe, n=400, seed=3):
    rng = np.random.default_rng(seed)
    i = pd.date_range("2025-01-01", periods=n, freq=pd.Timedelta(milliseconds=timeframe_ms(
        timeframe)), tz="UTC")
    x = np.exp(3 + np.cumsum(rng.normal(0, 0.01, n)))
    y = np.exp(1 + 0.8 * np.log(x) + rng.normal(0, 0.002, n))
    return pd.Series(y, index=i), pd.Series(x, index=i)


def test_every_entry_point_opens_on_the_default_timeframe(tmp_path):
    from qdash.app.monitor import PairMonitor
    from qdash.cli.backtest import add_arguments as backtest
    from qdash.cli.dashboard import add_arguments as dashboard
    from qdash.cli.demo import add_arguments as demo
    from qdash.cli.fetch import add_arguments as fetch
    from qdash.cli.scan import add_arguments as scan

    assert parse(backtest, ["ETHUSDT", "BTCUSDT"]).timeframe == DEFAULT_TIMEFRAME
    assert parse(scan, []).timeframe == DEFAULT_TIMEFRAME
    assert parse(dashboard, []).timeframe == DEFAULT_TIMEFRAME
    assert parse(demo, []).timeframe == DEFAULT_TIMEFRAME
    assert parse(fetch, ["BTCUSDT", "--start", "2025-01-01"]).timeframe == DEFAULT_TIMEFRAME
    mon = PairMonitor(source="store", db=str(tmp_path / "m.db"))
    assert mon.timeframe == DEFAULT_TIMEFRAME
    assert mon.window == defaults_for(DEFAULT_TIMEFRAME).beta_window


@pytest.mark.parametrize("timeframe", TIMEFRAMES)
def test_cli_api_and_dashboard_model_use_the_same_windows(tmp_path, timeframe):
    from qdash.app.monitor import PairMonitor
    from qdash.cli.backtest import add_arguments as backtest
    from qdash.cli.backtest import signal_spec

    row = defaults_for(timeframe)
    cli = signal_spec(parse(backtest, ["ETHUSDT", "BTCUSDT", "-t", timeframe]))
    assert (cli.beta_window, cli.z_window) == (row.beta_window, row.z_window)
    y, x = bars(timeframe)
    api = run_backtest(y, x).params
    assert (api["beta_window"], api["z_window"]) == (row.beta_window, row.z_window)
    assert SignalSpec.for_timeframe(timeframe).beta_window == row.beta_window
    cfg = PairMonitor(source="store", timeframe=timeframe, db=str(tmp_path / "m.db")
                      ).pair_config()
    assert (cfg.beta_window, cfg.z_window) == (row.beta_window, row.z_window)


@pytest.mark.parametrize("timeframe", ["1m", "5m", "15m", "1h"])
def test_dashboard_scanner_default_lookback_is_the_cli_scans(timeframe):
    from qdash.app.scanner import ScannerPanel
    from qdash.cli.scan import add_arguments as scan
    from qdash.cli.scan import lookback_of

    class Dispatch:
        def on(self, *a):
            pass

        click = on

    cli = lookback_of(parse(scan, ["-t", timeframe]))
    assert cli == defaults_for(timeframe).scan_lookback
    panel = ScannerPanel(None, Dispatch(), open_pair=None, send=None, timeframe=timeframe)
    assert panel.lookback.value == cli
    assert ScannerPanel(None, Dispatch(), open_pair=None, send=None).lookback.value == \
        lookback_of(parse(scan, []))


def test_windows_span_time_not_bars():
    """120 bars were 2 minutes of 1s bars and 10 hours of 5m bars: each row's window spans at
    least half an hour and its lookback holds at least 100 bars (the live scanner's minimum)
    and more than the two windows."""
    for name, row in TABLE.items():
        tf = timeframe_ms(name)
        assert row.beta_window * tf >= 30 * 60_000, name
        assert timeframe_ms(row.scan_lookback) >= max(100, 2 * row.beta_window) * tf, name


def test_a_timeframe_without_a_row_takes_the_next_shorter_rows_windows():
    assert defaults_for("10m").beta_window == TABLE["5m"].beta_window
    assert defaults_for(60_000) == TABLE["1m"]
    assert defaults_for(500).beta_window == TABLE["1s"].beta_window
    assert defaults_for(None) == TABLE[DEFAULT_TIMEFRAME]


def test_the_remaining_entry_points_default_to_the_default_timeframe():
    """The API's and the other commands' timeframe defaults (a grep for timeframe defaults in
    qdash/ lists these): LiveSession, Dashboard, the live scanner, fetch() and ``qdash bars``."""
    import inspect

    from qdash.app.dashboard import Dashboard
    from qdash.app.monitor import PairMonitor
    from qdash.cli.bars import add_arguments as bars_cli
    from qdash.history.fetch import fetch
    from qdash.live import LiveSession
    from qdash.scan.live import LiveScanner

    for entry in (LiveSession, Dashboard, PairMonitor, LiveScanner, fetch):
        assert inspect.signature(entry).parameters["timeframe"].default == DEFAULT_TIMEFRAME, \
            entry
    assert parse(bars_cli, ["ETHUSDT"]).timeframe == DEFAULT_TIMEFRAME


@pytest.mark.parametrize("timeframe", [None, "1h"])
def test_a_live_session_opens_with_the_timeframes_windows(timeframe):
    from qdash.feeds.base import TickFeed
    from qdash.live import LiveSession

    kw = {} if timeframe is None else {"timeframe": timeframe}
    session = LiveSession(TickFeed(), y="ETHUSDT", x="BTCUSDT", **kw)
    row = defaults_for(timeframe)
    assert session.timeframe == (timeframe or DEFAULT_TIMEFRAME)
    assert session.tf_ms == timeframe_ms(row.timeframe)
    cfg = session.pair_config
    assert (cfg.beta_window, cfg.z_window) == (row.beta_window, row.z_window)
    assert (cfg.symbol_y, cfg.symbol_x) == ("ETHUSDT", "BTCUSDT")


def test_the_scan_api_default_lookback_is_the_timeframes_as_the_cli_scans():
    from scan_support import BAR, planted_universe

    from qdash.cli.scan import add_arguments as scan_cli
    from qdash.cli.scan import lookback_of
    from qdash.scan import scan

    days = 40
    table, _ = planted_universe(4, n_walks=3, n_pairs=1, n=days * 288)  # 40 days of 5m bars
    last = int(table["open_time"].max())
    kw = {"scheduler": None, "progress": False}
    default = scan(table, **kw)
    span = timeframe_ms(defaults_for(BAR).scan_lookback)  # 30 days on 5m
    assert pd.Timestamp(default.attrs["start"]) == pd.Timestamp(last + BAR - span, unit="ms",
                                                                tz="UTC")
    assert int(default["n"].max()) == span // BAR
    cli = scan(table, lookback=lookback_of(parse(scan_cli, [])), **kw)
    pd.testing.assert_frame_equal(default, cli)
    every = scan(table, lookback="all", **kw)
    assert int(every["n"].max()) == days * 288
