"""One row-error type: the file readers, the frame decoder and the ingestion server all describe
a bad row with ``qdash.errors.RowError``, which renders as the server's problem JSON."""

import pytest

from qdash.binance.decode import decode_frames
from qdash.errors import DataFormatError, IngestError, RowError
from qdash.io import read_ticks
from qdash.server.ingest import parse_body, validate_items

TRADE = ('{"e":"trade","E":1,"T":1721347022707,"s":"BTCUSDT","t":5,"p":"%s","q":"1",'
         '"X":"MARKET","m":true}')


def test_decoder_errors_are_row_errors():
    res = decode_frames([TRADE % "1", (TRADE % "1").replace('"t":5', '"t":"x"')], first_line=7)
    (err,) = res.errors
    assert type(err) is RowError and (err.line, err.field) == (8, "t")
    assert str(err).startswith("line 8 field 't': expected an integer")
    assert err.problem() == {"index": None, "field": "t", "line": 8, "problem": err.message}


def test_file_readers_raise_row_errors_with_path_line_and_field(tmp_path):
    path = tmp_path / "ticks.csv"
    path.write_text("symbol,time,price,qty\nBTCUSDT,1721347022707,1,1\nBTCUSDT,1721347022708,x,1\n")
    with pytest.raises(RowError) as exc:
        read_ticks(path)
    e = exc.value
    assert isinstance(e, DataFormatError) and (e.path, e.line, e.field) == (str(path), 3, "price")
    assert str(e).startswith(f"{path}:3 field 'price': expected a number")
    skipped = read_ticks(path, skip_bad=True)
    assert skipped.attrs["bad_rows"] == ["line 3 field 'price': expected a number, got 'x'"]


def test_the_server_reports_row_errors_as_problem_json():
    items, lines = parse_body(b'{"symbol":"BTCUSDT","ts":1721347022707,"price":1,"qty":1}\n'
                              b'{"symbol":"BTCUSDT","ts":1721347022708,"price":-1,"qty":1}\n')
    with pytest.raises(IngestError) as exc:
        validate_items(items, lines=lines)
    e = exc.value
    assert [type(r) for r in e.rows] == [RowError]
    assert e.problems == [{"index": 1, "field": "price", "line": 2,
                           "problem": "must be > 0, got -1"}]
    assert str(e).startswith("item 1 (line 2) field 'price': must be > 0")


def test_row_errors_compare_by_content_and_name_the_symbol():
    a = RowError("bad", line=3, field="p", symbol="ETHUSDT")
    assert a == RowError("bad", line=3, field="p", symbol="ETHUSDT") != a.replace(line=4)
    assert str(a) == "line 3 field 'p' (ETHUSDT): bad"
    assert a.problem()["symbol"] == "ETHUSDT"
    assert str(RowError("x", path="f.ndjson", line=2, column=9)) == "f.ndjson:2:9: x"
