"""``fetch``: Binance USDⓈ-M history → the store, exactly, idempotently, under the weight limit.

Kinds and where they go:

* ``klines`` → candles (``ohlcv_data``, timeframe ``TF``, source ``""``): open/high/low/close,
  volume, trades (Binance's ``count``), buy_volume (taker buy base), quote_volume and vwap
  (quote_volume / volume); only closed klines are stored.
* ``mark`` → mark-price klines as candles with source ``"mark"`` (volumes and trades 0).
* ``aggTrades`` → ticks, one per underlying trade id ``f..l``
  (:func:`qdash.binance.schema.expand_agg_trades`), source ``"binance:rest-agg"``
  (``"sim:rest-agg"`` from the simulator; ``:bulk-agg`` from the bulk archive).
* ``funding`` → the ``funding`` table (funding time, rate, mark price).

Exact and idempotent: each page is stored as the API returned it, with the time range it completes
(:mod:`qdash.store.coverage`) in the same transaction, so a second run asks only for ranges not
covered yet and an interrupted run resumes where it stopped. Every write carries the venue the
REST API's exchangeInfo names (:meth:`RestClient.venue <qdash.binance.rest.RestClient.venue>`:
the simulator says it is one, whatever its URL), so simulated history is refused by a store of
exchange data and the other way round, before anything is written (:mod:`qdash.store.venue`).
Pages come from two sources, REST (:mod:`qdash.history.rest_pages`, over the pagers of
:mod:`qdash.binance.pages`) and the bulk archive (:mod:`qdash.history.bulk`); this module decides
what to ask for and writes. Paging follows Binance's limits: klines at most 1,500 rows a request
(the page size with the least weight for what is left: 499 rows cost 2, 1,000 cost 5, 1,500 cost
10), aggTrades by windows under one hour and then ``fromId``, funding 1,000 events a request.
Symbols are fetched by ``workers`` threads sharing one :class:`~qdash.binance.rest.RestClient` (so
one weight budget); pages are written by the calling thread as they come, so memory is bounded by
a few pages, not by the history. With ``archive_url`` whole UTC days come from Binance's bulk
archive first (:mod:`qdash.history.bulk`) and REST fills the rest. Times are int ms UTC; symbols
upper case.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd

from ..binance.limits import DEFAULT_REST_URL, FIXED_INTERVALS
from ..binance.rest import RestClient
from ..defaults import DEFAULT_TIMEFRAME
from ..errors import QdashError
from ..model import parse_symbols, parse_time, timeframe_ms, venue_source
from ..store import Store
from .bulk import archive_pages
from .page import HistoryPage
from .rest_pages import rest_pages

log = logging.getLogger(__name__)

KINDS = ("klines", "aggTrades", "funding", "mark")


class FetchError(QdashError, ValueError):
    """A fetch request is invalid (unknown symbol or kind, bad interval, empty time range)."""


@dataclass
class SymbolFetch:
    """What one symbol's fetch did: rows offered and newly stored, pages, time covered (ms)."""

    rows: int = 0
    stored: int = 0
    pages: int = 0
    covered_ms: int = 0
    from_archive: int = 0


@dataclass
class FetchReport:
    """What :func:`fetch` did, per symbol, plus the REST client's counters (requests, weight,
    waits) and the wall time in seconds."""

    kind: str
    timeframe: str
    start_ms: int
    end_ms: int
    symbols: dict[str, SymbolFetch] = field(default_factory=dict)
    rest: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def stored(self) -> int:
        return sum(s.stored for s in self.symbols.values())

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.symbols.values())

    def __str__(self) -> str:
        a, b = (pd.Timestamp(x, unit="ms", tz="UTC") for x in (self.start_ms, self.end_ms))
        what = self.kind + (f" {self.timeframe}" if self.timeframe else "")
        lines = [f"fetch {what} {a:%Y-%m-%d %H:%M} → {b:%Y-%m-%d %H:%M} UTC",
                 f"  {'symbol':<14} {'received':>10} {'stored':>10} {'pages':>6} {'archive':>8}"]
        for sym, s in sorted(self.symbols.items()):
            lines.append(f"  {sym:<14} {s.rows:>10,} {s.stored:>10,} {s.pages:>6,} "
                         f"{s.from_archive:>8,}")
        r = self.rest
        lines.append(f"total: received {self.rows:,}, stored {self.stored:,} in "
                     f"{self.seconds:.1f} s; {r.get('requests', 0):,} requests, weight "
                     f"{r.get('weight', 0):,} (limit {r.get('weight_limit', '?')}/min), "
                     f"{r.get('http_429', 0)} × 429, {r.get('retries', 0)} retries")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Job:
    kind: str
    timeframe: str  # "" for aggTrades and funding
    source: str


