"""The app commands' entry points: ``qdash demo``/``qdash dashboard`` refuse values the app cannot
show before anything starts, and ``--sim-url`` means the simulator."""

from __future__ import annotations

import os

import pytest

from qdash.binance.limits import FIXED_INTERVALS
from qdash.cli import main
from qdash.config import Settings

pytestmark = pytest.mark.unit


@pytest.fixture
def nothing_starts(monkeypatch):
    """Fail on any start: the simulator's child process or the Voila app. Restores the
    environment the commands export into."""
    import subprocess

    import qdash.cli.dashboard as dashboard
    import qdash.cli.demo as demo

    started: list[str] = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append("sim") or 1 / 0)
    monkeypatch.setattr(dashboard, "launch", lambda argv: started.append("app") or 0)
    monkeypatch.setattr(demo, "launch", lambda argv: started.append("app") or 0)
    for name in list(os.environ):
        if name.startswith("QDASH_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(os, "environ", dict(os.environ))
    return started


@pytest.mark.parametrize("command", ["demo", "dashboard"])
@pytest.mark.parametrize("argv,says", [
    (["--timeframe", "7m"], "--timeframe 7m"),
    (["--timeframe", "1M"], "--timeframe 1M"),
    (["--symbols", "BTCUSDT"], "two symbols"),
    (["--pair", "ETHUSDT,ETHUSDT"], "two different symbols"),
    (["--pair", "ETHUSDT,XRPUSDT"], "XRPUSDT is not among --symbols"),
    (["--window", "2"], "--window 2"),
    (["--port", "70000"], "--port 70000"),
])
def test_a_value_the_app_cannot_show_exits_2_and_starts_nothing(command, argv, says,
                                                                  nothing_starts, capsys):
    assert main([command, "--no-browser", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and err.startswith(f"qdash {command}: error:") and "\n" not in err
    assert nothing_starts == []


def test_every_binance_interval_the_cli_accepts_is_offered_by_the_dashboard(nothing_starts):
    from qdash.app.controls import MarketControls

    offered = MarketControls("sim", ["BTCUSDT", "ETHUSDT"], "ETHUSDT", "BTCUSDT", "1s", 120,
                             "rolling-ols", 2.0, 0.0, 4.0).timeframe.options
    assert set(FIXED_INTERVALS) <= set(offered) and "1s" in offered
    for tf in offered:  # and the app commands take each of them
        assert main(["dashboard", "--no-browser", "--timeframe", tf]) == 0
    assert nothing_starts == ["app"] * len(offered)


def test_sim_url_implies_the_simulator_as_the_source(nothing_starts, tmp_path):
    db = str(tmp_path / "s.db")
    assert main(["dashboard", "--no-browser", "--db", db,
                 "--sim-url", "http://127.0.0.1:9443/"]) == 0
    env = Settings.from_env()
    assert env.source == "sim"
    assert env.sim_rest_url == "http://127.0.0.1:9443" and env.sim_ws_url == "ws://127.0.0.1:9443"


def test_sim_url_with_another_source_is_an_error(nothing_starts, capsys):
    assert main(["dashboard", "--source", "binance", "--sim-url", "http://127.0.0.1:9443"]) == 2
    assert "--sim-url" in capsys.readouterr().err and nothing_starts == []


def test_no_source_and_no_sim_url_is_binance(nothing_starts):
    assert main(["dashboard", "--no-browser"]) == 0
    assert Settings.from_env().source == "binance"
