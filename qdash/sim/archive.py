"""Binance's bulk archive (``https://data.binance.vision``) served by the simulator from its
past.

Base URL: the simulator's HTTP base (``http://HOST:PORT``) stands for
``https://data.binance.vision``; the files are under ``/data/futures/um/``, with Binance's names:

* ``daily/klines/{SYM}/{i}/{SYM}-{i}-{YYYY-MM-DD}.zip`` (``i`` from 1m to 1d), likewise
  ``markPriceKlines``, ``indexPriceKlines`` and ``premiumIndexKlines``;
* ``daily/aggTrades/{SYM}/{SYM}-aggTrades-{YYYY-MM-DD}.zip``,
  ``daily/trades/{SYM}/{SYM}-trades-{YYYY-MM-DD}.zip``;
* ``monthly/...`` the same kinds by ``{YYYY-MM}`` (klines at every interval, 3d/1w/1M included),
  and ``monthly/fundingRate/{SYM}/{SYM}-fundingRate-{YYYY-MM}.zip``;
* every zip has a ``.zip.CHECKSUM`` sibling: ``<sha256 hex>  <file name>`` and a newline.

Each zip holds one CSV of the same name. Columns: klines ``open_time, open, high, low, close,
volume, close_time, quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore``
(the strings of the REST kline rows); aggTrades ``agg_trade_id, price, quantity, first_trade_id,
last_trade_id, transact_time, is_buyer_maker``; trades ``id, price, qty, quote_qty, time,
is_buyer_maker``; fundingRate ``calc_time, funding_interval_hours, last_funding_rate``. As in the
real dumps, kline files of periods starting before 2022-05-01 and trade files before 2022-08-11
have no header row (funding files always have one). Times are ms UTC.

Only closed periods exist: a day or month from the symbol's listing up to the simulator's start
(the end of its past). Anything else — an unknown symbol, interval, kind, an open period, a
daily funding file — is S3's ``404`` with its ``NoSuchKey`` XML body, as the data site answers.
Files are built on first request in a worker thread (the streams keep flowing) and the last few
are cached.
"""

from __future__ import annotations

import asyncio
import calendar
import collections
import concurrent.futures
import datetime as dt
import email.utils
import hashlib
import io
import re
import zipfile
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import tornado.web

from ..binance.schema import ARCHIVE_COLUMNS, ARCHIVE_PREFIX, archive_file, kline_rows
from .universe import DAY_MS, INTERVALS, aggregate_klines, interval_close, interval_open

if TYPE_CHECKING:
    from .context import ExchangeContext

KLINE_KINDS = {"klines": "trade", "markPriceKlines": "mark", "indexPriceKlines": "index",
               "premiumIndexKlines": "premium"}
DAILY_INTERVALS = INTERVALS[:INTERVALS.index("1d") + 1]
KLINE_HEADER_SINCE = "2022-05-01"   # earlier kline files have no header row
TRADES_HEADER_SINCE = "2022-08-11"  # earlier trades/aggTrades files have no header row
_DATE = r"(\d{4}-\d{2}(?:-\d{2})?)"
_KLINE_RE = re.compile(rf"^{ARCHIVE_PREFIX}(daily|monthly)/({'|'.join(KLINE_KINDS)})/([A-Z0-9]+)/"
                       rf"([0-9]+[mhdwM])/\3-\4-{_DATE}\.zip(\.CHECKSUM)?$")
_OTHER_RE = re.compile(rf"^{ARCHIVE_PREFIX}(daily|monthly)/(aggTrades|trades|fundingRate)/"
                       rf"([A-Z0-9]+)/\3-\2-{_DATE}\.zip(\.CHECKSUM)?$")
CACHE_FILES = 8
CACHE_BYTES = 256 << 20


class FileSpec(collections.namedtuple("FileSpec", "freq kind symbol interval period lo hi")):
    """One archive file: ``freq`` daily|monthly, ``kind``, ``symbol``, ``interval`` (klines),
    ``period`` (YYYY-MM-DD or YYYY-MM) and its time range [lo, hi) in ms UTC."""

    @property
    def zip_name(self) -> str:
        return archive_file(self.kind, self.symbol, self.interval, self.period)


