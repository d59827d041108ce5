"""Trading on the simulated exchange over loopback with real clients (ccxt, ccxt.pro,
python-binance, Binance's official SDK) and raw signed HTTP: no qdash code on the client side
except the simulator itself."""

import asyncio
import contextlib
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from qdash.sim.exchange import SimExchange
from qdash.sim.limiter import OrderCounter

pytestmark = pytest.mark.integration

ACCOUNTS = {name: (f"{name}key0001", f"{name}-secret-{i}x9") for i, name in
            enumerate(("raw", "ccxt", "pro", "pyb", "sdk", "limit", "rest", "fills", "algo",
                       "algoccxt", "algopro", "algosdk", "algopyb"))}


@pytest.fixture(scope="module")
def sim():
    """An exchange with one account per client, on a background loop (sync clients call it)."""
    loop = asyncio.new_event_loop()
    ex = SimExchange(["BTCUSDT", "ETHUSDT"], rate=50, seed=11, weight_limit=100_000,
                     accounts=[(k, s, 100_000.0) for k, s in ACCOUNTS.values()])
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    asyncio.run_coroutine_threadsafe(ex.start(), loop).result(30)
    ex.loop = loop
    yield ex
    asyncio.run_coroutine_threadsafe(ex.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)


def _sign(secret: str, query: str) -> str:
    import hashlib
    import hmac  # the client's own HMAC, as a user would write it

    return hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()