def _job(kind: str, timeframe: str | None) -> _Job:
    if kind not in KINDS:
        raise FetchError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    if kind in ("klines", "mark"):
        if timeframe not in FIXED_INTERVALS:  # qdash stores fixed-length intervals only
            raise FetchError(f"bad interval {timeframe!r} for {kind}: Binance USDⓈ-M intervals "
                             f"are {', '.join(FIXED_INTERVALS)}")
        return _Job(kind, timeframe, "mark" if kind == "mark" else "")
    return _Job(kind, "", "")


def fetch(symbols: str | list[str], kind: str = "klines", timeframe: str | None = DEFAULT_TIMEFRAME,
          start=None, end=None, store: Store | str | None = None, *,
          rest_url: str | None = DEFAULT_REST_URL, archive_url: str | None = None,
          client: RestClient | None = None, workers: int = 4, progress: bool = True,
          ) -> FetchReport:
    """Fetch ``kind`` history of ``symbols`` for ``[start, end)`` into ``store``; see the module
    docstring. Returns a :class:`FetchReport`.

    ``symbols``: a list, a comma-separated string, or ``"all"`` (every TRADING perpetual of
    exchangeInfo). ``start``/``end``: ISO strings, Timestamps or epoch numbers (UTC); ``end``
    defaults to now. ``timeframe`` is the kline interval (``klines``, ``mark``; default
    :data:`qdash.defaults.DEFAULT_TIMEFRAME`, as ``qdash fetch``). ``store``: a
    :class:`Store`, a path, or None for the default store. ``rest_url``: Binance or the
    simulator (None: the bulk archive only, whose data has no venue). ``archive_url``: an http(s)
    URL or a local directory laid out like data.binance.vision. Raises :class:`FetchError` before
    any data request for an unknown symbol, kind or interval, or an empty range, and
    :class:`~qdash.errors.StoreError` before any write into a store of the other venue.
    """
    job = _job(kind, timeframe)
    start_ms, end_ms = parse_time(start), parse_time(end if end is not None else time.time())
    if start_ms is None:
        raise FetchError("no start time: pass start=... (--start ISO)")
    if start_ms >= end_ms:
        raise FetchError(f"start {pd.Timestamp(start_ms, unit='ms', tz='UTC')} is not before end "
                         f"{pd.Timestamp(end_ms, unit='ms', tz='UTC')}")
    if job.timeframe:
        tf = timeframe_ms(job.timeframe)
        start_ms, end_ms = start_ms // tf * tf, -(-end_ms // tf) * tf
    names = _symbol_list(symbols)
    if rest_url is None and archive_url is None and client is None:
        raise FetchError("neither a REST URL nor an archive URL to fetch from")
    if client is None and rest_url is not None:
        client = RestClient(rest_url)
    if client is not None:
        names = _check_symbols(client, names)
    elif names == ["ALL"]:
        raise FetchError("symbols 'all' needs the REST API (exchangeInfo); name the symbols")
    venue = client.venue() if client is not None else None
    own = not isinstance(store, Store)
    st = store if isinstance(store, Store) else Store(store)
    try:
        return _Fetcher(st, client, venue, job, start_ms, end_ms, archive_url, workers,
                        progress).run(names)
    finally:
        if own:
            st.close()


def _symbol_list(symbols) -> list[str]:
    try:
        names = parse_symbols(symbols)
    except ValueError as e:
        raise FetchError(str(e)) from e
    if not names:
        raise FetchError("no symbols given: name them (BTCUSDT,ETHUSDT) or pass 'all'")
    return names


def _check_symbols(client: RestClient, names: list[str]) -> list[str]:
    """``names`` checked against exchangeInfo (``["ALL"]`` → every TRADING perpetual)."""
    listed = {s["symbol"]: s for s in client.exchange_info()["symbols"]}
    if names == ["ALL"]:
        return client.perpetuals()
    unknown = [s for s in names if s not in listed]
    if unknown:
        raise FetchError(f"unknown symbol(s) {', '.join(unknown)}: not in the exchange's "
                         f"exchangeInfo at {client.base_url} (symbols are like BTCUSDT)")
    return names


