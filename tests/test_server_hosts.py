"""The two Jupyter hosts of the tick server, as real processes on 127.0.0.1: the Voila app
subclass (dashboard page + handlers + a dashboard kernel fed by the hub + the orphan-kernel
watchdog) and the Jupyter server extension enabled by the shipped config file."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import orjson
import pytest
from conftest import REPO
from test_server_support import request
from websockets.sync.client import connect

from qdash.store import Store

pytestmark = pytest.mark.integration

T0 = 1_721_347_022_707
CONFIG_JSON = REPO / "etc/jupyter/jupyter_server_config.d/qdash.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(fn, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = fn()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start(cmd, cwd, env, log):
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)


@contextlib.contextmanager
def jupyter_server(tmp_path, env):
    """``jupyter server`` (this environment's) on a free port, token ``jupyter-token``, once
    ``/qdash/api/health`` answers: yields its base URL, stops it after."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    jupyter = Path(sys.executable).with_name("jupyter")
    with open(tmp_path / "jupyter.log", "wb") as log:
        proc = start([str(jupyter), "server", f"--port={port}", "--ip=127.0.0.1",
                      "--no-browser", "--allow-root", "--ServerApp.token=jupyter-token"],
                     tmp_path, env, log)
    try:
        wait_until(lambda: request(base + "qdash/api/health")[0] == 200, what="jupyter server")
        yield base
    finally:
        stop(proc)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


DASHBOARD = """\
import asyncio, json
from qdash.feeds.hub_client import Hub
hub = Hub(["BTCUSDT"])
def save(batch):
    with open("received.ndjson", "a") as f:
        f.write(json.dumps(batch["trade_id"].tolist()) + "\\n")
hub.on_ticks(save)
hub.start()
await asyncio.wait_for(hub.connected.wait(), 30)
print("hub-connected:", hub.url)
"""


@pytest.mark.integration
def test_voila_app_serves_the_dashboard_and_the_handlers(tmp_path):
    import nbformat  # not at collection: nbformat's imports cost the unit tier seconds

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(DASHBOARD)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, tmp_path / "dash.ipynb")
    port = free_port()
    env = {**os.environ, "QDASH_TOKEN": "voila-token", "QDASH_DB": str(tmp_path / "v.db")}
    env.pop("QDASH_SERVER_URL", None)
    base = f"http://127.0.0.1:{port}/"
    with open(tmp_path / "voila.log", "wb") as log:
        proc = start([sys.executable, "-m", "qdash.server.voila_app", "dash.ipynb",
                      f"--port={port}", "--no-browser", "--Voila.ip=127.0.0.1",
                      "--QdashVoila.orphan_timeout=4"], tmp_path, env, log)
    try:
        wait_until(lambda: request(base + "qdash/api/health")[0] == 200, what="voila")
        # the dashboard page: the notebook ran in a kernel whose hub found the server by itself
        with urllib.request.urlopen(base, timeout=120) as resp:
            page = resp.read().decode()
            cookies = resp.headers.get_all("Set-Cookie") or []
        assert f"hub-connected: ws://127.0.0.1:{port}/qdash/ws/ticks?symbols=BTCUSDT" in page
        assert any(c.startswith("_xsrf=") for c in cookies)  # for Voila's unload beacon
        kernel_id = re.search(r'"kernelId": "([0-9a-f-]{36})"', page).group(1)
        # hold the kernel's channel open, as the page would, while ticks flow
        with connect(f"ws://127.0.0.1:{port}/api/kernels/{kernel_id}/channels"):
            ticks = [{"symbol": "BTCUSDT", "ts": T0 + i, "trade_id": i, "price": 1.0 + i, "qty": 1}
                     for i in range(5)] + [{"symbol": "ETHUSDT", "ts": T0, "price": 3, "qty": 1}]
            status, ans = request(base + "qdash/api/ticks/batch", orjson.dumps(ticks),
                                  token="voila-token")
            assert status == 200 and ans["stored"] == 6
            assert request(base + "qdash/api/ticks/batch", orjson.dumps(ticks))[0] == 401
            received = tmp_path / "received.ndjson"
            wait_until(lambda: received.exists() and received.read_text().endswith("\n"),
                       what="ticks in the dashboard kernel")
            assert json.loads(received.read_text().splitlines()[0]) == [0, 1, 2, 3, 4]
            page = request(base + "qdash/collector")[1]["raw"]
            assert page.lstrip().startswith("<!DOCTYPE html>")
            with Store(tmp_path / "v.db") as s:
                assert s.tick_count() == 6
            # the page's kernel and the preheated one waiting for the next page (refilled
            # after the page took the first)
            wait_until(lambda: request(base + "qdash/api/health")[1]["subscribers"] == 2,
                       what="the pool to refill")
        # the tab went away: the orphan watchdog shuts the page's kernel down, its subscription
        # ends; the preheated kernel, which no page ever connected to, is not an orphan
        wait_until(lambda: request(base + "qdash/api/health")[1]["subscribers"] == 1,
                   what="the orphaned kernel to be shut down")
        time.sleep(2 * 4)  # two orphan timeouts: the pooled kernel is still there
        assert request(base + "qdash/api/health")[1]["subscribers"] == 1
    finally:
        stop(proc)


