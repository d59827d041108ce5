"""``fetch(..., archive_url=...)``: Binance's bulk archive (data.binance.vision layout) from a local
mirror built here from real July 2024 data, with CHECKSUM verification, monthly → daily fallback,
and REST (the simulator replaying the same trades) for the partial day at the edge."""

import hashlib
import zipfile

import numpy as np
import pandas as pd
import pytest
from conftest import JULY, JULY_TRADES
from test_fetch_aggtrades_dump import AGG_HEADER, eth_aggtrades

from qdash.history import fetch
from qdash.history.bulk import ChecksumError, file_path
from qdash.store import Store

DAY19 = "2024-07-19"


def put(mirror, rel, text):
    """One archive file: a zip holding one CSV of the same name, and its .CHECKSUM."""
    path = mirror / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    inner = path.name[:-4] + ".csv"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(inner, text)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (mirror / (rel + ".CHECKSUM")).write_text(f"{digest}  {path.name}\n")
    return path


@pytest.fixture
def mirror(tmp_path):
    m = tmp_path / "mirror"
    official = (JULY / "official_klines_1m_ETHUSDT.csv").read_text().splitlines()
    day19 = [ln for ln in official[1:] if int(ln.split(",")[0]) >= 1721347200000]
    put(m, file_path("klines", "ETHUSDT", "1m", DAY19), "\n".join(day19) + "\n")  # no header
    trades = pd.read_csv(JULY / f"{JULY_TRADES}.csv.gz")
    trades = trades[(trades["symbol"] == "ETHUSDT") & (trades["trade_time_ms"] >= 1721347200000)]
    put(m, file_path("aggTrades", "ETHUSDT", "", DAY19),
        AGG_HEADER + "\n" + eth_aggtrades(trades).to_csv(header=False, index=False))
    put(m, file_path("funding", "ETHUSDT", "", "2024-07"),
        "calc_time,funding_interval_hours,last_funding_rate\n"
        + "".join(f"{1719792000000 + i * 28_800_000},8,{0.0001 * (i % 3 - 1):.8f}\n"
                  for i in range(93)))
    return m, official, trades


def test_klines_from_a_local_mirror(mirror, tmp_path):
    m, official, _ = mirror
    store = Store(tmp_path / "q.db")
    rep = fetch("ETHUSDT", "klines", "1m", DAY19, "2024-07-20", store, rest_url=None,
                archive_url=str(m), progress=False)
    got = store.bars("ETHUSDT", "1m")
    raw = pd.read_csv(JULY / "official_klines_1m_ETHUSDT.csv")
    raw = raw[raw["open_time"] >= 1721347200000]
    assert rep.symbols["ETHUSDT"].from_archive == len(raw) == len(got) == 6
    assert (got["trades"].to_numpy() == raw["count"].to_numpy()).all()
    assert (got["close"].to_numpy() == raw["close"].to_numpy()).all()
    again = fetch("ETHUSDT", "klines", "1m", DAY19, "2024-07-20", store, rest_url=None,
                  archive_url=str(m), progress=False)
    assert again.rows == 0  # the day is covered: the file is not even opened


def test_checksum_mismatch_stores_nothing(mirror, tmp_path):
    m, *_ = mirror
    rel = file_path("klines", "ETHUSDT", "1m", DAY19)
    (m / (rel + ".CHECKSUM")).write_text("0" * 64 + "  x.zip\n")
    store = Store(tmp_path / "q.db")
    with pytest.raises(ChecksumError, match="differs from its CHECKSUM"):
        fetch("ETHUSDT", "klines", "1m", DAY19, "2024-07-20", store, rest_url=None,
              archive_url=str(m), progress=False)
    assert store.bars("ETHUSDT", "1m").empty


def test_aggtrades_and_funding_from_the_mirror(mirror, tmp_path):
    m, _, trades = mirror
    store = Store(tmp_path / "q.db")
    fetch("ETHUSDT", "aggTrades", None, DAY19, "2024-07-20", store, rest_url=None,
          archive_url=str(m), progress=False)
    got = store.ticks("ETHUSDT")
    assert (got["trade_id"].to_numpy() == np.sort(trades["trade_id"].to_numpy())).all()
    assert (got["source"] == "binance:bulk-agg").all()
    rep = fetch("ETHUSDT", "funding", None, "2024-07-10", "2024-07-20", store, rest_url=None,
                archive_url=str(m), progress=False)
    f = store.funding("ETHUSDT")
    assert rep.stored == len(f) == 30  # 10 days × 3 events, clipped from the monthly file
    assert f.index[0] == pd.Timestamp("2024-07-10", tz="UTC")
    assert f["mark_price"].isna().all()


@pytest.mark.integration
def test_archive_days_and_rest_edges_give_the_official_klines(mirror, tmp_path):
    from test_fetch import END, START, ReplaySim

    m, *_ = mirror
    store = Store(tmp_path / "q.db")
    with ReplaySim() as s:
        rep = fetch("ETHUSDT", "klines", "1m", START, "2024-07-20", store,
                    rest_url=s.sim.rest_url, archive_url=str(m), progress=False)
    assert rep.symbols["ETHUSDT"].from_archive == 6  # July 19 from the file
    got = store.bars("ETHUSDT", "1m", START, END)
    raw = pd.read_csv(JULY / "official_klines_1m_ETHUSDT.csv")
    assert (got.index.as_unit("ms").asi8 == raw["open_time"].to_numpy()).all()
    # 23:57 is partial in the recording the simulator replays; 23:58 and 23:59 came from REST
    assert (got["trades"].to_numpy()[1:] == raw["count"].to_numpy()[1:]).all()
