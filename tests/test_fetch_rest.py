"""``qdash.binance.rest.RestClient`` against real loopback HTTP servers: a scripted one (statuses,
headers, dropped connections) and the simulated exchange.

Waits go through an injected ``sleep`` that advances an injected clock, so the tests record every
wait the client makes instead of sleeping.
"""

import asyncio
import http.server
import json
import threading

import pytest

from qdash.binance.limits import kline_weight, request_weight
from qdash.binance.rest import RestClient, RestError, RestRateLimited, RestUnavailable
from qdash.sim.exchange import SimExchange

pytestmark = pytest.mark.integration


class FakeTime:
    """A wall clock that only moves when the client sleeps."""

    def __init__(self, start=1_800_000_000.0):
        self.now = start
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, s):
        self.sleeps.append(s)
        self.now += s


class Scripted:
    """A loopback HTTP server answering GETs from a script of (status, headers, body) or
    ``"drop"`` (close the connection without an answer); the last entry repeats."""

    def __init__(self, script):
        self.script = list(script)
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                outer.requests.append(self.path)
                step = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                if step == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                status, headers, body = step
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def client(url, t, **kw):
    return RestClient(url, clock=t.clock, sleep=t.sleep, **kw)


OK = (200, {"X-MBX-USED-WEIGHT-1M": "1"}, [1, 2, 3])


def test_weights_follow_binance_tables():
    assert [kline_weight(n) for n in (1, 99, 100, 499, 500, 1000, 1001, 1500)] == \
        [1, 1, 2, 2, 5, 5, 10, 10]
    assert request_weight("/fapi/v1/klines", {"limit": 1500}) == 10
    assert request_weight("/fapi/v1/markPriceKlines", {"limit": 499}) == 2
    assert request_weight("/fapi/v1/aggTrades", {"limit": 1000}) == 20
    assert request_weight("/fapi/v1/premiumIndex", {}) == 10
    assert request_weight("/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"}) == 1


def test_get_passes_params_and_decodes_json():
    t = FakeTime()
    with Scripted([OK]) as srv:
        c = client(srv.url, t)
        assert c.get("/fapi/v1/klines", {"symbol": "BTCUSDT", "limit": 5, "endTime": None}) \
            == [1, 2, 3]
        assert srv.requests == ["/fapi/v1/klines?symbol=BTCUSDT&limit=5"]
        assert c.stats()["requests"] == 1 and c.last_used_weight == 1
        c.close()


def test_retry_after_on_429_blocks_every_further_request():
    t = FakeTime()
    limited = (429, {"Retry-After": "7"}, {"code": -1003, "msg": "Too many requests"})
    with Scripted([limited, OK]) as srv:
        c = client(srv.url, t)
        start = t.now
        assert c.get("/fapi/v1/time") == [1, 2, 3]
        assert len(srv.requests) == 2
        assert t.now - start >= 7  # the retry went out only after Retry-After
        assert c.stats()["http_429"] == 1
        # another thread's request also respected the pause: nothing is blocked any more now
        assert c.get("/fapi/v1/time") == [1, 2, 3]
        assert t.now - start < 8


def test_418_ban_longer_than_max_wait_raises():
    t = FakeTime()
    banned = (418, {"Retry-After": "7200"}, {"code": -1003, "msg": "Way too many requests"})
    with Scripted([banned]) as srv:
        c = client(srv.url, t, max_wait=60)
        with pytest.raises(RestRateLimited, match="7200 s"):
            c.get("/fapi/v1/time")
        with pytest.raises(RestRateLimited):  # still banned: refused without a request
            c.get("/fapi/v1/time")
        assert len(srv.requests) == 1


def test_transient_errors_are_retried_with_backoff():
    t = FakeTime()
    with Scripted([(503, {}, b"busy"), "drop", (502, {}, b"bad gateway"), OK]) as srv:
        c = client(srv.url, t, backoff_initial=0.5)
        assert c.get("/fapi/v1/ping") == [1, 2, 3]
        assert len(srv.requests) == 4
        assert c.stats()["retries"] == 3
        # exponential steps 0.5, 1, 2, each drawn from [½, 1] of the step
        assert 0.25 <= t.sleeps[0] <= 0.5 and 0.5 <= t.sleeps[1] <= 1 and 1 <= t.sleeps[2] <= 2


def test_persistent_failure_raises_unavailable():
    t = FakeTime()
    with Scripted([(500, {}, b"oops")]) as srv:
        c = client(srv.url, t, retries=2)
        with pytest.raises(RestUnavailable, match="failed 3 times"):
            c.get("/fapi/v1/ping")
        assert len(srv.requests) == 3


def test_client_errors_carry_binance_code_and_msg_without_retry():
    t = FakeTime()
    with Scripted([(400, {}, {"code": -1121, "msg": "Invalid symbol."})]) as srv:
        c = client(srv.url, t)
        with pytest.raises(RestError, match=r"-1121: Invalid symbol\.") as e:
            c.get("/fapi/v1/klines", {"symbol": "NOPE", "interval": "1m"})
        assert (e.value.status, e.value.code, e.value.msg) == (400, -1121, "Invalid symbol.")
        assert not isinstance(e.value, RestUnavailable) and len(srv.requests) == 1


def test_weight_budget_waits_for_the_next_minute():
    t = FakeTime(start=1_800_000_030.0)  # half-way through a minute
    with Scripted([OK]) as srv:
        c = client(srv.url, t, weight_limit=12)
        for _ in range(3):
            c.get("/fapi/v1/klines", {"limit": 1000})  # weight 5 each: the third must wait
        assert t.sleeps == [pytest.approx(30.0)]


def test_server_reported_weight_counts_other_clients():
    t = FakeTime(start=1_800_000_000.0)
    heavy = (200, {"X-MBX-USED-WEIGHT-1M": "2399"}, [])
    with Scripted([heavy]) as srv:
        c = client(srv.url, t)
        c.get("/fapi/v1/time")
        c.get("/fapi/v1/time", weight=2)  # 2399 + 2 > 2400: waits for the minute to turn
        assert t.sleeps == [pytest.approx(60.0)]


def test_against_the_simulator_exchange_info_and_errors():
    async def main():
        async with SimExchange(["BTCUSDT", "ETHUSDT"], rate=50, seed=1, port=0,
                               weight_limit=1234) as sim:
            c = RestClient(sim.rest_url)
            info = await asyncio.to_thread(c.exchange_info)
            assert c.weight_limit == 1234 and "symbols" in info
            assert await asyncio.to_thread(c.perpetuals) == ["BTCUSDT", "ETHUSDT"]
            with pytest.raises(RestError, match="-1121"):
                await c.aget("/fapi/v1/klines", {"symbol": "NOPEUSDT", "interval": "1m"})
            with pytest.raises(RestError, match="-1120"):
                await c.aget("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "7m"})
            sim.rest_throttle(1, status=429, retry_after=1)
            rows = await c.aget("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m",
                                                    "limit": 10})
            assert isinstance(rows, list) and c.stats()["http_429"] == 1
            assert sim.stats["rest_418"] == 0  # it waited instead of earning a ban
    asyncio.run(main())
