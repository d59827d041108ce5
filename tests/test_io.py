"""qdash.io on the real files in shared/data: every format gives the same trades, loads are
idempotent, collector captures lose exactly their zero rows."""

import gzip
import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from conftest import AUGUST, COLLECTOR, JULY, JULY_TRADES

from qdash.io import detect, load, read_bars, read_ticks
from qdash.store import Store

JULY_FILES = [JULY / f"{JULY_TRADES}.csv.gz", JULY / f"{JULY_TRADES}.raw.ndjson.gz",
              JULY / f"{JULY_TRADES}.collector.ndjson"]
AUGUST_TRADES = "usdm_trades_BTCUSDT_ETHUSDT_2024-08-08_2354-2400"


def _key_set(df):
    """Multiset of (symbol, ts, price, qty) — what every format has in common."""
    return Counter(zip(df["symbol"], df["ts"], df["price"], df["qty"], strict=True))


def _reference(day=JULY, name=JULY_TRADES):
    """The trades CSV read with plain pandas: the independent reference."""
    ref = pd.read_csv(day / f"{name}.csv.gz")
    assert (ref["order_type"] == "MARKET").all()
    return ref.drop(columns=["ts"]).rename(columns={"trade_time_ms": "ts"})


def test_formats_are_detected():
    got = [detect(p).format for p in JULY_FILES]
    assert got == ["tick-csv", "ws-ndjson", "collector-ndjson"]
    assert detect(JULY / "usdm_btcusdt_20240718.gz").format == "ws-ndjson"
    assert detect(JULY / "official_klines_1m_ETHUSDT.csv").format == "binance-klines"


