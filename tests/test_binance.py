"""qdash.binance without sockets: the pagers driven by hand, the schema both ways, the limits."""

import asyncio
import pathlib

import numpy as np
import pytest

from qdash.binance import limits, pages, schema

QDASH = pathlib.Path(__file__).resolve().parents[1] / "qdash"


def _serve(rows_by_call):
    calls = []

    def get(path, params):
        calls.append((path, dict(params)))
        return rows_by_call[len(calls) - 1]
    return get, calls


def test_agg_trades_pager_windows_then_from_id():
    full = [{"a": i, "T": 3_600_000 + i, "f": i, "l": i, "p": "1", "q": "1", "m": False}
            for i in range(4)]
    get, calls = _serve([[], full[:3], full[3:]])
    got = list(pages.pages(pages.request_agg_trades("BTCUSDT", 0, 8_000_000, limit=3,
                                                    clock=lambda: 1e6), get))
    assert [c[1].get("fromId") for c in calls] == [None, None, 3]
    first, second = calls[0][1], calls[1][1]
    assert first["endTime"] - first["startTime"] == limits.AGG_WINDOW_MS < 3_600_000
    assert second["startTime"] == first["endTime"] + 1
    assert [(p.start, p.end) for p in got] == [(0, 3_600_000), (3_600_000, 3_600_002),
                                                (3_600_002, 8_000_000)]
    assert [r["a"] for p in got for r in p.rows] == [0, 1, 2, 3]
    assert got[0].sent_ms == 1_000_000_000


def test_kline_pager_pages_by_least_weight_and_stops_on_a_short_page():
    tf = 60_000
    rows = [[i * tf] + ["1"] * 5 + [i * tf + tf - 1, "1", 1, "1", "1", "0"] for i in range(600)]
    get, calls = _serve([rows[:499], rows[499:600]])
    got = list(pages.pages(pages.request_klines("BTCUSDT", "1m", 0, 600 * tf), get))
    assert [c[1]["limit"] for c in calls] == [499, 499]
    assert calls[0][0] == limits.KLINES and calls[1][1]["startTime"] == 499 * tf
    assert [(p.start, p.end) for p in got] == [(0, 499 * tf), (499 * tf, 600 * tf)]


def test_async_driver_sends_the_same_requests():
    rows = [{"fundingTime": 5, "fundingRate": "0.0001", "markPrice": ""}]

    async def get(path, params):
        assert path == limits.FUNDING_RATE
        return rows

    async def collect():
        return [p async for p in pages.apages(pages.request_funding("X", 0, 10), get)]
    got = asyncio.run(collect())
    assert len(got) == 1 and got[0].rows == rows
    f = schema.funding_frame(got[0].rows)
    assert f["funding_time"].tolist() == [5] and np.isnan(f["mark_price"].iloc[0])


def test_kline_rows_and_frame_round_trip():
    bars = {"open_time": np.array([0, 60_000]), "open": np.array([1.5, 2.0]),
            "high": np.array([2.0, 2.5]), "low": np.array([1.0, 1.5]),
            "close": np.array([2.0, 2.25]), "volume": np.array([3.0, 0.0]),
            "quote_volume": np.array([4.5, 0.0]), "trades": np.array([2, 0]),
            "taker_buy_volume": np.array([1.0, 0.0]),
            "taker_buy_quote_volume": np.array([1.5, 0.0])}
    rows = schema.kline_rows(bars, bars["open_time"] + 59_999, 2, 3)
    assert len(rows[0]) == len(schema.KLINE_FIELDS) and rows[0][6] == 59_999
    frame = schema.kline_frame(rows)
    assert frame.index.tolist() == [0, 60_000]
    assert frame["close"].tolist() == [2.0, 2.25] and frame["trades"].tolist() == [2, 0]
    assert frame["vwap"].iloc[0] == 1.5 and np.isnan(frame["vwap"].iloc[1])
    mark = schema.kline_rows(bars, bars["open_time"] + 59_999, 2, 3, volumes=False)
    assert mark[0][5] == "0" and schema.kline_frame(mark, mark=True)["volume"].sum() == 0


def test_closed_kline_reads_raw_and_enveloped_events():
    k = ('{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":60000,"T":119999,"s":"BTCUSDT","i":"1m",'
         '"o":"1","c":"2.5","h":"3","l":"1","v":"1","n":1,"x":%s,"q":"7.5"}}')
    assert schema.closed_kline(k % "false") is None
    got = schema.closed_kline('{"stream":"btcusdt@kline_1m","data":%s}' % (k % "true"))
    assert got == ("BTCUSDT", "1m", 60_000, 2.5, 7.5)
    assert schema.closed_kline('{"result":null,"id":1}') is None


def test_agg_ticks_are_one_tick_per_trade_id():
    rows = [{"a": 7, "p": "10.5", "q": "3", "f": 100, "l": 102, "T": 5, "m": True}]
    ticks = schema.agg_ticks(rows, "ETHUSDT", "binance:rest-agg")
    assert ticks["trade_id"].tolist() == [100, 101, 102]
    assert ticks["qty"].tolist() == [1.0, 1.0, 1.0] and ticks["is_buyer_maker"].eq(1).all()
    with pytest.raises(ValueError, match="last trade id"):
        schema.expand_agg_trades("X", [1], [5], [4], [1.0], [1.0])


def test_premium_index_and_archive_paths():
    e = {"symbol": "BTCUSDT", "markPrice": "100.5", "indexPrice": "100.0",
         "lastFundingRate": "0.0001", "nextFundingTime": 28_800_000, "time": 1}
    assert schema.premium_index(e).mark_price == 100.5
    assert pages.query_premium_index("BTCUSDT") == (limits.PREMIUM_INDEX, {"symbol": "BTCUSDT"})
    assert schema.archive_path("klines", "BTCUSDT", "1m", "2024-07-19") == \
        "data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-07-19.zip"
    assert schema.archive_path("aggTrades", "BTCUSDT", None, "2024-07") == \
        "data/futures/um/monthly/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-07.zip"


def test_one_client_module_handles_retry_after_and_one_aggtrades_window():
    # the simulator (qdash/sim/ and its command, cli/sim.py) is the server side
    outside_sim = [p for p in QDASH.rglob("*.py")
                   if "sim" not in p.relative_to(QDASH).with_suffix("").parts]
    retry = {p.relative_to(QDASH).as_posix() for p in outside_sim
             if "retry-after" in p.read_text().lower()}
    assert retry == {"binance/rest.py"}
    window = {p.relative_to(QDASH).as_posix() for p in outside_sim
              if "3_599" in p.read_text() or "3_600_000 -" in p.read_text()}
    assert window == {"binance/limits.py"}
