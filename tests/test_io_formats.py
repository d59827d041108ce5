"""qdash.io on synthetic files: Binance dump variants, malformed files, skip_bad, streaming memory,
OHLC uploads and exporters."""

import gzip
import io
import tracemalloc
import zipfile

import numpy as np
import pandas as pd
import pytest

from qdash.errors import DataFormatError
from qdash.io import detect, iter_tick_batches, load, read_bars, read_ticks, to_csv, to_parquet
from qdash.store import Store

T0 = 1721347020000  # 2024-07-18 23:57:00 UTC in ms


def _trades_rows(n=5, ts_scale=1, start_id=100):
    return [f"{start_id + i},{3400 + i}.5,0.{i + 1},{(3400 + i) * 0.1:.2f},"
            f"{(T0 + i * 250) * ts_scale},{'true' if i % 2 else 'false'}" for i in range(n)]


def _zip(path, inner, text):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(inner, text)
    return path


@pytest.mark.parametrize("header", [True, False])
def test_futures_trades_zip_with_and_without_header(tmp_path, header):
    rows = _trades_rows()
    text = ("id,price,qty,quote_qty,time,is_buyer_maker\n" if header else "") + "\n".join(rows)
    path = _zip(tmp_path / "BTCUSDT-trades-2024-07-18.zip", "BTCUSDT-trades-2024-07-18.csv", text)
    assert detect(path).format == "binance-trades"
    df = read_ticks(path)
    assert df["symbol"].unique().tolist() == ["BTCUSDT"]
    assert df["trade_id"].tolist() == [100, 101, 102, 103, 104]
    assert df["ts"].tolist() == [T0 + i * 250 for i in range(5)]
    assert df["price"].tolist() == [3400.5, 3401.5, 3402.5, 3403.5, 3404.5]
    assert df["is_buyer_maker"].tolist() == [0, 1, 0, 1, 0]


def test_spot_trades_with_microseconds_and_best_match_column(tmp_path):
    rows = [r + ",True" for r in _trades_rows(ts_scale=1000)]
    path = tmp_path / "ETHUSDT-trades-2025-02-01.csv"
    path.write_text("\n".join(rows) + "\n")
    df = read_ticks(path)
    assert df["ts"].tolist() == [T0 + i * 250 for i in range(5)]  # µs → ms
    assert df["symbol"].iloc[0] == "ETHUSDT"


def test_aggtrades_headerless_give_one_tick_per_trade_id(tmp_path):
    rows = [f"{900 + i},{3400 + i}.1,{i + 1}.0,{10 * i},{10 * i + i},{T0 + i},true"
            for i in range(4)]
    path = _zip(tmp_path / "ETHUSDT-aggTrades-2024-07-18.zip", "ETHUSDT-aggTrades-2024-07-18.csv",
                "\n".join(rows))
    assert detect(path).format == "binance-aggtrades"
    df = read_ticks(path)
    # aggregate i covers trade ids 10i .. 10i + i, its qty shared equally among them
    assert df["trade_id"].tolist() == [0, 10, 11, 20, 21, 22, 30, 31, 32, 33]
    assert df["qty"].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert df["price"].tolist() == [3400.1] + [3401.1] * 2 + [3402.1] * 3 + [3403.1] * 4
    assert df["ts"].tolist() == [T0] + [T0 + 1] * 2 + [T0 + 2] * 3 + [T0 + 3] * 4
    assert (df["is_buyer_maker"] == 1).all()


def test_klines_zip_headerless(tmp_path):
    rows = []
    for i in range(3):
        ot = T0 + i * 300_000
        rows.append(f"{ot},10.0,12.0,9.0,11.0,100.0,{ot + 299_999},1050.0,7,40.0,420.0,0")
    path = _zip(tmp_path / "SOLUSDT-5m-2024-07-18.zip", "SOLUSDT-5m-2024-07-18.csv",
                "\n".join(rows))
    bars, tf = read_bars(path)
    assert tf == "5m" and bars.attrs["symbol"] == "SOLUSDT"
    assert bars["trades"].tolist() == [7, 7, 7]
    assert bars["vwap"].tolist() == [10.5] * 3
    assert bars.index[1] == pd.Timestamp(T0 + 300_000, unit="ms", tz="UTC")


