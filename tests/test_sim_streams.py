"""The simulator's market streams: names, Binance-shaped events (checked against the models of
Binance's official SDK), the live minute book, the synthetic book's update ids, and over loopback
websockets: klines closing equal to REST, every stream kind delivering, diff depth rebuilding the
book."""

import asyncio
import json
import time
import urllib.request

import binance_sdk_derivatives_trading_usds_futures.websocket_streams.models as M
import numpy as np
import pytest
from websockets.asyncio.client import connect

from qdash.binance.schema import kline_rows
from qdash.sim.exchange import SimExchange
from qdash.sim.minutes import MinuteBook, combine
from qdash.sim.orderbook import SyntheticBook
from qdash.sim.rest import live_bars
from qdash.sim.streams import (
    book_ticker_event,
    continuous_kline_event,
    depth_event,
    kline_event,
    mark_price_event,
    mini_ticker_event,
    parse_stream,
    stream_route,
    ticker_event,
)
from qdash.sim.universe import INTERVALS, interval_close

SYMBOLS = {"BTCUSDT", "ETHUSDT"}


def sdk_roundtrip(model, event):
    """The event parses under the SDK's strict model with no unknown field, and back."""
    m = model.from_dict(event)
    assert m.additional_properties == {}, m.additional_properties
    if "k" in event:
        assert m.k.additional_properties == {}
    assert m.to_dict() == event


# --- names ----------------------------------------------------------------------------------
def test_stream_names_kinds_routes_and_periods():
    for i in INTERVALS:
        s = parse_stream(f"btcusdt@kline_{i}", SYMBOLS)
        assert (s.kind, s.symbol, s.interval, s.route) == ("kline", "BTCUSDT", i, "market")
    cases = {"btcusdt@markPrice": ("markPrice", 3000, "market"),
             "btcusdt@markPrice@1s": ("markPrice", 1000, "market"),
             "!markPrice@arr": ("markPriceArr", 3000, "market"),
             "!markPrice@arr@1s": ("markPriceArr", 1000, "market"),
             "ethusdt@bookTicker": ("bookTicker", 0, "public"),
             "!bookTicker": ("allBookTicker", 5000, "public"),
             "ethusdt@depth": ("depth", 250, "public"),
             "ethusdt@depth@100ms": ("depth", 100, "public"),
             "ethusdt@depth@500ms": ("depth", 500, "public"),
             "ethusdt@depth10": ("partialDepth", 250, "public"),
             "ethusdt@depth20@100ms": ("partialDepth", 100, "public"),
             "ethusdt@ticker": ("ticker", 2000, "market"),
             "ethusdt@miniTicker": ("miniTicker", 2000, "market"),
             "!ticker@arr": ("tickerArr", 1000, "market"),
             "!miniTicker@arr": ("miniTickerArr", 1000, "market"),
             "btcusdt_perpetual@continuousKline_4h": ("continuousKline", 250, "market"),
             "btcusdt@trade": ("trade", 0, "public"),
             "btcusdt@aggTrade": ("aggTrade", 0, "market")}
    for name, (kind, period, route) in cases.items():
        s = parse_stream(name, SYMBOLS)
        assert (s.kind, s.period_ms, s.route) == (kind, period, route), name
        assert stream_route(name) == route
    assert parse_stream("ethusdt@depth5", SYMBOLS).levels == 5
    for bad in ("BTCUSDT@trade", "btcusdt@kline_2m", "btcusdt@kline_1M ", "solusdt@trade",
                "btcusdt@depth15", "btcusdt@depth@1000ms", "btcusdt@markPrice@3s",
                "!ticker", "btcusdt@forceOrder", "btcusdt", "btcusdt@", "!markPrice@arr@2s",
                "btcusdt@bookticker", "btcusdt_current_quarter@continuousKline_1m"):
        assert parse_stream(bad, SYMBOLS) is None, bad


# --- events ---------------------------------------------------------------------------------
def _trades(seed=3, n=4000, t0=1_721_347_200_000):
    rng = np.random.default_rng(seed)
    ts = t0 + np.sort(rng.integers(0, 5 * 60_000, n))
    price = np.round(60_000 + np.cumsum(rng.normal(0, 2, n)), 1)
    qty = np.round(rng.integers(1, 500, n) * 0.001, 3)
    m = rng.integers(0, 2, n).astype(np.int8)
    ids = 1000 + np.arange(n, dtype=np.int64)
    return ts, ids, price, qty, m


