"""The ``qdash scan`` subcommand: arguments, the run, the summary and the output file.

``qdash/cli.py`` wires it in with ``add_scan_arguments(parser)`` and ``run_scan_cli(args)``.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import QdashError

TOP = 20  # passing pairs printed


def add_scan_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``qdash scan`` arguments to ``p``."""
    p.add_argument("--symbols", default="all", help="all (default) or A,B,... to scan")
    p.add_argument("--timeframe", "-t", default="5m", help="bar timeframe (default 5m)")
    p.add_argument("--lookback", default="30d", help="window before the last bar (default 30d)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--db", default=None,
                     help="read candles from this store (default: $QDASH_DB or ./qdash.db)")
    src.add_argument("--bars", default=None, metavar="PATH",
                     help="CSV or Parquet long table (symbol, open_time, close[, quote_volume]) "
                          "or a hive-partitioned Parquet directory")
    p.add_argument("--min-quote-volume", type=float, default=0.0, metavar="Q",
                   help="skip symbols trading less quote volume per day (default 0)")
    p.add_argument("--lags", type=int, default=1, help="fixed ADF lags (default 1)")
    p.add_argument("--fdr", type=float, default=0.05,
                   help="Benjamini-Hochberg false discovery rate of stage 1 (default 0.05)")
    p.add_argument("--train-frac", type=float, default=0.7,
                   help="share of bars in the train window (default 0.7)")
    p.add_argument("--scheduler", default="local",
                   help="local (a Dask cluster started here, default), tcp://HOST:PORT, or "
                        "none (no Dask)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes of the local cluster (default: CPU count)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="write every tested pair to FILE.csv or FILE.parquet")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _symbols(text: str) -> list[str] | None:
    if text.strip().lower() == "all":
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    if len(names) < 2:
        raise QdashError(f"--symbols needs 'all' or at least two symbols, got {text!r}")
    return names


def run_scan_cli(args: argparse.Namespace) -> int:
    """Run the scan, print a summary and the best passing pairs, write ``--out``.

    Exit code 0 on success (even when no pair passes), 1 on bad input or options.
    """
    from .pipeline import scan

    if args.out and not args.out.endswith((".csv", ".parquet")):
        raise QdashError(f"--out {args.out}: use a .csv or .parquet file name")
    if args.bars:
        source = args.bars
    else:
        from ..store import Store
        source = Store(args.db)
    scheduler = None if args.scheduler.lower() == "none" else args.scheduler
    result = scan(source, symbols=_symbols(args.symbols), timeframe=args.timeframe,
                  lookback=args.lookback, min_quote_volume=args.min_quote_volume,
                  lags=args.lags, fdr=args.fdr, train_frac=args.train_frac,
                  scheduler=scheduler, workers=args.workers,
                  progress=False if args.no_progress else None)
    a = result.attrs
    for s in a["skipped"]:
        print(f"skipped {s['symbol']}: {s['reason']}", file=sys.stderr)
    stage1 = int((result["q"] <= args.fdr).sum())
    passed = result[result["pass"]]
    t = a["timings"]
    print(f"scan {result['n'].iloc[0] if len(result) else 0} bars of {args.timeframe} "
          f"{a['start']} .. {a['end']}: {len(result)} directed pairs tested, {stage1} pass "
          f"q <= {args.fdr:g}, {len(passed)} pass every rule "
          f"(read {t['read']:.1f}s, screen {t['screen']:.1f}s, validate {t['validate']:.1f}s)")
    if len(passed):
        cols = ["y", "x", "beta", "coint_t", "q", "half_life", "hurst", "crossings", "test_p",
                "test_sharpe"]
        print(passed[cols].head(TOP).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        if args.out.endswith(".parquet"):
            result.to_parquet(args.out, index=False)
        else:
            result.to_csv(args.out, index=False)
        print(f"wrote {len(result)} rows to {args.out}", file=sys.stderr)
    return 0
