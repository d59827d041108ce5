"""The simulator's bulk archive (data.binance.vision layout) against its REST API: checksums,
CSV columns and headers, rows equal to REST klines, aggTrades and funding, S3's 404."""

import asyncio
import csv
import hashlib
import io
import json
import threading
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pytest

from qdash.binance.schema import ARCHIVE_COLUMNS as HEADERS
from qdash.sim.archive import parse_path
from qdash.sim.exchange import SimExchange

START = 1_721_390_000_000  # 2024-07-19T12:53:20Z: 2024-07-18 is the last closed day
DAY = "2024-07-18"
DAY_MS = 1_721_260_800_000


@pytest.fixture(scope="module")
def sim():
    loop = asyncio.new_event_loop()
    ex = SimExchange(["BTCUSDT", "ETHUSDT"], rate=20, seed=3, start_ms=START,
                     weight_limit=100_000)
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    asyncio.run_coroutine_threadsafe(ex.start(), loop).result(30)
    yield ex
    asyncio.run_coroutine_threadsafe(ex.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)


def _get(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def _file(sim, path):
    """(csv rows, zip name) of an archive file, its CHECKSUM verified with hashlib."""
    url = f"{sim.archive_url}/data/futures/um/{path}"
    st, h, data = _get(url)
    assert st == 200 and h["content-type"] == "application/zip", (path, data[:200])
    st, _, check = _get(url + ".CHECKSUM")
    name = path.rsplit("/", 1)[1]
    assert st == 200 and check.decode() == f"{hashlib.sha256(data).hexdigest()}  {name}\n"
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.namelist() == [name[:-4] + ".csv"]
        text = z.read(z.namelist()[0]).decode()
    return list(csv.reader(io.StringIO(text)))


def _rest(sim, path):
    st, _, body = _get(f"{sim.rest_url}/fapi/v1/{path}")
    assert st == 200, body
    return json.loads(body)


def test_paths_that_exist_and_those_that_do_not():
    ex = SimExchange(["BTCUSDT"], start_ms=START)
    ok = [f"daily/klines/BTCUSDT/1m/BTCUSDT-1m-{DAY}.zip",
          f"daily/klines/BTCUSDT/1d/BTCUSDT-1d-{DAY}.zip.CHECKSUM",
          f"daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-{DAY}.zip",
          f"daily/trades/BTCUSDT/BTCUSDT-trades-{DAY}.zip",
          f"daily/indexPriceKlines/BTCUSDT/5m/BTCUSDT-5m-{DAY}.zip",
          "monthly/klines/BTCUSDT/1M/BTCUSDT-1M-2024-06.zip",
          "monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-06.zip",
          "monthly/premiumIndexKlines/BTCUSDT/1w/BTCUSDT-1w-2019-10.zip"]
    for p in ok:
        f, checksum = parse_path("data/futures/um/" + p, ex)
        assert f.zip_name == p.split("/")[-1].removesuffix(".CHECKSUM")
        assert checksum == p.endswith(".CHECKSUM")
    f, _ = parse_path(f"data/futures/um/daily/trades/BTCUSDT/BTCUSDT-trades-{DAY}.zip", ex)
    assert (f.lo, f.hi) == (DAY_MS, DAY_MS + 86_400_000)
    f, _ = parse_path("data/futures/um/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02.zip", ex)
    assert f.hi - f.lo == 29 * 86_400_000
    bad = ["daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-07-19.zip",   # the sim's start day: open
           "monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-07.zip",    # open month
           "daily/klines/BTCUSDT/1m/BTCUSDT-1m-2019-09-24.zip",   # before the listing
           "daily/klines/SOLUSDT/1m/SOLUSDT-1m-2024-07-18.zip",   # not listed
           "daily/klines/BTCUSDT/1w/BTCUSDT-1w-2024-07-18.zip",   # no daily weekly files
           "daily/klines/BTCUSDT/2m/BTCUSDT-2m-2024-07-18.zip",
           "daily/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-07-18.zip",
           "daily/klines/BTCUSDT/1m/ETHUSDT-1m-2024-07-18.zip",
           "monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-06-01.zip",
           "daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-02-30.zip",
           "daily/bookTicker/BTCUSDT/BTCUSDT-bookTicker-2024-07-18.zip"]
    for p in bad:
        assert parse_path("data/futures/um/" + p, ex) is None, p


@pytest.mark.integration
def test_daily_klines_zip_equals_rest_klines_of_that_day(sim):
    rows = _file(sim, f"daily/klines/BTCUSDT/1m/BTCUSDT-1m-{DAY}.zip")
    assert rows[0] == HEADERS["klines"].split(",")
    body = rows[1:]
    rest = _rest(sim, f"klines?symbol=BTCUSDT&interval=1m&startTime={DAY_MS}&limit=1440")
    assert len(body) == len(rest) == 1440
    assert body == [[str(x) for x in r] for r in rest]
    # the minutes aggregate to the REST hourly bars of the day
    a = np.array([[float(x) for x in r] for r in body])
    hours = _rest(sim, f"klines?symbol=BTCUSDT&interval=1h&startTime={DAY_MS}&limit=24")
    for h, r in enumerate(hours):
        m = a[h * 60:(h + 1) * 60]
        assert float(r[1]) == m[0, 1] and float(r[4]) == m[-1, 4]
        assert float(r[2]) == m[:, 2].max() and float(r[3]) == m[:, 3].min()
        assert int(r[8]) == m[:, 8].sum()
        np.testing.assert_allclose(float(r[5]), m[:, 5].sum(), rtol=1e-12)
    # mark price klines: zero volumes, as Binance prints them
    mark = _file(sim, f"daily/markPriceKlines/BTCUSDT/1h/BTCUSDT-1h-{DAY}.zip")[1:]
    rest = _rest(sim, f"markPriceKlines?symbol=BTCUSDT&interval=1h&startTime={DAY_MS}&limit=24")
    assert mark == [[str(x) for x in r] for r in rest]
    assert {r[5] for r in mark} == {"0"}


@pytest.mark.integration
def test_trades_and_agg_trades_match_rest_and_the_klines(sim):
    aggs = _file(sim, f"daily/aggTrades/ETHUSDT/ETHUSDT-aggTrades-{DAY}.zip")
    assert aggs[0] == HEADERS["aggTrades"].split(",")
    hour = DAY_MS + 5 * 3_600_000
    rest = _rest(sim, f"aggTrades?symbol=ETHUSDT&startTime={hour}&endTime={hour + 3_600_000}"
                      "&limit=1000")
    first = next(i for i, r in enumerate(aggs[1:], 1) if int(r[5]) >= hour)
    got = aggs[first:first + len(rest)]
    assert got == [[str(r["a"]), r["p"], r["q"], str(r["f"]), str(r["l"]), str(r["T"]),
                    "true" if r["m"] else "false"] for r in rest]
    trades = _file(sim, f"daily/trades/ETHUSDT/ETHUSDT-trades-{DAY}.zip")
    assert trades[0] == HEADERS["trades"].split(",")
    t = np.array([[float(x) for x in r[:5]] for r in trades[1:]])
    ids = t[:, 0].astype(np.int64)
    assert (np.diff(ids) == 1).all()
    # every aggregate covers its trades; each 1m kline counts and sums its trades
    assert int(aggs[1][3]) == ids[0] and int(aggs[-1][4]) == ids[-1]
    kl = np.array(_rest(sim, f"klines?symbol=ETHUSDT&interval=1m&startTime={DAY_MS}"
                             "&limit=1440"), dtype=float)
    minute = ((t[:, 4] - DAY_MS) // 60_000).astype(int)
    np.testing.assert_array_equal(np.bincount(minute, minlength=1440), kl[:, 8])
    np.testing.assert_allclose(np.bincount(minute, t[:, 2], 1440), kl[:, 5], rtol=1e-9)
    np.testing.assert_allclose(t[:, 3], np.round(t[:, 1] * t[:, 2], 5), atol=1e-9)


@pytest.mark.integration
def test_monthly_funding_and_klines_and_headers(sim):
    rows = _file(sim, "monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-06.zip")
    assert rows[0] == HEADERS["fundingRate"].split(",")
    june = 1_717_200_000_000
    rest = _rest(sim, f"fundingRate?symbol=BTCUSDT&startTime={june}&limit=1000")
    rest = [r for r in rest if r["fundingTime"] < june + 30 * 86_400_000]
    assert [[str(r["fundingTime"]), "8", r["fundingRate"]] for r in rest] == rows[1:]
    assert len(rows) - 1 == 90 and {int(r[0]) % 28_800_000 for r in rows[1:]} == {0}
    weekly = _file(sim, "monthly/klines/BTCUSDT/1w/BTCUSDT-1w-2024-06.zip")[1:]
    rest = _rest(sim, f"klines?symbol=BTCUSDT&interval=1w&startTime={june}&limit=5")
    assert weekly == [[str(x) for x in r] for r in rest if r[0] < june + 30 * 86_400_000]
    # files of 2021 predate Binance's header rows
    old = _file(sim, "daily/klines/BTCUSDT/1h/BTCUSDT-1h-2021-07-18.zip")
    assert len(old) == 24 and old[0][0] == "1626566400000"


@pytest.mark.integration
def test_missing_files_are_s3_404s_and_head_works(sim):
    base = f"{sim.archive_url}/data/futures/um"
    st, h, body = _get(f"{base}/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-07-19.zip")
    assert st == 404 and h["content-type"] == "application/xml"
    assert b"<Code>NoSuchKey</Code>" in body
    assert b"<Key>data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-07-19.zip" in body
    assert _get(f"{base}/daily/nothing")[0] == 404
    st, h, body = _get(f"{base}/daily/klines/ETHUSDT/1d/ETHUSDT-1d-{DAY}.zip", "HEAD")
    assert st == 200 and body == b"" and int(h["content-length"]) > 100