def test_ohlc_upload_detects_timeframe_and_stores_candles(tmp_path):
    idx = pd.date_range("2024-07-18 23:00", periods=6, freq="15min", tz="UTC")
    df = pd.DataFrame({"Date": idx.strftime("%Y-%m-%d %H:%M:%S"), "Open": 1.0, "High": 2.0,
                       "Low": 0.5, "Close": 1.5})
    df = pd.concat([df.iloc[:3], df.iloc[4:]])  # a missing candle does not fool the detection
    path = tmp_path / "upload.csv"
    df.to_csv(path, index=False)
    store = Store(tmp_path / "q.db")
    rep = load(path, store=store, symbol="BTCUSDT", progress=False)
    assert rep.ok and rep.files[0].timeframe == "15m" and rep.files[0].format == "ohlc-csv"
    assert any("volume absent" in n for n in rep.files[0].notes)
    got = store.bars("BTCUSDT", "15m")
    assert len(got) == 5 and (got["high"] == 2.0).all() and (got["volume"] == 0).all()


GOOD_CSV = ("symbol,timestamp,price,size,side\n"
            "BTCUSDT,2024-07-18T23:57:00.000Z,100.5,1,buy\n"
            "BTCUSDT,2024-07-18T23:57:00.100Z,100.6,2,sell\n")


def test_generic_csv_with_iso_time_and_side(tmp_path):
    path = tmp_path / "ticks.csv"
    path.write_text(GOOD_CSV + "BTCUSDT,2024-07-18T23:57:00.100Z,100.6,2,sell\n")
    df = read_ticks(path)
    assert df["ts"].tolist() == [T0, T0 + 100, T0 + 100]
    assert df["is_buyer_maker"].tolist() == [0, 1, 1]
    assert df["trade_id"].is_unique and (df["trade_id"] < 0).all()  # identical rows stay distinct


@pytest.mark.parametrize("bad_line,field,text", [
    ("BTCUSDT,2024-07-18T23:57:01Z,abc,1,buy", "price", "expected a number"),
    ("BTCUSDT,not-a-time,100,1,buy", "timestamp", "ISO-8601"),
    ("BTCUSDT,2024-07-18T23:57:01Z,100,,buy", "size", "empty"),
    ("BTCUSDT,2024-07-18T23:57:01Z,100,1,maybe", "side", "buy or sell"),
])
def test_malformed_csv_names_line_and_field_and_stores_nothing(tmp_path, bad_line, field, text):
    path = tmp_path / "ticks.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write(GOOD_CSV + bad_line + "\n" + GOOD_CSV.split("\n", 1)[1])
    store = Store(tmp_path / "q.db")
    with pytest.raises(DataFormatError) as exc:
        load(path, store=store, progress=False)
    e = exc.value
    assert (e.line, e.column) == (4, field)  # header is line 1
    assert text in str(e) and "ticks.csv.gz:4" in str(e)
    assert store.tick_count() == 0
    # the report form (for the CLI) records the rejection instead of raising
    rep = load(path, store=store, progress=False, raise_on_error=False)
    assert not rep.ok and rep.exit_code == 1 and "REJECTED" in str(rep)
    assert store.tick_count() == 0
    # skip_bad stores the good rows and lists the bad one
    rep = load(path, store=store, progress=False, skip_bad=True)
    assert rep.ok and store.tick_count() == 4
    assert rep.files[0].bad_count == 1 and ":line 4 field" in rep.files[0].bad_rows[0]


def test_too_many_fields_is_reported_with_its_line(tmp_path):
    path = tmp_path / "BTCUSDT-trades-2024-07-18.csv"
    rows = _trades_rows(6)
    rows[3] += ",7,8"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataFormatError) as exc:
        read_ticks(path)
    assert exc.value.line == 4
    df = read_ticks(path, skip_bad=True)
    assert df["trade_id"].tolist() == [100, 101, 102, 104, 105]
    assert df.attrs["bad_rows"] == ["line 4: wrong number of fields"]


