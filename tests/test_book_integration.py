"""The book on a Dask LocalCluster equals the book without Dask; ``qdash book`` writes its files
with the contract's columns."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pandas as pd
import pytest
from book_support import planted

from qdash.book import BOOK_TABLES
from qdash.book.engine import book

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def table():
    return planted(days=60)[0]


def test_dask_run_equals_the_run_without_dask(table):
    kw = dict(timeframe="1h", train="30d", trade="7d", max_pairs=4)
    here = book(table, scheduler=None, **kw)
    dask = book(table, scheduler="local", workers=2, **kw)
    for name in BOOK_TABLES:
        pd.testing.assert_frame_equal(getattr(here, name), getattr(dask, name))
    assert here.fingerprint == dask.fingerprint
    for k in here.baselines:
        pd.testing.assert_series_equal(here.baselines[k], dask.baselines[k])


def test_cli_writes_the_tables_with_their_columns(table, tmp_path):
    bars = tmp_path / "bars.parquet"
    table.to_parquet(bars, index=False)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        REPO, os.environ.get("PYTHONPATH", "")]))}
    proc = subprocess.run([sys.executable, "-m", "qdash", "book", "--bars", str(bars),
                           "--timeframe", "1h", "--train", "30d", "--trade", "7d",
                           "--max-pairs", "3", "--allocation", "risk-parity",
                           "--slippage-bps", "1", "--scheduler", "none", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "total_return" in proc.stdout
    for name, cols in BOOK_TABLES.items():
        with open(out / f"{name}.csv", newline="") as f:
            assert tuple(next(csv.reader(f))) == cols
    metrics = pd.read_csv(out / "metrics.csv")
    names = set(metrics["name"])
    for m in ("total_return", "sharpe", "deflated_sharpe", "max_drawdown", "turnover", "fees",
              "funding", "windows", "pairs_traded"):
        assert m in names and f"baseline_no_coint_gate_{m}" in names
    windows = pd.read_csv(out / "windows.csv")
    assert len(windows) and windows["weight"].between(0, 1).all()
    try:
        import qdash.book.report  # noqa: F401
    except ImportError:
        return                                       # report.html comes with that module
    assert (out / "report.html").stat().st_size > 0


def test_cli_names_a_bad_option(table, tmp_path):
    bars = tmp_path / "bars.parquet"
    table.to_parquet(bars, index=False)
    proc = subprocess.run([sys.executable, "-m", "qdash", "book", "--bars", str(bars),
                           "--timeframe", "1h", "--max-symbol-weight", "-1", "--scheduler",
                           "none", "--out", str(tmp_path / "o")], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": REPO}, timeout=120)
    assert proc.returncode == 2 and "max_symbol_weight" in proc.stderr
