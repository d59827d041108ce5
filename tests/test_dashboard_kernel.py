"""The dashboard in a real kernel (``jupyter_client``, no browser) fed by the simulated exchange at
2,000 trades/s: the whole kernel sends under 300 comm messages per second, and a widget's
whole-state request (``request_state``, what a freshly loaded page's widget manager sends) is
answered with a Bokeh ``render_bundle`` holding the data the kernel has at that moment."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

import numpy as np
import pytest
from dashboard_support import run_in_kernel, wait_until
from jupyter_client import KernelManager

pytestmark = pytest.mark.integration

RATE = 2000.0
COUNT_S = 10.0
MAX_COMM_PER_S = 300.0


@pytest.fixture(scope="module")
def sim():
    proc = subprocess.Popen([sys.executable, "-m", "qdash", "sim", "--port", "0", "--rate",
                             str(RATE), "--symbols", "BTCUSDT,ETHUSDT,SOLUSDT", "--seed", "5"],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "listening on" in line, line
    ws = line.split("listening on ")[1].split()[0]
    yield ws, ws.replace("ws://", "http://", 1)
    proc.terminate()
    proc.wait(20)


@pytest.fixture(scope="module")
def kernel(sim, tmp_path_factory):
    ws, rest = sim
    db = tmp_path_factory.mktemp("kernel") / "k.db"
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    run_in_kernel(kc, f"""
from qdash.app import Dashboard
dashboard = Dashboard(source="sim", symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"], window=10,
                      timeframe="1s", db={str(db)!r}, sim_ws_url={ws!r},
                      sim_rest_url={rest!r}).show().start()
""", timeout=120)
    wait_until(lambda: int(run_in_kernel(kc, "print(len(dashboard.figures.pair.data['t']))"))
               >= 12, timeout=90, interval=1.0, what="aligned bars in the kernel")
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def _ticks(kc) -> int:
    return int(run_in_kernel(kc, "print(sum(dashboard.session.ticks.values()))"))


def test_whole_kernel_stays_under_300_comm_messages_per_second(kernel):
    kc = kernel
    ticks0 = _ticks(kc)
    counts: dict[str, int] = {}
    t0 = time.monotonic()
    while time.monotonic() - t0 < COUNT_S:
        try:
            msg = kc.get_iopub_msg(timeout=0.5)
        except Exception:  # queue.Empty
            continue
        counts[msg["msg_type"]] = counts.get(msg["msg_type"], 0) + 1
    elapsed = time.monotonic() - t0
    ticks = _ticks(kc) - ticks0
    per_s = counts.get("comm_msg", 0) / elapsed
    print(f"{ticks / elapsed:,.0f} ticks/s in the kernel, {per_s:,.1f} comm messages/s, {counts}")
    assert ticks / elapsed > RATE / 4  # it really was under a high tick rate
    assert 5 <= per_s < MAX_COMM_PER_S  # streaming, and coalesced


def _decode(column):
    """A column of a serialized Bokeh document: a list, or an encoded ndarray."""
    if isinstance(column, dict) and column.get("type") == "ndarray":
        array = column["array"]
        raw = base64.b64decode(array["data"]) if isinstance(array, dict) else None
        return (np.frombuffer(raw, dtype=column["dtype"]) if raw is not None
                else np.asarray(array, dtype=column["dtype"])).tolist()
    # NaN / ±inf in a list are {"type": "number", "value": "nan"}
    return [float(v["value"]) if isinstance(v, dict) and v.get("type") == "number" else v
            for v in column]


def _find(node, model_id):
    """The serialized model ``model_id`` anywhere in a docs_json tree."""
    if isinstance(node, dict):
        if node.get("id") == model_id and "attributes" in node:
            return node
        for value in node.values():
            found = _find(value, model_id)
            if found is not None:
                return found
    elif isinstance(node, list):
        for value in node:
            found = _find(value, model_id)
            if found is not None:
                return found
    return None


def test_a_whole_state_request_returns_a_snapshot_with_the_current_data(kernel):
    kc = kernel
    info = json.loads(run_in_kernel(kc, """
import json
print(json.dumps({"comm": dashboard.charts.market_view.comm.comm_id,
                  "pair": dashboard.figures.pair.id, "t": dashboard.figures.pair.data["t"]}))
"""))
    msg = kc.session.msg("comm_msg", {"comm_id": info["comm"], "data": {"method": "request_state"}})
    kc.shell_channel.send(msg)
    bundle = None
    deadline = time.monotonic() + 30
    while bundle is None and time.monotonic() < deadline:
        reply = kc.get_iopub_msg(timeout=10)
        content = reply["content"]
        if (reply["msg_type"] == "comm_msg" and content.get("comm_id") == info["comm"]
                and content["data"].get("method") == "update"
                and "render_bundle" in content["data"].get("state", {})):
            bundle = json.loads(content["data"]["state"]["render_bundle"])
    assert bundle is not None, "no whole-state answer"
    after = json.loads(run_in_kernel(
        kc, "import json; print(json.dumps(dashboard.figures.pair.data['t']))"))
    pair = _find(bundle["docs_json"], info["pair"])
    assert pair is not None
    data = pair["attributes"]["data"]
    columns = dict(data["entries"]) if isinstance(data, dict) and "entries" in data else data
    t = _decode(columns["t"])
    # the snapshot holds every row the kernel had before the request, and nothing it never had
    assert len(info["t"]) >= 12
    assert t[:len(info["t"])] == info["t"]
    assert after[:len(t)] == t
    z = _decode(columns["z"])
    assert len(z) == len(t) and np.isfinite(np.asarray(z, float)).sum() >= 2
