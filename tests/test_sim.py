"""The simulated exchange: market model statistics, WS protocol and routing, REST and limits.

Everything runs against a real server on 127.0.0.1 (port 0) and real websockets/HTTP clients.
"""

import asyncio
import json
import math
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import websockets
from statsmodels.tsa.stattools import adfuller, coint
from websockets.asyncio.client import connect

from qdash.sim.exchange import SimExchange
from qdash.sim.market import X_INSURANCE, X_MARKET, X_NA, MarketModel

pytestmark = pytest.mark.integration


def run(coro):
    return asyncio.run(coro)


def generate(seconds=600.0, **kw):
    m = MarketModel(["BTCUSDT", "ETHUSDT"], **kw)
    batches = [m.advance(50) for _ in range(int(seconds * 20))]
    cols = {f: np.concatenate([getattr(b, f) for b in batches])
            for f in ("sym", "ts", "trade_id", "price", "qty", "m", "x", "agg")}
    return m, cols


# --- market model -------------------------------------------------------------------------------

def test_market_is_deterministic_per_seed():
    _, a = generate(30, seed=7, rate=200)
    _, b = generate(30, seed=7, rate=200)
    _, c = generate(30, seed=8, rate=200)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert len(a["ts"]) != len(c["ts"]) or not np.array_equal(a["price"], c["price"])


