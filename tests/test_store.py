"""The SQLite store: idempotent batch writes, all-or-nothing, readers beside a writer."""

import multiprocessing as mp
import os
import sqlite3

import numpy as np
import pandas as pd
import pytest

from qdash.bars import resample
from qdash.errors import DataFormatError, StoreError
from qdash.model import synthetic_trade_ids, tick_frame
from qdash.store import Store
from qdash.store.connection import open_error
from qdash.store.schema import SCHEMA_VERSION
from qdash.store.ticks import TICK_ORDER

T0 = 1_721_347_200_000


def make_ticks(n, symbol="BTCUSDT", start_id=1, t0=T0):
    rng = np.random.default_rng(start_id)
    return tick_frame(symbol, t0 + np.arange(n) * 10, np.arange(start_id, start_id + n),
                      60_000 + rng.normal(0, 5, n).round(1), rng.uniform(0.001, 2, n).round(3),
                      rng.integers(0, 2, n), "test")


def test_schema_wal_and_indexes(db_path):
    Store(db_path)
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"tick_data", "ohlcv_data", "alerts_log"} <= tables
    for table, key in (("tick_data", ["symbol", "ts", "trade_id"]),
                       ("ohlcv_data", ["symbol", "timeframe", "source", "open_time"])):
        pk = sorted((r[5], r[1]) for r in conn.execute(f"PRAGMA table_info({table})") if r[5])
        assert [name for _, name in pk] == key
    # a time-range read walks the clustered key: no table scan, no index lookup per row
    plan = " ".join(r[3] for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM tick_data WHERE symbol = 'X' AND ts >= 1 AND ts < 2 "
        f"ORDER BY {TICK_ORDER}"))
    assert "SEARCH tick_data USING PRIMARY KEY (symbol=? AND ts>? AND ts<?)" in plan, plan


def test_default_path_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("QDASH_DB", str(tmp_path / "env.db"))
    assert Store().path == str(tmp_path / "env.db")


def test_writes_are_idempotent_and_read_back_in_order(db_path):
    store = Store(db_path)
    ticks = make_ticks(1000)
    first = store.write_ticks(ticks)
    assert (first.received, first.stored, first.duplicates) == (1000, 1000, 0)
    again = store.write_ticks(ticks.iloc[500:])  # a retry of half the batch
    assert (again.stored, again.duplicates) == (0, 500)
    overlap = store.write_ticks(make_ticks(100, start_id=950, t0=T0 + 9490))
    assert overlap.stored == 49  # ids 950..1000 (same trades, same times) were stored already
    back = store.ticks("BTCUSDT")
    assert len(back) == 1049
    assert back["trade_id"].is_monotonic_increasing
    assert str(back.index.tz) == "UTC"
    np.testing.assert_array_equal(back["price"].to_numpy()[:1000], ticks["price"].to_numpy())
    assert back["is_buyer_maker"].dtype == np.int8


def test_time_range_is_start_inclusive_end_exclusive(db_path):
    store = Store(db_path)
    store.write_ticks(make_ticks(100))
    got = store.ticks("BTCUSDT", start=pd.Timestamp(T0 + 100, unit="ms", tz="UTC"),
                      end="2024-07-19T00:00:00.200Z")
    assert got["ts"].tolist() == list(range(T0 + 100, T0 + 200, 10))


def test_bad_row_rejects_the_whole_batch(db_path):
    store = Store(db_path)
    ticks = make_ticks(10)
    ticks.loc[7, "price"] = 0.0  # Binance's X:"NA" frames carry price 0
    with pytest.raises(DataFormatError, match="row 7.*price"):
        store.write_ticks(ticks)
    assert store.tick_count() == 0


def test_ticks_without_ids_are_idempotent_and_keep_file_order(db_path):
    store = Store(db_path)
    # identical rows are separate fills; the same ms holds several trades at different prices
    ts = np.array([T0, T0, T0, T0, T0 + 5])
    price = np.array([10.0, 12.0, 12.0, 11.0, 13.0])
    qty = np.array([1.0, 2.0, 2.0, 1.0, 1.0])
    ids = synthetic_trade_ids("ETHUSDT", ts, price, qty)
    assert len(set(ids)) == 5 and (ids < 0).all()
    np.testing.assert_array_equal(ids, synthetic_trade_ids("ETHUSDT", ts, price, qty))
    ticks = tick_frame("ETHUSDT", ts, ids, price, qty, -1, "collector")
    assert store.write_ticks(ticks).stored == 5
    assert store.write_ticks(ticks).stored == 0
    back = store.ticks("ETHUSDT")
    assert back["price"].tolist() == price.tolist()  # same-ms trades in their file order
    bar = resample(back, "1m").iloc[0]
    assert (bar.open, bar.close, bar.trades) == (10.0, 13.0, 5)


