"""qdash.binance.decode against real Binance captures and hand-made frames."""

import gzip
import json

import numpy as np
import pandas as pd
import pytest
from conftest import JULY, JULY_TRADES

from qdash.binance.decode import decode_frames, decode_payloads
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


# --- the compiled scanner (decode._scanned_batch) against the orjson path ------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from qdash.binance import decode as _dec  # noqa: E402
from qdash.binance import scanner  # noqa: E402


def _assert_same(a, b):
    """Identical results: ticks bit for bit, counts (with their order), lines, errors, filtered."""
    pd.testing.assert_frame_equal(a.ticks, b.ticks, check_exact=True)
    for c in ("price", "qty"):  # also -0.0 vs 0.0
        assert (a.ticks[c].to_numpy().view(np.int64) == b.ticks[c].to_numpy().view(np.int64)).all()
    assert list(a.counts.items()) == list(b.counts.items())
    assert a.lines.tolist() == b.lines.tolist()
    assert a.errors == b.errors and a.filtered == b.filtered


def _agg_rewrite(line: bytes) -> bytes:
    p = json.loads(line)
    a = {"e": "aggTrade", "E": p["E"], "a": p["t"], "s": p["s"], "p": p["p"], "q": p["q"],
         "f": p["t"], "l": p["t"], "T": p["T"], "m": p["m"]}
    return json.dumps({"stream": p["s"].lower() + "@aggTrade", "data": a},
                      separators=(",", ":")).encode()


def _capture_sets():
    from conftest import AUGUST
    sets = {}
    for f in sorted(JULY.glob("usdm_*usdt_2024*.gz")) + sorted(AUGUST.glob("usdm_*usdt_2024*.gz")):
        sets[f.name] = gzip.open(f).read().splitlines()
    for d in (JULY, AUGUST):
        raw = sorted(d.glob("usdm_trades_*.raw.ndjson.gz"))[0]
        lines = gzip.open(raw).read().splitlines()
        sets[raw.name] = lines
        sets[raw.name + ":aggTrade"] = [_agg_rewrite(x) for x in lines]
        sets[raw.name + ":str"] = [x.decode() for x in lines]
    return sets


@pytest.fixture
def _scanner_ready():
    scanner.warm_up()
    assert scanner.scan_frames.signatures


def test_scanner_equals_orjson_path_on_every_real_capture(_scanner_ready):
    for name, lines in _capture_sets().items():
        chunks = handled = 0
        for i in range(0, len(lines), 5000):
            part = lines[i:i + 5000]
            fast = _dec._scanned_batch(part, "binance", i + 1, 10)
            ref = _dec._decode_orjson(part, "binance", i + 1, 10, None)
            chunks += 1
            if fast is not None:
                handled += 1
                _assert_same(fast, ref)
        # the multi-stream captures hold one REST depth snapshot line (no "e"): its chunk falls back
        assert handled >= chunks - 1, name
        if name.endswith(":aggTrade"):
            assert ref.counts["aggTrade"] == len(part)


def test_scanner_handles_the_frames_binance_sends_in_any_key_order(_scanner_ready):
    frames = [
        '{"e":"trade","E":2,"T":1721347022707,"s":"BTCUSDT","t":1,"p":"100.5","q":"0.25",'
        '"X":"MARKET","m":true}',
        '{"m":false,"q":"1e-3","X":"NA","t":2,"p":"0","s":"ETHUSDT","T":1,"e":"trade"}',
        '{"X":"INSURANCE_FUND","t":3,"p":"5.","q":".5","s":"BTCUSDT","T":1,"e":"trade",'
        '"m":true,"z":[1,2]}'.replace(',"z":[1,2]', ',"z":null,"y":-0.5,"w":"x"'),
        '123 {"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","a":9,"s":"BTCUSDT",'
        '"p":"63943.90","q":"-0.001","f":1,"l":2,"T":5,"m":false},"extra":true}',
        '{"e":"depthUpdate","b":[["1","2"]],"a":[]}',
        ' {"e":"trade","T":1,"s":"BTCUSDT","t":4,"p":"1234567890123456","q":"2E+2","m":false} ',
    ]
    for batch in (frames, [f.encode() for f in frames]):
        fast = _dec._scanned_batch(batch, "binance", 7, 10)
        assert fast is not None
        _assert_same(fast, _dec._decode_orjson(batch, "binance", 7, 10, None))
        assert fast.ticks["trade_id"].tolist() == [1, 4]  # 9: qty -0.001
        assert fast.counts["filtered:X=NA"] == fast.counts["filtered:X=INSURANCE_FUND"] == 1
        assert fast.counts["filtered:qty<=0"] == fast.counts["skipped:depthUpdate"] == 1
    # not handled (the orjson path decides): escapes, nested values, exponents in numbers,
    # duplicate keys, missing fields, 17+ significant digits, bad JSON
    for bad in [frames[0].replace('"s":"BTCUSDT"', '"s":"BTC\\u0055SDT"'),
                frames[0].replace('"E":2', '"E":{"x":1}'), frames[0].replace('"E":2', '"E":2e0'),
                frames[0].replace('"t":1', '"t":1,"t":2'), frames[0].replace(',"m":true', ''),
                frames[0].replace('"100.5"', '"1.23456789012345678"'), frames[0][:-1]]:
        assert bad != frames[0]
        assert _dec._scanned_batch([frames[0], bad], "binance", 1, 10) is None
        assert decode_frames([frames[0], bad]).counts["frames"] == 2