def test_minute_book_equals_the_ledger_bars_whatever_the_batches():
    ts, ids, price, qty, m = _trades()
    ref = live_bars({"x": np.zeros(len(ts), np.int8), "ts": ts, "price": price, "qty": qty,
                     "m": m}, "1m", 0, 2 ** 62)
    book = MinuteBook()
    cuts = np.sort(np.random.default_rng(1).choice(len(ts), 40, replace=False))
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(ts)]):
        book.append(ts[a:b], ids[a:b], price[a:b], qty[a:b], m[a:b])
    got = book.bars(0, 2 ** 62)
    for k, v in ref.items():
        np.testing.assert_allclose(got[k], v, rtol=1e-12, err_msg=k)
    minute = got["open_time"][2]
    in_min = (ts >= minute) & (ts < minute + 60_000)
    assert (got["first_id"][2], got["last_id"][2]) == (ids[in_min][0], ids[in_min][-1])
    # a 5-minute bar from the minutes equals the REST row built from the trades
    bar = combine(book.bars(ts[0] // 300_000 * 300_000, ts[0] // 300_000 * 300_000 + 299_999))
    ev = kline_event("BTCUSDT", "5m", bar, True, 123, 1, 3)
    bars = live_bars({"x": np.zeros(len(ts), np.int8), "ts": ts, "price": price, "qty": qty,
                      "m": m}, "5m", 0, 2 ** 62)
    row = kline_rows(bars, interval_close(bars["open_time"], "5m"), 1, 3)[0]
    k = ev["k"]
    assert [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], k["n"], k["V"],
            k["Q"]] == row[:11]
    assert (k["f"], k["L"], k["x"]) == (ids[0], ids[-1], True)


def test_events_have_binance_fields_and_types():
    bar = {"open_time": 1_721_347_200_000, "open": 64000.1, "high": 64010.0, "low": 63990.5,
           "close": 64001.0, "volume": 12.345, "quote_volume": 790_000.1234,
           "trades": 321, "taker_buy_volume": 6.0, "taker_buy_quote_volume": 384_000.0,
           "first_id": 10, "last_id": 330}
    ev = kline_event("BTCUSDT", "1m", bar, False, 1_721_347_201_000, 1, 3)
    assert ev["k"]["T"] == 1_721_347_259_999 and ev["k"]["q"] == "790000.1234"
    sdk_roundtrip(M.KlineCandlestickStreamsResponse, ev)
    ev = continuous_kline_event("BTCUSDT", "1M", bar, True, 1, 1, 3)
    assert ev["k"]["T"] == 1_722_470_399_999  # 2024-07-31T23:59:59.999
    sdk_roundtrip(M.ContinuousContractKlineCandlestickStreamsResponse, ev)
    premium = {"symbol": "BTCUSDT", "markPrice": "64000.10000000", "indexPrice": "63990.1",
               "estimatedSettlePrice": "63990.1", "lastFundingRate": "0.00010000",
               "interestRate": "0.00010000", "nextFundingTime": 1_721_376_000_000, "time": 5}
    sdk_roundtrip(M.MarkPriceStreamResponse, mark_price_event(premium, 7))
    sdk_roundtrip(M.MarkPriceStreamForAllMarketResponseInner, mark_price_event(premium, 7))
    sdk_roundtrip(M.IndividualSymbolBookTickerStreamsResponse,
                  book_ticker_event("BTCUSDT", 9, ("1.0", "2"), ("1.1", "3"), 7))
    sdk_roundtrip(M.AllBookTickersStreamResponse,
                  book_ticker_event("BTCUSDT", 9, ("1.0", "2"), ("1.1", "3"), 7))
    d = depth_event("BTCUSDT", 5, 8, 4, [["1.0", "2"]], [["1.1", "0"]], 7)
    sdk_roundtrip(M.DiffBookDepthStreamsResponse, d)
    sdk_roundtrip(M.PartialBookDepthStreamsResponse, d)
    t24 = {"symbol": "BTCUSDT", "priceChange": "1.0", "priceChangePercent": "0.002",
           "weightedAvgPrice": "64000.0", "lastPrice": "64001.0", "lastQty": "0.003",
           "openPrice": "64000.0", "highPrice": "64100.0", "lowPrice": "63000.0",
           "volume": "100.000", "quoteVolume": "6400000.00", "openTime": 1, "closeTime": 2,
           "firstId": 3, "lastId": 4, "count": 2}
    sdk_roundtrip(M.IndividualSymbolTickerStreamsResponse, ticker_event(t24, 7))
    sdk_roundtrip(M.AllMarketTickersStreamsResponseInner, ticker_event(t24, 7))
    sdk_roundtrip(M.IndividualSymbolMiniTickerStreamResponse, mini_ticker_event(t24, 7))
    sdk_roundtrip(M.AllMarketMiniTickersStreamResponseInner, mini_ticker_event(t24, 7))


def _apply(book: dict, levels):
    for p, q in levels:
        if q == 0:
            book.pop(p, None)
        else:
            book[p] = q


def test_synthetic_book_snapshot_plus_diffs_rebuilds_the_book():
    """Binance's procedure: take a snapshot, drop diffs with u < lastUpdateId, apply the rest
    (pu continuity); the local book equals the exchange's at every later update id."""
    book = SyntheticBook(seed=1, symbol="BTCUSDT", unit_steps=40, levels=200)
    rng = np.random.default_rng(0)
    bid, t = 640_000, 1_721_347_200_000
    book.refresh(bid, t)
    sent_u = book.update_id
    events = []
    snapshot = None
    for step in range(300):
        t += int(rng.integers(20, 400))
        bid += int(rng.integers(-3, 4))
        book.refresh(bid, t)
        if step % 3 == 0 and book.update_id > sent_u:  # a diff event every third step
            b, a = book.diff(sent_u)
            events.append((sent_u + 1, book.update_id, sent_u, b, a))
            book.forget(sent_u)
            sent_u = book.update_id
        if step == 100:
            bids, asks = book.top(200)
            snapshot = (book.update_id, dict(bids), dict(asks))
    b, a = book.diff(sent_u)
    events.append((sent_u + 1, book.update_id, sent_u, b, a))
    last_id, local_b, local_a = snapshot
    live = [e for e in events if e[1] >= last_id]
    assert live[0][0] <= last_id + 1 <= live[0][1] + 1
    for prev, cur in zip(live, live[1:]):
        assert cur[2] == prev[1]  # pu continuity
    for _, _, _, b, a in live:
        _apply(local_b, b)
        _apply(local_a, a)
    bids, asks = book.top(200)
    assert book.update_id == live[-1][1]
    assert sorted(local_b.items(), reverse=True) == bids
    assert sorted(local_a.items()) == asks
    # a move of one tick changes few levels, not the whole ladder
    before = book.update_id
    book.refresh(bid + 1, t + 50)
    b, a = book.diff(before)
    assert book.update_id == before + 1 and len(b) + len(a) < 40


# --- over websockets ------------------------------------------------------------------------
def _get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


async def _collect(url, until, timeout=8.0):
    """Combined-stream frames until ``until(frames)`` is true (or the timeout)."""
    out = []
    async with connect(url, max_size=None) as ws:
        try:
            async with asyncio.timeout(timeout):
                while not until(out):
                    out.append(json.loads(await ws.recv()))
        except TimeoutError:
            pass
    return out


@pytest.mark.integration
def test_kline_streams_close_bars_equal_to_rest_klines():
    """The sim starts 2.5 s before a UTC midnight: the 1m, 5m, 1h and 1d bars close together;
    each closing event (x true) equals the REST kline of that bar, past part included."""
    boundary = 1_721_347_200_000  # 2024-07-19T00:00:00Z
    ivs = ("1m", "5m", "1h", "1d")

    async def main():
        async with SimExchange(["BTCUSDT", "ETHUSDT"], rate=200, seed=2,
                               start_ms=boundary - 2500) as sim:
            names = "/".join(f"btcusdt@kline_{i}" for i in ivs)
            frames = await _collect(
                f"{sim.ws_url}/market/stream?streams={names}",
                lambda fs: sum(f["data"]["k"]["x"] for f in fs) >= len(ivs))
            base = sim.rest_url
            closed = {f["data"]["k"]["i"]: f["data"] for f in frames if f["data"]["k"]["x"]}
            assert set(closed) == set(ivs)
            for i in ivs:
                k = closed[i]["k"]
                ks = [f["data"]["k"] for f in frames if f["data"]["k"]["i"] == i]
                forming = ks[:[f["x"] for f in ks].index(True)]  # the next bar's may follow
                assert forming and all(f["t"] == k["t"] for f in forming)
                assert all(f["t"] == boundary for f in ks[len(forming) + 1:])
                assert k["T"] == boundary - 1 and closed[i]["E"] >= boundary
                row = await asyncio.to_thread(
                    _get, f"{base}/fapi/v1/klines?symbol=BTCUSDT&interval={i}"
                          f"&startTime={k['t']}&limit=1")
                assert [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"],
                        k["n"], k["V"], k["Q"]] == row[0][:11], i
            led = sim.ledger.frame("BTCUSDT", market_only=True)
            minute = led[(led["ts"] >= boundary - 60_000) & (led["ts"] < boundary)]
            assert closed["1m"]["k"]["f"] == minute["trade_id"].iloc[0]
            assert closed["1m"]["k"]["L"] == minute["trade_id"].iloc[-1]
            assert closed["1h"]["k"]["f"] < closed["1m"]["k"]["f"]  # from the past
            assert closed["1h"]["k"]["L"] == closed["1m"]["k"]["L"]
            assert closed["1d"]["k"]["n"] > 1000
    asyncio.run(main())


@pytest.mark.integration
def test_every_stream_kind_delivers_binance_shaped_events():
    market = ["btcusdt@markPrice@1s", "!markPrice@arr@1s", "btcusdt@ticker",
              "btcusdt@miniTicker", "!ticker@arr", "!miniTicker@arr", "ethusdt@kline_1m",
              "ethusdt_perpetual@continuousKline_1h", "btcusdt@aggTrade"]
    public = ["btcusdt@bookTicker", "!bookTicker", "btcusdt@depth5@100ms",
              "btcusdt@depth20", "btcusdt@depth@100ms", "btcusdt@trade"]
    models = {"btcusdt@markPrice@1s": M.MarkPriceStreamResponse,
              "btcusdt@ticker": M.IndividualSymbolTickerStreamsResponse,
              "btcusdt@miniTicker": M.IndividualSymbolMiniTickerStreamResponse,
              "ethusdt@kline_1m": M.KlineCandlestickStreamsResponse,
              "ethusdt_perpetual@continuousKline_1h":
                  M.ContinuousContractKlineCandlestickStreamsResponse,
              "btcusdt@bookTicker": M.IndividualSymbolBookTickerStreamsResponse,
              "!bookTicker": M.AllBookTickersStreamResponse,
              "btcusdt@depth5@100ms": M.PartialBookDepthStreamsResponse,
              "btcusdt@depth20": M.PartialBookDepthStreamsResponse,
              "btcusdt@depth@100ms": M.DiffBookDepthStreamsResponse}
    arrays = {"!markPrice@arr@1s": M.MarkPriceStreamForAllMarketResponseInner,
              "!ticker@arr": M.AllMarketTickersStreamsResponseInner,
              "!miniTicker@arr": M.AllMarketMiniTickersStreamResponseInner}

    async def main():
        async with SimExchange(["BTCUSDT", "ETHUSDT"], rate=200, seed=4, universe=2) as sim:
            u = sim.ws_url

            def all_seen(names):
                return lambda fs: {f["stream"] for f in fs} >= set(names)
            got_m, got_p = await asyncio.gather(
                _collect(f"{u}/market/stream?streams={'/'.join(market)}", all_seen(market)),
                _collect(f"{u}/public/stream?streams={'/'.join(public)}", all_seen(public)))
            # the wrong route stays silent, as on Binance
            wrong = await _collect(f"{u}/public/stream?streams=btcusdt@markPrice@1s",
                                   lambda fs: False, timeout=1.5)
            pi = await asyncio.to_thread(_get, f"{sim.rest_url}/fapi/v1/premiumIndex"
                                               "?symbol=BTCUSDT")
        assert wrong == []
        frames = got_m + got_p
        assert {f["stream"] for f in frames} == set(market + public)
        for f in frames:
            name, data = f["stream"], f["data"]
            if name in models:
                sdk_roundtrip(models[name], data)
            elif name in arrays:
                assert [d["s"] for d in data] == sim.symbols
                for d in data:
                    sdk_roundtrip(arrays[name], d)
        mp = [f["data"] for f in frames if f["stream"] == "btcusdt@markPrice@1s"][-1]
        assert mp["T"] == pi["nextFundingTime"] and mp["r"] == pi["lastFundingRate"]
        assert abs(float(mp["p"]) / float(pi["markPrice"]) - 1) < 0.01
        all_books = {f["data"]["s"] for f in frames if f["stream"] == "!bookTicker"}
        assert all_books == set(sim.symbols)
        for f in frames:
            if f["stream"] == "btcusdt@depth5@100ms":
                d = f["data"]
                assert len(d["b"]) == len(d["a"]) == 5 and d["pu"] < d["U"] <= d["u"]
                assert float(d["b"][0][0]) < float(d["a"][0][0])
    asyncio.run(main())


@pytest.mark.integration
def test_diff_depth_with_a_rest_snapshot_rebuilds_the_partial_depth():
    """Binance's local order book procedure on the simulator: buffer ``@depth@100ms``, fetch
    ``/fapi/v1/depth?limit=1000``, apply the events after it; whenever a ``@depth20@100ms``
    event carries the same ``u``, the local top 20 levels equal it."""
    async def main():
        async with SimExchange(["BTCUSDT"], rate=100, seed=5) as sim:
            url = (f"{sim.ws_url}/public/stream?streams=btcusdt@depth@100ms/"
                   "btcusdt@depth20@100ms")
            async with connect(url, max_size=None) as ws:
                first = json.loads(await ws.recv())
                snap = await asyncio.to_thread(
                    _get, f"{sim.rest_url}/fapi/v1/depth?symbol=BTCUSDT&limit=1000")
                bids = {float(p): q for p, q in snap["bids"]}
                asks = {float(p): q for p, q in snap["asks"]}
                last_u, synced, checked = snap["lastUpdateId"], False, 0
                frames = [first]
                async with asyncio.timeout(10):
                    while checked < 5:
                        f = frames.pop(0) if frames else json.loads(await ws.recv())
                        d = f["data"]
                        if f["stream"] == "btcusdt@depth@100ms":
                            if d["u"] < snap["lastUpdateId"]:
                                continue
                            if not synced:
                                assert d["U"] <= snap["lastUpdateId"] + 1 <= d["u"] + 1
                                synced = True
                            else:
                                assert d["pu"] == last_u
                            for side, levels in ((bids, d["b"]), (asks, d["a"])):
                                _apply(side, [(float(p), float(q) and q) for p, q in levels])
                            last_u = d["u"]
                        elif synced and d["u"] == last_u:
                            top_b = [[f"{p:.1f}", q] for p, q in
                                     sorted(bids.items(), reverse=True)[:20]]
                            top_a = [[f"{p:.1f}", q] for p, q in sorted(asks.items())[:20]]
                            assert (top_b, top_a) == (d["b"], d["a"])
                            checked += 1
    asyncio.run(main())


@pytest.mark.integration
def test_trade_times_are_the_wall_clock_at_publication():
    """``@trade`` frames arrive on loopback within ~100 ms of their trade time ``T``: the
    simulator stamps trades with the wall time it publishes them at, however long building the
    exchange (its warm-up) and starting it took."""
    async def main():
        sim = SimExchange(["BTCUSDT", "ETHUSDT"], rate=300, seed=7)
        await asyncio.sleep(1.0)  # the time between building and starting, e.g. a CLI's
        async with sim:
            url = f"{sim.ws_url}/public/stream?streams=btcusdt@trade/ethusdt@trade"
            lags = []
            async with connect(url, max_size=None) as ws, asyncio.timeout(10):
                while len(lags) < 200:
                    data = json.loads(await ws.recv())["data"]
                    lags.append(time.time() * 1000 - data["T"])
            return np.array(lags)

    lags = asyncio.run(main())
    assert lags.min() > -5  # no trade from the future (clocks agree on one machine)
    assert np.median(lags) < 100 and np.percentile(lags, 95) < 150, np.percentile(lags, [5, 50, 95])