def signed(sim, name, method, path, *, secret=None, key=None, ts=None, body=False, **params):
    """A signed request as Binance documents it; returns (status, headers, json)."""
    k, s = ACCOUNTS[name]
    params["timestamp"] = int(time.time() * 1000) if ts is None else ts
    q = urllib.parse.urlencode(params)
    q += "&signature=" + _sign(secret or s, q)
    url, data = f"{sim.rest_url}{path}", None
    if body:
        data = q.encode()
    else:
        url += "?" + q
    headers = {} if key == "" else {"X-MBX-APIKEY": key or k}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, _lower(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, _lower(e.headers), json.loads(e.read())


def _lower(headers) -> dict:
    return {k.lower(): v for k, v in headers.items()}


def test_signatures_keys_and_timestamps(sim, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    path = "/fapi/v3/account"
    st, h1, body = signed(sim, "raw", "GET", path)
    assert st == 200 and float(body["totalWalletBalance"]) == 100_000
    _, h2, _ = signed(sim, "raw", "GET", path)  # weight 5, from the IP's market-data budget
    used1, used2 = int(h1["x-mbx-used-weight-1m"]), int(h2["x-mbx-used-weight-1m"])
    assert used2 - used1 == 5 or used2 == 5  # or a new minute began in between
    st, _, body = signed(sim, "raw", "GET", path, secret="not-the-secret")
    assert (st, body) == (400, {"code": -1022,
                                "msg": "Signature for this request is not valid."})
    st, _, body = signed(sim, "raw", "GET", path, ts=int(time.time() * 1000) - 10_000)
    assert st == 400 and body["code"] == -1021
    st, _, body = signed(sim, "raw", "GET", path, ts=int(time.time() * 1000) - 10_000,
                         recvWindow=30_000)
    assert st == 200
    st, _, body = signed(sim, "raw", "GET", path, ts=int(time.time() * 1000) + 5_000)
    assert body["code"] == -1021  # from the future: more than 1 s ahead
    assert signed(sim, "raw", "GET", path, key="")[2]["code"] == -2014
    st, _, body = signed(sim, "raw", "GET", path, key="unknownkey123")
    assert (st, body["code"]) == (401, -2015)
    # the signature may cover a POST body as well as a query string
    st, _, body = signed(sim, "raw", "POST", "/fapi/v1/leverage", body=True, symbol="BTCUSDT",
                         leverage=7)
    assert st == 200 and body["leverage"] == 7
    st, _, body = signed(sim, "raw", "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY",
                         type="LIMIT", quantity="0.01", timeInForce="GTC")
    assert body == {"code": -1102, "msg": "Mandatory parameter 'price' was not sent, was "
                                          "empty/null, or malformed."}
    st, _, body = signed(sim, "raw", "DELETE", "/fapi/v1/order", symbol="BTCUSDT",
                         orderId=123)
    assert body["code"] == -2011
    out, err = capfd.readouterr()
    for _, secret in ACCOUNTS.values():
        assert secret not in caplog.text and secret not in out + err
    assert "raw-secret" not in repr(sim.accounts.by_key[ACCOUNTS["raw"][0]])


def test_order_count_limits(sim):
    saved = sim.order_counter
    sim.order_counter = OrderCounter(((3, 10_000), (1200, 60_000)))
    try:
        counts = []
        for _ in range(3):
            st, h, body = signed(sim, "limit", "POST", "/fapi/v1/order", symbol="ETHUSDT",
                                 side="BUY", type="MARKET", quantity="0.05")
            assert st == 200, body
            counts.append((h["x-mbx-order-count-10s"], h["x-mbx-order-count-1m"]))
        assert counts == [("1", "1"), ("2", "2"), ("3", "3")]
        st, h, body = signed(sim, "limit", "POST", "/fapi/v1/order", symbol="ETHUSDT",
                             side="BUY", type="MARKET", quantity="0.05")
        assert st == 429 and body["code"] == -1015 and 1 <= int(h["retry-after"]) <= 10
        assert "TEN_SECONDS" in body["msg"]
    finally:
        sim.order_counter = saved


def _ccxt(module, sim, name, **options):
    key, secret = ACCOUNTS[name]
    ex = module.binanceusdm({"apiKey": key, "secret": secret, "enableRateLimit": False,
                             "options": {"fetchCurrencies": False} | options})
    api = ex.urls["api"]
    for k in list(api):
        if isinstance(api[k], str) and "fapi.binance.com" in api[k]:
            api[k] = api[k].replace("https://fapi.binance.com", sim.rest_url)
    if "ws" in api:  # ccxt.pro
        api["ws"]["linear"] = sim.ws_url + "/ws"
    return ex


def test_ccxt_orders_positions_balance(sim):
    import ccxt

    ex = _ccxt(ccxt, sim, "ccxt")
    sym = "BTC/USDT:USDT"
    assert ex.set_leverage(10, sym)["leverage"] == 10
    o = ex.create_order(sym, "market", "buy", 0.02)
    assert o["status"] == "closed" and o["filled"] == 0.02 and o["average"] > 0
    book = ex.fetch_order_book(sym, 5)
    price = round(book["bids"][3][0] - 20, 1)  # below the book: it rests
    lim = ex.create_order(sym, "limit", "buy", 0.01, price)
    assert lim["status"] == "open"
    got = ex.fetch_order(lim["id"], sym)
    assert got["status"] == "open" and got["price"] == price
    assert ex.cancel_order(lim["id"], sym)["status"] == "canceled"
    assert ex.fetch_order(lim["id"], sym)["status"] == "canceled"
    (pos,) = ex.fetch_positions([sym])
    assert pos["contracts"] == 0.02 and pos["side"] == "long"
    assert pos["initialMargin"] == pytest.approx(abs(pos["notional"]) / 10)  # leverage 10
    assert pos["entryPrice"] == pytest.approx(o["average"])
    bal = ex.fetch_balance()
    trades = ex.fetch_my_trades(sym)
    fees = sum(t["fee"]["cost"] for t in trades)
    assert sum(t["amount"] for t in trades) == pytest.approx(0.02)
    assert fees == pytest.approx(o["cost"] * 0.0005, rel=1e-6)
    assert float(bal["info"]["totalWalletBalance"]) == pytest.approx(100_000 - fees, abs=1e-6)
    assert bal["USDT"]["total"] == pytest.approx(100_000 - fees, abs=5.0)  # + unrealized


def test_ccxt_pro_watch_orders_and_positions(sim):
    import ccxt.pro as ccxtpro

    async def main():
        ex = _ccxt(ccxtpro, sim, "pro")
        sym = "ETH/USDT:USDT"
        try:
            await ex.load_markets()
            assert await ex.watch_positions([sym]) == []  # the snapshot: flat
            orders = asyncio.create_task(ex.watch_orders(sym))
            positions = asyncio.create_task(ex.watch_positions([sym]))
            await asyncio.sleep(0.5)
            placed = await ex.create_order(sym, "market", "sell", 0.05)
            got = await asyncio.wait_for(orders, 15)
            pos = await asyncio.wait_for(positions, 15)
        finally:
            await ex.close()
        assert any(o["id"] == placed["id"] for o in got)
        assert pos[0]["symbol"] == sym and pos[0]["contracts"] == 0.05
        assert pos[0]["side"] == "short"
    asyncio.run(main())


def test_python_binance_orders_and_user_socket(sim):
    from binance import AsyncClient, BinanceSocketManager

    key, secret = ACCOUNTS["pyb"]

    async def main():
        client = AsyncClient(key, secret)  # create() would ping Binance itself
        client.FUTURES_URL = f"{sim.rest_url}/fapi"
        bsm = BinanceSocketManager(client)
        bsm.FSTREAM_URL = sim.ws_url + "/"
        events = []
        try:
            async with bsm.futures_user_socket() as socket:
                o = await client.futures_create_order(symbol="ETHUSDT", side="BUY",
                                                      type="MARKET", quantity=0.05)
                async with asyncio.timeout(15):
                    while not any(e.get("e") == "ACCOUNT_UPDATE" for e in events):
                        events.append(await socket.recv())
                book = await client.futures_order_book(symbol="ETHUSDT", limit=5)
                lim = await client.futures_create_order(
                    symbol="ETHUSDT", side="SELL", type="LIMIT", quantity=0.05,
                    price=f"{float(book['asks'][3][0]) + 2:.2f}", timeInForce="GTC")
                cancelled = await client.futures_cancel_order(symbol="ETHUSDT",
                                                              orderId=lim["orderId"])
                account = await client.futures_account()
                positions = await client.futures_position_information(symbol="ETHUSDT")
        finally:
            await client.close_connection()
        return o, cancelled, account, positions, events

    o, cancelled, account, positions, events = asyncio.run(main())
    assert o["status"] == "NEW" and o["symbol"] == "ETHUSDT"  # ACK: the default answer
    assert cancelled["status"] == "CANCELED"
    eth = next(p for p in account["positions"] if p["symbol"] == "ETHUSDT")
    assert float(eth["positionAmt"]) == 0.05
    assert float(positions[0]["positionAmt"]) == 0.05
    kinds = [(e["e"], e.get("o", {}).get("X")) for e in events]
    assert kinds[0] == ("ORDER_TRADE_UPDATE", "NEW") and kinds[-1][0] == "ACCOUNT_UPDATE"
    assert ("ORDER_TRADE_UPDATE", "FILLED") in kinds
    assert events[-1]["a"]["P"][0]["pa"] == "0.050"


def _in_order(payload: dict, model) -> None:
    """``payload``'s keys come in the order the SDK's ``model`` declares them (Binance's)."""
    fields = model.model_fields
    declared = [f.alias or n for n, f in fields.items()]
    sent = [k for k in payload if k != "e"]
    assert [a for a in declared if a in sent] == sent, (model.__name__, sent)


def _strict(event: dict):
    """The official SDK's model of a user-data event, validated strictly (names, types and
    order of the fields, nothing unknown)."""
    from binance_sdk_derivatives_trading_usds_futures.websocket_streams import models as m

    model = {"ORDER_TRADE_UPDATE": m.OrderTradeUpdate, "ACCOUNT_UPDATE": m.AccountUpdate,
             "MARGIN_CALL": m.MarginCall, "listenKeyExpired": m.ListenKeyExpired,
             "ALGO_UPDATE": m.AlgoUpdate}[event["e"]]
    parsed = model.model_validate(event, strict=True)
    assert not getattr(parsed, "additional_properties", {}), parsed.additional_properties
    _in_order(event, model)
    nested = {"ORDER_TRADE_UPDATE": [(event.get("o"), m.OrderTradeUpdateO)],
              "ACCOUNT_UPDATE": [(event.get("a"), m.AccountUpdateA)]
              + [(b, m.AccountUpdateABInner) for b in event.get("a", {}).get("B", [])]
              + [(p, m.AccountUpdateAPInner) for p in event.get("a", {}).get("P", [])],
              "MARGIN_CALL": [(p, m.MarginCallPInner) for p in event.get("p", [])],
              "ALGO_UPDATE": [(event.get("o"), m.AlgoUpdateO)]}
    for payload, sub in nested.get(event["e"], []):
        part = sub.model_validate(payload, strict=True)
        assert not part.additional_properties, part.additional_properties
        _in_order(payload, sub)
    return parsed


@contextlib.asynccontextmanager
async def _sdk_session(sim, name):
    """The official SDK on account ``name``: its REST API and the list its user-data stream
    appends every event to (subscribed before this yields)."""
    import binance_sdk_derivatives_trading_usds_futures as sdk
    from binance_common.configuration import ConfigurationRestAPI, ConfigurationWebSocketStreams

    key, secret = ACCOUNTS[name]
    client = sdk.DerivativesTradingUsdsFutures(
        config_rest_api=ConfigurationRestAPI(api_key=key, api_secret=secret,
                                             base_path=sim.rest_url, retries=0),
        config_ws_streams=ConfigurationWebSocketStreams(stream_url=sim.ws_url,
                                                        reconnect_attempts=1))
    rest = client.rest_api
    listen = (await asyncio.to_thread(rest.start_user_data_stream)).data().listen_key
    connection = await client.websocket_streams.create_connection()
    seen = []
    try:
        stream = await connection.user_data(listen)
        stream.on("message", seen.append)
        await asyncio.sleep(0.3)
        yield rest, seen
    finally:
        await connection.close_connection(close_session=True)


def test_official_sdk_orders_and_user_stream(sim):
    from binance_sdk_derivatives_trading_usds_futures.rest_api.models import (
        NewOrderSideEnum,
        NewOrderTypeEnum,
    )

    async def main():
        async with _sdk_session(sim, "sdk") as (rest, seen):
            new = (await asyncio.to_thread(rest.new_order, symbol="BTCUSDT",
                                           side=NewOrderSideEnum.BUY,
                                           type=NewOrderTypeEnum.MARKET, quantity=0.01)).data()
            query = (await asyncio.to_thread(rest.query_order, symbol="BTCUSDT",
                                             order_id=new.order_id)).data()
            pos = (await asyncio.to_thread(rest.position_information_v3,
                                           symbol="BTCUSDT")).data()
            acct = (await asyncio.to_thread(rest.account_information_v3)).data()
            async with asyncio.timeout(15):
                while len(seen) < 3:
                    await asyncio.sleep(0.05)
        return new, query, pos, acct, seen

    new, query, pos, acct, seen = asyncio.run(main())
    assert new.status == "NEW" and new.symbol == "BTCUSDT"
    assert query.status == "FILLED" and query.executed_qty == "0.010"
    assert pos[0].position_amt == "0.010" and float(pos[0].entry_price) == pytest.approx(
        float(query.avg_price))
    assert float(acct.total_wallet_balance) < 100_000 and acct.positions[0].symbol == "BTCUSDT"
    events = [e.actual_instance if hasattr(e, "actual_instance") else e for e in seen]
    assert type(events[0]).__name__ == "OrderTradeUpdate" and events[0].o.x == "NEW"
    assert any(type(e).__name__ == "AccountUpdate" for e in events)


def test_user_events_have_binances_names_types_and_order(sim):
    """Every event kind, read from a raw socket and validated by the SDK's models strictly."""
    import websockets

    acc = sim.accounts.by_key[ACCOUNTS["raw"][0]]
    st, _, body = signed(sim, "raw", "POST", "/fapi/v1/listenKey")
    listen = body["listenKey"]
    assert signed(sim, "raw", "POST", "/fapi/v1/listenKey")[2]["listenKey"] == listen

    def on_loop(fn):
        async def run():
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), sim.loop).result(10)

    async def main():
        events = []
        async with websockets.connect(f"{sim.ws_url}/private/ws/{listen}") as ws:
            await asyncio.sleep(0.2)
            st, _, o = await asyncio.to_thread(signed, sim, "raw", "POST", "/fapi/v1/order",
                                               symbol="BTCUSDT", side="BUY", type="MARKET",
                                               quantity="0.5")
            assert st == 200, o
            # the mark falls until the maintenance margin nears the margin balance
            pos = acc.positions["BTCUSDT"]

            def call():
                acc.wallet -= 99_000  # a thin account: 1,000 USDT left
                entry = pos.entry
                for drop in range(1, 20_000):
                    mark = entry - drop * 10.0
                    if sim.trading.check_margin(acc, {"BTCUSDT": mark}):
                        raise AssertionError("liquidated before a margin call")
                    if acc.margin_called:
                        return mark
                raise AssertionError("no margin call")
            on_loop(call)
            sim.user_streams.keys[listen] = (acc, 0)  # lapse the key now
            async with asyncio.timeout(15):
                async for raw in ws:
                    events.append(json.loads(raw))
                    if events[-1]["e"] == "listenKeyExpired":
                        break
        return events

    events = asyncio.run(main())
    kinds = [e["e"] for e in events]
    assert {"ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE", "MARGIN_CALL",
            "listenKeyExpired"} <= set(kinds)
    for e in events:
        _strict(e)
    call = next(e for e in events if e["e"] == "MARGIN_CALL")
    assert call["p"][0]["s"] == "BTCUSDT" and float(call["p"][0]["mm"]) > 0
    assert events[-1]["listenKey"] == listen
    fills = [e["o"] for e in events if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["x"] == "TRADE"]
    assert sum(float(f["l"]) for f in fills) == pytest.approx(0.5)
    assert fills[-1]["X"] == "FILLED" and fills[-1]["z"] == "0.500"