class _Fetcher:
    """Runs one fetch: worker threads page through REST (and the archive), this thread writes."""

    def __init__(self, store: Store, client: RestClient | None, venue: str | None, job: _Job,
                 start_ms: int, end_ms: int, archive_url: str | None, workers: int,
                 progress: bool):
        self.store, self.client, self.venue, self.job = store, client, venue, job
        self.start_ms, self.end_ms = start_ms, end_ms
        self.archive_url, self.workers = archive_url, max(1, int(workers))
        self.progress = progress
        self.stop = threading.Event()
        self.pages: queue.Queue = queue.Queue(maxsize=2 * self.workers)

    def run(self, names: list[str]) -> FetchReport:
        t0 = time.perf_counter()
        report = FetchReport(self.job.kind, self.job.timeframe, self.start_ms, self.end_ms,
                             {s: SymbolFetch() for s in names})
        self.store.claim_venue(self.venue, f"{self.job.kind} history")  # refused up front
        todo = {s: self.store.coverage.missing(s, self.job.kind, self.job.timeframe,
                                               self.start_ms, self.end_ms) for s in names}
        todo = {s: gaps for s, gaps in todo.items() if gaps}
        bars = _Bars(self.progress, self.job, todo)
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="qdash-fetch")
        try:
            for sym, gaps in todo.items():
                pool.submit(self._produce, sym, gaps)
            left = len(todo)
            while left:
                item = self.pages.get()
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, str):  # a symbol is done
                    left -= 1
                    bars.done(item)
                    continue
                self._write(item, report.symbols[item.symbol])
                bars.advance(item)
        finally:
            self.stop.set()
            while True:  # unblock producers waiting on a full queue
                try:
                    self.pages.get_nowait()
                except queue.Empty:
                    break
            pool.shutdown(wait=True, cancel_futures=True)
            bars.close()
        report.rest = self.client.stats() if self.client is not None else {}
        report.seconds = time.perf_counter() - t0
        return report

    def _put(self, item) -> None:
        while not self.stop.is_set():
            try:
                self.pages.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _produce(self, symbol: str, gaps: list[tuple[int, int]]) -> None:
        try:
            for gap in gaps:
                for page in self._pages(symbol, *gap):
                    if self.stop.is_set():
                        return
                    self._put(page)
            self._put(symbol)
        except BaseException as e:  # handed to the writing thread, which raises it
            self._put(e)

    def _pages(self, symbol: str, start: int, end: int) -> Iterator[HistoryPage]:
        gaps = [(start, end)]
        if self.archive_url is not None:
            gaps = []
            for page in archive_pages(self.archive_url, symbol, self.job.kind,
                                      self.job.timeframe, start, end):
                if page.rows is None:  # not in the archive: REST fills it
                    gaps.append((page.start, page.end))
                else:
                    yield page
        if self.client is None:
            return
        for s, e in gaps:
            yield from rest_pages(self.client, self.job.kind, self.job.timeframe, symbol, s, e)

    # --- writing --------------------------------------------------------------------------------
    def _write(self, page: HistoryPage, rep: SymbolFetch) -> None:
        job, st, venue = self.job, self.store, self.venue
        n = 0 if page.rows is None else len(page.rows)
        with st.transaction():
            if n and job.kind == "aggTrades":
                res = st.write_ticks(_venue_source(page.rows, venue), venue=venue)
            elif n and job.kind == "funding":
                res = st.write_funding(page.symbol, page.rows, venue=venue)
            elif n:
                res = st.write_bars(page.rows, page.symbol, job.timeframe, job.source,
                                    venue=venue)
            st.coverage.mark(page.symbol, job.kind, job.timeframe, page.start, page.end)
        rep.pages += 1
        rep.rows += n
        rep.covered_ms += max(0, page.end - page.start)
        if n:
            rep.stored += res.stored
            if page.from_archive:
                rep.from_archive += n


def _venue_source(ticks: pd.DataFrame, venue: str | None) -> pd.DataFrame:
    """Ticks of a page under their venue's source (:func:`qdash.model.venue_source`): the page
    readers name every aggTrades tick ``binance:...``; those the simulator served become
    ``sim:...``."""
    first = ticks["source"].iat[0]
    named = venue_source(first, venue)
    if named == first:
        return ticks
    return ticks.assign(source=ticks["source"].map(lambda s: venue_source(s, venue)))


class _Bars:
    """tqdm bars: one per symbol and kind while it is fetched (minutes of history covered), and
    one over symbols when there are several."""

    def __init__(self, enabled: bool, job: _Job, todo: dict[str, list[tuple[int, int]]]):
        self.enabled, self.job, self.todo = enabled, job, todo
        self.open: dict[str, object] = {}
        self.total = None
        if enabled and len(todo) > 1:
            from tqdm.auto import tqdm

            self.total = tqdm(total=len(todo), unit="symbol", desc=f"fetch {job.kind}")

    def advance(self, page: HistoryPage) -> None:
        if not self.enabled:
            return
        bar = self.open.get(page.symbol)
        if bar is None:
            from tqdm.auto import tqdm

            minutes = sum(e - s for s, e in self.todo[page.symbol]) / 60_000
            what = self.job.kind + (f" {self.job.timeframe}" if self.job.timeframe else "")
            bar = self.open[page.symbol] = tqdm(total=round(minutes), unit="min", leave=False,
                                                desc=f"{page.symbol} {what}")
        bar.update(round((page.end - page.start) / 60_000))

    def done(self, symbol: str) -> None:
        bar = self.open.pop(symbol, None)
        if bar is not None:
            bar.close()
        if self.total is not None:
            self.total.update(1)

    def close(self) -> None:
        for bar in self.open.values():
            bar.close()
        if self.total is not None:
            self.total.close()


__all__ = ["FetchError", "FetchReport", "KINDS", "fetch"]
