"""``qdash load PATH...``: load tick or candle files into the store; prints the report."""

from __future__ import annotations

import argparse

from .options import add_db, add_no_progress


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Load Binance dumps (trades, aggTrades, klines; .csv/.zip/.gz), raw "
                     "WebSocket NDJSON captures, browser-collector NDJSON, generic tick CSV or "
                     "OHLC(V) CSV into the store. Prints a report; exits 1 on error.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    add_db(p)
    p.add_argument("--symbol", help="symbol for files that name none (column or file name)")
    p.add_argument("--format", default=None, help="override format auto-detection")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip malformed rows (listed in the report) instead of rejecting the file")
    add_no_progress(p)


def run(args: argparse.Namespace) -> int:
    """Exit code 0 when every file loaded, else 1."""
    from ..io import load
    from ..store import Store

    store = Store(args.db)
    print(f"store: {store.path}", flush=True)
    report = load(args.paths, store=store, format=args.format, symbol=args.symbol,
                  skip_bad=args.skip_bad, progress=not args.no_progress, raise_on_error=False)
    print(report)
    return report.exit_code
