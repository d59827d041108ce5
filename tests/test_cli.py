"""The `qdash` command: load, bars, info on real files, as a user types them."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import COLLECTOR, JULY, JULY_TRADES, REPO

from qdash.store import Store

QDASH = [str(Path(sys.executable).with_name("qdash"))]


def qdash(*args, db):
    return subprocess.run([*QDASH, *args, "--db", str(db)], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.integration
def test_load_bars_info_round_trip(tmp_path):
    db = tmp_path / "cli.db"
    out = qdash("load", str(JULY / (JULY_TRADES + ".csv.gz")), "--no-progress", db=db)
    assert out.returncode == 0, out.stderr
    assert "13,655" in out.stdout or "13655" in out.stdout  # ETHUSDT trades stored
    again = qdash("load", str(JULY / (JULY_TRADES + ".csv.gz")), "--no-progress", db=db)
    assert again.returncode == 0
    assert Store(db).tick_count() == 24_356  # the second load stored nothing new

    csv_out = tmp_path / "eth.csv"
    bars = qdash("bars", "ETHUSDT", "--timeframe", "1m", "--out", str(csv_out), db=db)
    assert bars.returncode == 0, bars.stderr
    got = pd.read_csv(csv_out)
    assert list(got.columns) == ["open_time", "open", "high", "low", "close", "volume", "trades",
                                 "buy_volume", "quote_volume", "vwap"]
    k = pd.read_csv(JULY / "official_klines_1m_ETHUSDT.csv")
    k["open_time"] = pd.to_datetime(k["open_time"], unit="ms", utc=True).dt.strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")
    merged = got.merge(k, on="open_time", suffixes=("", "_k"))
    complete = merged[(merged.open_time >= "2024-07-18T23:58")
                      & (merged.open_time < "2024-07-19T00:05")]
    assert len(complete) == 7
    assert (complete["close"] == complete["close_k"]).all()
    assert (complete["trades"] == complete["count"]).all()

    stdout = qdash("bars", "ETHUSDT", "-t", "5m", "--start", "2024-07-19T00:00:00Z", db=db)
    assert stdout.returncode == 0
    lines = stdout.stdout.strip().splitlines()
    assert lines[0].startswith("open_time,open,high") and lines[1].startswith("2024-07-19T00:00")

    pq = tmp_path / "eth.parquet"
    assert qdash("bars", "ETHUSDT", "-t", "1m", "--out", str(pq), db=db).returncode == 0
    assert len(pd.read_parquet(pq)) == len(got)

    info = qdash("info", db=db)
    assert info.returncode == 0 and "BTCUSDT" in info.stdout and "ETHUSDT" in info.stdout


@pytest.mark.integration
def test_load_reports_dropped_zero_rows_and_bad_files(tmp_path):
    db = tmp_path / "cli.db"
    out = qdash("load", str(COLLECTOR / "ticks_2025-11-02_BTCUSDT_ETHUSDT.ndjson"),
                "--no-progress", db=db)
    assert out.returncode == 0, out.stderr
    assert "12" in out.stdout  # the zero-price rows, dropped and counted

    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,price,qty,symbol\n1721347200000,100.5,1,ETHUSDT\n"
                   "1721347200001,abc,1,ETHUSDT\n")
    out = qdash("load", str(bad), "--no-progress", db=db)
    assert out.returncode == 1
    assert "bad.csv:3" in out.stdout + out.stderr and "price" in out.stdout + out.stderr
    assert Store(db).tick_count() == 2989 - 12  # nothing from the rejected file was stored

    missing = qdash("bars", "SOLUSDT", db=db)
    assert missing.returncode == 1 and "SOLUSDT" in missing.stderr


def _run(*args, cwd, env):
    return subprocess.run([*QDASH, *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env=env)


@pytest.mark.integration
def test_load_then_the_dashboard_kernel_finds_the_same_default_store(tmp_path):
    """No --db and no $QDASH_DB: `qdash load` in one directory, `qdash info` in another and a
    dashboard kernel on --source store (in the app notebook's directory, as under Voila) all use
    the user data directory's store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QDASH_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    store = tmp_path / "xdg" / "qdash" / "qdash.db"
    (tmp_path / "here").mkdir()
    out = _run("load", str(JULY / (JULY_TRADES + ".csv.gz")), "--no-progress",
               cwd=tmp_path / "here", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"store: {store}\n")
    info = _run("info", cwd=tmp_path, env=env)
    assert info.returncode == 0 and f"store: {store}" in info.stdout and "ETHUSDT" in info.stdout
    kernel = subprocess.run(
        [sys.executable, "-c", "from qdash.app import Dashboard\n"
         "from qdash.bars import stored_candles\n"
         "d = Dashboard.from_env(source='store')\n"
         "print(d.store.path, len(stored_candles(d.store, 'ETHUSDT', '1m')))"],
        cwd=REPO / "qdash" / "server", env=env, capture_output=True, text=True, timeout=300)
    assert kernel.returncode == 0, kernel.stderr
    assert kernel.stdout.split() == [str(store), "9"]  # 23:57 .. 00:05, nine 1m candles


@pytest.mark.integration
def test_read_commands_on_a_missing_or_unwritable_store(tmp_path):
    db = tmp_path / "cli.db"
    assert qdash("load", str(JULY / (JULY_TRADES + ".csv.gz")), "--no-progress",
                 db=db).returncode == 0
    for cmd in (["info"], ["bars", "ETHUSDT"], ["backtest", "ETHUSDT", "BTCUSDT"],
                ["dashboard", "--source", "store", "--no-browser"]):
        out = qdash(*cmd, db=tmp_path / "typo.db")
        assert out.returncode != 0 and "no store at" in out.stderr, (cmd, out.stderr)
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "typo.db").exists()
    assert qdash("info", db=tmp_path / "typo.db").returncode == 2
    debug = subprocess.run([*QDASH, "--debug", "info", "--db", str(tmp_path / "typo.db")],
                           capture_output=True, text=True, timeout=120)
    assert "Traceback" in debug.stderr and "StoreError" in debug.stderr
    # a store nobody may write: the read commands still work (read-only opens)
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "q.db").write_bytes(db.read_bytes())
    (ro / "q.db").chmod(0o444)
    ro.chmod(0o555)
    try:
        info = qdash("info", db=ro / "q.db")
        assert info.returncode == 0 and "ETHUSDT" in info.stdout, info.stderr
        bars = qdash("bars", "ETHUSDT", db=ro / "q.db")
        assert bars.returncode == 0 and bars.stdout.startswith("open_time,")
    finally:
        ro.chmod(0o755)


def test_scan_on_a_mistyped_store_is_an_error_and_creates_nothing(tmp_path, capsys):
    from qdash.cli import main

    typo = tmp_path / "typo.db"
    assert main(["scan", "--db", str(typo), "--no-progress"]) == 2
    assert "no store at" in capsys.readouterr().err
    assert not typo.exists()
