"""Stage 2 of the scan on real Dask clusters gives exactly the in-process result: an in-process
``LocalCluster`` (the default), and a ``dask scheduler`` with two ``dask worker`` processes on
loopback (``--scheduler tcp://...``)."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from scan_support import planted_universe

from qdash.scan import scan

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def universe():
    table, _ = planted_universe(3, n_walks=8, n_pairs=4, n=1500)
    reference = scan(table, scheduler=None, fdr=0.2, progress=False)
    assert reference["q"].le(0.2).sum() >= 8               # enough survivors for several blocks
    return table, reference


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a.attrs["skipped"] == b.attrs["skipped"]


def test_local_cluster_gives_the_in_process_result(universe):
    table, reference = universe
    got = scan(table, scheduler="local", workers=2, block_size=3, fdr=0.2, progress=False)
    _same(got, reference)


def _dask_cli() -> list[str]:
    exe = Path(sys.executable).with_name("dask")
    return [str(exe)] if exe.exists() else [shutil.which("dask") or "dask"]


def test_external_scheduler_and_two_worker_processes(universe, tmp_path):
    table, reference = universe
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(REPO), os.environ.get("PYTHONPATH", "")]))}
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([*_dask_cli(), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            assert time.monotonic() < deadline, "dask scheduler did not start"
            assert procs[0].poll() is None, "dask scheduler exited"
            time.sleep(0.1)
        for _ in range(2):
            procs.append(subprocess.Popen(
                [*_dask_cli(), "worker", "--scheduler-file", str(sched_file), "--nthreads", "1",
                 "--host", "127.0.0.1", "--no-dashboard"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(scheduler_file=str(sched_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            address = client.scheduler.address
            assert address.startswith("tcp://127.0.0.1:")
        got = scan(table, scheduler=address, block_size=3, fdr=0.2, progress=False)
        _same(got, reference)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
