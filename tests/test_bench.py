"""Every benchmark still runs: ``python bench/<script> --quick`` as a user runs it.

Each script runs in a subprocess (this interpreter, the repository as working directory, the
environment as it is) on its small ``--quick`` input, the same code as the full run, and prints
its figures as a last line ``RESULT {json}``. A test fails on an error or an impossible figure (a
ratio that is not finite and positive, a count that does not add up, a trade lost), never on a
missed target: the figures of a quick run on a shared machine say nothing about speed.

The scripts of the selected tests start when the first test asks, two at a time, so that a
script waiting on its servers or browser overlaps another's CPU; each test then reads its own
script's output.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
# the longest first, so that the short ones fill the other slot; the dashboard (the longest, a
# browser and two Voila apps) last: its load alongside the scan's Dask clusters made the scan's
# Dask client hang twice (tornado's IOStream assertion) in a dozen runs
SCRIPTS = ["bench_scan.py", "bench_book.py", "bench_sweep.py", "bench_decode.py", "bench_load.py",
           "bench_fetch.py", "bench_feed_e2e.py", "bench_backtest.py", "bench_ingest.py",
           "bench_alerts.py", "bench_pair_refresh.py", "bench_kalman.py", "bench_archive.py",
           "bench_pair_update.py", "bench_store.py", "bench_resample.py", "bench_orders.py",
           "bench_depth.py", "bench_trade.py", "bench_dashboard.py"]
PARALLEL = 2
TIMEOUT_S = 300  # one script; the slowest took 130 s on a 2-core machine at load average 9


def run_quick(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / script), "--quick"], cwd=REPO,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def runs(request) -> dict[str, Future]:
    """``{script: Future of its CompletedProcess}`` for the scripts of the selected tests."""
    wanted = {item.callspec.params["script"] for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec")}
    pool = ThreadPoolExecutor(PARALLEL)
    futures = {s: pool.submit(run_quick, s) for s in SCRIPTS if s in wanted}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)  # after -x: start no more scripts


def result(runs: dict[str, Future], script: str) -> dict:
    """The figures of ``script``'s quick run; fails on a non-zero exit or no RESULT line."""
    proc = runs[script].result()
    tail = (proc.stdout[-3000:] + "\n--- stderr ---\n" + proc.stderr[-3000:])
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{tail}"
    lines = [s for s in proc.stdout.splitlines() if s.startswith("RESULT ")]
    assert lines, f"{script} printed no RESULT line:\n{tail}"
    print(tail)  # shown when a check below fails
    figures = json.loads(lines[-1].removeprefix("RESULT "))
    for key, value in figures.items():
        if "ratio" in key and value is not None:
            assert math.isfinite(value) and value > 0, f"{script}: {key} = {value}"
    return figures


def check_alerts(r):
    assert (r["rules"], r["updates"]) == (100, 500)
    assert 0 < r["fired"] <= r["hits"] <= r["rules"] * r["updates"]


def check_depth(r):
    assert (r["events"], r["snapshots"]) == (1_000, 5_000) and r["equal"] is True
    assert r["level_changes"] >= r["events"] and r["book_us"] > 0 and r["walk_us"] > 0


def check_archive(r):
    assert (r["archived_ticks"], r["archived_candles"]) == (r["ticks"], r["candles"])
    assert (r["ticks"], r["candles"]) == (20_000, 30_000)
    assert r["archive_rows_per_s"] > 0 and r["size_mb"] > 0


def check_backtest(r):
    assert r["bars"] == 20_000 and r["trades"] > 0
    assert math.isfinite(r["final_equity"]) and r["final_equity"] > 0
    assert 0 < r["engine_ms"] and 0 < r["signals_ms"]


def check_dashboard(r):
    assert r["hub_marks"] == 3 and r["hub_trades_per_s"] > 0
    assert 0 < r["hub_server_p95_ms"] and 0 < r["hub_p50_ms"] <= r["hub_p95_ms"]
    assert 0 < r["hub_snapshot_paint_s"] <= r["hub_live_s"]  # the snapshot, then live
    assert r["hub_kernel_cores_loaded"] > 0


def check_decode(r):
    assert r["frames"] == 10_000
    assert min(r["trade_per_s"], r["agg_per_s"], r["reference_per_s"], r["file_per_s"]) > 0
    assert len([k for k in r if k.startswith("scanner_ratio")]) == 4


def check_feed_e2e(r):
    assert r["stored"] == r["published"] > 0, r
    assert r["lost"] == 0 and r["duplicates"] == 0 and r["match"] is True, r
    assert r["cpu_cores"] > 0


