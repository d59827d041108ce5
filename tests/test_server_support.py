"""Support for the tick-server tests (no tests here): a real server on 127.0.0.1 in a background
thread, the simulated exchange likewise, and a tiny HTTP client."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request

import pytest  # noqa: E402

from qdash.server.app import StandaloneServer
from qdash.server.service import ServerConfig

pytestmark = pytest.mark.integration


class ServerThread:
    """A standalone qdash server on its own event loop thread, bound to a free loopback port."""

    def __init__(self, config: ServerConfig):
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(
                StandaloneServer.start(config, host="127.0.0.1", port=0))
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        started.wait(30)
        self.service = self.server.service
        self.url = self.server.url
        self.ws_url = self.url.replace("http", "ws", 1)
        self.token = self.service.token

    def call(self, fn, *args):
        """Run ``fn(*args)`` on the server's loop and return its result."""
        fut = asyncio.run_coroutine_threadsafe(_call(fn, *args), self.loop)
        return fut.result(30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


async def _call(fn, *args):
    return fn(*args)


class SimThread:
    """``qdash.sim.SimExchange(symbols, **kwargs)`` on its own event loop thread (``sim``);
    :meth:`on_loop` runs a coroutine function there."""

    def __init__(self, symbols: list[str], **kwargs):
        from qdash.sim.exchange import SimExchange

        self.loop = asyncio.new_event_loop()
        self.sim = SimExchange(symbols, **kwargs)
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.sim.start())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(60), "the simulator did not start"

    def on_loop(self, fn):
        """``await fn()`` on the simulator's loop; its result."""
        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result(30)

    def stop(self):
        self.on_loop(self.sim.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


def request(url: str, body: bytes | str | None = None, *, token: str | None = None,
            method: str | None = None, headers: dict | None = None) -> tuple[int, dict]:
    """HTTP request → (status, parsed JSON body or {"raw": text})."""
    if isinstance(body, str):
        body = body.encode()
    req = urllib.request.Request(url, data=body, method=method or ("POST" if body is not None
                                                                   else "GET"))
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, {"raw": raw.decode(errors="replace")}
