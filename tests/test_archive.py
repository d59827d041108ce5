"""``qdash archive``: closed days move from SQLite into Parquet, reads see both transparently, the
files are readable by pyarrow, pandas, Dask (and DuckDB when installed) from a path or an fsspec
URL, and re-runs neither lose nor duplicate rows."""

import os

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from qdash.cli import main as cli_main
from qdash.model import tick_frame
from qdash.store import Store
from qdash.store.parquet import ParquetArchive, archive

DAY = 86_400_000
D0 = 1_721_260_800_000  # 2024-07-18 00:00 UTC


def ticks(symbol, day0, days, n_per_day=500, first_id=1):
    n = days * n_per_day
    rng = np.random.default_rng(len(symbol) + day0 % 997)
    ts = day0 + np.sort(rng.integers(0, days * DAY, n))
    price = np.round(100 + np.cumsum(rng.choice([-0.1, 0.0, 0.1], n)), 1)
    return tick_frame(symbol, ts, np.arange(first_id, first_id + n), price,
                      np.round(rng.uniform(0.001, 2, n), 3), rng.integers(0, 2, n), "binance")


def candles(day0, days, tf_ms=60_000):
    idx = pd.DatetimeIndex(pd.to_datetime(np.arange(day0, day0 + days * DAY, tf_ms), unit="ms",
                                          utc=True), name="open_time")
    x = np.linspace(100, 110, len(idx))
    return pd.DataFrame({"open": x, "high": x + 1, "low": x - 1, "close": x + 0.5,
                         "volume": np.full(len(idx), 3.0), "trades": np.arange(len(idx)),
                         "buy_volume": np.full(len(idx), 1.0), "quote_volume": 300 * x,
                         "vwap": x + 0.2}, index=idx)


@pytest.fixture
def filled(tmp_path):
    """A store with 3 days of ticks of two symbols and 1m, 1d and mark candles, July 18–20."""
    store = Store(tmp_path / "q.db", synchronous="OFF")
    for sym in ("BTCUSDT", "ETHUSDT"):
        store.write_ticks(ticks(sym, D0, 3))
        store.write_bars(candles(D0, 3), sym, "1m")
        store.write_bars(candles(D0, 3, DAY), sym, "1d")
        store.write_bars(candles(D0, 3), sym, "1m", source="mark")
    return store


def snapshot(store):
    return {sym: (store.ticks(sym), store.bars(sym, "1m"), store.bars(sym, "1d"),
                  store.bars(sym, "1m", source="mark")) for sym in ("BTCUSDT", "ETHUSDT")}


def assert_same(a, b):
    for sym in a:
        for x, y in zip(a[sym], b[sym]):
            pd.testing.assert_frame_equal(x, y)


def test_closed_days_move_and_reads_do_not_change(filled):
    before = snapshot(filled)
    rep = archive(filled, before=pd.Timestamp(D0 + 2 * DAY + 3_600_000, unit="ms", tz="UTC"),
                  progress=False)
    # July 18 and 19 moved (ticks by day, candles by year); July 20 is not closed before the cutoff
    assert rep.ticks == sum(int((t["ts"] < D0 + 2 * DAY).sum())
                            for t, *_ in before.values())
    assert rep.candles == 2 * (2 * 1440 * 2 + 2)
    assert filled.tick_count() == sum(int((t["ts"] >= D0 + 2 * DAY).sum())
                                      for t, *_ in before.values())
    left = filled.connection().execute("SELECT MIN(open_time) FROM ohlcv_data").fetchone()[0]
    assert left == D0 + 2 * DAY
    assert_same(before, snapshot(filled))
    # range reads across the boundary
    t = filled.ticks("BTCUSDT", D0 + DAY + 5, D0 + 2 * DAY + 3_600_000)
    want = before["BTCUSDT"][0]
    want = want[(want["ts"] >= D0 + DAY + 5) & (want["ts"] < D0 + 2 * DAY + 3_600_000)]
    pd.testing.assert_frame_equal(t, want)
    # nothing left to move: a second run moves nothing and changes nothing
    again = archive(filled, before=pd.Timestamp(D0 + 2 * DAY, unit="ms", tz="UTC"),
                    progress=False)
    assert again.ticks == again.candles == 0
    assert_same(before, snapshot(filled))


