"""``qdash fetch SYMBOLS --start T``: history from Binance REST (and the bulk archive) into the
store; prints the report."""

from __future__ import annotations

import argparse

from ..binance.limits import FIXED_INTERVALS
from ..history.fetch import KINDS
from .options import (
    add_db,
    add_no_progress,
    add_rest_url,
    add_symbols,
    add_time_range,
    add_timeframe,
    add_workers,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_symbols(p, positional=True, all_means="every TRADING perpetual in exchangeInfo")
    p.add_argument("--kind", choices=KINDS, default="klines",
                   help="klines → candles; mark → mark-price candles; aggTrades → ticks (one "
                        "per trade id); funding → the funding table")
    add_timeframe(p, allowed=FIXED_INTERVALS)
    add_time_range(p, start_required=True, end_means="now")
    add_db(p)
    add_rest_url(p)
    p.add_argument("--archive-url", default=None,
                   help="Binance bulk archive (https://data.binance.vision or a mirror, or a "
                        "local directory of the same layout): whole days from there first")
    add_workers(p, "symbols fetched at once", 4)
    add_no_progress(p)


def run(args: argparse.Namespace) -> int:
    """Prints the report, returns 0."""
    from ..history.fetch import fetch
    from ..store import Store

    report = fetch(args.symbols, args.kind, args.timeframe, args.start, args.end,
                   Store(args.db), rest_url=args.rest_url, archive_url=args.archive_url,
                   workers=args.workers, progress=not args.no_progress)
    print(report)
    return 0