def parse_path(path: str, sim: ExchangeContext) -> tuple[FileSpec, bool] | None:
    """(file, is_checksum) for an archive path (without the leading ``/``) that exists on the
    simulator, else None."""
    m = _KLINE_RE.match(path)
    if m:
        freq, kind, sym, interval, period, checksum = m.groups()
    else:
        m = _OTHER_RE.match(path)
        if not m:
            return None
        freq, kind, sym, period, checksum = m.groups()
        interval = None
        if kind == "fundingRate" and freq == "daily":
            return None
    if sym not in sim.instruments or (freq == "daily") != (len(period) == 10):
        return None
    if interval is not None and interval not in (DAILY_INTERVALS if freq == "daily"
                                                 else INTERVALS):
        return None
    try:
        if freq == "daily":
            day = dt.datetime.strptime(period, "%Y-%m-%d").replace(tzinfo=dt.UTC)
            lo = int(day.timestamp() * 1000)
            hi = lo + DAY_MS
        else:
            month = dt.datetime.strptime(period, "%Y-%m").replace(tzinfo=dt.UTC)
            lo = int(month.timestamp() * 1000)
            hi = lo + calendar.monthrange(month.year, month.month)[1] * DAY_MS
    except ValueError:
        return None
    if hi > sim.past.end_ms or hi <= sim.past.first_ms(sym):
        return None
    return FileSpec(freq, kind, sym, interval, period, lo, hi), checksum is not None


def csv_chunks(sim: ExchangeContext, f: FileSpec):
    """The CSV of one archive file (see the module doc) as byte chunks (a day at a time for
    trades, so a monthly file never sits in memory uncompressed)."""
    ins = sim.instruments[f.symbol]
    pdec, qdec = ins.price_decimals, ins.qty_decimals
    if f.kind in KLINE_KINDS:
        kind = KLINE_KINDS[f.kind]
        bars = past_klines(sim.past, f.symbol, f.interval, f.lo, f.hi, kind)
        if kind != "trade":
            pdec = 8 if kind in ("index", "premium") else pdec
        rows = kline_rows(bars, interval_close(bars["open_time"], f.interval), pdec, qdec,
                          volumes=kind == "trade")
        if f.period >= KLINE_HEADER_SINCE:
            yield (ARCHIVE_COLUMNS["klines"] + "\n").encode()
        yield "".join(",".join(map(str, row)) + "\n" for row in rows).encode()
    elif f.kind == "fundingRate":
        fr = sim.past.funding(f.symbol, f.lo, f.hi - 1)
        yield (ARCHIVE_COLUMNS["fundingRate"] + "\n").encode()
        yield "".join(f"{t},8,{r:.8f}\n" for t, r in zip(fr["funding_time"].tolist(),
                                                         fr["funding_rate"].tolist())).encode()
    else:
        if f.period >= TRADES_HEADER_SINCE:
            yield (ARCHIVE_COLUMNS[f.kind] + "\n").encode()
        for day in range(f.lo // DAY_MS, f.hi // DAY_MS):
            table = _trade_table(sim, f.kind, f.symbol, day, pdec, qdec)
            out = io.BytesIO()
            pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False,
                                                           quoting_style="none"))
            yield out.getvalue()


def build_csv(sim: ExchangeContext, f: FileSpec) -> str:
    """The CSV text of one archive file."""
    return b"".join(csv_chunks(sim, f)).decode()


def past_klines(past, symbol: str, interval: str, lo: int, hi: int, kind: str
                ) -> dict[str, np.ndarray]:
    """Klines of ``kind`` (trade, mark, index, premium) opening in [lo, hi), from the past only
    (the worker thread never touches the live ledger)."""
    if kind == "trade":
        return past.klines(symbol, interval, lo, hi)
    last = interval_close(interval_open(hi - 1, interval), interval) + 1
    minutes = past.minutes(symbol, interval_open(lo, interval), last)
    bars = aggregate_klines(past.derived_minutes(symbol, minutes, kind), interval)
    keep = (bars["open_time"] >= lo) & (bars["open_time"] < hi)
    return {k: v[keep] for k, v in bars.items()}


def _decimal(x: np.ndarray, scale: int) -> pa.Array:
    """Floats as an Arrow decimal column with ``scale`` decimals (printed fixed-point)."""
    u = np.rint(np.asarray(x, np.float64) * 10.0 ** scale).astype(np.int64)
    buf = np.empty((len(u), 2), np.int64)
    buf[:, 0], buf[:, 1] = u, u >> 63  # little-endian 128-bit two's complement
    return pa.Array.from_buffers(pa.decimal128(38, scale), len(u), [None, pa.py_buffer(buf)])