def test_every_order_endpoint_answers_as_binance(sim):
    def call(method, path, **params):
        st, _, body = signed(sim, "rest", method, path, **params)
        assert st == 200, (path, body)
        return body

    book = call("GET", "/fapi/v1/depth", symbol="ETHUSDT", limit=5)
    low = f"{float(book['bids'][0][0]) * 0.97:.2f}"  # rests: 3 % under the bid
    batch = json.dumps([{"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT",
                         "quantity": "0.05", "price": low, "timeInForce": "GTC"},
                        {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT",
                         "quantity": "0.05", "price": low + "1", "timeInForce": "GTC"}])
    placed, bad = call("POST", "/fapi/v1/batchOrders", batchOrders=batch)
    assert bad["code"] == -1111 and placed["status"] == "NEW"
    assert [o["orderId"] for o in call("GET", "/fapi/v1/openOrders", symbol="ETHUSDT")] == [
        placed["orderId"]]
    assert call("GET", "/fapi/v1/order", symbol="ETHUSDT",
                origClientOrderId=placed["clientOrderId"])["orderId"] == placed["orderId"]
    assert call("DELETE", "/fapi/v1/allOpenOrders", symbol="ETHUSDT")["code"] == 200
    assert call("GET", "/fapi/v1/openOrders") == []
    assert call("GET", "/fapi/v1/allOrders", symbol="ETHUSDT")[-1]["status"] == "CANCELED"
    st, _, body = signed(sim, "rest", "POST", "/fapi/v1/order", symbol="ETHUSDT", side="BUY",
                         type="LIMIT", quantity="0.05", price=book["asks"][0][0],
                         timeInForce="GTX")
    assert body["code"] == -5022
    fok = call("POST", "/fapi/v1/order", symbol="ETHUSDT", side="BUY", type="LIMIT",
               quantity="500", price=book["asks"][0][0], timeInForce="FOK",
               newOrderRespType="RESULT")
    assert fok["status"] == "EXPIRED" and fok["executedQty"] == "0.000"
    assert call("GET", "/fapi/v1/commissionRate", symbol="ETHUSDT") == {
        "symbol": "ETHUSDT", "makerCommissionRate": "0.0002", "takerCommissionRate": "0.0005"}
    brackets = call("GET", "/fapi/v1/leverageBracket", symbol="BTCUSDT")["brackets"]
    assert brackets[0]["maintMarginRatio"] == 0.004 and brackets[0]["initialLeverage"] == 125
    assert brackets[1]["cum"] == 50.0  # 50,000 × (0.5 % − 0.4 %)
    assert len(call("GET", "/fapi/v1/leverageBracket")) == 2
    assert call("GET", "/fapi/v1/positionSide/dual") == {"dualSidePosition": False}
    assert call("POST", "/fapi/v1/marginType", symbol="ETHUSDT",
                marginType="ISOLATED")["code"] == 200
    assert signed(sim, "rest", "POST", "/fapi/v1/marginType", symbol="ETHUSDT",
                  marginType="ISOLATED")[2]["code"] == -4046
    v2 = call("GET", "/fapi/v2/positionRisk", symbol="ETHUSDT")[0]
    assert v2["marginType"] == "isolated" and v2["positionAmt"] == "0.000"
    assert len(call("GET", "/fapi/v2/account")["positions"]) == 2
    for path in ("/fapi/v2/balance", "/fapi/v3/balance"):
        assert call("GET", path)[0]["asset"] == "USDT"
    listen = call("POST", "/fapi/v1/listenKey")["listenKey"]
    assert call("PUT", "/fapi/v1/listenKey") == {"listenKey": listen}
    assert call("DELETE", "/fapi/v1/listenKey") == {}
    assert signed(sim, "rest", "PUT", "/fapi/v1/listenKey")[2]["code"] == -1125