def test_pyproject_ships_the_config_that_enables_the_extension():
    """As wheel shared-data of hatchling, which installs it for ``pip install -e .`` too
    (setuptools' editable installs skip data files: the README's install had no extension)."""
    build = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert build["build-system"]["build-backend"] == "hatchling.build"
    shared = build["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-data"]
    rel = str(CONFIG_JSON.relative_to(REPO))
    assert shared[rel] == rel
    enabled = json.loads(CONFIG_JSON.read_text())["ServerApp"]["jpserver_extensions"]
    assert enabled == {"qdash.server.extension": True}


@pytest.mark.integration
def test_the_installed_environment_enables_the_extension_and_jupyter_serves_it(tmp_path):
    """No JUPYTER_CONFIG_PATH: the extension must be enabled by what the install put in this
    environment's etc/jupyter, as for a user who followed the README."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_")}
    env |= {"QDASH_TOKEN": "qdash-token", "QDASH_DB": str(tmp_path / "j.db"),
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    jupyter = Path(sys.executable).with_name("jupyter")
    listed = subprocess.run([str(jupyter), "server", "extension", "list"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)
    assert re.search(r"qdash\.server\.extension\s+enabled", text), text
    assert re.search(r"qdash\.server\.extension\s+OK", text), text
    with jupyter_server(tmp_path, env) as base:
        assert request(base + "qdash/api/health")[1]["db"] == str(tmp_path / "j.db")


@pytest.mark.integration
def test_jupyter_server_loads_the_extension_from_the_shipped_config(tmp_path):
    env = {**os.environ, "QDASH_TOKEN": "qdash-token", "QDASH_DB": str(tmp_path / "j.db"),
           # the shipped file, read exactly as an installed etc/jupyter/... would be
           "JUPYTER_CONFIG_PATH": str(CONFIG_JSON.parent.parent)}
    with jupyter_server(tmp_path, env) as base:
        tick = {"symbol": "BTCUSDT", "ts": T0, "trade_id": 1, "price": 2.0, "qty": 1}
        for token in ("jupyter-token", "qdash-token"):  # both tokens work; xsrf is not in the way
            status, ans = request(base + "qdash/api/tick", orjson.dumps(tick), token=token)
            assert status == 200
        assert ans["duplicates"] == 1
        assert request(base + "qdash/api/tick", orjson.dumps(tick), token="nope")[0] == 401
        assert request(base + "qdash/api/symbols")[1]["symbols"] == ["BTCUSDT"]
