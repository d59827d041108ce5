"""The simulator driven by real client libraries (ccxt, python-binance) over loopback HTTP."""

import asyncio
import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

from qdash.sim.exchange import SimExchange
from qdash.sim.universe import DAY_MS, MINUTE_MS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim():
    """A simulator with 6 universe symbols on a background loop (sync clients call it)."""
    loop = asyncio.new_event_loop()
    ex = SimExchange(["BTCUSDT", "ETHUSDT"], rate=50, seed=7, universe=6, weight_limit=100_000)
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    asyncio.run_coroutine_threadsafe(ex.start(), loop).result(30)
    yield ex
    asyncio.run_coroutine_threadsafe(ex.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, json.loads(e.read())


def _ccxt(sim):
    import ccxt  # here, not at collection: the unit tier does not pay for client imports

    ex = ccxt.binanceusdm({"enableRateLimit": False})
    api = ex.urls["api"]
    for k in list(api):
        if k.startswith("fapi"):
            api[k] = f"{sim.rest_url}/fapi/" + ("v2" if k.endswith("V2") else "v1")
    return ex


def test_ccxt_binanceusdm(sim):
    ex = _ccxt(sim)
    markets = ex.load_markets()
    assert "BTC/USDT:USDT" in markets and markets["BTC/USDT:USDT"]["swap"]
    assert markets["BTC/USDT:USDT"]["precision"]["price"] == 0.1
    since = (sim.past.end_ms - 3 * DAY_MS) // 3_600_000 * 3_600_000
    ohlcv = ex.fetch_ohlcv("BTC/USDT:USDT", "5m", since=since, limit=1000)
    assert len(ohlcv) >= 864 and ohlcv[0][0] == since
    assert all(b[0] - a[0] == 300_000 for a, b in zip(ohlcv, ohlcv[1:]))
    hourly = ex.fetch_ohlcv("BTC/USDT:USDT", "1h", since=since, limit=72)
    five = np.array(ohlcv[:72 * 12])
    assert hourly[0][1] == five[0, 1] and hourly[0][4] == five[11, 4]
    assert hourly[0][2] == five[:12, 2].max() and hourly[0][3] == five[:12, 3].min()
    np.testing.assert_allclose(hourly[0][5], five[:12, 5].sum(), rtol=1e-9)
    trades = ex.fetch_trades("ETH/USDT:USDT", since=sim.past.end_ms - 2 * 3_600_000, limit=50)
    assert len(trades) == 50 and trades[0]["timestamp"] >= sim.past.end_ms - 2 * 3_600_000
    fr = ex.fetch_funding_rate_history("BTC/USDT:USDT", since=since)
    assert [f["timestamp"] % (8 * 3_600_000) for f in fr] == [0] * len(fr) and len(fr) >= 9
    assert sum(f["fundingRate"] == 0.0001 for f in fr) >= 1
    tk = ex.fetch_ticker("BTC/USDT:USDT")
    assert tk["last"] > 0 and tk["high"] >= tk["low"]
    ob = ex.fetch_order_book("BTC/USDT:USDT", limit=5)
    assert len(ob["bids"]) == 5 and ob["bids"][0][0] < ob["asks"][0][0]


def test_python_binance_client(sim):
    from binance import client as binance_client

    c = binance_client.Client("", "", ping=False)
    c.FUTURES_URL = f"{sim.rest_url}/fapi"
    c.API_URL = f"{sim.rest_url}/api"
    info = c.futures_exchange_info()
    names = {s["symbol"] for s in info["symbols"]}
    assert {"BTCUSDT", "ETHUSDT", "SYN001USDT"} <= names and len(names) == 8
    start = sim.past.end_ms - 1500 * MINUTE_MS
    kl = c.futures_klines(symbol="SYN001USDT", interval="1m", startTime=start, limit=1500)
    assert len(kl) == 1500 and kl[0][0] == start and kl[-1][6] == sim.past.end_ms - 1
    fr = c.futures_funding_rate(symbol="ETHUSDT", limit=5)
    assert len(fr) == 5 and set(fr[0]) == {"symbol", "fundingTime", "fundingRate", "markPrice"}
    mp = c.futures_mark_price(symbol="BTCUSDT")
    assert mp["nextFundingTime"] % (8 * 3_600_000) == 0 and float(mp["markPrice"]) > 0


def test_errors_and_weights(sim):
    base = sim.rest_url
    st, h, body = _get(f"{base}/fapi/v1/nothing")
    assert st == 404 and body["code"] == -5000
    st, h, body = _get(f"{base}/fapi/v1/klines?symbol=NOPE&interval=1m")
    assert (st, body["code"]) == (400, -1121)
    assert _get(f"{base}/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=1501")[2][
        "code"] == -1130
    assert _get(f"{base}/fapi/v1/klines?symbol=BTCUSDT&interval=1m&startTime=x")[2][
        "code"] == -1100
    assert _get(f"{base}/fapi/v1/klines?symbol=BTCUSDT")[2]["code"] == -1102
    st, h, _ = _get(f"{base}/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=1000")
    st2, h2, _ = _get(f"{base}/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=1001")
    used, used2 = int(h["x-mbx-used-weight-1m"]), int(h2["x-mbx-used-weight-1m"])
    assert used2 - used == 10 or used2 == 10  # or a new minute began in between
    st, _, agg = _get(f"{base}/fapi/v1/aggTrades?symbol=BTCUSDT&startTime="
                      f"{sim.past.end_ms - 7_200_000}&endTime={sim.past.end_ms - 3_600_000}")
    assert st == 200 and len(agg) == 500
    for path in ("ping", "time", "premiumIndex", "fundingInfo", "ticker/24hr?symbol=BTCUSDT",
                 "ticker/bookTicker", "ticker/price", "depth?symbol=BTCUSDT&limit=10",
                 "openInterest?symbol=BTCUSDT", "markPriceKlines?symbol=BTCUSDT&interval=1h",
                 "indexPriceKlines?pair=BTCUSDT&interval=1h",
                 "premiumIndexKlines?symbol=BTCUSDT&interval=1h",
                 "continuousKlines?pair=BTCUSDT&contractType=PERPETUAL&interval=1h"):
        st, _, body = _get(f"{base}/fapi/v1/{path}")
        assert st == 200, (path, body)
    assert _get(f"{base}/fapi/v2/ticker/price?symbol=BTCUSDT")[0] == 200