def test_market_trades_are_realistic():
    m, c = generate(600, seed=3, rate=100, na_prob=0.01, insurance_prob=0.005)
    n = len(c["ts"])
    assert 0.5 * 100 * 600 < n < 4 * 100 * 600  # bursts add trades, orders fill 1..k trades
    for i, tick in ((0, 0.1), (1, 0.01)):
        sel = (c["sym"] == i) & (c["x"] == X_MARKET)
        # prices on the tick grid, sizes on the lot grid and positive
        np.testing.assert_allclose(c["price"][sel] / tick, np.round(c["price"][sel] / tick),
                                   atol=1e-6)
        assert (c["qty"][sel] > 0).all()
        # ids per symbol strictly increase, times never go back
        ids, ts = c["trade_id"][c["sym"] == i], c["ts"][c["sym"] == i]
        assert (np.diff(ids) == 1).all() and (np.diff(ts) >= 0).all()
        # sizes: log-size roughly normal (lognormal), skewed in levels
        q = c["qty"][sel]
        assert np.mean(q) > np.median(q)
    na = c["x"] == X_NA
    assert na.sum() > 0 and (c["price"][na] == 0).all() and (c["qty"][na] == 0).all()
    ins = c["x"] == X_INSURANCE
    assert ins.sum() > 0
    # taker sides both present
    assert 0.2 < c["m"][c["x"] == X_MARKET].mean() < 0.8
    # bursts: counts per second are over-dispersed compared with a Poisson process
    per_s = np.bincount(((c["ts"] - c["ts"][0]) // 1000).astype(int))
    assert per_s.var() > 2 * per_s.mean()


def test_symbols_of_a_group_are_cointegrated_and_independent_ones_are_not():
    m = MarketModel(["BTCUSDT", "ETHUSDT", "SOLUSDT"], seed=11, rate=0, half_life_s=30,
                    groups=[["BTCUSDT", "ETHUSDT"], ["SOLUSDT"]], regimes_per_hour=0,
                    trend_vol=0.05)
    logs = []
    for _ in range(4000):  # one sample a second
        for _ in range(20):
            m.advance(50)
        logs.append(m.log_prices().copy())
    logs = np.array(logs)
    assert coint(logs[:, 0], logs[:, 1])[1] < 0.01
    assert coint(logs[:, 0], logs[:, 2])[1] > 0.05
    # the spread with the true hedge ratio is stationary with the configured half-life
    spread = logs[:, 0] - (m.beta[0] / m.beta[1]) * logs[:, 1]
    assert adfuller(spread, result_object=False)[1] < 0.01
    s0, s1 = spread[:-1] - spread.mean(), spread[1:] - spread.mean()
    phi = (s0 @ s1) / (s0 @ s0)
    assert 15 < math.log(2) / -math.log(phi) < 60


def test_regime_breaks_happen():
    m, _ = generate(600, seed=5, rate=0, regimes_per_hour=60)
    assert m.regime_breaks > 0


# --- WebSocket protocol ---------------------------------------------------------------------------

async def _frames(url, n, timeout=3.0):
    out = []
    async with connect(url) as ws:
        try:
            async with asyncio.timeout(timeout):
                while len(out) < n:
                    out.append(json.loads(await ws.recv()))
        except TimeoutError:
            pass
    return out


def test_routes_deliver_the_right_streams():
    async def main():
        async with SimExchange(["BTCUSDT", "ETHUSDT"], rate=300, seed=1) as sim:
            u = sim.ws_url
            public = await _frames(f"{u}/public/ws/btcusdt@trade", 5)
            assert len(public) == 5 and all(f["e"] == "trade" and f["s"] == "BTCUSDT"
                                            for f in public)
            market = await _frames(f"{u}/market/stream?streams=ethusdt@aggTrade", 5)
            assert all(f["stream"] == "ethusdt@aggTrade" and f["data"]["e"] == "aggTrade"
                       for f in market) and len(market) == 5
            assert all(f["data"]["f"] <= f["data"]["l"] for f in market)
            unrouted = await _frames(f"{u}/ws/ethusdt@trade", 3)
            assert len(unrouted) == 3 and unrouted[0]["e"] == "trade"
            # wrong route: accepted, then nothing (the cryptofeed #1128 trap)
            assert await _frames(f"{u}/ws/btcusdt@aggTrade", 1, timeout=1.0) == []
            assert await _frames(f"{u}/public/ws/btcusdt@aggTrade", 1, timeout=1.0) == []
            assert await _frames(f"{u}/market/ws/btcusdt@trade", 1, timeout=1.0) == []
    run(main())


def test_control_messages_and_errors():
    async def main():
        async with SimExchange(["BTCUSDT", "ETHUSDT"], rate=200, seed=1) as sim:
            async with connect(f"{sim.ws_url}/public/ws") as ws:
                async def ask(msg):
                    await ws.send(msg if isinstance(msg, str) else json.dumps(msg))
                    while True:
                        r = json.loads(await ws.recv())
                        if "e" not in r:
                            return r
                assert await ask({"method": "SUBSCRIBE", "params": ["btcusdt@trade",
                                                                     "ethusdt@trade"],
                                  "id": 1}) == {"result": None, "id": 1}
                assert await ask({"method": "LIST_SUBSCRIPTIONS", "id": 2}) == \
                    {"result": ["btcusdt@trade", "ethusdt@trade"], "id": 2}
                assert await ask({"method": "UNSUBSCRIBE", "params": ["ethusdt@trade"],
                                  "id": 3}) == {"result": None, "id": 3}
                assert (await ask({"method": "LIST_SUBSCRIPTIONS", "id": 4}))["result"] == \
                    ["btcusdt@trade"]
                # errors as Binance wraps them: {"error": {"code", "msg"}, "id"}
                bad = await ask({"method": "SUBSCRIBE", "params": ["BTC USDT"], "id": 5})
                assert bad == {"error": {"code": 2, "msg": "Invalid request: invalid stream"},
                               "id": 5}
                bad = await ask({"method": "FOO", "params": [], "id": 6})
                assert bad["error"]["code"] == 2 and "unknown variant" in bad["error"]["msg"]
                bad = await ask("{not json")
                assert bad["error"]["code"] == 3 and bad["id"] is None
                bad = await ask({"method": "SUBSCRIBE", "params": [1], "id": 7})
                assert bad["error"]["code"] == 1
                frame = json.loads(await ws.recv())
                while "e" not in frame:
                    frame = json.loads(await ws.recv())
                assert frame["s"] == "BTCUSDT"
            async with connect(f"{sim.ws_url}/market/ws") as ws:  # a fresh message budget
                for name in ("btcusdt@kline_2m", "dogeusdt@trade", "btcusdt@depth15",
                             "btcusdt@forceOrder", "btcusdt@markPrice@3s"):
                    await ws.send(json.dumps({"method": "SUBSCRIBE", "params": [name], "id": 8}))
                    bad = json.loads(await ws.recv())
                    assert bad["error"]["code"] == 2 and bad["id"] == 8, name
            # an invalid name in the URL is answered; the valid streams still flow
            got = await _frames(f"{sim.ws_url}/market/stream?streams=btcusdt@aggTrade/"
                                "btcusdt@kline_7m", 3)
            assert got[0] == {"error": {"code": 2, "msg": "Invalid request: invalid stream"},
                              "id": None}
            assert [f["stream"] for f in got[1:]] == ["btcusdt@aggTrade"] * 2
    run(main())


def test_more_than_10_messages_a_second_close_with_1008():
    async def main():
        async with SimExchange(["BTCUSDT"], rate=10, seed=1) as sim:
            async with connect(f"{sim.ws_url}/public/ws") as ws:
                for i in range(12):
                    await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
                with pytest.raises(websockets.ConnectionClosed):
                    async with asyncio.timeout(3):
                        while True:
                            await ws.recv()
                assert ws.close_code == 1008
    run(main())


def test_server_pings_are_answered_and_old_connections_are_closed():
    async def main():
        async with SimExchange(["BTCUSDT"], rate=20, seed=1, ping_interval=0.2,
                               max_connection_age=1.0) as sim:
            async with connect(f"{sim.ws_url}/public/ws/btcusdt@trade", ping_interval=None) as ws:
                with pytest.raises(websockets.ConnectionClosed):
                    async with asyncio.timeout(4):
                        while True:
                            await ws.recv()
                assert ws.close_code == 1001
            assert sim.stats["pongs"] >= 2  # websockets answered the server's pings
            assert sim.stats["closed_age"] == 1
    run(main())


# --- REST -------------------------------------------------------------------------------------

def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, json.loads(e.read())


def test_rest_endpoints_match_the_ledger():
    async def main():
        async with SimExchange(["BTCUSDT", "ETHUSDT"], rate=400, seed=2) as sim:
            await asyncio.sleep(1.5)
            sim.pause()
            base = sim.rest_url
            ledger = sim.ledger.frame("BTCUSDT", market_only=True)
            st, h, trades = await asyncio.to_thread(
                _get, f"{base}/fapi/v1/trades?symbol=BTCUSDT&limit=50")
            assert st == 200 and h["x-mbx-used-weight-1m"] == "5"
            assert [t["id"] for t in trades] == ledger["trade_id"].tolist()[-50:]
            assert [float(t["price"]) for t in trades] == ledger["price"].tolist()[-50:]
            first = int(ledger["ts"].iloc[0])
            st, h, aggs = await asyncio.to_thread(
                _get, f"{base}/fapi/v1/aggTrades?symbol=BTCUSDT&startTime={first}"
                      f"&endTime={first + 600_000}&limit=1000")
            assert st == 200 and int(h["x-mbx-used-weight-1m"]) == 25
            # aggregates tile the market trades: ids f..l cover every id once, volumes add up
            covered = [i for a in aggs for i in range(a["f"], a["l"] + 1)]
            assert covered == ledger["trade_id"].tolist()[:len(covered)]
            assert len(covered) == len(ledger) or len(aggs) == 1000
            vol = sum(float(a["q"]) for a in aggs)
            np.testing.assert_allclose(vol, ledger["qty"].iloc[:len(covered)].sum(), rtol=1e-9)
            st, _, later = await asyncio.to_thread(
                _get, f"{base}/fapi/v1/aggTrades?symbol=BTCUSDT&fromId={aggs[3]['a']}&limit=2")
            assert [a["a"] for a in later] == [aggs[3]["a"], aggs[4]["a"]]
            st, _, kl = await asyncio.to_thread(
                _get, f"{base}/fapi/v1/klines?symbol=BTCUSDT&interval=1m"
                      f"&startTime={sim.past.end_ms}")
            assert sum(k[8] for k in kl) == len(ledger)
            np.testing.assert_allclose(sum(float(k[5]) for k in kl), ledger["qty"].sum(),
                                       rtol=1e-9)
            assert float(kl[0][3]) == ledger["price"][ledger["ts"] < kl[0][6] + 1].min()
            st, _, info = await asyncio.to_thread(_get, f"{base}/fapi/v1/exchangeInfo")
            assert {s["symbol"] for s in info["symbols"]} == {"BTCUSDT", "ETHUSDT"}
            # errors with Binance's codes
            assert (await asyncio.to_thread(_get, f"{base}/fapi/v1/trades?symbol=NOPE"))[2][
                "code"] == -1121
            assert (await asyncio.to_thread(_get, f"{base}/fapi/v1/trades"))[2]["code"] == -1102
            st, _, body = await asyncio.to_thread(
                _get, f"{base}/fapi/v1/aggTrades?symbol=BTCUSDT&startTime=0&endTime=3600001")
            assert st == 400 and body["code"] == -1127
            st, _, body = await asyncio.to_thread(
                _get, f"{base}/fapi/v1/klines?symbol=BTCUSDT&interval=7m")
            assert body["code"] == -1120
    run(main())


def test_rest_weight_limit_429_then_418():
    async def main():
        async with SimExchange(["BTCUSDT"], rate=10, seed=2, weight_limit=50,
                               ban_seconds=7) as sim:
            url = f"{sim.rest_url}/fapi/v1/aggTrades?symbol=BTCUSDT"
            st1, h1, _ = await asyncio.to_thread(_get, url)
            st2, h2, _ = await asyncio.to_thread(_get, url)
            assert (st1, h1["x-mbx-used-weight-1m"]) == (200, "20")
            assert (st2, h2["x-mbx-used-weight-1m"]) == (200, "40")
            if time.time() % 60 > 55:  # a new minute may start between calls
                return
            st3, h3, body = await asyncio.to_thread(_get, url)
            assert st3 == 429 and body["code"] == -1003 and int(h3["retry-after"]) >= 1
            st4, h4, _ = await asyncio.to_thread(_get, url)  # ignoring Retry-After earns a ban
            assert st4 == 418 and h4["retry-after"] == "7"
    run(main())
