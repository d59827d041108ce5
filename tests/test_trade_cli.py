"""``qdash trade``'s guards: an exchange not on this machine needs --live, and the key and
secret are never options (the environment only)."""

from __future__ import annotations

import argparse

import pytest

from qdash.cli.trade import add_arguments, is_local
from qdash.cli.trade import run as run_trade

pytestmark = pytest.mark.unit


def parse(argv):
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(argv)


def test_a_remote_exchange_needs_live(capsys):
    args = parse(["ETHUSDT", "BTCUSDT", "--rest-url", "https://fapi.binance.com",
                  "--ws-url", "wss://fstream.binance.com"])
    assert run_trade(args) == 1
    assert "needs --live" in capsys.readouterr().err
    assert is_local("http://127.0.0.1:9443") and is_local("ws://localhost:1")
    assert not is_local("https://fapi.binance.com")


def test_no_key_or_secret_on_the_command_line():
    for option in ("--api-key", "--api-secret", "--secret", "--key"):
        with pytest.raises(SystemExit):
            parse(["ETHUSDT", "BTCUSDT", option, "x"])
    args = parse(["ETHUSDT", "BTCUSDT"])
    assert not any("key" in k or "secret" in k for k in vars(args))