@pytest.mark.parametrize("day,name,counts", [
    (JULY, JULY_TRADES, {"ETHUSDT": 13655, "BTCUSDT": 10701}),
    (AUGUST, AUGUST_TRADES, {"BTCUSDT": 21313, "ETHUSDT": 14076}),
])
def test_three_formats_give_the_same_ticks(day, name, counts):
    ref = _reference(day, name)
    frames = [read_ticks(day / f"{name}{ext}")
              for ext in (".csv.gz", ".raw.ndjson.gz", ".collector.ndjson")]
    for df in frames:
        assert df["symbol"].value_counts().to_dict() == counts
        assert _key_set(df) == _key_set(ref)
    csv, raw, coll = frames
    # the two formats with ids and sides agree on them too
    cols = ["symbol", "trade_id", "ts", "price", "qty", "is_buyer_maker"]
    a = csv[cols].sort_values(["symbol", "trade_id"]).reset_index(drop=True)
    b = raw[cols].sort_values(["symbol", "trade_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert (coll["trade_id"] < 0).all() and (coll["is_buyer_maker"] == -1).all()
    assert coll["trade_id"].is_unique


def test_raw_capture_yields_exactly_the_trades_file(db_path):
    store = Store(db_path)
    rep = load([JULY / "usdm_ethusdt_20240718.gz", JULY / "usdm_ethusdt_20240719.gz"],
               store=store, progress=False)
    assert rep.ok and rep.exit_code == 0
    ref = _reference()
    ref = ref[ref["symbol"] == "ETHUSDT"]
    got = store.ticks("ETHUSDT")
    assert got["trade_id"].tolist() == sorted(ref["trade_id"].tolist())
    assert _key_set(got) == _key_set(ref)
    skipped = rep.files[0].skipped + rep.files[1].skipped
    assert skipped["bookTicker frames"] > 0 and skipped["depthUpdate frames"] > 0
    assert store.symbols() == ["ETHUSDT"]


def test_all_three_formats_into_one_store_and_loading_twice_stores_once(db_path):
    store = Store(db_path)
    ids_files = JULY_FILES[:2]
    rep = load(ids_files, store=store, progress=False)
    assert [sum(s.stored for s in f.symbols.values()) for f in rep.files] == [24356, 0]
    assert rep.files[1].symbols["ETHUSDT"].duplicates == 13655
    again = load(JULY_FILES, store=store, progress=False)
    t = again.totals()
    assert t["read"] == 3 * 24356
    # the collector rows carry no trade id: each is recognised as the exchange trade of the
    # same symbol, time, price and size already stored, and counted, not stored a second time
    assert t["stored"] == 0 and t["matched"] == 24356
    assert again.files[2].symbols["ETHUSDT"].matched == 13655
    third = load(JULY_FILES[2], store=store, progress=False)
    assert third.totals()["stored"] == 0 and third.totals()["duplicates"] == 24356
    assert store.tick_count() == 24356 and store.tick_count("ETHUSDT") == 13655
    text = str(again)
    assert "ETHUSDT" in text and "ok" in text.splitlines()[-1]
    assert "matched to stored exchange trades" in text


def _collector_reference(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    zero = sum(1 for r in rows if r["price"] <= 0 or r["size"] <= 0)
    return rows, zero


@pytest.mark.parametrize("name,zeros", [("ticks_2025-11-02_BTCUSDT_ETHUSDT.ndjson", 12),
                                        ("ticks_2025-12-15_BTCUSDT_ETHUSDT.ndjson", 98),
                                        ("ticks_2025-11-01_BTCUSDT_ETHUSDT.ndjson", 0)])
def test_collector_captures_drop_exactly_the_zero_rows(db_path, name, zeros):
    rows, zero = _collector_reference(COLLECTOR / name)
    assert zero == zeros
    store = Store(db_path)
    rep = load(COLLECTOR / name, store=store, progress=False)
    f = rep.files[0]
    filtered = sum(s.filtered.get("price<=0", 0) for s in f.symbols.values())
    assert filtered == zeros
    assert store.tick_count() == len(rows) - zeros  # identical-looking rows are distinct trades
    assert sum(s.read for s in f.symbols.values()) == len(rows)
    stored = pd.concat([store.ticks(s) for s in store.symbols()])
    assert (stored["price"] > 0).all() and (stored["qty"] > 0).all()
    want = Counter((r["symbol"], r["price"], r["size"]) for r in rows if r["price"] > 0)
    assert Counter(zip(stored["symbol"], stored["price"], stored["qty"], strict=True)) == want
    # again: nothing new
    assert load(COLLECTOR / name, store=store, progress=False).totals()["stored"] == 0
    assert store.tick_count() == len(rows) - zeros


def test_identical_rows_survive_any_chunk_size(tmp_path):
    path = COLLECTOR / "ticks_2025-11-02_BTCUSDT_ETHUSDT.ndjson"
    n = {}
    for chunk in (7, 100, 1_000_000):
        store = Store(tmp_path / f"c{chunk}.db")
        load(path, store=store, progress=False, chunk_rows=chunk)
        n[chunk] = store.tick_count()
        ids = pd.concat([store.ticks(s) for s in store.symbols()])["trade_id"]
        n[(chunk, "ids")] = sorted(ids.tolist())
    assert n[7] == n[100] == n[1_000_000] == 2989 - 12
    assert n[(7, "ids")] == n[(1_000_000, "ids")]


def test_official_klines_are_read_as_candles(db_path):
    path = JULY / "official_klines_1m_ETHUSDT.csv"
    bars, tf = read_bars(path)
    raw = pd.read_csv(path)
    assert tf == "1m" and bars.attrs["symbol"] == "ETHUSDT"
    assert len(bars) == len(raw)
    assert (bars.index.as_unit("ms").asi8 == raw["open_time"].to_numpy()).all()
    for ours, theirs in [("open", "open"), ("high", "high"), ("low", "low"), ("close", "close"),
                         ("volume", "volume"), ("trades", "count"),
                         ("buy_volume", "taker_buy_volume"), ("quote_volume", "quote_volume")]:
        assert (bars[ours].to_numpy() == raw[theirs].to_numpy()).all(), ours
    np.testing.assert_allclose(bars["vwap"], raw["quote_volume"] / raw["volume"], rtol=1e-15)
    store = Store(db_path)
    rep = load(path, store=store, progress=False)
    assert rep.files[0].kind == "bars" and rep.files[0].timeframe == "1m"
    pd.testing.assert_frame_equal(store.bars("ETHUSDT", "1m"), bars, check_freq=False)


def test_gz_capture_line_count_matches_decoded_frames():
    lines = gzip.open(JULY / "usdm_btcusdt_20240718.gz").read().splitlines()
    df = read_ticks(JULY / "usdm_btcusdt_20240718.gz")
    assert len(df) == sum(b"@trade" in ln for ln in lines)
    assert df.attrs["skipped"]["bookTicker frames"] == sum(b"bookTicker" in ln for ln in lines)
