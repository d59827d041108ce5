"""qdash.feeds.decode against real Binance captures and hand-made frames."""

import gzip
import json

import numpy as np
import pandas as pd
import pytest
from conftest import JULY, JULY_TRADES

from qdash.feeds.decode import decode_frames, decode_payloads
from qdash.model import TICK_COLUMNS


def _trade(t=1, p="100.5", q="0.25", x="MARKET", m=True, s="BTCUSDT", T=1721347022707):
    return {"e": "trade", "E": T + 1, "T": T, "s": s, "t": t, "p": p, "q": q, "X": x, "m": m}


def _csv_reference():
    df = pd.read_csv(JULY / f"{JULY_TRADES}.csv.gz", dtype={"price": str, "qty": str})
    return df


def test_real_trade_payloads_match_the_csv_exactly():
    lines = gzip.open(JULY / f"{JULY_TRADES}.raw.ndjson.gz").read().splitlines()
    res = decode_frames(lines)
    ref = _csv_reference()
    assert list(res.ticks.columns) == TICK_COLUMNS
    assert res.counts == {"frames": 24356, "trade": 24356, "ticks": 24356}
    t = res.ticks
    assert (t["symbol"].to_numpy() == ref["symbol"].to_numpy()).all()
    assert (t["trade_id"].to_numpy() == ref["trade_id"].to_numpy()).all()
    assert (t["ts"].to_numpy() == ref["trade_time_ms"].to_numpy()).all()
    # prices parse exactly like float(str)
    assert (t["price"].to_numpy() == np.array([float(x) for x in ref["price"]])).all()
    assert (t["qty"].to_numpy() == np.array([float(x) for x in ref["qty"]])).all()
    assert (t["is_buyer_maker"].to_numpy() == ref["is_buyer_maker"].to_numpy().astype(int)).all()
    assert (res.lines == np.arange(1, 24357)).all()


def test_raw_capture_with_prefix_envelope_and_other_streams():
    lines = []
    for name in ("usdm_ethusdt_20240718.gz", "usdm_ethusdt_20240719.gz"):
        lines += gzip.open(JULY / name).read().splitlines()
    res = decode_frames(lines)
    # independent count: every line mentioning the trade stream
    expected_trades = sum(b'"stream":"ethusdt@trade"' in ln for ln in lines)
    assert res.counts["trade"] == res.counts["ticks"] == expected_trades == 13655
    assert res.counts["skipped:bookTicker"] == sum(b"@bookTicker" in ln for ln in lines)
    assert res.counts["skipped:depthUpdate"] == sum(b'"e":"depthUpdate"' in ln for ln in lines)
    assert res.counts["frames"] == len(lines)
    assert res.malformed == 0
    ref = _csv_reference()
    eth = ref[ref["symbol"] == "ETHUSDT"]
    assert (res.ticks["trade_id"].to_numpy() == eth["trade_id"].to_numpy()).all()


def test_trade_types_and_bad_values_are_filtered_and_counted():
    frames = [json.dumps(_trade(1)), json.dumps(_trade(2, p="0", q="0", x="NA")),
              json.dumps(_trade(3, x="ADL")), json.dumps(_trade(4, x="INSURANCE_FUND")),
              json.dumps(_trade(5, p="0")), json.dumps(_trade(6, q="-1")),
              json.dumps(_trade(7, p="nan")), json.dumps(_trade(8, s="ETHUSDT"))]
    res = decode_frames(frames)
    assert res.ticks["trade_id"].tolist() == [1, 8]
    c = res.counts
    assert (c["filtered:X=NA"], c["filtered:X=ADL"], c["filtered:X=INSURANCE_FUND"]) == (1, 1, 1)
    assert (c["filtered:price<=0"], c["filtered:qty<=0"], c["filtered:non-finite"]) == (1, 1, 1)
    assert res.filtered[("BTCUSDT", "X=NA")] == 1
    assert "malformed" not in c


def test_malformed_frames_are_counted_never_fatal():
    good = json.dumps(_trade(1))
    frames = [good, "{not json", json.dumps({"e": "trade", "T": 1, "s": "BTCUSDT"}),
              json.dumps(_trade(2, p="abc")), json.dumps({**_trade(3), "t": "x"}), "", "   ",
              json.dumps(_trade(4)), "[1, 2]"]
    res = decode_frames(frames, first_line=10)
    assert res.ticks["trade_id"].tolist() == [1, 4]
    assert res.counts["malformed"] == 5
    assert res.counts["frames"] == 7  # blank lines are not frames
    assert [(e.line, e.field) for e in res.errors] == [(11, None), (12, "t"), (13, "p"), (14, "t"),
                                                       (18, None)]
    assert res.lines.tolist() == [10, 17]
    assert len(decode_frames(frames, max_errors=2).errors) == 2


def test_aggtrade_uses_the_aggregate_id_and_keeps_frame_order():
    agg = {"e": "aggTrade", "E": 5, "s": "ETHUSDT", "a": 777, "p": "3400.1", "q": "2", "nq": "2",
           "f": 10, "l": 12, "T": 1721347022800, "m": False}
    frames = [json.dumps(_trade(1)).encode(), json.dumps(agg).encode(),
              b"123 " + json.dumps({"stream": "btcusdt@trade", "data": _trade(2)}).encode(),
              json.dumps({"result": None, "id": 1}).encode()]
    res = decode_frames(frames)
    assert res.ticks["trade_id"].tolist() == [1, 777, 2]
    assert res.ticks["is_buyer_maker"].tolist() == [1, 0, 1]
    assert res.counts["skipped:control"] == 1
    assert (res.counts["trade"], res.counts["aggTrade"]) == (2, 1)


def test_decode_payloads_rest_rows_take_the_given_symbol():
    rows = [{"a": 5, "p": "1.5", "q": "2", "f": 1, "l": 2, "T": 1721347022800, "m": True},
            {"id": 9, "price": "2.5", "qty": "1", "quoteQty": "2.5", "time": 1721347022900,
             "isBuyerMaker": False}]
    res = decode_payloads(rows, symbol="SOLUSDT", source="rest")
    assert res.ticks["symbol"].tolist() == ["SOLUSDT", "SOLUSDT"]
    assert res.ticks["trade_id"].tolist() == [5, 9]
    assert res.ticks["price"].tolist() == [1.5, 2.5]
    assert res.ticks["source"].tolist() == ["rest", "rest"]
    assert decode_payloads(rows).malformed == 2  # no symbol anywhere


@pytest.mark.parametrize("text", ["1e3", "0.1", "123456789.123456789", "5", "-2.5", "1E-7"])
def test_price_parsing_equals_float(text):
    res = decode_frames([json.dumps(_trade(1, p=text if not text.startswith("-") else "1",
                                           q=text.lstrip("-")))])
    assert res.ticks["qty"].iloc[0] == float(text.lstrip("-"))


def test_empty_input():
    res = decode_frames([])
    assert len(res.ticks) == 0 and list(res.ticks.columns) == TICK_COLUMNS
    assert res.counts == {"frames": 0}
