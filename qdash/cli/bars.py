"""``qdash bars SYMBOL``: candles of one symbol as CSV (stdout or a file) or Parquet."""

from __future__ import annotations

import argparse
import sys

from .options import add_db, add_out, add_time_range, add_timeframe


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Candles from the stored ticks (or, for symbols with no ticks in the range, "
                     "the stored candles of that timeframe). Columns: open_time (ISO 8601 UTC), "
                     "open, high, low, close, volume, trades, buy_volume, quote_volume, vwap.")
    p.add_argument("symbol")
    add_timeframe(p)
    add_db(p, readonly=True)
    add_time_range(p)
    p.add_argument("--fill", action="store_true", help="insert empty intervals (zero volume)")
    add_out(p, "FILE.csv or FILE.parquet", "CSV on stdout")


def run(args: argparse.Namespace) -> int:
    """Exit code 0, or 1 when nothing is stored for the symbol in the range."""
    from ..bars import stored_candles
    from ..io import to_csv, to_parquet
    from ..store import Store

    store = Store(args.db, readonly=True)
    print(f"store: {store.path}", file=sys.stderr)
    bars = stored_candles(store, args.symbol, args.timeframe, args.start, args.end,
                          fill=args.fill)
    if not len(bars):
        print(f"no ticks or {args.timeframe} candles stored for {args.symbol.upper()} in that "
              "range (see `qdash info`)", file=sys.stderr)
        return 1
    if args.out and args.out.endswith(".parquet"):
        to_parquet(bars, args.out)
    elif args.out:
        to_csv(bars, args.out)
    else:
        sys.stdout.write(to_csv(bars))
    if args.out:
        print(f"wrote {len(bars)} candles to {args.out}", file=sys.stderr)
    return 0