def test_bars_round_trip_and_replace(db_path):
    store = Store(db_path)
    bars = resample(make_ticks(20_000), "1m")
    assert store.write_bars(bars, "BTCUSDT", "60s").stored == len(bars)
    back = store.bars("BTCUSDT", "1m")
    pd.testing.assert_frame_equal(back, bars, check_freq=False)
    changed = bars.iloc[-1:].copy()
    changed["close"] = 1.0
    store.write_bars(changed, "BTCUSDT", "1m")  # a forming candle written again
    assert store.bars("BTCUSDT", "1m")["close"].iloc[-1] == 1.0
    assert len(store.bars("BTCUSDT", "1m")) == len(bars)


def test_symbols_and_stats(db_path):
    store = Store(db_path)
    store.write_ticks(make_ticks(30, "ETHUSDT"))
    store.write_ticks(make_ticks(20, "BTCUSDT"))
    store.write_bars(resample(make_ticks(30, "ETHUSDT"), "1s"), "ETHUSDT", "1s")
    assert store.symbols() == ["BTCUSDT", "ETHUSDT"]
    stats = store.stats()
    row = stats[(stats.symbol == "ETHUSDT") & (stats.kind == "ticks")].iloc[0]
    assert row.rows == 30 and row["first"] == pd.Timestamp(T0, unit="ms", tz="UTC")
    assert row["last"] == pd.Timestamp(T0 + 290, unit="ms", tz="UTC")
    assert stats[(stats.kind == "bars")].iloc[0].timeframe == "1s"


def _writer(path, batches, done):
    store = Store(path)
    for i in range(batches):
        store.write_ticks(make_ticks(500, start_id=1 + i * 500, t0=T0 + i * 5000))
    done.set()


def _reader(path, done, out):
    store = Store(path)
    seen = []
    while not done.is_set():
        seen.append(store.tick_count())
    seen.append(store.tick_count())
    out.put(seen)


@pytest.mark.integration
def test_one_writer_and_readers_in_other_processes(db_path):
    Store(db_path)
    ctx = mp.get_context("spawn")
    done, out = ctx.Event(), ctx.Queue()
    readers = [ctx.Process(target=_reader, args=(str(db_path), done, out)) for _ in range(2)]
    writer = ctx.Process(target=_writer, args=(str(db_path), 40, done))
    for p in (*readers, writer):
        p.start()
    writer.join(120)
    results = [out.get(timeout=60) for _ in readers]
    for p in readers:
        p.join(60)
    assert writer.exitcode == 0 and all(p.exitcode == 0 for p in readers)
    for seen in results:
        # readers only ever see whole committed batches, never a partial one, and never go back
        assert all(c % 500 == 0 for c in seen)
        assert seen == sorted(seen) and seen[-1] == 20_000


def test_single_symbol_and_mixed_batches_store_the_same_rows(db_path, tmp_path):
    """A batch of one symbol and source is written through a statement holding them as literals;
    a mixed batch binds every column. Both must store exactly the same rows."""
    btc, eth = make_ticks(300), make_ticks(200, symbol="ETHUSDT", start_id=5000)
    for t in (btc, eth):
        t["source"] = "o'reilly \"quoted\" source"
    one = Store(db_path)
    assert one.write_ticks(btc).stored == 300 and one.write_ticks(eth).stored == 200
    mixed = Store(tmp_path / "mixed.db")
    both = pd.concat([btc, eth], ignore_index=True).sample(frac=1, random_state=3)
    assert mixed.write_ticks(both).stored == 500
    for sym in ("BTCUSDT", "ETHUSDT"):
        pd.testing.assert_frame_equal(one.ticks(sym), mixed.ticks(sym), check_exact=True)
    assert set(one.ticks("BTCUSDT")["source"]) == {"o'reilly \"quoted\" source"}
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT typeof(symbol), typeof(source), typeof(ts), typeof(price), "
                        "typeof(is_buyer_maker) FROM tick_data GROUP BY 1, 2, 3, 4, 5"
                        ).fetchall() == [("text", "text", "integer", "real", "integer")]


