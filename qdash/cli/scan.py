"""``qdash scan``: screen every pair of a universe for cointegration, validate the survivors;
print a summary and the best passing pairs, write every tested pair to ``--out``."""

from __future__ import annotations

import argparse
import sys

from ..defaults import defaults_for
from ..errors import QdashError
from ..model import ALL_SYMBOLS
from .options import (
    add_db,
    add_no_progress,
    add_out,
    add_scheduler,
    add_symbols,
    add_timeframe,
    add_workers,
    symbols_of,
)

TOP = 20  # passing pairs printed


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_symbols(p, "all", all_means="every symbol of the store or --bars")
    add_timeframe(p)
    p.add_argument("--lookback", default=None,
                   help="span before the last bar, or all (default: the timeframe's, from "
                        "qdash.defaults: 30d on 5m)")
    src = p.add_mutually_exclusive_group()
    add_db(src, readonly=True)
    src.add_argument("--bars", default=None, metavar="PATH",
                     help="read candles from a CSV or Parquet long table (symbol, open_time, "
                          "close[, quote_volume]) or a hive-partitioned Parquet directory "
                          "instead of the store")
    p.add_argument("--min-quote-volume", type=float, default=0.0, metavar="Q",
                   help="skip symbols trading less quote volume per day (default 0)")
    p.add_argument("--lags", type=int, default=1, help="fixed ADF lags (default 1)")
    p.add_argument("--fdr", type=float, default=0.05,
                   help="Benjamini-Hochberg false discovery rate of stage 1 (default 0.05)")
    p.add_argument("--train-frac", type=float, default=0.7,
                   help="share of bars in the train window (default 0.7)")
    add_scheduler(p)
    add_workers(p, "worker processes of the local Dask cluster", default_means="CPU count")
    add_out(p, "write every tested pair to FILE.csv or FILE.parquet", "no file")
    add_no_progress(p)


def _symbols(text: str) -> list[str] | None:
    """The symbols of ``--symbols``; None for all."""
    names = symbols_of(text, "--symbols")
    if names == [ALL_SYMBOLS]:
        return None
    if len(names) < 2:
        raise QdashError(f"--symbols needs 'all' or at least two symbols, got {text!r}")
    return names


def lookback_of(args: argparse.Namespace) -> str:
    """``--lookback``, else the timeframe's (:mod:`qdash.defaults`, as the dashboard's scanner)."""
    return args.lookback or defaults_for(args.timeframe).scan_lookback


def run(args: argparse.Namespace) -> int:
    """Run the scan, print a summary and the best passing pairs, write ``--out``.

    Exit code 0 on success (even when no pair passes), 1 on bad input or options.
    """
    from ..scan.pipeline import scan

    if args.out and not args.out.endswith((".csv", ".parquet")):
        raise QdashError(f"--out {args.out}: use a .csv or .parquet file name")
    if args.bars:
        source = args.bars
    else:
        from ..store import Store
        source = Store(args.db, readonly=True)
    scheduler = None if args.scheduler.lower() == "none" else args.scheduler
    result = scan(source, symbols=_symbols(args.symbols), timeframe=args.timeframe,
                  lookback=lookback_of(args), min_quote_volume=args.min_quote_volume,
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
                "test_sharpe", "test_sharpe_se"]
        print(passed[cols].head(TOP).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        if args.out.endswith(".parquet"):
            result.to_parquet(args.out, index=False)
        else:
            result.to_csv(args.out, index=False)
        print(f"wrote {len(result)} rows to {args.out}", file=sys.stderr)
    return 0
