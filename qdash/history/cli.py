"""``qdash fetch`` (history from Binance REST / the bulk archive) and ``qdash archive`` (closed days
of ticks and candles → Parquet)."""

from __future__ import annotations

import argparse

from ..binance.limits import DEFAULT_REST_URL, FIXED_INTERVALS
from .fetch import KINDS


def add_fetch_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``qdash fetch``."""
    p.add_argument("symbols", help="comma-separated symbols (BTCUSDT,ETHUSDT) or 'all' (every "
                                   "TRADING perpetual in exchangeInfo)")
    p.add_argument("--kind", choices=KINDS, default="klines",
                   help="klines → candles; mark → mark-price candles; aggTrades → ticks (one "
                        "per trade id); funding → the funding table")
    p.add_argument("--timeframe", "-t", default="1m",
                   help=f"kline interval: {', '.join(FIXED_INTERVALS)}")
    p.add_argument("--start", required=True, help="ISO time, inclusive (UTC unless an offset "
                                                   "is given)")
    p.add_argument("--end", default=None, help="ISO time, exclusive (default: now)")
    p.add_argument("--db", default=None, help="SQLite file (default: $QDASH_DB or ./qdash.db)")
    p.add_argument("--rest-url", default=DEFAULT_REST_URL,
                   help=f"REST base URL (default {DEFAULT_REST_URL}; the simulator's with "
                        "`qdash sim`)")
    p.add_argument("--archive-url", default=None,
                   help="Binance bulk archive (https://data.binance.vision or a mirror, or a "
                        "local directory of the same layout): whole days from there first")
    p.add_argument("--workers", type=int, default=4, help="symbols fetched at once")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_fetch(args: argparse.Namespace) -> int:
    """Run ``qdash fetch``; prints the report, returns 0."""
    from ..store import Store
    from .fetch import fetch

    report = fetch(args.symbols, args.kind, args.timeframe, args.start, args.end,
                   Store(args.db), rest_url=args.rest_url, archive_url=args.archive_url,
                   workers=args.workers, progress=not args.no_progress)
    print(report)
    return 0


def add_archive_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``qdash archive``."""
    p.add_argument("--db", default=None, help="SQLite file (default: $QDASH_DB or ./qdash.db)")
    p.add_argument("--dir", default=None,
                   help="archive directory or fsspec URL (default: <db>.archive beside the db)")
    p.add_argument("--before", default=None,
                   help="archive days before this ISO time (default: every closed UTC day)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_archive(args: argparse.Namespace) -> int:
    """Run ``qdash archive``; prints what moved, returns 0."""
    from ..store import Store
    from ..store.parquet import archive

    store = Store(args.db, archive=args.dir)
    print(archive(store, before=args.before, progress=not args.no_progress))
    return 0
