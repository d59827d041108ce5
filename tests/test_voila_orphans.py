"""A page that closes releases its kernel within seconds: the app's page takes a kernel, a client
connects to it as the page's widget manager does and goes away; the kernel process is gone a few
seconds later, while the preheated kernel for the next page stays."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest
from conftest import stop_process_group
from websockets.asyncio.client import connect

pytestmark = pytest.mark.integration

RELEASED_WITHIN_S = 12.0  # the watchdog's grace for a reconnect, its period, the shutdown


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 60) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read()
    except OSError:
        return None


def _kernel_pids(server: psutil.Process) -> dict[str, int]:
    """Kernel id -> pid of the server's kernel processes (their connection file names it)."""
    out = {}
    for p in server.children(recursive=True):
        try:
            m = re.search(r"kernel-([0-9a-f-]{36})\.json", " ".join(p.cmdline()))
        except psutil.Error:
            continue
        if m:
            out[m.group(1)] = p.pid
    return out


def test_a_closed_pages_kernel_is_shut_down_within_seconds(tmp_path):
    notebook = tmp_path / "tiny.ipynb"
    notebook.write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                   "source": ["x = 1"]}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QDASH_")}
    app = subprocess.Popen(
        [sys.executable, "-m", "qdash.server.voila_app", str(notebook), f"--port={port}",
         "--no-browser", f"--QdashVoila.qdash_db={tmp_path / 'q.db'}"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            health = _get(f"{base}/qdash/api/health", timeout=5)
            if health and json.loads(health).get("kernels_ready", 0) >= 1:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the app did not preheat a kernel in 120 s")
        page = _get(f"{base}/").decode()
        kid = re.search(r'"kernelId":\s*"([0-9a-f-]{36})"', page).group(1)
        server = psutil.Process(app.pid)

        async def open_and_close():
            async with connect(f"ws://127.0.0.1:{port}/api/kernels/{kid}/channels"
                               f"?session_id=test") as ws:
                await asyncio.sleep(2.0)  # the page is open
                assert ws.state.name == "OPEN"

        asyncio.run(open_and_close())
        closed = time.monotonic()
        assert kid in _kernel_pids(server)  # the page's kernel lived while it was open
        while kid in _kernel_pids(server) and time.monotonic() - closed < RELEASED_WITHIN_S + 5:
            time.sleep(0.5)
        released = time.monotonic() - closed
        assert kid not in _kernel_pids(server), "the closed page's kernel still runs"
        assert released <= RELEASED_WITHIN_S, released
        assert len(_kernel_pids(server)) >= 1  # the preheated kernel for the next page stays
    finally:
        stop_process_group(app)