def _last(sim, symbol="BTCUSDT") -> float:
    return float(signed(sim, "algo", "GET", "/fapi/v1/ticker/price", symbol=symbol)[2]["price"])


def test_conditional_orders_take_binances_algo_order_api(sim):
    """Since 2025-12-09 /fapi/v1/order refuses conditional types (-4120); /fapi/v1/algoOrder
    takes them, counted as orders; open, all, query, cancel and cancel-all answer."""
    def call(method, path, status=200, **params):
        st, headers, body = signed(sim, "algo", method, path, **params)
        assert st == status, (path, body)
        return headers, body

    far = f"{_last(sim) * 0.8:.1f}"
    _, body = call("POST", "/fapi/v1/order", 400, symbol="BTCUSDT", side="SELL",
                   type="STOP_MARKET", quantity="0.01", stopPrice=far)
    assert body["code"] == -4120 and "Algo Order API" in body["msg"]
    _, body = call("POST", "/fapi/v1/algoOrder", 400, symbol="BTCUSDT", side="SELL",
                   type="STOP_MARKET", quantity="0.01", triggerPrice=far)
    assert body == {"code": -1102, "msg": "Mandatory parameter 'algoType' was not sent, was "
                                          "empty/null, or malformed."}
    headers, new = call("POST", "/fapi/v1/algoOrder", algoType="CONDITIONAL", symbol="BTCUSDT",
                        side="SELL", type="STOP_MARKET", quantity="0.010", triggerPrice=far,
                        clientAlgoId="my-stop-1")
    assert int(headers["x-mbx-order-count-10s"]) >= 1
    assert (new["algoStatus"], new["orderType"], new["triggerPrice"], new["clientAlgoId"]) == (
        "NEW", "STOP_MARKET", far, "my-stop-1")
    _, tp = call("POST", "/fapi/v1/algoOrder", algoType="CONDITIONAL", symbol="BTCUSDT",
                 side="BUY", type="TAKE_PROFIT", quantity="0.010", triggerPrice=far,
                 price=f"{_last(sim) * 0.97:.1f}", timeInForce="GTC")
    ids = [o["algoId"] for o in call("GET", "/fapi/v1/openAlgoOrders", symbol="BTCUSDT")[1]]
    assert ids == [new["algoId"], tp["algoId"]]
    _, got = call("GET", "/fapi/v1/algoOrder", clientAlgoId="my-stop-1")
    assert got["algoId"] == new["algoId"] and got["actualOrderId"] == ""
    _, gone = call("DELETE", "/fapi/v1/algoOrder", algoId=new["algoId"])
    assert gone == {"algoId": new["algoId"], "clientAlgoId": "my-stop-1", "code": "200",
                    "msg": "success"}
    assert call("DELETE", "/fapi/v1/algoOrder", 400, algoId=new["algoId"])[1]["code"] == -2011
    assert call("DELETE", "/fapi/v1/algoOpenOrders", symbol="BTCUSDT")[1]["code"] == 200
    assert call("GET", "/fapi/v1/openAlgoOrders")[1] == []
    every = call("GET", "/fapi/v1/allAlgoOrders", symbol="BTCUSDT")[1]
    assert [(o["algoId"], o["algoStatus"]) for o in every] == [
        (new["algoId"], "CANCELED"), (tp["algoId"], "CANCELED")]


