"""The simulator driven by Binance's official SDK (``binance-sdk-derivatives-trading-usds-
futures``): REST through ``ConfigurationRestAPI(base_path=...)``, streams through
``ConfigurationWebSocketStreams(stream_url=...)`` and ``create_connection()`` (which opens the
routed ``/market``, ``/public`` and ``/private`` combined-stream endpoints)."""

import asyncio

import pytest

from qdash.sim.exchange import SimExchange
from qdash.sim.universe import MINUTE_MS

pytestmark = pytest.mark.integration
def _client(sim):
    # imported here, not at collection (the SDK's imports cost the unit tier a second)
    import binance_sdk_derivatives_trading_usds_futures as sdk
    from binance_common.configuration import ConfigurationRestAPI, ConfigurationWebSocketStreams

    return sdk.DerivativesTradingUsdsFutures(
        config_rest_api=ConfigurationRestAPI(base_path=sim.rest_url, retries=0),
        config_ws_streams=ConfigurationWebSocketStreams(stream_url=sim.ws_url,
                                                        reconnect_attempts=1))


def test_official_sdk_rest_and_streams():
    from binance_sdk_derivatives_trading_usds_futures.rest_api.models import (
        KlineCandlestickDataIntervalEnum,
    )
    from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
        KlineCandlestickStreamsIntervalEnum,
    )

    async def main():
        async with SimExchange(["BTCUSDT", "ETHUSDT"], rate=200, seed=9, universe=2,
                               weight_limit=100_000) as sim:
            client = _client(sim)
            info = (await asyncio.to_thread(client.rest_api.exchange_information)).data()
            names = {s.symbol for s in info.symbols}
            assert names == set(sim.symbols)
            btc = next(s for s in info.symbols if s.symbol == "BTCUSDT")
            assert btc.margin_asset == "USDT" and btc.contract_type == "PERPETUAL"
            assert {f.filter_type for f in btc.filters} >= {"PRICE_FILTER", "LOT_SIZE",
                                                            "MARKET_LOT_SIZE", "MIN_NOTIONAL"}
            start = sim.past.end_ms - 100 * MINUTE_MS
            resp = await asyncio.to_thread(
                client.rest_api.kline_candlestick_data, "ETHUSDT",
                KlineCandlestickDataIntervalEnum.INTERVAL_1m, start, None, 100)
            rows = [r.actual_instance if hasattr(r, "actual_instance") else r
                    for r in resp.data()]
            assert len(rows) == 100
            first = [x.actual_instance if hasattr(x, "actual_instance") else x for x in rows[0]]
            assert first[0] == start and first[6] == start + MINUTE_MS - 1
            assert int(resp.headers.get("X-MBX-USED-WEIGHT-1M", resp.headers.get(
                "x-mbx-used-weight-1m"))) >= 2

            connection = await client.websocket_streams.create_connection()
            assert connection is not None  # the /private route is accepted too
            got = {"kline": asyncio.Event(), "aggTrade": asyncio.Event()}
            seen = {}

            def on(kind):
                def cb(msg):
                    seen[kind] = msg
                    got[kind].set()
                return cb
            try:
                kline = await connection.kline_candlestick_streams(
                    symbol="btcusdt", interval=KlineCandlestickStreamsIntervalEnum.INTERVAL_1m)
                kline.on("message", on("kline"))
                agg = await connection.aggregate_trade_streams(symbol="ethusdt")
                agg.on("message", on("aggTrade"))
                async with asyncio.timeout(15):
                    await got["kline"].wait()
                    await got["aggTrade"].wait()
            finally:
                await connection.close_connection(close_session=True)
            k = seen["kline"]
            assert k.e == "kline" and k.s == "BTCUSDT" and k.k.i == "1m"
            assert k.k.t % MINUTE_MS == 0 and float(k.k.h) >= float(k.k.l)
            a = seen["aggTrade"]
            assert a.e == "aggTrade" and a.s == "ETHUSDT" and a.l >= a.f
    asyncio.run(main())
