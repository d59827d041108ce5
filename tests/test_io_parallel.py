"""Loading with the parser in a forked child: same rows and report as in-process, errors keep
their location, a file is one transaction up to ``transaction_rows`` and checked first beyond."""

import multiprocessing as mp
import os

import pytest
from conftest import COLLECTOR, JULY, JULY_TRADES

from qdash.errors import DataFormatError, QdashError
from qdash.io import load
from qdash.io.prefetch import parsed_chunks
from qdash.store import Store

pytestmark = pytest.mark.integration

FILES = [JULY / f"{JULY_TRADES}.raw.ndjson.gz", JULY / f"{JULY_TRADES}.csv.gz",
         COLLECTOR / "ticks_2025-11-02_BTCUSDT_ETHUSDT.ndjson"]
T0 = 1721347020000


def _report_numbers(rep):
    return [(f.format, {s: (r.read, r.stored, r.duplicates, dict(r.filtered), r.first_ms,
                            r.last_ms) for s, r in f.symbols.items()}, dict(f.skipped))
            for f in rep.files]


def _stored(store):
    return {s: store.ticks(s).reset_index(drop=True) for s in store.symbols()}


@pytest.mark.parametrize("path", FILES, ids=["raw-ndjson", "trades-csv", "collector"])
def test_parallel_and_in_process_loads_store_the_same(tmp_path, path):
    reports, stores = [], []
    for parallel in (False, True):
        store = Store(tmp_path / f"{parallel}.db")
        reports.append(load(path, store=store, progress=False, parallel=parallel,
                            chunk_rows=1_000))
        stores.append(_stored(store))
    assert _report_numbers(reports[0]) == _report_numbers(reports[1])
    assert reports[1].totals()["stored"] > 2_000  # several chunks crossed the process boundary
    assert stores[0].keys() == stores[1].keys()
    for s in stores[0]:
        assert stores[0][s].drop(columns="source").equals(stores[1][s].drop(columns="source"))
    assert mp.active_children() == []


def _trades_file(tmp_path, n, bad_line=None):
    rows = [f"{100 + i},{3400 + i % 7}.5,0.{i % 9 + 1},1.0,{T0 + i * 250},"
            f"{'true' if i % 2 else 'false'}" for i in range(n)]
    if bad_line is not None:
        rows[bad_line - 1] = rows[bad_line - 1].replace(".5,", ".5x,", 1)
    path = tmp_path / "BTCUSDT-trades-2024-07-18.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("parallel", [False, True])
def test_error_in_the_last_chunk_names_its_line_and_stores_nothing(tmp_path, parallel):
    path = _trades_file(tmp_path, 3_000, bad_line=2_990)
    store = Store(tmp_path / "q.db")
    with pytest.raises(DataFormatError) as exc:
        load(path, store=store, progress=False, parallel=parallel, chunk_rows=500)
    assert (exc.value.path, exc.value.line, exc.value.column) == (str(path), 2_990, "price")
    assert f"{path}:2990 field 'price'" in str(exc.value)
    assert store.tick_count() == 0
    assert mp.active_children() == []


@pytest.mark.parametrize("parallel", [False, True])
def test_a_file_larger_than_one_transaction_is_checked_first(tmp_path, parallel):
    store = Store(tmp_path / "q.db")
    bad = _trades_file(tmp_path, 3_000, bad_line=2_990)
    with pytest.raises(DataFormatError, match="2990"):
        load(bad, store=store, progress=False, parallel=parallel, chunk_rows=500,
             transaction_rows=1_000)
    assert store.tick_count() == 0
    good = _trades_file(tmp_path, 3_000)
    rep = load(good, store=store, progress=False, parallel=parallel, chunk_rows=500,
               transaction_rows=1_000)
    sym = rep.files[0].symbols["BTCUSDT"]
    assert (sym.read, sym.stored, sym.duplicates) == (3_000, 3_000, 0)  # counted once
    assert store.tick_count() == 3_000
    again = load(good, store=store, progress=False, parallel=parallel, chunk_rows=500,
                 transaction_rows=1_000, skip_bad=True)
    assert again.totals()["duplicates"] == 3_000


def test_progress_counts_every_byte_of_the_file_from_the_child(tmp_path):
    path = _trades_file(tmp_path, 5_000)
    seen = []

    class Bar:
        def update(self, n):
            seen.append(n)

        def close(self):
            seen.append("closed")

    load(path, store=Store(tmp_path / "q.db"), parallel=True, chunk_rows=1_000,
         progress=lambda p, total, desc: Bar())
    assert seen[-1] == "closed" and sum(seen[:-1]) == path.stat().st_size


def test_a_parser_that_dies_is_an_error_not_a_hang(tmp_path):
    path = _trades_file(tmp_path, 100)
    with pytest.raises(QdashError, match="parser process stopped \\(exit code 3\\)"):
        with parsed_chunks(path, parallel=True, prepare=lambda ch: os._exit(3)) as chunks:
            list(chunks)


def test_leaving_early_stops_the_parser(tmp_path):
    path = _trades_file(tmp_path, 20_000)
    with parsed_chunks(path, parallel=True, chunk_rows=1_000) as chunks:
        first = next(chunks)
        assert len(first.ticks) == 1_000
        assert len(mp.active_children()) == 1
    assert mp.active_children() == []
