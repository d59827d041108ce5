"""The ``qdash`` command line: one subcommand a job, each a thin layer over the Python API.

Errors a user can act on (:class:`QdashError`, ``OSError``, ``sqlite3.Error``) print one line
``qdash COMMAND: error: ...`` and exit 2; ``--debug`` (or ``QDASH_DEBUG=1``) shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sqlite3
import sys

from .errors import QdashError

DEBUG_ENV = "QDASH_DEBUG"


def _add_db(p: argparse.ArgumentParser, readonly: bool = False) -> None:
    p.add_argument("--db", default=None,
                   help=("SQLite store, opened read-only" if readonly else "SQLite store")
                   + " (default: $QDASH_DB, else qdash.db in the user data directory)")


# --- load -------------------------------------------------------------------------------------
def _add_load(sub) -> None:
    p = sub.add_parser("load", help="load tick or candle files into the store",
                       description="Load Binance dumps (trades, aggTrades, klines; .csv/.zip/.gz), "
                       "raw WebSocket NDJSON captures, browser-collector NDJSON, generic tick CSV "
                       "or OHLC(V) CSV into the store. Prints a report; exits 1 on error.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    _add_db(p)
    p.add_argument("--symbol", help="symbol for files that name none (column or file name)")
    p.add_argument("--format", default=None, help="override format auto-detection")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip malformed rows (listed in the report) instead of rejecting the file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_load)


def _run_load(args) -> int:
    from .io import load
    from .store import Store

    store = Store(args.db)
    print(f"store: {store.path}", flush=True)
    report = load(args.paths, store=store, format=args.format, symbol=args.symbol,
                  skip_bad=args.skip_bad, progress=not args.no_progress, raise_on_error=False)
    print(report)
    return report.exit_code


# --- bars -------------------------------------------------------------------------------------
def _add_bars(sub) -> None:
    p = sub.add_parser("bars", help="write candles of one symbol as CSV or Parquet",
                       description="Candles from the stored ticks (or, for symbols with no ticks "
                       "in the range, the stored candles of that timeframe). Columns: open_time "
                       "(ISO 8601 UTC), open, high, low, close, volume, trades, buy_volume, "
                       "quote_volume, vwap.")
    p.add_argument("symbol")
    p.add_argument("--timeframe", "-t", default="1m", help="1s, 1m, 5m, 15m, 1h, 1d or a multiple")
    _add_db(p, readonly=True)
    p.add_argument("--start", help="ISO time, inclusive (UTC unless an offset is given)")
    p.add_argument("--end", help="ISO time, exclusive")
    p.add_argument("--fill", action="store_true", help="insert empty intervals (zero volume)")
    p.add_argument("--out", help="FILE.csv or FILE.parquet (default: CSV on stdout)")
    p.set_defaults(run=_run_bars)


def _run_bars(args) -> int:
    from .bars import stored_candles
    from .io import to_csv, to_parquet
    from .store import Store

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


# --- info -------------------------------------------------------------------------------------
def _add_info(sub) -> None:
    p = sub.add_parser("info", help="what the store holds: symbols, counts, time spans")
    _add_db(p, readonly=True)
    p.set_defaults(run=_run_info)


def _run_info(args) -> int:
    from .store import Store

    store = Store(args.db, readonly=True)
    stats = store.stats()
    print(f"store: {store.path} ({store.venue or 'no exchange or simulator'} trades)")
    if stats.empty:
        print("empty: load files with `qdash load` or record with `qdash record`")
        return 0
    print(stats.to_string(index=False))
    return 0


# Subcommands whose options and logic live with the code they drive:
# (name, help, module, function adding the options, function running the command).
_DELEGATED = [
    ("record", "record live Binance trades into the store",
     "qdash.feeds.record", "add_record_arguments", "run_record"),
    ("sim", "run the simulated Binance USDⓈ-M exchange (WS + REST) on this machine",
     "qdash.sim.cli", "add_sim_arguments", "run_sim"),
    ("serve", "run the tick ingestion server (HTTP + WebSocket)",
     "qdash.server.cli", "add_serve_arguments", "run_serve"),
    ("backtest", "backtest pair mean reversion on stored data",
     "qdash.backtest.cli", "add_backtest_arguments", "run_backtest_cli"),
    ("scan", "screen every pair of a universe for cointegration, validate the survivors",
     "qdash.scan.cli", "add_scan_arguments", "run_scan_cli"),
    ("dashboard", "serve the pair dashboard app (Voila) with the tick server beside it",
     "qdash.ui.app", "add_dashboard_arguments", "run_dashboard"),
    ("demo", "the dashboard on the built-in simulated exchange (no internet needed)",
     "qdash.ui.app", "add_demo_arguments", "run_demo"),
    ("fetch", "fetch klines, mark-price klines, aggTrades or funding history into the store",
     "qdash.history.cli", "add_fetch_arguments", "run_fetch"),
    ("archive", "move closed days of ticks and candles into a Parquet archive",
     "qdash.history.cli", "add_archive_arguments", "run_archive"),
]


def _add_delegated(sub, command: str | None) -> None:
    """Every delegated subcommand is listed; only ``command``'s module is imported for its
    options (importing all of them cost every command 4 s: the simulator, the dashboard, Dask)."""
    for name, help_text, module_name, add_name, run_name in _DELEGATED:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            getattr(module, add_name)(p)
            p.set_defaults(run=getattr(module, run_name))


def _command(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first argument that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv`` (default ``sys.argv[1:]``): every subcommand, with the options of
    the one ``argv`` names."""
    parser = argparse.ArgumentParser(
        prog="qdash", description="Statistical-arbitrage analytics for Binance USDⓈ-M futures.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument("--debug", action="store_true",
                        help=f"show tracebacks of errors (also ${DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_load, _add_bars, _add_info):
        add(sub)
    _add_delegated(sub, _command(sys.argv[1:] if argv is None else argv))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except (QdashError, OSError, sqlite3.Error) as e:
        if args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        print(f"qdash {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _one_line(e: BaseException) -> str:
    """The message of ``e`` (on one line unless qdash wrote it), naming its kind when the message
    alone is vague."""
    if isinstance(e, QdashError):
        return str(e)
    text = " ".join(str(e).split())
    if isinstance(e, sqlite3.Error):
        return f"SQLite: {text}"
    if isinstance(e, OSError) and e.filename is not None:
        return f"{e.strerror or text}: {e.filename}"
    return text or type(e).__name__
