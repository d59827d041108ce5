"""The kernel side: ``qdash.feeds.hub_client.Hub`` finds the server, subscribes, reconnects,
and — in a real Jupyter kernel — receives the ticks producers push into the server."""

from __future__ import annotations

import asyncio
import gzip
import json
import os

import orjson
import pandas as pd
import pytest
from conftest import JULY, JULY_TRADES
from test_server_support import ServerThread, request

from qdash.feeds.hub_client import DEFAULT_SERVER_URL, Hub, server_url, ticks_ws_url
from qdash.server.service import ServerConfig

RAW = JULY / f"{JULY_TRADES}.raw.ndjson.gz"
T0 = 1_721_347_022_707


@pytest.mark.parametrize("url,env,want", [
    ("http://h:1/x", {"QDASH_SERVER_URL": "http://q:2/"}, "http://h:1/x/"),
    (None, {"QDASH_SERVER_URL": "http://q:2", "VOILA_APP_PORT": "9"}, "http://q:2/"),
    (None, {"VOILA_APP_PORT": "8866", "VOILA_SERVER_URL": "/", "VOILA_BASE_URL": "/"},
     "http://127.0.0.1:8866/"),
    (None, {"VOILA_APP_PORT": "8866", "VOILA_SERVER_URL": "/apps/dash/"},
     "http://127.0.0.1:8866/apps/dash/"),
    (None, {"VOILA_APP_PORT": "8866", "VOILA_BASE_URL": "/b/"}, "http://127.0.0.1:8866/b/"),
    (None, {}, DEFAULT_SERVER_URL),
])
def test_server_url_discovery(url, env, want):
    assert server_url(url, env) == want


def test_ticks_ws_url():
    assert ticks_ws_url("https://h/app/", ["BTCUSDT", "ETHUSDT"]) == \
        "wss://h/app/qdash/ws/ticks?symbols=BTCUSDT%2CETHUSDT"
    assert ticks_ws_url("http://127.0.0.1:5001/", None) == "ws://127.0.0.1:5001/qdash/ws/ticks"


def _ticks(symbol, ids):
    return [{"symbol": symbol, "ts": T0 + i, "trade_id": i, "price": 100.0 + i, "qty": 1.0}
            for i in ids]


@pytest.fixture
def server(tmp_path):
    srv = ServerThread(ServerConfig(db=str(tmp_path / "hub.db"), token="hub-token"))
    yield srv
    srv.stop()


@pytest.mark.integration
def test_hub_delivers_batches_reconnects_and_stops(server):
    def post(items):
        return request(server.url + "qdash/api/ticks/batch", orjson.dumps(items),
                       token="hub-token")

    async def scenario():
        hub = Hub(["BTCUSDT"], url=server.url, token="hub-token", backoff_initial=0.05)
        seen = []
        hub.on_ticks(seen.append)
        sub = hub.batches()
        hub.start()
        await asyncio.wait_for(hub.connected.wait(), 20)
        await asyncio.to_thread(post, _ticks("BTCUSDT", range(0, 10)) + _ticks("ETHUSDT", [1]))
        first = await asyncio.wait_for(sub.__anext__(), 20)
        # the server drops the connection: the hub reconnects and goes on
        server.call(lambda: [s._close(1001, "going away")
                             for s in list(server.service.hub.subscribers)])
        while hub.stats()["connects"] < 2:
            await asyncio.sleep(0.02)
        await asyncio.wait_for(hub.connected.wait(), 20)
        await asyncio.to_thread(post, _ticks("BTCUSDT", range(10, 15)))
        second = await asyncio.wait_for(sub.__anext__(), 20)
        stats = hub.stats()
        await hub.stop()
        return first, second, seen, stats, hub.running

    first, second, seen, stats, running = asyncio.run(scenario())
    assert first["trade_id"].tolist() == list(range(10)) and set(first["symbol"]) == {"BTCUSDT"}
    assert first["price"].tolist() == [100.0 + i for i in range(10)]
    assert first["source"].eq("ingest").all() and first["ts"].dtype == "int64"
    assert second["trade_id"].tolist() == list(range(10, 15))
    assert [len(b) for b in seen] == [10, 5]
    assert stats["ticks"] == 15 and stats["reconnects"] == 1 and not running
    assert stats["symbols"]["BTCUSDT"]["ticks"] == 15


@pytest.mark.integration
def test_hub_with_a_wrong_token_keeps_retrying_and_says_why(server):
    async def scenario():
        hub = Hub(url=server.url, token="nope", backoff_initial=0.02, backoff_max=0.05)
        hub.start()
        while hub.stats()["connect_failures"] < 2:
            await asyncio.sleep(0.02)
        await hub.stop()
        return hub.stats()

    stats = asyncio.run(scenario())
    assert "401" in stats["last_error"] and stats["ticks"] == 0


@pytest.mark.integration
def test_a_real_kernel_subscribes_from_the_voila_environment(server):
    """A kernel started with the environment Voila gives kernels finds the hub by itself."""
    from jupyter_client.manager import start_new_kernel

    env = {k: v for k, v in os.environ.items() if k != "QDASH_SERVER_URL"}
    env.update({"VOILA_APP_PORT": str(server.server.port), "VOILA_SERVER_URL": "/",
                "VOILA_BASE_URL": "/", "QDASH_TOKEN": "hub-token"})
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    try:
        def run(code):
            out = []

            def hook(msg):
                if msg["msg_type"] == "stream":
                    out.append(msg["content"]["text"])
                elif msg["msg_type"] == "error":
                    out.append("\n".join(msg["content"]["traceback"]))

            reply = kc.execute_interactive(code, output_hook=hook, timeout=60)
            assert reply["content"]["status"] == "ok", "".join(out)
            return "".join(out)

        url = run("import asyncio, json\nfrom qdash.feeds.hub_client import Hub\n"
                  "hub = Hub(['BTCUSDT', 'ETHUSDT'])\ngot = []\nhub.on_ticks(got.append)\n"
                  "hub.start()\nawait asyncio.wait_for(hub.connected.wait(), 30)\n"
                  "print(hub.url)")
        assert url.strip() == (f"ws://127.0.0.1:{server.server.port}/qdash/ws/ticks"
                               "?symbols=BTCUSDT%2CETHUSDT")
        lines = gzip.decompress(RAW.read_bytes()).splitlines()
        for i in range(0, len(lines), 5000):  # a producer pushes the real trades in batches
            status, ans = request(server.url + "qdash/api/ticks/batch",
                                  b"\n".join(lines[i:i + 5000]), token="hub-token")
            assert status == 200
        n = len(lines)
        out = run(f"for _ in range(600):\n    if sum(map(len, got)) >= {n}: break\n"
                  "    await asyncio.sleep(0.05)\n"
                  "import pandas as pd\ndf = pd.concat(got)\n"
                  "print(json.dumps({'n': len(df), 'ids': df['trade_id'].tolist(), "
                  "'sym': df['symbol'].tolist(), 'running': hub.running}))\n"
                  "await hub.stop()")
        got = json.loads(out)
        want = pd.DataFrame([json.loads(x) for x in lines])
        assert got["n"] == n and got["running"] is True
        assert got["ids"] == want["t"].tolist() and got["sym"] == want["s"].tolist()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
