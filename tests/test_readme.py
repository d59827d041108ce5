"""The README's cell example runs as written, offline: the Python block under "Everything the
dashboard does is a call you can make from a cell", executed line for line in a fresh working
directory beside ``../shared`` (its data path is relative), on a running event loop as in a
kernel. Only its input ``universe.parquet`` (the user's bar table) is made here."""

import asyncio
import os
import re

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, SHARED
from scan_support import planted_universe

pytestmark = pytest.mark.integration


def readme_cell() -> str:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    cell = next(b for b in blocks if "import qdash" in b)
    assert "qdash.Dashboard(" in cell and "qdash.scan(" in cell  # the block this test means
    return cell


def test_the_readme_cell_runs_as_written(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "shared").symlink_to(SHARED)
    table, truth = planted_universe(seed=3, n=9_000)  # 31 days of 5m bars
    table.to_parquet(work / "universe.parquet")
    monkeypatch.chdir(work)
    monkeypatch.setenv("QDASH_DB", str(tmp_path / "user.db"))
    monkeypatch.setenv("QDASH_SIM_DB", str(tmp_path / "sim.db"))
    namespace: dict = {}

    async def kernel():  # a cell runs on the kernel's loop: the dashboard starts tasks on it
        exec(compile(readme_cell(), "README.md", "exec"), namespace)
        await asyncio.sleep(0.5)
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(kernel())
    assert (work / "qdash.db").exists() and os.path.getsize(work / "qdash.db") > 0
    result, ranked = namespace["result"], namespace["ranked"]
    assert np.isfinite(result.metrics["sharpe_se"]) or result.metrics["trades"] == 0
    assert isinstance(ranked, pd.DataFrame) and len(ranked) > 0
    passing = set(zip(ranked.loc[ranked["pass"], "y"], ranked.loc[ranked["pass"], "x"],
                      strict=True))
    assert passing & {(y, x) for y, x, _ in truth}  # the planted pairs are found
