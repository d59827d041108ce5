"""``qdash dashboard`` (the published Voila app) and ``qdash demo`` (the app on the simulator).

The app is :class:`qdash.server.voila_app.QdashVoila` serving ``dashboards/pairs.ipynb``, which
builds :meth:`qdash.ui.Dashboard.from_env`: the options below reach the dashboard kernels as
``QDASH_*`` environment variables (kernels inherit the server's environment).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

DEMO_TIMEFRAME = "1h"
DEMO_WINDOW = 168
"""The demo opens on hourly bars with a week's windows (β, z-score, correlation), from history at
first paint: what every estimator needs to agree on the simulated pair. Measured on the demo pair
(ETHUSDT/BTCUSDT, seed 7), the spread of the five βs over their median: 70% at 1s bars and
30-bar windows, 28% at 1m/1,440, 1% at 15m/672 and at 1h/168 — short windows measure noise
(errors in x bias every regression towards 0). ``--timeframe 1s`` shows the fast stream."""
NOTEBOOK = Path(__file__).resolve().parents[2] / "dashboards" / "pairs.ipynb"


def add_dashboard_arguments(p: argparse.ArgumentParser, demo: bool = False) -> None:
    p.add_argument("--port", type=int, default=8866, help="HTTP port of the app (default 8866)")
    p.add_argument("--host", default="127.0.0.1", help="interface (0.0.0.0 for all)")
    p.add_argument("--db", default=None, help="SQLite store (default: $QDASH_DB, else qdash.db in "
                   "the user data directory)")
    p.add_argument("--symbols", default="BTCUSDT,ETHUSDT,SOLUSDT" if demo else "BTCUSDT,ETHUSDT",
                   help="watched symbols, comma separated")
    p.add_argument("--pair", default=None, help="Y,X of the pair (default: 2nd,1st symbol)")
    timeframe = DEMO_TIMEFRAME if demo else "1s"
    p.add_argument("--timeframe", default=timeframe, help=f"candle timeframe (default {timeframe})")
    p.add_argument("--token", default=None, help="bearer token for pushed ticks "
                   "(default $QDASH_TOKEN, else generated and printed)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--window", type=int, default=None,
                   help="rolling window in bars for β, z-score and correlation (default: "
                        f"$QDASH_WINDOW, else {DEMO_WINDOW if demo else 120})")
    if demo:
        p.add_argument("--rate", type=float, default=300.0,
                       help="simulated trades per second, all symbols (default 300)")
        p.add_argument("--seed", type=int, default=7, help="simulator seed")
    else:
        p.add_argument("--source", choices=["binance", "sim", "hub", "store"], default="binance",
                       help="where live ticks come from (default binance)")
        p.add_argument("--sim-url", default=None,
                       help="base URL of a running `qdash sim` (http://host:port) for --source sim")


def _voila_argv(args) -> list[str]:
    from ..store import resolve_db_path

    argv = [str(NOTEBOOK), f"--port={args.port}", f"--Voila.ip={args.host}"]
    if not getattr(args, "verbose", False):  # the app prints its one start-up line itself
        argv.append("--Voila.log_level=WARN")
    if args.no_browser:
        argv.append("--no-browser")
    simulated = getattr(args, "source", "sim") == "sim"   # the demo and --source sim
    if args.db or simulated:   # the simulator's trades go to their own store by default
        argv.append(f"--QdashVoila.qdash_db={resolve_db_path(args.db, simulated=simulated)}")
    if args.token:
        argv.append(f"--QdashVoila.qdash_token={args.token}")
    return argv


def _set_env(args, source: str) -> None:
    os.environ["QDASH_SOURCE"] = source
    os.environ["QDASH_SYMBOLS"] = args.symbols
    os.environ["QDASH_TIMEFRAME"] = args.timeframe
    if args.window is not None:
        os.environ["QDASH_WINDOW"] = str(args.window)
    elif source == "sim":  # the demo (see DEMO_WINDOW)
        os.environ.setdefault("QDASH_WINDOW", str(DEMO_WINDOW))
    if args.pair:
        os.environ["QDASH_PAIR"] = args.pair


def _launch(argv: list[str]) -> int:
    from ..server.voila_app import QdashVoila

    QdashVoila.launch_instance(argv=argv)
    return 0


def run_dashboard(args) -> int:
    """Serve the dashboard app until Ctrl-C (``--source store`` needs an existing store)."""
    if args.source == "store":
        from ..store import Store

        Store(args.db, readonly=True).close()  # StoreError "no store at PATH" if there is none
    if args.source == "sim" and args.sim_url:
        base = args.sim_url.rstrip("/")
        os.environ["QDASH_SIM_REST_URL"] = base
        os.environ["QDASH_SIM_WS_URL"] = base.replace("http", "ws", 1)
    _set_env(args, args.source)
    return _launch(_voila_argv(args))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_demo(args) -> int:
    """Start the simulated exchange (a child process) and the app pointed at it."""
    from ..sim.exchange import DEMO_WEIGHT_LIMIT

    port = _free_port()
    sim = subprocess.Popen([sys.executable, "-m", "qdash.sim.cli", "--port", str(port),
                            "--symbols", args.symbols, "--rate", str(args.rate),
                            "--seed", str(args.seed),
                            "--weight-limit", str(DEMO_WEIGHT_LIMIT)],
                           stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if sim.poll() is not None or time.monotonic() > deadline:
                    print("qdash demo: the simulated exchange did not start", file=sys.stderr)
                    return 1
                time.sleep(0.2)
        os.environ["QDASH_SIM_WS_URL"] = f"ws://127.0.0.1:{port}"
        os.environ["QDASH_SIM_REST_URL"] = f"http://127.0.0.1:{port}"
        _set_env(args, "sim")
        print(f"qdash demo: simulated exchange on 127.0.0.1:{port} ({args.rate:g} trades/s); "
              "Ctrl-C stops it and the dashboard", flush=True)
        return _launch(_voila_argv(args))
    finally:
        sim.terminate()
        sim.wait(10)


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    add_dashboard_arguments(p, demo=True)