def test_ccxt_stop_loss_triggers_on_the_simulator_and_closes_the_position(sim):
    import ccxt

    ex = _ccxt(ccxt, sim, "algoccxt")
    sym = "BTC/USDT:USDT"
    ex.create_order(sym, "market", "buy", 0.02)
    far = ex.create_order(sym, "market", "sell", 0.02, None,
                          {"stopLossPrice": _last(sim) * 0.8, "reduceOnly": True})
    assert far["status"] == "open" and far["info"]["orderType"] == "STOP_MARKET"
    assert far["triggerPrice"] == pytest.approx(float(far["info"]["triggerPrice"]))
    assert [o["id"] for o in ex.fetch_open_orders(sym, params={"trigger": True})] == [far["id"]]
    assert ex.cancel_order(far["id"], sym, {"trigger": True})["info"]["msg"] == "success"
    assert ex.fetch_order(far["id"], sym, {"trigger": True})["status"] == "canceled"
    trailing = ex.create_order(sym, "market", "sell", 0.02, None,
                               {"trailingPercent": 5, "reduceOnly": True})
    assert trailing["info"]["orderType"] == "TRAILING_STOP_MARKET"
    assert trailing["info"]["callbackRate"] == "5"
    ex.cancel_order(trailing["id"], sym, {"trigger": True})
    near = ex.create_order(sym, "market", "sell", 0.02, None,
                           {"stopLossPrice": _last(sim) - 0.1, "reduceOnly": True})
    deadline = time.monotonic() + 60
    while (o := ex.fetch_order(near["id"], sym, {"trigger": True}))["status"] == "open":
        assert time.monotonic() < deadline, "the stop never triggered"
        time.sleep(0.2)
    assert o["status"] == "closed" and o["info"]["actualOrderId"]
    assert ex.fetch_positions([sym]) == []                     # flat
    fill = ex.fetch_order(o["info"]["actualOrderId"], sym)
    assert fill["filled"] == 0.02 and fill["side"] == "sell" and fill["reduceOnly"] is True