def test_write_new_ticks_returns_exactly_the_rows_it_stored(db_path):
    store = Store(db_path)
    ticks = make_ticks(10)
    result, new = store.write_new_ticks(ticks.iloc[:4])
    assert result.stored == 4 and new["trade_id"].tolist() == [1, 2, 3, 4]
    # an overlapping re-send with a repeated row: only ids 5..10 are new, each once
    resend = pd.concat([ticks.iloc[2:], ticks.iloc[[6]]], ignore_index=True)
    result, new = store.write_new_ticks(resend)
    assert (result.received, result.stored) == (9, 6)
    assert new["trade_id"].tolist() == [5, 6, 7, 8, 9, 10]
    result, new = store.write_new_ticks(ticks)
    assert result.stored == 0 and len(new) == 0
    assert store.tick_count() == 10


def test_a_known_trade_id_at_another_time_is_kept_not_dropped(db_path):
    """Key is (symbol, ts, trade_id): a consistent source never reports one trade at two times,
    so this only matters for a source that disagrees, whose rows are then kept and visible."""
    store = Store(db_path)
    store.write_ticks(make_ticks(3))
    assert store.write_ticks(make_ticks(1, t0=T0 + 1)).stored == 1
    assert store.ticks("BTCUSDT")["trade_id"].tolist() == [1, 1, 2, 3]


def test_id_less_ticks_keep_arrival_order_across_batches(db_path):
    """Ticks of one millisecond written in separate batches (one POST each) read back in the
    order they were written, not in the order of their content-hash ids."""
    store = Store(db_path)
    prices = [10.0, 9.0, 11.0, 8.0, 12.0]
    for p in prices:
        ids = synthetic_trade_ids("ETHUSDT", [T0], [p], [1.0])
        store.write_ticks(tick_frame("ETHUSDT", [T0], ids, [p], [1.0], -1, "collector"))
    ids = store.ticks("ETHUSDT")["trade_id"].to_numpy()
    assert store.ticks("ETHUSDT")["price"].tolist() == prices
    assert not (np.all(np.diff(ids) > 0) or np.all(np.diff(ids) < 0))  # ids alone: other order


def test_a_layout_2_store_reads_read_only_and_migrates_on_write(db_path):
    """Layout 2 lacked only ``fetch_coverage`` (fetches created it): read-only opens read it as it
    is; a writable open adds the table and moves the file to the current layout."""
    with Store(db_path) as st:
        st.write_ticks(tick_frame("BTCUSDT", [T0], [1], [60_000.0], [0.5], [0], "binance"))
        conn = st.connection()
        conn.execute("DROP TABLE fetch_coverage")
        conn.execute("PRAGMA user_version=2")
    with Store(db_path, readonly=True) as ro:
        assert ro.tick_count() == 1
    with Store(db_path) as st:
        assert st.connection().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert st.coverage.missing("BTCUSDT", "klines", "1m", 0, 10) == [(0, 10)]
        assert st.tick_count() == 1


