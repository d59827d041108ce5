"""The shared connection loop on virtual time: backoff with jitter, the watchdog, rotation and
close reasons, with fake sockets — no network, no real sleeps."""

import asyncio
import heapq
import itertools

import pytest

from qdash.feeds.connection import ConnectionLoop, close_reason
from qdash.retry import Backoff


class VirtualTime:
    """``clock``/``sleep`` for the loop: time only moves when every task is waiting on it."""

    def __init__(self):
        self.now = 0.0
        self._timers = []
        self._seq = itertools.count()

    def clock(self):
        return self.now

    async def sleep(self, dt):
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, dt), next(self._seq), fut))
        await fut

    async def run_until(self, cond, limit=10_000.0):
        while not cond():
            for _ in range(50):
                await asyncio.sleep(0)
            if cond():
                return
            while self._timers and self._timers[0][2].done():
                heapq.heappop(self._timers)
            assert self._timers, "nothing left to happen"
            t, _, fut = heapq.heappop(self._timers)
            assert t <= limit, "condition not reached in time"
            self.now = t
            fut.set_result(None)


class FakeSocket:
    def __init__(self, url, opened_at):
        self.url, self.opened_at = url, opened_at
        self.q = asyncio.Queue()
        self.close_code = None
        self.close_reason = ""

    def push(self, msg):
        self.q.put_nowait(msg)

    def server_close(self, code, reason=""):
        self.close_code, self.close_reason = code, reason
        self.q.put_nowait(None)

    async def close(self):
        if self.close_code is None:
            self.server_close(1000)

    async def __aiter__(self):
        while True:
            msg = await self.q.get()
            if msg is None:
                return
            yield msg


class FakeServer:
    def __init__(self, vt):
        self.vt = vt
        self.sockets = []
        self.refuse = 0  # connects still to refuse

    async def connect(self, url):
        if self.refuse:
            self.refuse -= 1
            raise ConnectionRefusedError(111, "Connection refused")
        ws = FakeSocket(url, self.vt.now)
        self.sockets.append(ws)
        return ws


def harness(**kw):
    vt = VirtualTime()
    server = FakeServer(vt)
    got = []
    streams = ["btcusdt@trade"]
    conn = ConnectionLoop("test", lambda: "ws://x/stream?streams=" + "/".join(streams),
                          got.append, connect=server.connect, clock=vt.clock, sleep=vt.sleep,
                          rng=lambda: 1.0, **kw)
    return vt, server, conn, got, streams


def run(coro):
    return asyncio.run(coro)


def test_backoff_doubles_with_jitter_up_to_the_maximum_and_resets():
    draws = iter([0.0, 1.0, 0.5, 1.0, 1.0, 0.0])
    b = Backoff(0.5, 3.0, rng=lambda: next(draws))
    assert [b.next() for _ in range(5)] == [0.25, 1.0, 1.5, 3.0, 3.0]
    b.reset()
    assert b.next() == 0.25


def test_refused_connects_back_off_then_open_and_say_why():
    async def main():
        vt, server, conn, got, _ = harness(backoff_initial=0.5, backoff_max=4.0)
        server.refuse = 4
        task = asyncio.create_task(conn.run())
        states = []
        await vt.run_until(lambda: states.append((vt.now, conn.state, conn.retry_at)) or
                           conn.state == "open")
        assert server.sockets[0].opened_at == 0.5 + 1 + 2 + 4  # 0.5 doubling, capped at 4
        assert conn.counters["connect_failures"] == 4 and conn.counters["connects"] == 1
        assert "ConnectionRefusedError" in conn.last_error
        assert (0.0, "backing off", 0.5) in states  # retry time known while backing off
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert conn.state == "stopped" and server.sockets[0].close_code == 1000
    run(main())


def test_server_close_is_a_reason_and_backoff_resets_after_data():
    async def main():
        vt, server, conn, got, _ = harness(backoff_initial=1.0, backoff_max=8.0)
        task = asyncio.create_task(conn.run())
        await vt.run_until(lambda: len(server.sockets) == 1)
        server.sockets[0].push("a")
        server.sockets[0].server_close(1001, "going away")
        await vt.run_until(lambda: len(server.sockets) == 2)
        assert server.sockets[1].opened_at == 1.0  # one backoff step
        server.sockets[1].server_close(1011)  # no data on this one: the step grows
        await vt.run_until(lambda: len(server.sockets) == 3)
        assert server.sockets[2].opened_at == 1.0 + 2.0
        server.sockets[2].server_close(None)  # dropped without a close frame
        await vt.run_until(lambda: len(server.sockets) == 4)
        assert got == ["a"] and conn.counters["reconnects"] == 3
        assert conn.counters["closed:1001 going away"] == 1
        assert conn.counters["closed:1011"] == 1
        assert conn.counters["closed:1006 abnormal closure"] == 1
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    run(main())