def test_ccxt_pro_watch_orders_sees_a_conditional_order(sim):
    import ccxt.pro as ccxtpro

    async def main():
        ex = _ccxt(ccxtpro, sim, "algopro")
        sym = "ETH/USDT:USDT"
        try:
            await ex.load_markets()
            orders = asyncio.create_task(ex.watch_orders(sym))
            await asyncio.sleep(0.5)
            placed = await ex.create_order(sym, "market", "buy", 0.05, None,
                                           {"triggerPrice": round(_last(sim, "ETHUSDT") * 1.2,
                                                                  2)})
            got = await asyncio.wait_for(orders, 15)
        finally:
            await ex.close()
        return placed, got

    placed, got = asyncio.run(main())
    mine = [o for o in got if o["id"] == placed["id"]]
    assert mine and mine[-1]["status"] == "open" and mine[-1]["triggerPrice"] > 0


def test_official_sdk_algo_orders_and_their_user_stream_event(sim):
    from binance_sdk_derivatives_trading_usds_futures.rest_api.models import (
        NewAlgoOrderAlgoTypeEnum,
        NewAlgoOrderSideEnum,
        NewAlgoOrderTypeEnum,
    )

    async def main():
        async with _sdk_session(sim, "algosdk") as (rest, seen):
            new = (await asyncio.to_thread(
                rest.new_algo_order, algo_type=NewAlgoOrderAlgoTypeEnum.CONDITIONAL,
                symbol="BTCUSDT", side=NewAlgoOrderSideEnum.SELL,
                type=NewAlgoOrderTypeEnum.STOP_MARKET, quantity=0.01,
                trigger_price=round(_last(sim) * 0.8, 1))).data()
            query = (await asyncio.to_thread(rest.query_algo_order, algo_id=new.algo_id)).data()
            open_ = (await asyncio.to_thread(rest.current_all_algo_open_orders)).data()
            gone = (await asyncio.to_thread(rest.cancel_algo_order, algo_id=new.algo_id)).data()
            async with asyncio.timeout(15):
                while len(seen) < 2:
                    await asyncio.sleep(0.05)
        return new, query, open_, gone, seen

    new, query, open_, gone, seen = asyncio.run(main())
    assert new.algo_status == "NEW" and new.order_type == "STOP_MARKET"
    assert query.algo_id == new.algo_id and query.quantity == "0.010"
    assert [o.algo_id for o in open_] == [new.algo_id] and gone.code == "200"
    events = [e.actual_instance if hasattr(e, "actual_instance") else e for e in seen]
    assert [type(e).__name__ for e in events[:2]] == ["AlgoUpdate", "AlgoUpdate"]
    assert [e.o.X for e in events[:2]] == ["NEW", "CANCELED"]