_json_leaf = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
              | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4))
_json_value = st.recursive(_json_leaf, lambda c: st.lists(c, max_size=2)
                           | st.dictionaries(st.text(max_size=2), c, max_size=2), max_leaves=4)
_decimal = st.one_of(
    st.from_regex(r"[+-]?[0-9]{0,19}(\.[0-9]{0,19})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(["0", "0.000", "-0", "nan", "inf", "1_000", " 1.5", "", ".", "1e400",
                     "3424.98", "63943.90", "9007199254740993", "0.1e23", "1e-22"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.decimals(allow_nan=False, allow_infinity=False, places=8).map(str))
_needed = {
    "e": st.sampled_from(["trade", "aggTrade", "depthUpdate", "trade", "aggTrade"]),
    "s": st.sampled_from(["BTCUSDT", "ETHUSDT", "1000PEPEUSDT", "btcusdt", "", "BTC-USDT", "É"]),
    "t": st.integers(-2**63, 2**63 - 1) | st.sampled_from([1.0, "5", None, 2**64]),
    "a": st.integers(-2**63, 2**63 - 1) | st.sampled_from([1.5, "5"]),
    "T": st.integers(0, 2**62) | st.sampled_from([-1, 1.0, "1"]),
    "p": _decimal | st.sampled_from([1.5, 2, None]),
    "q": _decimal | st.sampled_from([1, None]),
    "m": st.booleans() | st.sampled_from([0, None, "true"]),
    "X": st.sampled_from(["MARKET", "MARKET", "NA", "INSURANCE_FUND", "ADL", None, 5]),
}


_clean_decimal = (st.from_regex(r"[0-9]{1,9}(\.[0-9]{0,8})?([eE][+-]?[0-9]{1,2})?", fullmatch=True)
                  | st.sampled_from(["0", "0.000", "3424.98", "63943.90"]))
_clean = {  # values the scanner accepts (mostly): most frames of a batch are drawn from these
    "e": st.sampled_from(["trade", "aggTrade", "trade", "aggTrade", "bookTicker"]),
    "s": st.sampled_from(["BTCUSDT", "ETHUSDT", "1000PEPEUSDT"]),
    "t": st.integers(-10**17, 10**18 - 1), "a": st.integers(0, 10**18 - 1),
    "T": st.integers(0, 10**18 - 1), "p": _clean_decimal, "q": _clean_decimal,
    "m": st.booleans(), "X": st.sampled_from(["MARKET", "MARKET", "NA", "INSURANCE_FUND"]),
}
_clean_extra = (st.none() | st.booleans() | st.integers(-10**15, 10**15)
                | st.text(alphabet="abcXYZ019 @._-", max_size=6))


@st.composite
def _frame(draw):
    wild = not draw(st.integers(0, 4))
    values, extra = (_needed, _json_value) if wild else (_clean, _clean_extra)
    present = st.sampled_from([True] * 30 + [False])  # a key is rarely missing
    pairs = [(k, draw(v)) for k, v in values.items() if k == "X" or draw(present)]
    if pairs[-1][0] == "X" and not draw(st.integers(0, 3)):
        pairs.pop()
    pairs += draw(st.lists(st.tuples(st.sampled_from(["E", "f", "l", "nq", "x", "p", "data"]
                                                     if wild else ["E", "f", "l", "nq", "x"]),
                                     extra), max_size=3,
                           unique_by=None if wild else (lambda kv: kv[0])))
    pairs = draw(st.permutations(pairs))
    sep = draw(st.sampled_from([(",", ":")] * 4 + [(", ", ": ")]))  # spaced: orjson path
    ascii_only = draw(st.booleans())

    def dump(v):
        return json.dumps(v, ensure_ascii=ascii_only)
    body = "{" + sep[0].join(dump(k) + sep[1] + dump(v) for k, v in pairs) + "}"
    if draw(st.booleans()):
        body = ('{"stream":"btcusdt@trade"' + sep[0] + '"data"' + sep[1] + body
                + draw(st.sampled_from(["", ',"x":1', ',"e":"depthUpdate"', ',"stream":1'])) + "}")
    if draw(st.booleans()):
        body = f"{draw(st.integers(0, 2**63))} {body}"
    if wild and not draw(st.integers(0, 5)):
        body = body[:draw(st.integers(0, len(body)))]  # truncated / garbage
    return body


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_frame(), min_size=1, max_size=6), st.booleans())
def test_scanner_property_same_result_as_orjson(frames, as_bytes):
    scanner.warm_up()
    if as_bytes:
        frames = [f.encode() for f in frames]
    fast = _dec._scanned_batch(frames, "binance", 3, 4)
    if fast is not None:
        _assert_same(fast, _dec._decode_orjson(frames, "binance", 3, 4, None))


def test_small_batches_take_the_orjson_path_even_with_the_scanner_ready(monkeypatch):
    """The live feed's batches: one path, whether or not a file load compiled the scanner."""
    scanner.warm_up()
    monkeypatch.setattr(_dec, "_scanned_batch", None)  # calling it would fail
    frames = ['{"e":"trade","T":1,"s":"BTCUSDT","t":4,"p":"1","q":"2","m":false}'] * 100
    assert len(decode_frames(frames).ticks) == 100