def test_a_year_boundary_and_ticks_of_several_sources(tmp_path):
    """Candles are partitioned by year: a read across New Year joins two files; ticks of one day
    from two sources (a dictionary of two values) read back as stored."""
    store = Store(tmp_path / "q.db", synchronous="OFF")
    y0 = 1_735_516_800_000  # 2024-12-30 00:00 UTC
    store.write_bars(candles(y0, 4), "BTCUSDT", "1m")
    a, b = ticks("BTCUSDT", y0, 1), ticks("BTCUSDT", y0, 1, first_id=10_000)
    store.write_ticks(pd.concat([a, b.assign(source="file")], ignore_index=True))
    bars, trades = store.bars("BTCUSDT", "1m"), store.ticks("BTCUSDT")
    assert set(trades["source"]) == {"binance", "file"}
    archive(store, before="2025-01-02", progress=False)
    years = sorted(p.parent.name for p in (tmp_path / "q.db.archive").rglob("*.parquet")
                   if "kind=candles" in str(p))
    assert years == ["year=2024", "year=2025"]
    pd.testing.assert_frame_equal(store.bars("BTCUSDT", "1m"), bars)
    pd.testing.assert_frame_equal(store.ticks("BTCUSDT"), trades)
    lo, hi = y0 + DAY + 3_600_000, y0 + 3 * DAY + 60_000  # Dec 31 01:00 to Jan 2 00:01
    pd.testing.assert_frame_equal(store.bars("BTCUSDT", "1m", lo, hi),
                                  bars[(bars.index >= pd.Timestamp(lo, unit="ms", tz="UTC"))
                                       & (bars.index < pd.Timestamp(hi, unit="ms", tz="UTC"))])


def test_layout_and_other_readers(filled):
    archive(filled, before=pd.Timestamp(D0 + 3 * DAY, unit="ms", tz="UTC"), progress=False)
    root = filled.archive.root
    assert root == f"{filled.path}.archive"
    want = filled.ticks("ETHUSDT")
    data = ds.dataset(f"{root}/kind=ticks", partitioning="hive")
    assert {"symbol", "date", "ts", "price"} <= set(data.schema.names)
    eth = data.to_table(filter=ds.field("symbol") == "ETHUSDT").to_pandas()
    assert (eth["trade_id"].to_numpy() == want["trade_id"].to_numpy()).all()
    files = sorted(str(p) for p in __import__("pathlib").Path(root).rglob("*.parquet"))
    assert any("kind=ticks/symbol=BTCUSDT/date=2024-07-19/part-0.parquet" in f for f in files)
    assert any("kind=candles/symbol=BTCUSDT/year=2024/part-0.parquet" in f for f in files)
    pdf = pd.read_parquet(f"{root}/kind=candles", filters=[("symbol", "=", "BTCUSDT"),
                                                             ("timeframe", "=", "1d")])
    assert len(pdf) == 3
    import dask.dataframe as dd

    ddf = dd.read_parquet(f"file://{root}/kind=ticks")
    assert len(ddf) == len(want) + len(filled.ticks("BTCUSDT"))
    # the ParquetArchive reader from a file:// URL, not only a path
    pd.testing.assert_frame_equal(ParquetArchive(f"file://{root}").ticks("ETHUSDT"), want)


def test_duckdb_reads_the_archive(filled):
    import duckdb
    archive(filled, before=pd.Timestamp(D0 + 3 * DAY, unit="ms", tz="UTC"), progress=False)
    n = duckdb.sql(f"SELECT COUNT(*) FROM read_parquet('{filled.archive.root}/kind=ticks/*/*/*"
                   ".parquet', hive_partitioning=true) WHERE symbol = 'ETHUSDT'").fetchall()[0][0]
    assert n == len(filled.ticks("ETHUSDT"))


def test_archive_on_an_fsspec_url(tmp_path):
    store = Store(tmp_path / "q.db", archive="memory://qdash-test-archive")
    store.write_ticks(ticks("BTCUSDT", D0, 2))
    store.write_bars(candles(D0, 2), "BTCUSDT", "1m")
    before = store.ticks("BTCUSDT"), store.bars("BTCUSDT", "1m")
    rep = archive(store, before="2024-07-20", progress=False)
    assert rep.ticks == 1000 and store.tick_count() == 0
    pd.testing.assert_frame_equal(store.ticks("BTCUSDT"), before[0])
    pd.testing.assert_frame_equal(store.bars("BTCUSDT", "1m"), before[1])
    import fsspec

    assert fsspec.filesystem("memory").exists(
        "/qdash-test-archive/kind=ticks/symbol=BTCUSDT/date=2024-07-18/part-0.parquet")


def test_late_rows_merge_into_their_partition(filled):
    archive(filled, before=pd.Timestamp(D0 + 3 * DAY, unit="ms", tz="UTC"), progress=False)
    before = filled.ticks("BTCUSDT")
    late = ticks("BTCUSDT", D0, 1, n_per_day=20, first_id=10_000_000)
    again = before.iloc[:5].reset_index(drop=True)  # already archived rows, written again
    filled.write_ticks(late)
    filled.write_ticks(again)
    merged = filled.ticks("BTCUSDT")
    assert len(merged) == len(before) + 20  # the rows in both places appear once
    rep = archive(filled, before=pd.Timestamp(D0 + 3 * DAY, unit="ms", tz="UTC"),
                  progress=False)
    assert rep.ticks == 25 and filled.tick_count() == 0
    pd.testing.assert_frame_equal(filled.ticks("BTCUSDT"), merged)