def check_fetch(r):
    assert r["rows"] == r["stored"] == r["symbols"] * r["days"] * 288  # 5m klines a day
    assert r["requests"] > 0 and r["weight"] >= r["requests"] and r["floor_s"] > 0


def check_ingest(r):
    assert r["stored"] == r["ticks"] == 20_000
    assert 0 < r["p50_ms"] <= r["p99_ms"]


def check_kalman(r):
    assert r["bars"] == 5_000
    assert r["max_beta_diff"] < 1e-6  # the same filter as filterpy's


def check_load(r):
    assert r["ticks"] == 24_356  # the July trades, once
    rates = [*r["parse_per_s"].values(), *r["load_parallel_per_s"].values(), r["write_per_s"],
             r["bare_per_s"]]
    assert len(rates) == 6 and min(rates) > 0


def check_orders(r):
    assert r["lots"] > 0 and r["orders"] > 0
    assert r["http_filled"] == r["http_orders"]  # every market order filled
    for k in ("ratio", "orders_per_s", "http_order_rt_per_s", "http_ping_rt_per_s"):
        assert math.isfinite(r[k]) and r[k] > 0, k


def check_trade(r):
    assert r["decisions"] > 0 and r["ticks_per_s"] > 0 and 0 < r["kernel_cpu"] < 2
    for k in ("p50_ms", "p95_ms", "reference_p95_ms", "ratio_p95"):
        assert math.isfinite(r[k]) and r[k] > 0, k


def check_pair_refresh(r):
    assert r["bars"] == 6_000 and 0 <= r["coint_p"] <= 1
    assert 0 < r["from_bars_maxlag_ms"] and 0 < r["from_bars_ms"]


def check_pair_update(r):
    assert r["bars"] == 5_000 and r["reference_bars"] == 600
    assert math.isfinite(r["zscore"]) and r["updates_per_s"] > 0


def check_resample(r):
    assert r["ticks"] == 50_000 and r["candles"] > 0 and r["builder_ticks_per_s"] > 0


def check_scan(r):
    n = r["symbols"]
    assert r["pairs"] == r["pipeline_rows"] == r["pipeline_rows_no_dask"] == n * (n - 1)
    assert r["pipeline_pass"] == r["pipeline_pass_no_dask"]  # Dask or not, the same answer
    assert r["true_discoveries"] <= r["discoveries"] <= r["pairs"]
    assert r["max_diff"] < 1e-6  # stage 1's statistics are statsmodels' coint
    assert r["stage2_pairs"] > 0 and r["pipeline_s"] > 0 and r["peak_mib"] > 0


def check_book(r):
    assert r["windows"] > 0 and r["scan_s"] > 0 and r["book_s"] > 0 and r["book_dask_s"] > 0
    assert math.isfinite(r["ratio"]) and r["ratio"] > 0
    assert r["same_with_dask"] is True                  # Dask or not, the same book
    assert 0.5 <= r["cluster_share"] <= 1               # mostly planted cluster pairs


def check_store(r):
    assert r["stored"] == r["ticks"] == 20_000


def check_sweep(r):
    assert r["combinations"] == 8 and r["qdash_s"] > 0
    if importlib.util.find_spec("vectorbt") is not None:  # the reference of the bench extra
        assert r["matched"] == 8 and r.get("ratio") is not None
        assert 0 <= r["same_trades"] <= 1


CHECKS = {"bench_alerts.py": check_alerts, "bench_archive.py": check_archive,
          "bench_backtest.py": check_backtest, "bench_book.py": check_book,
          "bench_dashboard.py": check_dashboard,
          "bench_decode.py": check_decode, "bench_depth.py": check_depth,
          "bench_feed_e2e.py": check_feed_e2e,
          "bench_fetch.py": check_fetch, "bench_ingest.py": check_ingest,
          "bench_kalman.py": check_kalman, "bench_load.py": check_load,
          "bench_orders.py": check_orders,
          "bench_pair_refresh.py": check_pair_refresh, "bench_pair_update.py": check_pair_update,
          "bench_resample.py": check_resample, "bench_scan.py": check_scan,
          "bench_store.py": check_store, "bench_sweep.py": check_sweep,
          "bench_trade.py": check_trade}


@pytest.mark.parametrize("script", SCRIPTS)
def test_quick_run(runs, script):
    CHECKS[script](result(runs, script))


def test_every_script_is_run_and_checked():
    assert sorted(SCRIPTS) == sorted(CHECKS) == sorted(p.name for p in BENCH.glob("bench_*.py"))
