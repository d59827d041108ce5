"""The ``qdash`` command line: one subcommand a job, each a thin layer over the Python API.

Each command is a module here with ``add_arguments(parser)`` and ``run(args) -> exit code``; the
options several commands share are declared once in :mod:`qdash.cli.options`. Only the module of
the command named on the command line is imported (importing all of them cost every command 4 s:
the simulator, the dashboard, Dask).

Errors a user can act on (:class:`QdashError`, ``OSError``, ``sqlite3.Error``) print one line
``qdash COMMAND: error: ...`` and exit 2; ``--debug`` (or ``QDASH_DEBUG=1``) shows the traceback.
A reader that closes the pipe (``qdash backtest ... | head``) ends the command quietly (exit 141,
128 + SIGPIPE, as a shell reports it).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sqlite3
import sys

from ..config import ConfigError, Settings, var_name
from ..errors import QdashError

# command -> (module in qdash.cli, one-line help)
COMMANDS = {
    "load": ("load", "load tick or candle files into the store"),
    "bars": ("bars", "write candles of one symbol as CSV or Parquet"),
    "info": ("info", "what the store holds: symbols, counts, time spans"),
    "record": ("record", "record live Binance trades into the store"),
    "sim": ("sim", "run the simulated Binance USDⓈ-M exchange (WS + REST) on this machine"),
    "serve": ("serve", "run the tick ingestion server (HTTP + WebSocket)"),
    "backtest": ("backtest", "backtest pair mean reversion on stored data"),
    "trade": ("trade", "paper trade a pair's signal on both legs (the simulator by default), "
                       "or replay a tick file and compare with the backtest"),
    "scan": ("scan", "screen every pair of a universe for cointegration, validate the survivors"),
    "book": ("book", "walk-forward book of the pairs the scan selects, after costs, beside "
                     "baselines"),
    "dashboard": ("dashboard", "serve the pair dashboard app (Voila) with the tick server "
                               "beside it"),
    "demo": ("demo", "the dashboard on the built-in simulated exchange (no internet needed)"),
    "fetch": ("fetch", "fetch klines, mark-price klines, aggTrades or funding history into the "
                       "store"),
    "archive": ("archive", "move closed days of ticks and candles into a Parquet archive"),
}


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
                        help=f"show tracebacks of errors (also ${var_name('debug')}=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = _command(sys.argv[1:] if argv is None else argv)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == named:
            module = importlib.import_module(f"{__name__}.{module_name}")
            module.add_arguments(p)
            p.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except BrokenPipeError:  # the reader left (`qdash ... | head`): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit flush
        return 141  # 128 + SIGPIPE, the shell's code for it
    except (QdashError, OSError, sqlite3.Error) as e:
        if args.debug or _debug_env():
            raise
        print(f"qdash {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _debug_env() -> bool:
    """``$QDASH_DEBUG`` is set (a malformed other ``QDASH_*`` variable does not hide the error
    being reported)."""
    try:
        return Settings.from_env().debug
    except ConfigError:
        return False


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