def test_a_layout_0_store_is_migrated_keeping_rows_and_order(db_path):
    """Files written before the clustered layout (rowid table, two indexes) open and migrate."""
    conn = sqlite3.connect(db_path)
    conn.executescript("""
        CREATE TABLE tick_data (symbol TEXT NOT NULL, ts INTEGER NOT NULL,
            trade_id INTEGER NOT NULL, price REAL NOT NULL, qty REAL NOT NULL,
            is_buyer_maker INTEGER NOT NULL, source TEXT NOT NULL);
        CREATE UNIQUE INDEX tick_data_symbol_trade_id ON tick_data (symbol, trade_id);
        CREATE INDEX tick_data_symbol_ts ON tick_data (symbol, ts);""")
    prices = [10.0, 9.0, 11.0]
    ids = synthetic_trade_ids("ETHUSDT", [T0] * 3, prices, [1.0] * 3)
    rows = [("ETHUSDT", T0, int(i), p, 1.0, -1, "collector") for i, p in zip(ids, prices)]
    rows += [("BTCUSDT", T0 + k, k + 1, 60_000.0 + k, 0.5, 0, "binance") for k in range(5)]
    conn.executemany("INSERT INTO tick_data VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    store = Store(db_path)
    assert store.tick_count() == 8
    assert store.ticks("ETHUSDT")["price"].tolist() == prices
    assert store.ticks("BTCUSDT")["trade_id"].tolist() == [1, 2, 3, 4, 5]
    # new id-less ticks of the same millisecond come after the migrated ones
    new_ids = synthetic_trade_ids("ETHUSDT", [T0], [7.0], [1.0])
    store.write_ticks(tick_frame("ETHUSDT", [T0], new_ids, [7.0], [1.0], -1, "collector"))
    assert store.ticks("ETHUSDT")["price"].tolist() == prices + [7.0]
    store.close()
    assert Store(db_path).tick_count() == 9  # reopening does not migrate again


# --- one location, read-only use, errors that say why -------------------------------------------
def test_default_store_is_the_same_file_whatever_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("QDASH_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    paths = set()
    for cwd in ("a", "b/dashboards"):
        (tmp_path / cwd).mkdir(parents=True)
        monkeypatch.chdir(tmp_path / cwd)
        paths.add(Store().path)
    assert paths == {str(tmp_path / "xdg" / "qdash" / "qdash.db")}
    monkeypatch.setenv("QDASH_DB", "rel/q.db")  # a relative $QDASH_DB is made absolute
    assert Store().path == str(tmp_path / "b/dashboards/rel/q.db")


def test_a_store_this_user_cannot_write_is_read_read_only(db_path, tmp_path):
    with Store(db_path) as s:
        s.write_ticks(make_ticks(50))
    ro_dir = tmp_path / "ro"
    ro_dir.mkdir()
    copy = ro_dir / "copy.db"
    copy.write_bytes(db_path.read_bytes())
    before = copy.read_bytes()
    copy.chmod(0o444)
    ro_dir.chmod(0o555)
    try:
        with Store(copy, readonly=True) as s:  # SQLite's mode=ro, even where root could write
            assert s.tick_count() == 50 and s.symbols() == ["BTCUSDT"]
            with pytest.raises(StoreError, match="open read-only"):
                s.write_ticks(make_ticks(5, start_id=100))
        assert copy.read_bytes() == before
        if os.geteuid() != 0:  # root bypasses permissions: only a real user sees the refusal
            with pytest.raises(StoreError, match="may not write|not writable"):
                Store(copy).write_ticks(make_ticks(5, start_id=100))
    finally:
        ro_dir.chmod(0o755)
        copy.chmod(0o644)


def test_reading_a_mistyped_path_is_an_error_not_a_new_store(tmp_path):
    with pytest.raises(StoreError, match=r"no store at .*typo\.db"):
        Store(tmp_path / "typo.db", readonly=True)
    assert not (tmp_path / "typo.db").exists()


def test_open_errors_say_what_why_and_what_to_do(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the store's directory .*--db"):
        Store(blocker / "sub" / "q.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="not an SQLite database"):
        Store(junk, readonly=True)
    err = open_error(str(tmp_path / "gone" / "q.db"),
                     sqlite3.OperationalError("unable to open database file"), readonly=False)
    assert "directory" in str(err) and "does not exist" in str(err) and "--db" in str(err)


# --- the same trades from a source without trade ids -------------------------------------------
def test_id_less_ticks_of_stored_exchange_trades_are_recognised_not_stored_twice(db_path):
    store = Store(db_path)
    ts = np.array([T0, T0, T0, T0 + 1])
    price = np.array([100.0, 100.0, 100.0, 101.0])
    qty = np.array([1.0, 1.0, 2.0, 1.0])  # two identical fills at T0, then two other trades
    store.write_ticks(tick_frame("ETHUSDT", ts, [11, 12, 13, 14], price, qty, 0, "trades"))
    # the collector's copy: three identical fills at T0 (one more than the exchange's), no ids
    c_ts, c_price, c_qty = (np.r_[ts, T0], np.r_[price, 100.0], np.r_[qty, 1.0])
    ids = synthetic_trade_ids("ETHUSDT", c_ts, c_price, c_qty)
    collected = tick_frame("ETHUSDT", c_ts, ids, c_price, c_qty, -1, "collector")
    result, new = store.write_new_ticks(collected)
    assert (result.received, result.stored, result.matched) == (5, 1, 4)
    assert result.duplicates == 4
    assert len(new) == 1 and new["trade_id"].iloc[0] < 0 and new["qty"].iloc[0] == 1.0
    assert store.tick_count("ETHUSDT") == 5
    again = store.write_ticks(collected)  # the extra fill is now a plain duplicate
    assert (again.stored, again.matched) == (0, 4)
    # another symbol, or another size, is another trade
    other = tick_frame("BTCUSDT", [T0], synthetic_trade_ids("BTCUSDT", [T0], [100.0], [1.0]),
                       [100.0], [1.0], -1, "collector")
    assert store.write_ticks(other).stored == 1
