"""``qdash dashboard``: the published Voila app with the tick server beside it, until Ctrl-C.

The app is :class:`qdash.server.voila_app.QdashVoila` serving ``qdash/server/pairs.ipynb``, which
builds :meth:`qdash.app.Dashboard.from_env`: the options below reach the dashboard kernels as
``QDASH_*`` environment variables (:meth:`qdash.config.Settings.export`; kernels inherit the
server's environment). ``qdash demo`` (:mod:`qdash.cli.demo`) is the same app on the simulator.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..app.choices import TIMEFRAMES, WINDOW_MAX, WINDOW_MIN
from ..config import Settings
from ..errors import QdashError
from .options import (
    BY_SOURCE,
    SIMULATOR,
    add_db,
    add_listen,
    add_symbols,
    add_timeframe,
    add_token,
    add_window,
    symbols_of,
)

NOTEBOOK = Path(__file__).resolve().parents[1] / "server" / "pairs.ipynb"
"""The app's notebook, shipped inside the package (a wheel install serves it too)."""
SOURCES = ("binance", "sim", "hub", "store")


def add_app_arguments(p: argparse.ArgumentParser, *, demo: bool) -> None:
    """The options of ``qdash dashboard`` (``demo``: of ``qdash demo``)."""
    add_listen(p, 8866)
    add_db(p, store=SIMULATOR if demo else BY_SOURCE)
    add_symbols(p, "BTCUSDT,ETHUSDT,SOLUSDT" if demo else "BTCUSDT,ETHUSDT")
    p.add_argument("--pair", default=None, help="Y,X of the pair (default: 2nd,1st symbol)")
    add_timeframe(p, allowed=TIMEFRAMES)   # the default timeframe and its windows (qdash.defaults)
    add_token(p)
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    add_window(p, "rolling window of β, z-score and correlation ($QDASH_WINDOW if set)")
    if demo:
        p.add_argument("--rate", type=float, default=300.0,
                       help="simulated trades per second, all symbols (default 300)")
        p.add_argument("--seed", type=int, default=7, help="simulator seed")
    else:
        p.add_argument("--source", choices=SOURCES, default=None,
                       help="where live ticks come from (default: sim with --sim-url, else "
                            "binance)")
        p.add_argument("--sim-url", default=None,
                       help="base URL of a running `qdash sim` (http://host:port); implies "
                            "--source sim")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_app_arguments(p, demo=False)


def check_options(args: argparse.Namespace) -> None:
    """Refuse, before anything starts, a value the app cannot show: a
    :class:`~qdash.errors.QdashError` naming the option (``qdash`` prints it, exits 2)."""
    if args.timeframe not in TIMEFRAMES:
        raise QdashError(f"--timeframe {args.timeframe}: the dashboard offers "
                         f"{', '.join(TIMEFRAMES)}")
    symbols = symbols_of(args.symbols, "--symbols")
    if len(symbols) < 2:
        raise QdashError(f"--symbols {args.symbols}: a pair dashboard needs two symbols or more")
    if args.pair:
        pair = symbols_of(args.pair, "--pair")
        if len(pair) != 2 or pair[0] == pair[1]:
            raise QdashError(f"--pair {args.pair}: expected two different symbols, Y,X "
                             "(e.g. ETHUSDT,BTCUSDT)")
        if missing := [s for s in pair if s not in symbols]:
            raise QdashError(f"--pair {args.pair}: {','.join(missing)} is not among --symbols "
                             f"{','.join(symbols)}")
    if args.window is not None and not WINDOW_MIN <= args.window <= WINDOW_MAX:
        raise QdashError(f"--window {args.window}: expected {WINDOW_MIN} to {WINDOW_MAX} bars")
    if not 0 <= args.port <= 65535:
        raise QdashError(f"--port {args.port}: expected 0 to 65535")
    if getattr(args, "rate", 1.0) <= 0:
        raise QdashError(f"--rate {args.rate}: expected a positive number of trades per second")


def source_of(args: argparse.Namespace) -> str:
    """The live source of ``qdash dashboard``: ``--source``, else ``sim`` when ``--sim-url`` names
    a running simulator, else ``binance``; a ``--sim-url`` with another source is an error."""
    if args.sim_url and args.source not in (None, "sim"):
        raise QdashError(f"--sim-url is the simulator's address: it needs --source sim, not "
                         f"--source {args.source}")
    return args.source or ("sim" if args.sim_url else "binance")


def voila_argv(args: argparse.Namespace, *, simulated: bool) -> list[str]:
    """The app's command line; ``simulated``: its store defaults to the simulator's own."""
    from ..store import resolve_db_path

    argv = [str(NOTEBOOK), f"--port={args.port}", f"--Voila.ip={args.host}"]
    if not args.verbose:  # the app prints its one start-up line itself
        argv.append("--Voila.log_level=WARN")
    if args.no_browser:
        argv.append("--no-browser")
    if args.db or simulated:   # the simulator's trades go to their own store by default
        argv.append(f"--QdashVoila.qdash_db={resolve_db_path(args.db, simulated=simulated)}")
    if args.token:
        argv.append(f"--QdashVoila.qdash_token={args.token}")
    return argv


def export_settings(args: argparse.Namespace, source: str, sim_url: str | None = None) -> None:
    """Hand the options to the dashboard kernels through the environment. ``sim_url``: a running
    simulator's HTTP base URL (its WebSocket URL is the same with ``ws``)."""
    pair = tuple(symbols_of(args.pair, "--pair")) if args.pair else None
    if pair is not None and len(pair) != 2:
        raise QdashError(f"--pair {args.pair}: expected two symbols, Y,X (e.g. ETHUSDT,BTCUSDT)")
    window = args.window or Settings.from_env().window   # None: the timeframe's (qdash.defaults)
    Settings(source=source, symbols=tuple(symbols_of(args.symbols, "--symbols")),
             timeframe=args.timeframe, window=window, pair=pair, sim_rest_url=sim_url,
             sim_ws_url=sim_url.replace("http", "ws", 1) if sim_url else None).export()


def launch(argv: list[str]) -> int:
    """Serve the Voila app until Ctrl-C; returns 0."""
    from ..server.voila_app import QdashVoila

    QdashVoila.launch_instance(argv=argv)
    return 0


def run(args: argparse.Namespace) -> int:
    """Serve the dashboard app until Ctrl-C (``--source store`` needs an existing store)."""
    check_options(args)
    source = source_of(args)
    if source == "store":
        from ..store import Store

        Store(args.db, readonly=True).close()  # StoreError "no store at PATH" if there is none
    sim_url = args.sim_url.rstrip("/") if args.sim_url else None
    export_settings(args, source, sim_url)
    return launch(voila_argv(args, simulated=source == "sim"))
