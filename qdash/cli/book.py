"""``qdash book``: the walk-forward book of pairs (scan → select → allocate → trade → roll), after
fees, slippage and funding, beside its baselines; writes the CSVs and report.html to ``--out``."""

from __future__ import annotations

import argparse
import math
import sys

from ..analytics.signal import HEDGE_METHODS
from ..book.select import ALLOCATIONS
from ..errors import QdashError
from .options import (
    add_db,
    add_out,
    add_scheduler,
    add_symbols,
    add_time_range,
    add_timeframe,
    add_window,
    add_workers,
)
from .scan import _symbols

SHOWN = ("total_return", "sharpe", "sharpe_se", "deflated_sharpe", "max_drawdown", "turnover",
         "fees", "funding", "windows", "pairs_traded", "trades")


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--bars", default=None, metavar="PATH",
                     help="read candles from a CSV or Parquet long table (symbol, open_time, "
                          "close[, quote_volume]) or a hive-partitioned Parquet directory "
                          "instead of the store")
    add_db(src, readonly=True)
    add_symbols(p, "all", all_means="every symbol of the store or --bars")
    add_timeframe(p)
    add_time_range(p)
    p.add_argument("--train", default="30d", help="train span before each window (default 30d)")
    p.add_argument("--trade", default="7d", help="trade window length (default 7d)")
    p.add_argument("--fdr", type=float, default=0.05,
                   help="Benjamini-Hochberg false discovery rate of the scan (default 0.05)")
    p.add_argument("--max-pairs", type=int, default=20,
                   help="pairs kept per window (default 20)")
    p.add_argument("--entry", type=float, default=2.0, help="|z| to enter (default 2)")
    p.add_argument("--exit", type=float, default=0.0, help="z level to exit at (default 0)")
    p.add_argument("--stop", type=float, default=4.0, help="|z| stop (default 4)")
    p.add_argument("--hedge", default="rolling-ols", choices=HEDGE_METHODS,
                   help="hedge ratio method (default rolling-ols)")
    add_window(p, "β and z window")
    p.add_argument("--allocation", default="equal", choices=ALLOCATIONS,
                   help="split of the gross across pairs (default equal)")
    p.add_argument("--capital", type=float, default=100_000.0,
                   help="initial capital, USDT (default 100000)")
    p.add_argument("--leverage", type=float, default=3.0,
                   help="gross exposure cap, times equity (default 3)")
    p.add_argument("--max-symbol-weight", type=float, default=0.25,
                   help="net exposure cap per symbol over all pairs, times equity (default 0.25)")
    p.add_argument("--fee-bps", type=float, default=5.0,
                   help="taker fee per leg per fill (default 5: Binance VIP 0)")
    p.add_argument("--slippage-bps", type=float, default=None,
                   help="fixed slippage per leg per fill (default: square-root impact on each "
                        "bar's quote volume)")
    p.add_argument("--no-funding", action="store_true",
                   help="leave out stored funding (default: each leg's stored funding settles "
                        "on the position held)")
    add_scheduler(p)
    add_workers(p, "worker processes of the local Dask cluster", default_means="CPU count")
    add_out(p, "directory for windows.csv, trades.csv, equity.csv, positions.csv, "
               "metrics.csv and report.html", "book-TIMEFRAME")


def run(args: argparse.Namespace) -> int:
    """Run the book, print its headline figures, write the files. Exit 0, or 2 on bad input."""
    from ..book.engine import book

    if args.bars:
        source = args.bars
    else:
        from ..store import Store
        source = Store(args.db, readonly=True)
    scheduler = None if args.scheduler.lower() == "none" else args.scheduler
    if args.max_pairs < 1:
        raise QdashError(f"--max-pairs must be >= 1, got {args.max_pairs}")
    result = book(source, symbols=_symbols(args.symbols), timeframe=args.timeframe,
                  start=args.start, end=args.end, train=args.train, trade=args.trade,
                  fdr=args.fdr, max_pairs=args.max_pairs, entry=args.entry, exit=args.exit,
                  stop=args.stop, hedge=args.hedge, window=args.window,
                  allocation=args.allocation, capital=args.capital, leverage=args.leverage,
                  max_symbol_weight=args.max_symbol_weight, fee_bps=args.fee_bps,
                  slippage_bps=args.slippage_bps, funding=not args.no_funding,
                  scheduler=scheduler, workers=args.workers)
    out = args.out or f"book-{args.timeframe}"
    for path in result.to_csv(out):
        print(f"wrote {path}", file=sys.stderr)
    try:
        print(f"wrote {result.report(f'{out}/report.html')}", file=sys.stderr)
    except ImportError as exc:                       # the report module is not in this build
        print(f"no report.html: {exc}", file=sys.stderr)
    for name in SHOWN:
        v = result.metric(name)
        print(f"{name:>16}: {'n/a' if math.isnan(v) else f'{v:,.6g}'}")
    return 0
