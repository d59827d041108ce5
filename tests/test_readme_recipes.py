"""The README's shell recipes run as written, offline: every ```bash block that installs nothing
(the research loop: a simulator, fetch, scan, backtest, info, archive) runs in a fresh working
directory with ``qdash`` on the PATH (this checkout's), against a simulator on loopback. Only the
port is replaced (a free one for 9443); the paths are the recipe's own, relative to that
directory. Each command must succeed (``set -e``); then what they wrote is checked."""

import os
import re
import signal
import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO, stop_process_group
from dashboard_support import free_port

pytestmark = pytest.mark.integration

README_PORT = "9443"


def offline_recipes() -> list[str]:
    """The README's ```bash blocks that install nothing (those need the network)."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [b for b in blocks if "pip install" not in b and "apt-get" not in b]


def _info_rows(block: str) -> list[tuple[str, ...]]:
    """(symbol, kind, timeframe, rows) of one ``qdash info`` table."""
    rows = re.findall(r"^\s*([A-Z0-9]+USDT)\s+(bars|funding|ticks)\s+(\S*?)\s*([\d,]+)\s+\d{4}-",
                      block, flags=re.M)
    return sorted(rows)


def test_the_readme_research_recipe_runs_as_written_offline(tmp_path):
    recipes = offline_recipes()
    assert len(recipes) == 1 and "qdash sim" in recipes[0]  # the research loop
    recipe = recipes[0]
    for step in ("qdash fetch", "qdash scan", "qdash backtest", "qdash book", "qdash archive",
                 "qdash info"):
        assert step in recipe, step
    port = str(free_port())
    assert recipe.count(README_PORT) >= 3
    script = recipe.replace(README_PORT, port)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "qdash"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m qdash "$@"\n')
    shim.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = os.environ | {
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "QDASH_DB": str(tmp_path / "user.db"),        # the recipe names its own store
        "QDASH_SIM_DB": str(tmp_path / "user-sim.db"),
    }
    proc = subprocess.Popen(["bash", "-e", "-c", script], cwd=work, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the recipe did not finish in 240 s:\n{out[-4000:]}")
    finally:
        if proc.poll() is None:
            stop_process_group(proc)
    assert proc.returncode == 0, out[-4000:]
    assert not (tmp_path / "user.db").exists()  # nothing went to the user's default store

    ranked = pd.read_csv(work / "ranked.csv")
    passing = ranked[ranked["pass"]]
    assert len(passing) > 0
    assert {"SYN019USDT", "SYN018USDT"} <= set(passing["y"]) | set(passing["x"])
    for name in ("trades.csv", "equity.csv", "metrics.csv", "signals.csv"):
        assert (work / "backtest" / name).stat().st_size > 0, name
    windows = pd.read_csv(work / "book" / "windows.csv")
    assert windows["window_start"].nunique() >= 1 and len(windows) > 0
    assert (work / "book" / "report.html").stat().st_size > 0
    assert (work / "research.db.archive").is_dir()
    # qdash info before and after the archive: the same rows
    tables = out.split("store: ")[1:]
    assert len(tables) == 2, out[-4000:]
    for table in tables:  # the store is known for what it holds: the simulator's data
        assert table.splitlines()[0].endswith("(simulated data (from qdash's simulator))"), table
    before, after = _info_rows(tables[0]), _info_rows(tables[1])
    symbols = set(ranked["y"])  # every symbol the scan saw
    assert len(symbols) == 42 and len(before) == 2 * len(symbols)  # bars and funding of each
    assert before == after
    assert all(int(r[3].replace(",", "")) > 8_000 for r in before if r[1] == "bars")