def test_bad_row_late_in_a_multi_chunk_file_stores_nothing(tmp_path):
    rows = _trades_rows(50)
    rows[47] = rows[47].replace(".5,", ".5x,", 1)
    path = tmp_path / "BTCUSDT-trades-2024-07-18.csv"
    path.write_text("\n".join(rows) + "\n")
    store = Store(tmp_path / "q.db")
    with pytest.raises(DataFormatError) as exc:
        load(path, store=store, progress=False, chunk_rows=10)
    assert (exc.value.line, exc.value.column) == (48, "price")
    assert store.tick_count() == 0
    rep = load(path, store=store, progress=False, chunk_rows=10, skip_bad=True)
    assert store.tick_count() == 49 and rep.totals()["bad"] == 1


def test_raw_ndjson_malformed_frame_names_its_line(tmp_path):
    good = ('{"e":"trade","E":1,"T":%d,"s":"BTCUSDT","t":%d,"p":"100.0","q":"1","X":"%s",'
            '"m":true}')
    lines = [good % (T0, 1, "MARKET"), good % (T0, 2, "NA"), '{"e":"trade","T":5}',
             good % (T0, 3, "MARKET")]
    path = tmp_path / "frames.ndjson"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as exc:
        read_ticks(path)
    assert exc.value.line == 3
    df = read_ticks(path, skip_bad=True)
    assert df["trade_id"].tolist() == [1, 3]
    assert df.attrs["filtered"] == {"X=NA": 1}


def test_corrupt_gzip_is_a_data_format_error(tmp_path):
    data = gzip.compress(b"\n".join(r.encode() for r in _trades_rows(1000)))
    path = tmp_path / "BTCUSDT-trades-2024-07-18.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError):
        read_ticks(path)


@pytest.mark.integration  # writes and streams a 50 MB file: seconds
def test_streaming_memory_is_bounded_by_the_chunk(tmp_path):
    """A ~50 MB (uncompressed) trades file streams with peak memory far below its size."""
    path = tmp_path / "BTCUSDT-trades-2024-07-18.csv.gz"
    n = 1_100_000
    ids = np.arange(n)
    text = pd.DataFrame({"id": ids, "price": 60000 + (ids % 1000) / 10, "qty": 0.001 + ids % 7,
                         "quote_qty": 1.0, "time": T0 + ids, "is_buyer_maker": ids % 2 == 0}
                        ).to_csv(index=False, header=False)
    size = len(text)
    assert size > 45e6
    with gzip.open(path, "wt", compresslevel=1) as f:
        f.write(text)
    del text
    tracemalloc.start()
    rows = 0
    for batch in iter_tick_batches(path, chunk_rows=5_000):
        rows += len(batch)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert rows == n
    assert peak < size / 10, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"


def test_exporters_put_iso_utc_time_first(tmp_path):
    path = tmp_path / "BTCUSDT-trades-2024-07-18.csv"
    path.write_text("\n".join(_trades_rows(3)) + "\n")
    ticks = read_ticks(path)
    text = to_csv(ticks)
    head = text.splitlines()
    assert head[0].startswith("time,symbol,ts,")
    assert head[1].startswith("2024-07-18T23:57:00.000Z,BTCUSDT,")
    to_parquet(ticks, tmp_path / "t.parquet")
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert back.columns[0] == "time" and back["ts"].tolist() == ticks["ts"].tolist()
    bars = pd.DataFrame({"open": [1.0]}, index=pd.DatetimeIndex([pd.Timestamp(T0, unit="ms",
                                                                              tz="UTC")],
                                                                 name="open_time"))
    assert to_csv(bars).splitlines()[1] == "2024-07-18T23:57:00.000Z,1.0"
    buf = io.StringIO(to_csv(bars))
    assert pd.read_csv(buf).columns.tolist() == ["open_time", "open"]


def test_progress_bar_and_report_text(tmp_path, capsys):
    path = tmp_path / "BTCUSDT-trades-2024-07-18.csv"
    path.write_text("\n".join(_trades_rows(3)) + "\n")
    rep = load(path, store=Store(tmp_path / "q.db"), progress=True)
    text = str(rep)
    assert "BTCUSDT" in text and "binance-trades" in text
    assert text.splitlines()[-1].startswith("total: read 3, stored 3")
