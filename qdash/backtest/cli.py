"""The ``qdash backtest`` subcommand: argument parsing and the run over stored bars.

``qdash/cli.py`` wires it in with ``add_backtest_arguments(parser)`` on its subparser and
``run_backtest_cli(args)`` as the handler.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

from ..bars import stored_candles
from ..errors import QdashError
from .engine import HEDGE_METHODS, InSampleWarning, run


def add_backtest_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``qdash backtest`` arguments to ``p``."""
    p.add_argument("y", metavar="Y", help="the leg held one unit of (e.g. ETHUSDT)")
    p.add_argument("x", metavar="X", help="the hedge leg (e.g. BTCUSDT)")
    p.add_argument("--timeframe", "-t", default="1m", help="bar timeframe (default 1m)")
    p.add_argument("--db", default=None, help="SQLite store, opened read-only (default: "
                   "$QDASH_DB, else qdash.db in the user data directory)")
    p.add_argument("--start", help="ISO time, inclusive (UTC unless an offset is given)")
    p.add_argument("--end", help="ISO time, exclusive")
    p.add_argument("--entry", type=float, default=2.0, help="|z| to enter (default 2)")
    p.add_argument("--exit", type=float, default=0.0, help="z level to exit at (default 0)")
    p.add_argument("--stop", type=float, default=None, help="|z| stop (default none)")
    p.add_argument("--max-hold", type=int, default=None, help="time exit after N bars")
    p.add_argument("--hedge", default="rolling-ols", choices=HEDGE_METHODS,
                   help="hedge ratio method (default rolling-ols; full-ols is in-sample)")
    p.add_argument("--window", type=int, default=500, help="hedge window in bars (default 500)")
    p.add_argument("--z-window", type=int, default=None, help="z-score window (default: window)")
    p.add_argument("--beta", type=float, default=None, help="hedge ratio for --hedge fixed")
    p.add_argument("--fee-bps", type=float, default=4.0, help="taker fee per leg per fill")
    p.add_argument("--slippage-bps", type=float, default=0.0, help="slippage per leg per fill")
    p.add_argument("--capital", type=float, default=10_000.0, help="initial capital (quote)")
    p.add_argument("--leverage", type=float, default=1.0)
    p.add_argument("--fill", default="auto", choices=("auto", "open", "close"),
                   help="fill at the next bar's open or close (auto: open)")
    p.add_argument("--out", default=None,
                   help="directory for trades.csv, equity.csv, metrics.csv "
                        "(default: backtest-Y-X-TIMEFRAME)")


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:,.6g}"
    return str(v)


def run_backtest_cli(args: argparse.Namespace) -> int:
    """Run one backtest over stored bars, print the metrics table, write the CSVs.

    Returns the exit code: 0 on success, 1 when data is missing or inputs are invalid.
    """
    from ..store import Store

    try:
        store = Store(args.db, readonly=True)
        legs = {}
        for sym in (args.y, args.x):
            bars = stored_candles(store, sym, args.timeframe, args.start, args.end)
            if not len(bars):
                print(f"no {args.timeframe} candles or ticks stored for {sym.upper()} in that "
                      "range (see `qdash info`)", file=sys.stderr)
                return 1
            legs[sym] = bars
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InSampleWarning)
            result = run(legs[args.y], legs[args.x], hedge=args.hedge, window=args.window,
                         z_window=args.z_window, beta=args.beta, entry=args.entry,
                         exit=args.exit, stop=args.stop, max_hold=args.max_hold,
                         capital=args.capital, leverage=args.leverage, fee_bps=args.fee_bps,
                         slippage_bps=args.slippage_bps, fill=args.fill)
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
    except QdashError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    y, x = args.y.upper(), args.x.upper()
    print(f"backtest {y} vs {x} {args.timeframe}: {len(result.equity)} bars "
          f"{result.equity.index[0]} .. {result.equity.index[-1]}, hedge {args.hedge}"
          f"{' (IN-SAMPLE)' if result.in_sample else ''}")
    width = max(len(k) for k in result.metrics)
    for k, v in result.metrics.items():
        print(f"  {k:<{width}}  {_fmt(v)}")
    out = Path(args.out or f"backtest-{y}-{x}-{args.timeframe}")
    paths = result.to_csv(out)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