def test_stale_watchdog_reconnects_at_once_on_silence_only():
    async def main():
        vt, server, conn, got, _ = harness(stale_timeout=10.0, watch_every=1.0)
        task = asyncio.create_task(conn.run())
        await vt.run_until(lambda: len(server.sockets) == 1)

        async def chatter():  # a message every 5 s keeps the first socket alive
            for _ in range(6):
                await vt.sleep(5.0)
                server.sockets[0].push("tick")
        talker = asyncio.create_task(chatter())
        await vt.run_until(lambda: len(server.sockets) == 3)
        await talker
        # silent after t=30: closed by the watchdog on the first check past 10 s, reopened at
        # once (no backoff); the second socket never talks: closed 11 s after it opened
        assert [ws.opened_at for ws in server.sockets] == [0.0, 41.0, 52.0]
        assert conn.counters["stale_reconnects"] == 2 and conn.counters["closed:stale"] == 2
        assert len(got) == 6
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    run(main())


def test_health_callback_names_other_reasons():
    async def main():
        calls = []

        def health(now, connected_at):
            calls.append((now, connected_at))
            return "lag" if now - connected_at >= 3 else None
        vt, server, conn, _, _ = harness(health=health, watch_every=1.0)
        task = asyncio.create_task(conn.run())
        await vt.run_until(lambda: len(server.sockets) == 2)
        assert server.sockets[1].opened_at == 3.0 and conn.counters["lag_reconnects"] == 1
        assert calls[:3] == [(1.0, 0.0), (2.0, 0.0), (3.0, 0.0)]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    run(main())


def test_rotation_opens_the_successor_first_and_overlaps():
    async def main():
        vt, server, conn, got, _ = harness(rotate_after=100.0, rotate_overlap=5.0)
        task = asyncio.create_task(conn.run())
        await vt.run_until(lambda: len(server.sockets) == 2)
        old, new = server.sockets
        assert new.opened_at == 100.0 and old.close_code is None  # both open
        old.push("from old")
        new.push("from new")
        await vt.run_until(lambda: old.close_code is not None)
        assert vt.now == 105.0 and sorted(got) == ["from new", "from old"]
        await vt.run_until(lambda: len(server.sockets) == 3)
        assert server.sockets[2].opened_at == 200.0  # rotate_after counts from the new socket
        assert conn.counters["rotations"] == 1  # the 2nd is in its overlap
        assert conn.counters["reconnects"] == 0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert all(ws.close_code is not None for ws in server.sockets)
    run(main())


def test_requested_close_reconnects_at_once_with_the_new_url():
    async def main():
        vt, server, conn, _, streams = harness(backoff_initial=5.0)
        task = asyncio.create_task(conn.run())
        await vt.run_until(lambda: len(server.sockets) == 1)
        streams.append("ethusdt@trade")
        conn.close("requested: symbols changed")
        await vt.run_until(lambda: len(server.sockets) == 2)
        assert server.sockets[1].opened_at == 0.0
        assert server.sockets[1].url.endswith("btcusdt@trade/ethusdt@trade")
        assert conn.counters["closed:requested: symbols changed"] == 1
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    run(main())


def test_the_loop_ends_when_told_to():
    async def main():
        vt, server, conn, _, _ = harness()
        going = [True]
        conn.keep_going = lambda: going[0]
        task = asyncio.create_task(conn.run())
        await vt.run_until(lambda: len(server.sockets) == 1)
        going[0] = False
        server.sockets[0].server_close(1001)
        await vt.run_until(task.done)
        assert conn.state == "stopped" and len(server.sockets) == 1
    run(main())


@pytest.mark.parametrize("code,reason,want", [(None, "", "1006 abnormal closure"),
                                              (1006, "", "1006 abnormal closure"),
                                              (1008, "policy", "1008 policy")])
def test_close_reason(code, reason, want):
    ws = FakeSocket("u", 0)
    ws.close_code, ws.close_reason = code, reason
    assert close_reason(ws) == want