def test_rows_arriving_during_the_move_stay_in_sqlite(filled, monkeypatch):
    from qdash.store import parquet as mod

    real = mod.ParquetArchive.write_partition
    late = ticks("ETHUSDT", D0, 1, n_per_day=3, first_id=20_000_000)

    def write_and_race(self, kind, symbol, value, table):
        n = real(self, kind, symbol, value, table)
        if kind == "ticks" and symbol == "ETHUSDT" and value == "2024-07-18":
            filled.write_ticks(late)  # a recorder writes while the partition is archived
        return n

    monkeypatch.setattr(mod.ParquetArchive, "write_partition", write_and_race)
    total = len(filled.ticks("ETHUSDT")) + 3
    rep = archive(filled, before=pd.Timestamp(D0 + 3 * DAY, unit="ms", tz="UTC"),
                  progress=False)
    assert rep.deferred == ["ticks ETHUSDT 2024-07-18"]
    assert len(filled.ticks("ETHUSDT")) == total
    monkeypatch.setattr(mod.ParquetArchive, "write_partition", real)
    archive(filled, before=pd.Timestamp(D0 + 3 * DAY, unit="ms", tz="UTC"), progress=False)
    assert filled.tick_count() == 0 and len(filled.ticks("ETHUSDT")) == total


def test_cli_archive(filled, capsys):
    path = filled.path
    filled.close()
    out_dir = f"{path}.elsewhere"
    assert cli_main(["archive", "--db", path, "--dir", out_dir, "--before", "2024-07-19",
                     "--no-progress"]) == 0
    assert "moved 1,0" in capsys.readouterr().out
    store = Store(path, archive=out_dir)
    assert int(store.ticks("BTCUSDT")["ts"].min()) < D0 + DAY
    assert store.connection().execute("SELECT MIN(ts) FROM tick_data").fetchone()[0] >= D0 + DAY


def _info_rows(db, capsys):
    assert cli_main(["info", "--db", str(db)]) == 0
    out = capsys.readouterr().out.splitlines()
    table = next(i for i, line in enumerate(out) if line.split()[:2] == ["symbol", "kind"])
    return "\n".join(out[:table]), [line.split() for line in out[table:]]


def test_qdash_info_counts_the_same_rows_before_and_after_archive(filled, capsys):
    filled.write_funding("BTCUSDT", pd.DataFrame({"funding_time": [D0, D0 + 8 * 3_600_000],
                                                  "rate": [1e-4, 2e-4],
                                                  "mark_price": [100.0, 101.0]}))
    stats = filled.stats()
    head, before = _info_rows(filled.path, capsys)
    assert cli_main(["archive", "--db", str(filled.path), "--no-progress"]) == 0
    capsys.readouterr()
    assert filled.tick_count() == 0                    # the ticks did move out of SQLite
    head_after, after = _info_rows(filled.path, capsys)
    assert after == before
    assert "exchange data" in head and "archive" in head_after
    pd.testing.assert_frame_equal(filled.stats(), stats)
    # an independent count: every row of each kind, read back
    got = stats.set_index(["symbol", "kind", "timeframe"])["rows"]
    assert got["BTCUSDT", "ticks", ""] == len(filled.ticks("BTCUSDT")) == 1500
    assert got["ETHUSDT", "bars", "1m"] == len(filled.bars("ETHUSDT", "1m")) == 3 * 1440
    assert got["ETHUSDT", "bars:mark", "1m"] == 3 * 1440
    assert got["BTCUSDT", "bars", "1d"] == 3 and got["BTCUSDT", "funding", ""] == 2


def test_archiving_returns_the_space_it_frees(filled, tmp_path):
    filled.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all pages in the file
    size = os.path.getsize(filled.path)
    with Store(tmp_path / "empty.db") as empty:                    # the empty tables' pages
        empty.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        floor = os.path.getsize(empty.path)
    report = archive(filled, progress=False)
    assert report.ticks == 3000
    shrunk = os.path.getsize(filled.path)
    assert shrunk - floor < size / 3, (size, shrunk, floor)  # what is left beyond them
    assert report.file_bytes == (size, shrunk) and "MB ->" in str(report)
    conn = filled.connection()
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert len(filled.ticks("ETHUSDT")) == 1500        # still read, from the archive
    again = archive(filled, progress=False)            # nothing moved: no rewrite
    assert again.file_bytes == (0, 0) and os.path.getsize(filled.path) == shrunk
