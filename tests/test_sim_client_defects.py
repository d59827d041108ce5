"""Two defects a new user hit with real clients against ``qdash sim`` (a subprocess on loopback,
no qdash code on the client side):

* ccxt.pro connects to ``/public/ws/0`` and ``/market/ws/0`` (its connection counter as a path
  segment) and then SUBSCRIBEs: ``watch_trades``, ``watch_ohlcv`` and ``watch_order_book`` failed
  with "Invalid request: invalid stream";
* python-binance's ``futures_historical_klines`` first asks ``klines?startTime=0&limit=1`` for
  the first kline since listing: the simulator answered 500 (-1000).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

MINUTE_MS = 60_000


@pytest.fixture(scope="module")
def sim():
    """``qdash sim`` on a free loopback port: (ws base, REST base)."""
    proc = subprocess.Popen([sys.executable, "-m", "qdash", "sim", "--port", "0", "--rate", "100",
                             "--symbols", "BTCUSDT,ETHUSDT", "--seed", "3"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "listening on" in line, line
        ws = line.split("listening on ")[1].split()[0]
        yield ws, ws.replace("ws://", "http://", 1)
    finally:
        proc.terminate()
        proc.wait(20)


def test_ccxt_pro_watch_trades_ohlcv_and_order_book(sim):
    import ccxt.pro  # here, not at collection: the unit tier does not pay for client imports

    ws, rest = sim

    async def main():
        ex = ccxt.pro.binanceusdm({"enableRateLimit": False})
        for k in list(ex.urls["api"]):
            if k.startswith("fapi"):
                ex.urls["api"][k] = f"{rest}/fapi/" + ("v2" if k.endswith("V2") else "v1")
        # ccxt rewrites ".../ws" to ".../public/ws" or ".../market/ws", then adds "/<n>"
        ex.urls["api"]["ws"]["linear"] = f"{ws}/ws"
        try:
            async with asyncio.timeout(60):
                trades = await ex.watch_trades("BTC/USDT:USDT")
                ohlcv = await ex.watch_ohlcv("ETH/USDT:USDT", "1m")
                book = await ex.watch_order_book("BTC/USDT:USDT")
                book = await ex.watch_order_book("BTC/USDT:USDT")  # a diff applied on top
        finally:
            await ex.close()
        return trades, ohlcv, book

    trades, ohlcv, book = asyncio.run(main())
    assert trades and all(t["symbol"] == "BTC/USDT:USDT" and t["price"] > 0 for t in trades)
    assert ohlcv and ohlcv[-1][0] % MINUTE_MS == 0 and ohlcv[-1][2] >= ohlcv[-1][3] > 0
    assert book["symbol"] == "BTC/USDT:USDT" and book["nonce"] > 0
    assert book["bids"][0][0] < book["asks"][0][0] and len(book["bids"]) >= 100


def test_python_binance_historical_klines_from_the_beginning(sim):
    from binance import client as binance_client

    _, rest = sim
    c = binance_client.Client("", "", ping=False)
    c.FUTURES_URL = f"{rest}/fapi"
    first = c.futures_klines(symbol="ETHUSDT", interval="1d", startTime=0, limit=1)
    info = c.futures_exchange_info()
    onboard = next(s["onboardDate"] for s in info["symbols"] if s["symbol"] == "ETHUSDT")
    assert len(first) == 1 and first[0][0] == onboard // 86_400_000 * 86_400_000
    # the whole daily history since listing, as python-binance pages it
    days = c.futures_historical_klines("ETHUSDT", "1d", "1 Jan, 2000")
    assert days[0][0] == first[0][0]
    assert all(b[0] - a[0] == 86_400_000 for a, b in zip(days, days[1:]))
