"""A wheel install serves the demo: the wheel built from this tree, installed into a fresh
environment (its dependencies seen from this one), runs ``qdash demo`` outside the repository and
its app preheats a kernel with the shipped notebook."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, stop_process_group

pytestmark = pytest.mark.integration

READY_TIMEOUT_S = 240.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/qdash/api/health", timeout=5) as r:
            return json.loads(r.read())
    except OSError:
        return None


def test_the_wheel_serves_the_demo(tmp_path):
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    pip = [sys.executable, "-m", "pip"]
    built = subprocess.run([*pip, "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel = next(wheels.glob("qdash-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                           "'purelib'))"], capture_output=True, text=True, check=True).stdout
    # the dependencies: this environment's packages, after the venv's own (the wheel's qdash)
    Path(site.strip(), "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    installed = subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "-q",
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("QDASH_", "PYTHONPATH", "JUPYTER_"))}
    env["JUPYTER_PATH"] = str(Path(sys.prefix, "share", "jupyter"))  # the dependencies' data
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    where = subprocess.run([str(python), "-c", "import qdash; print(qdash.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(venv)), where.stdout  # the wheel's copy, not this tree's

    port = _free_port()
    app = subprocess.Popen([str(venv / "bin" / "qdash"), "demo", "--no-browser", "--port",
                            str(port), "--rate", "50", "--db", str(tmp_path / "demo.db")],
                           cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline, health = time.monotonic() + READY_TIMEOUT_S, None
        while time.monotonic() < deadline and app.poll() is None:
            health = _health(port)
            if health and health.get("kernels_ready", 0) >= 1:
                break
            time.sleep(1.0)
        assert app.poll() is None, app.stdout.read()
        assert health and health["kernels_ready"] >= 1, health
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60) as page:
            assert page.status == 200 and "qdash" in page.read().decode().lower()
    finally:
        stop_process_group(app)
