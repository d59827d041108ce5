"""``qdash record SYMBOLS``: record live Binance trades into the store until Ctrl-C (or
``--duration``), with a one-line live status on stderr and a summary on stdout.

A :class:`~qdash.feeds.binance.BinanceFutures` feed and a :class:`~qdash.feeds.record.Recorder`;
on start each symbol resumes after its last stored trade (the outage backfilled over REST, up to
``--resume-horizon``). Whose trades they are is what the REST API's exchangeInfo says (the
simulator says it is one): simulated trades are stored as source ``sim``, and a store of the
other venue's data is refused before anything starts.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
import urllib.parse

import pandas as pd

from ..binance.limits import DEFAULT_REST_URL, DEFAULT_WS_URL
from ..binance.rest import RestClient
from ..config import Settings
from ..feeds.binance import DEFAULT_RESUME_HORIZON_S, BinanceFutures
from ..feeds.record import Recorder
from ..model import VENUE_SOURCES
from ..periodic import PeriodicTask
from ..store import Store
from .options import add_db, add_rest_url, add_symbols, add_ws_url, symbols_of

STATUS_LOG_S = 10.0  # seconds between status lines when stderr is not a terminal


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_symbols(p, positional=True)
    add_db(p)
    p.add_argument("--stream", choices=("trade", "aggTrade"), default="trade",
                   help="@trade on /public (default) or @aggTrade on /market; aggTrade ticks "
                        "carry aggregate ids, so give them a store of their own")
    add_ws_url(p)
    add_rest_url(p)
    p.add_argument("--duration", type=float, default=None,
                   help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--stale-timeout", type=float, default=30.0,
                   help="reconnect when a stream is silent this long (s)")
    p.add_argument("--depth", action="store_true",
                   help="also keep each symbol's order book (diff depth + REST snapshots, "
                        "Binance's rules) and record its top 20 levels every "
                        "$QDASH_DEPTH_INTERVAL seconds (default 10)")
    p.add_argument("--resume-horizon", type=float, default=DEFAULT_RESUME_HORIZON_S,
                   help="on start, backfill over REST the outage since each symbol's last stored "
                        "trade when it is at most this old (s; default "
                        f"{DEFAULT_RESUME_HORIZON_S:.0f}; 0: start from the live stream)")


def run(args: argparse.Namespace) -> int:
    """Exit code 0 when everything received was stored, else 1."""
    args.rest_url = rest_url_of(args.ws_url, args.rest_url)
    return asyncio.run(_record(symbols_of(args.symbols), args,
                               RestClient(args.rest_url, retries=2).venue()))


def rest_url_of(ws_url: str, rest_url: str) -> str:
    """The REST URL of the stream's exchange: ``rest_url`` when given (not Binance's default) or
    when the stream is Binance's; else the stream's own host and port over http(s) (the
    simulator serves its streams and its REST API on one port)."""
    if rest_url != DEFAULT_REST_URL or ws_url == DEFAULT_WS_URL:
        return rest_url
    parts = urllib.parse.urlsplit(ws_url)
    return f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"


def _status(feed: BinanceFutures, rec: Recorder) -> str:
    st = feed.stats()
    lags = " ".join(f"{s}:{v['lag_ms']:.0f}ms" if v["lag_ms"] is not None else f"{s}:-"
                    for s, v in list(st["symbols"].items())[:4])
    return (f"{st['ticks_per_s']:7.0f} ticks/s | {rec.received} received, {rec.stored} stored | "
            f"lag {lags} | reconnects {st['reconnects']} | gaps {st['gaps_filled']}/"
            f"{st['gaps_found']}" + _depth_status(st["depth"], rec))


def _depth_status(depth: dict | None, rec: Recorder) -> str:
    if depth is None:
        return ""
    return (f" | books {depth['synced']}/{len(depth['symbols'])} synced, resyncs "
            f"{depth['resyncs']}, {rec.depth_stored} snapshots stored")


def _status_printer(feed: BinanceFutures, rec: Recorder):
    """A callback for every second: the status line rewritten in place on a terminal, else a
    new line every :data:`STATUS_LOG_S` seconds."""
    tty = sys.stderr.isatty()
    last_line = 0.0

    def show() -> None:
        nonlocal last_line
        if tty:
            print("\r" + _status(feed, rec), end="", file=sys.stderr, flush=True)
        elif time.monotonic() - last_line >= STATUS_LOG_S:
            print(_status(feed, rec), file=sys.stderr, flush=True)
            last_line = time.monotonic()

    return show


async def _record(symbols: list[str], args: argparse.Namespace, venue: str) -> int:
    store = Store(args.db, synchronous="NORMAL")
    try:
        store.claim_venue(venue, "trades")
    except BaseException:
        store.close()
        raise
    source = VENUE_SOURCES[venue] + ("" if args.stream == "trade" else "-agg")
    feed = BinanceFutures(symbols, stream=args.stream, ws_url=args.ws_url,
                          rest_url=args.rest_url, stale_timeout=args.stale_timeout,
                          resume_horizon=args.resume_horizon, source=source,
                          depth=args.depth,
                          depth_record_every=Settings.from_env().depth_record_every)
    rec = Recorder(feed, store, resume=args.resume_horizon > 0)
    for sym, (tid, ts) in rec.resumed_from.items():
        print(f"{sym}: resuming after stored trade {tid} "
              f"({pd.Timestamp(ts, unit='ms', tz='UTC'):%Y-%m-%d %H:%M:%S} UTC)",
              file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    t0 = time.monotonic()
    feed.start()
    rec.start()
    status = PeriodicTask(_status_printer(feed, rec), 1.0, name="record-status",
                          delay_first=True).start()
    try:
        await asyncio.wait_for(stop.wait(), args.duration)
    except TimeoutError:
        pass
    finally:
        await status.wait_stopped()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await feed.stop()
        await rec.stop()
        store.close()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    st = feed.stats()
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(st["dropped"].items())) or "none"
    print(f"recorded {rec.received} ticks of {','.join(feed.symbols)} in "
          f"{time.monotonic() - t0:.1f}s into {store.path}: {rec.stored} new, {rec.duplicates} "
          f"already stored, {rec.failed + rec.dropped} lost; reconnects {st['reconnects']}, gaps "
          f"{st['gaps_filled']}/{st['gaps_found']} filled ({st['backfilled_ticks']} ticks "
          f"backfilled, {st['resumed']} symbols resumed from the store); frames not stored: "
          f"{dropped}")
    if st["depth"] is not None:
        print(f"order books: {rec.depth_stored} snapshots stored ({rec.depth_failed} failed), "
              f"{st['depth']['resyncs']} resyncs, {st['depth']['snapshots']} REST snapshots")
    return 0 if rec.failed + rec.dropped + rec.depth_failed == 0 else 1
