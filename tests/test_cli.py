"""The `qdash` command: load, bars, info on real files, as a user types them."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
from conftest import COLLECTOR, JULY, JULY_TRADES

from qdash.store import Store

QDASH = [str(Path(sys.executable).with_name("qdash"))]


def qdash(*args, db):
    return subprocess.run([*QDASH, *args, "--db", str(db)], capture_output=True, text=True,
                          timeout=300)


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
    assert qdash("bars", "ETHUSDT", "--out", str(pq), db=db).returncode == 0
    assert len(pd.read_parquet(pq)) == len(got)

    info = qdash("info", db=db)
    assert info.returncode == 0 and "BTCUSDT" in info.stdout and "ETHUSDT" in info.stdout


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