def _trade_table(sim: ExchangeContext, kind: str, symbol: str, day: int, pdec: int,
                 qdec: int) -> pa.Table:
    if kind == "aggTrades":
        a = sim.past.agg_trades(symbol, day)
        return pa.table({"a": a["agg_id"].to_numpy(np.int64),
                         "p": _decimal(a["price"].to_numpy(), pdec),
                         "q": _decimal(a["qty"].to_numpy(), qdec),
                         "f": a["first_id"].to_numpy(np.int64),
                         "l": a["last_id"].to_numpy(np.int64),
                         "T": a["ts"].to_numpy(np.int64),
                         "m": a["is_buyer_maker"].to_numpy().astype(bool)})
    t = sim.past.trades(symbol, day)
    price, qty = t["price"].to_numpy(), t["qty"].to_numpy()
    return pa.table({"id": t["id"].to_numpy(np.int64), "price": _decimal(price, pdec),
                     "qty": _decimal(qty, qdec), "quote_qty": _decimal(price * qty, pdec + qdec),
                     "time": t["time"].to_numpy(np.int64),
                     "is_buyer_maker": t["is_buyer_maker"].to_numpy().astype(bool)})


def build_zip(sim: ExchangeContext, f: FileSpec) -> bytes:
    """The zip of one archive file (deterministic bytes: fixed entry time, deflate)."""
    day = dt.datetime.fromtimestamp(f.hi / 1000, dt.UTC)
    info = zipfile.ZipInfo(f.zip_name[:-4] + ".csv", (day.year, day.month, day.day, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z, z.open(info, "w", force_zip64=True) as out:
        for chunk in csv_chunks(sim, f):
            out.write(chunk)
    return buf.getvalue()


def checksum_text(data: bytes, name: str) -> str:
    """The ``.CHECKSUM`` file: sha256 hex, two spaces, the zip's name, a newline."""
    return f"{hashlib.sha256(data).hexdigest()}  {name}\n"


class Archive:
    """Builds and caches archive files for one simulator."""

    def __init__(self, sim: ExchangeContext):
        self.sim = sim
        self._cache: collections.OrderedDict[FileSpec, bytes] = collections.OrderedDict()
        self._building: dict[FileSpec, asyncio.Future] = {}
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    async def get(self, f: FileSpec) -> bytes:
        """The zip bytes of ``f`` (built in a worker thread on first use)."""
        data = self._cache.get(f)
        if data is not None:
            self._cache.move_to_end(f)
            return data
        pending = self._building.get(f)
        if pending is None:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    1, thread_name_prefix="qdash-sim-archive")
            pending = asyncio.get_running_loop().run_in_executor(self._pool, build_zip,
                                                                  self.sim, f)
            self._building[f] = pending
            try:
                data = await pending
            finally:
                self._building.pop(f, None)
            self._cache[f] = data
            while len(self._cache) > CACHE_FILES or (
                    len(self._cache) > 1 and sum(map(len, self._cache.values())) > CACHE_BYTES):
                self._cache.popitem(last=False)
            return data
        return await pending

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class ArchiveHandler(tornado.web.RequestHandler):
    """``GET``/``HEAD`` ``/data/...``: archive files, or S3's XML 404."""

    def initialize(self, archive: Archive):
        self.archive = archive

    async def get(self, path: str):
        await self._serve("data/" + path, body=True)

    async def head(self, path: str):
        await self._serve("data/" + path, body=False)

    async def _serve(self, key: str, body: bool):
        parsed = parse_path(key, self.archive.sim)
        if parsed is None:
            self.set_status(404)
            self.set_header("Content-Type", "application/xml")
            rid = hashlib.sha1(key.encode()).hexdigest()[:16].upper()
            self.finish('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
                        '<Message>The specified key does not exist.</Message>'
                        f"<Key>{key}</Key><RequestId>{rid}</RequestId>"
                        f"<HostId>{rid}</HostId></Error>" if body else None)
            return
        f, is_checksum = parsed
        data = await self.archive.get(f)
        if is_checksum:
            data = checksum_text(data, f.zip_name).encode()
            self.set_header("Content-Type", "text/plain")
        else:
            self.set_header("Content-Type", "application/zip")
        self.set_header("ETag", f'"{hashlib.md5(data).hexdigest()}"')
        self.set_header("Last-Modified", email.utils.formatdate(f.hi / 1000 + 3600, usegmt=True))
        self.set_header("Content-Length", str(len(data)))
        self.finish(data if body else None)