def test_python_binance_algo_orders(sim):
    from binance import AsyncClient

    key, secret = ACCOUNTS["algopyb"]

    async def main():
        client = AsyncClient(key, secret)
        client.FUTURES_URL = f"{sim.rest_url}/fapi"
        try:
            placed = await client.futures_create_algo_order(
                algoType="CONDITIONAL", symbol="ETHUSDT", side="SELL",
                type="TAKE_PROFIT_MARKET", quantity=0.05,
                triggerPrice=f"{_last(sim, 'ETHUSDT') * 1.2:.2f}")
            open_ = await client.futures_get_open_algo_orders(symbol="ETHUSDT")
            gone = await client.futures_cancel_algo_order(algoId=placed["algoId"])
        finally:
            await client.close_connection()
        return placed, open_, gone

    placed, open_, gone = asyncio.run(main())
    assert placed["algoStatus"] == "NEW" and placed["orderType"] == "TAKE_PROFIT_MARKET"
    assert [o["algoId"] for o in open_] == [placed["algoId"]] and gone["code"] == "200"


def test_fills_are_trades_of_the_exchange_and_latency_delays_them(sim):
    import websockets

    from qdash.sim.latency import Latency

    def minute_volume():
        st, _, rows = signed(sim, "fills", "GET", "/fapi/v1/klines", symbol="BTCUSDT",
                             interval="1m", limit=1)
        return rows[0][0], float(rows[0][5])

    async def main():
        url = f"{sim.ws_url}/public/ws/btcusdt@trade"
        async with websockets.connect(url) as trades:
            await asyncio.sleep(0.2)
            opened, before = await asyncio.to_thread(minute_volume)
            saved, sim.order_latency = sim.order_latency, Latency("300")
            try:
                t0 = time.monotonic()
                st, _, o = await asyncio.to_thread(
                    signed, sim, "fills", "POST", "/fapi/v1/order", symbol="BTCUSDT",
                    side="SELL", type="MARKET", quantity="0.3")
                waited = time.monotonic() - t0
            finally:
                sim.order_latency = saved
            assert st == 200, o
            _, _, mine = await asyncio.to_thread(signed, sim, "fills", "GET",
                                                 "/fapi/v1/userTrades", symbol="BTCUSDT",
                                                 limit=1000)
            ids = {t["id"] for t in mine if t["orderId"] == o["orderId"]}
            seen = set()
            async with asyncio.timeout(10):
                async for raw in trades:
                    seen.add(json.loads(raw)["t"])
                    if ids <= seen:
                        break
            opened2, after = await asyncio.to_thread(minute_volume)
        return waited, ids, before, after, opened == opened2

    waited, ids, before, after, same_minute = asyncio.run(main())
    assert waited >= 0.3 and ids
    if same_minute:  # the kline counts them (unless a new minute began in between)
        assert after - before >= 0.3 - 1e-9


def test_cli_accounts_and_no_secret_in_output():
    import re
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "qdash", "sim", "--port", "0", "--rate", "20",
                             "--warmup", "0", "--api-key", "clikey0001", "--api-secret",
                             "cli-secret-xyz42", "--balance", "5000"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        port = int(re.search(r"ws://127\.0\.0\.1:(\d+)", line).group(1))
        q = f"timestamp={int(time.time() * 1000)}"
        q += "&signature=" + _sign("cli-secret-xyz42", q)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/fapi/v2/balance?{q}",
                                     headers={"X-MBX-APIKEY": "clikey0001"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert json.loads(r.read())[0]["balance"] == "5000.00000000"
    finally:
        proc.send_signal(signal.SIGINT)
        out = line + proc.communicate(timeout=30)[0]
    assert "published" in out and "cli-secret-xyz42" not in out and "clikey0001" not in out
