"""``qdash demo`` as a user starts it: one store found the same way by the server and its
dashboard kernels (no ``--db``, no ``$QDASH_DB``: the user data directory), the URL printed is the
one served when the port is busy, the first page shows the history at first paint, and start-up
prints its lines once, without warnings about our own arguments."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import orjson
import pytest
from dashboard_support import chromium, find_source, free_port, open_dashboard, sources, wait_until
from test_server_support import request

from qdash.store import Store

pytestmark = pytest.mark.browser  # the first page is opened in Chromium
T0 = 1_721_347_022_707


def test_demo_on_a_busy_port_serves_the_printed_url_and_one_store(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QDASH_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    store_path = tmp_path / "xdg" / "qdash" / "qdash-sim.db"  # the simulator's own store
    busy = socket.socket()
    busy.bind(("127.0.0.1", free_port()))
    busy.listen()
    port = busy.getsockname()[1]
    out = tmp_path / "demo.out"
    with open(out, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "qdash", "demo", "--no-browser", "--port", str(port),
             "--rate", "100", "--symbols", "BTCUSDT,ETHUSDT"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        line = wait_until(lambda: re.search(r"qdash dashboard at (http://\S+) \(store: (.+?); "
                                            r"ticks: POST \S+, token: (\S+)\)",
                                            out.read_text()), timeout=120, what="the URL line")
        url, printed_store, token = line.groups()
        assert url != f"http://127.0.0.1:{port}/"  # the busy port was not it
        assert request(url + "qdash/api/health")[0] == 200
        assert printed_store == str(store_path)
        assert request(url + "qdash/api/health")[1]["db"] == str(store_path)

        # a pushed tick and the demo kernel's own (simulated) ticks land in the same file
        pushed = {"symbol": "XRPUSDT", "ts": T0, "trade_id": 7, "price": 0.5, "qty": 10}
        assert request(url + "qdash/api/tick", orjson.dumps(pushed), token=token)[0] == 200
        # the page that takes the preheated kernel shows the history at first paint: both
        # legs' hourly candles and the z-score are in the first Bokeh views it draws
        wait_until(lambda: request(url + "qdash/api/health")[1].get("kernels_ready") == 1,
                   timeout=180, what="the preheated kernel")
        with chromium() as browser:
            page, _, _ = open_dashboard(browser, url)
            drawn = sources(page)
            page.close()
        candles = find_source(drawn, "open", "high", "low", "close")
        assert len(candles) == 2 and all(len(c["close"]) >= 168 for c in candles), \
            [len(c["close"]) for c in candles]
        (pair,) = find_source(drawn, "z", "spread")
        assert sum(isinstance(z, (int, float)) and z == z for z in pair["z"]) >= 100

        def both():
            with Store(store_path, readonly=True) as s:
                return {"XRPUSDT", "BTCUSDT", "ETHUSDT"} <= set(s.symbols())
        wait_until(both, timeout=180, what="the dashboard kernel's ticks in the same store")

        text = out.read_text()
        assert "DeprecationWarning" not in text and "is not trusted" not in text
        assert len(re.findall(r"^qdash dashboard at ", text, flags=re.M)) == 1
        assert text.count(str(store_path)) == 1
        assert "qdash sim listening" not in text  # the demo's own line says it
    finally:
        proc.terminate()
        proc.wait(60)
        busy.close()
