"""Binance's bulk archive (data.binance.vision layout) as a history source, checksums verified.

``<base>/data/futures/um/{monthly|daily}/<dataset>/<SYMBOL>/[<interval>/]<SYMBOL>-<what>-<date>.zip``
with a sibling ``.zip.CHECKSUM`` (``<sha256>  <file name>``); ``<base>`` is an http(s) URL
(https://data.binance.vision or a mirror, or the simulator) or a local directory. Datasets:
``klines`` and ``markPriceKlines`` (per interval), ``aggTrades``, ``fundingRate`` (monthly only,
``calc_time,funding_interval_hours,last_funding_rate``: no mark price). CSV headers are present or
not (detected per file by the :mod:`qdash.io` readers).

:func:`archive_pages` turns a time range into pages for :mod:`qdash.history.fetch`: whole months
from monthly files, else whole days from daily files; what the archive lacks (edge days, the
current month, missing files) comes back as pages without rows, for REST to fill. A file whose
sha256 differs from its CHECKSUM raises :class:`ChecksumError` and nothing from it is stored.
Downloads go to a temporary file (memory bounded by the reader's chunk). Times are int ms UTC.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

from ..binance.schema import archive_path
from ..errors import DataFormatError
from ..io import iter_tick_batches, read_bars
from .page import HistoryPage

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
_DATASET = {"klines": "klines", "mark": "markPriceKlines", "aggTrades": "aggTrades",
            "funding": "fundingRate"}


class ChecksumError(DataFormatError):
    """A bulk-archive file does not match its ``.CHECKSUM``; nothing from it was stored."""


def file_path(kind: str, symbol: str, timeframe: str, period: str) -> str:
    """Relative path of the archive file of ``kind`` (``klines``, ``mark``, ``aggTrades``,
    ``funding``); ``period`` is ``YYYY-MM`` (monthly) or ``YYYY-MM-DD`` (daily)."""
    return archive_path(_DATASET[kind], symbol, timeframe, period)


def archive_pages(base: str, symbol: str, kind: str, timeframe: str, start: int, end: int
                  ) -> Iterator[HistoryPage]:
    """Pages of ``[start, end)`` (see the module docstring); pages with ``rows`` None are the
    ranges the archive does not have."""
    periods = _periods(kind, start, end)
    first, last_end = (periods[0][0], periods[-1][1]) if periods else (end, end)
    if start < first:  # a partial first day
        yield HistoryPage(symbol, start, first, None)
    for lo, hi, period in periods:
        got = False
        with _fetched(base, file_path(kind, symbol, timeframe, period)) as path:
            if path is not None:
                got = True
                last = None
                for rows in _read(path, kind, symbol, timeframe):
                    if last is not None:
                        yield HistoryPage(symbol, lo, lo, last, from_archive=True)
                    last = _clip(rows, kind, lo, hi)
                yield HistoryPage(symbol, lo, hi, last, from_archive=True)
        if not got:
            if len(period) == 7 and kind != "funding":  # no monthly file: try its days
                yield from archive_pages_daily(base, symbol, kind, timeframe, lo, hi)
            else:
                yield HistoryPage(symbol, lo, hi, None)
    if last_end < end:  # a partial last day
        yield HistoryPage(symbol, max(last_end, start), end, None)


def archive_pages_daily(base: str, symbol: str, kind: str, timeframe: str, start: int,
                        end: int) -> Iterator[HistoryPage]:
    """Pages of whole days ``[start, end)`` from daily files (rows None where a file is missing).
    """
    for day in range(start, end, DAY_MS):
        period = pd.Timestamp(day, unit="ms", tz="UTC").strftime("%Y-%m-%d")
        with _fetched(base, file_path(kind, symbol, timeframe, period)) as path:
            if path is None:
                yield HistoryPage(symbol, day, day + DAY_MS, None)
                continue
            last = None
            for rows in _read(path, kind, symbol, timeframe):
                if last is not None:
                    yield HistoryPage(symbol, day, day, last, from_archive=True)
                last = rows
            yield HistoryPage(symbol, day, day + DAY_MS, last, from_archive=True)


def _periods(kind: str, start: int, end: int) -> list[tuple[int, int, str]]:
    """(lo, hi, period) pieces of ``[start, end)``: whole months, whole days, or (funding, which
    has monthly files only) months clipped to the range. Partial days are left out."""
    out = []
    if kind == "funding":
        m = pd.Timestamp(start, unit="ms").to_period("M")  # naive times are UTC here
        while (lo := int(m.start_time.value // 1_000_000)) < end:
            hi = int((m + 1).start_time.value // 1_000_000)
            out.append((max(lo, start), min(hi, end), str(m)))
            m += 1
        return out
    day = -(-start // DAY_MS) * DAY_MS
    while day + DAY_MS <= end:
        t = pd.Timestamp(day, unit="ms")  # naive times are UTC here
        month_end = int((t.to_period("M") + 1).start_time.value // 1_000_000)
        if t.day == 1 and month_end <= end:
            out.append((day, month_end, t.strftime("%Y-%m")))
            day = month_end
        else:
            out.append((day, day + DAY_MS, t.strftime("%Y-%m-%d")))
            day += DAY_MS
    return out


@contextmanager
def _fetched(base: str, rel: str):
    """A local path of the verified file (None when the archive lacks it)."""
    if not base.startswith(("http://", "https://")):
        path = os.path.join(base, rel)
        if not os.path.exists(path):
            yield None
            return
        _verify(path, _read_local_checksum(path + ".CHECKSUM"), path)
        yield path
        return
    url = base.rstrip("/") + "/" + rel
    with tempfile.TemporaryDirectory(prefix="qdash-bulk-") as tmp:
        path = os.path.join(tmp, rel.rsplit("/", 1)[-1])
        if not _download(url, path):
            yield None
            return
        with tempfile.TemporaryFile() as f:
            if not _download(url + ".CHECKSUM", f):
                raise ChecksumError(f"{url} has no .CHECKSUM beside it; not trusted, nothing "
                                    "stored from it", path=url)
            f.seek(0)
            expected = f.read().decode().split()[0]
        _verify(path, expected, url)
        yield path


def _download(url: str, dest) -> bool:
    """Stream ``url`` into ``dest`` (a path or a binary file); False on HTTP 404."""
    req = urllib.request.Request(url, headers={"User-Agent": "qdash"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            if isinstance(dest, str):
                with open(dest, "wb") as f:
                    shutil.copyfileobj(resp, f, 1 << 20)
            else:
                shutil.copyfileobj(resp, dest, 1 << 20)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise
    return True


def _read_local_checksum(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().split()[0]
    except (FileNotFoundError, IndexError) as e:
        raise ChecksumError("no usable .CHECKSUM beside the file; not trusted, nothing stored "
                            "from it", path=path) from e


def _verify(path: str, expected: str, where: str) -> None:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != expected.strip().lower():
        raise ChecksumError(f"sha256 {h.hexdigest()} differs from its CHECKSUM {expected}: the "
                            "file is damaged or was replaced; nothing from it was stored (fetch "
                            "again, or remove --archive-url to use REST)", path=where)


def _read(path: str, kind: str, symbol: str, timeframe: str) -> Iterator[pd.DataFrame]:
    """Rows of one verified file, in the shape the fetch writer stores."""
    if kind in ("klines", "mark"):
        bars, _ = read_bars(path, symbol=symbol, timeframe=timeframe)
        bars.index = bars.index.as_unit("ms").asi8
        if kind == "mark":
            bars[["volume", "buy_volume", "quote_volume"]] = 0.0
            bars["trades"] = 0
            bars["vwap"] = np.nan
        yield bars
    elif kind == "aggTrades":
        for batch in iter_tick_batches(path, format="binance-aggtrades", symbol=symbol):
            batch["source"] = "binance:bulk-agg"
            yield batch
    else:
        yield _funding_csv(path)


def _funding_csv(path: str) -> pd.DataFrame:
    df = pd.read_csv(path, header=None, dtype=str)
    if not df.iloc[0, 0].strip().isdigit():  # header row
        df = df.iloc[1:]
    return pd.DataFrame({"funding_time": df[0].astype(np.int64).to_numpy(),
                         "rate": df[2].astype(np.float64).to_numpy(),
                         "mark_price": np.full(len(df), np.nan)})


def _clip(rows: pd.DataFrame, kind: str, lo: int, hi: int) -> pd.DataFrame:
    if kind == "funding":
        t = rows["funding_time"].to_numpy()
        return rows[(t >= lo) & (t < hi)]
    return rows
