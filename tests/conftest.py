"""Shared test fixtures: where the real data in ../shared lives."""

import os
import signal
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
JULY = DATA / "binance-usdm-2024-07-18"
AUGUST = DATA / "binance-usdm-2024-08-08"
COLLECTOR = DATA / "collector-captures"
REFERENCE_SERIES = DATA / "reference-series"
JULY_TRADES = "usdm_trades_BTCUSDT_ETHUSDT_2024-07-18_2357-2024-07-19_0005"


@pytest.fixture
def db_path(tmp_path):
    """A fresh SQLite file path for one test."""
    return tmp_path / "qdash.db"


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for the browser tests, one per module (torn down with the module's
    apps); imported here, not at collection."""
    from dashboard_support import chromium

    with chromium() as b:
        yield b


def pytest_collection_modifyitems(config, items):
    """Tests marked neither ``integration`` nor ``browser`` are ``unit`` tests."""
    for item in items:
        if not any(item.get_closest_marker(m) for m in ("integration", "browser")):
            item.add_marker(pytest.mark.unit)


async def dashboard_ready(d, timeout_s: float = 120.0) -> None:
    """Wait until the in-process dashboard ``d``'s live session has its history (the first
    paint's data); fail with its status line after ``timeout_s``."""
    await d.ready(timeout_s)
    assert d.session is not None and d.session.ready.is_set(), d.status.value


def stop_process_group(proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM the process group ``proc`` leads (started with ``start_new_session=True``: a
    server and the kernels it started), SIGKILL it after ``timeout_s``."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
