"""``qdash demo``: the dashboard app (:mod:`qdash.cli.dashboard`) on the built-in simulated
exchange, started as a child process (``python -m qdash sim``); no internet needed."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time

from .dashboard import add_app_arguments, check_options, export_settings, launch, voila_argv

SIM_START_TIMEOUT_S = 30.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_app_arguments(p, demo=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: argparse.Namespace) -> int:
    """Start the simulated exchange (a child process) and the app pointed at it."""
    from ..sim.exchange import DEMO_WEIGHT_LIMIT

    check_options(args)
    port = _free_port()
    sim = subprocess.Popen([sys.executable, "-m", "qdash", "sim", "--port", str(port),
                            "--symbols", args.symbols, "--rate", str(args.rate),
                            "--seed", str(args.seed),
                            "--weight-limit", str(DEMO_WEIGHT_LIMIT)],
                           stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + SIM_START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if sim.poll() is not None or time.monotonic() > deadline:
                    print("qdash demo: the simulated exchange did not start", file=sys.stderr)
                    return 1
                time.sleep(0.2)
        export_settings(args, "sim", f"http://127.0.0.1:{port}")
        print(f"qdash demo: simulated exchange on 127.0.0.1:{port} ({args.rate:g} trades/s); "
              "Ctrl-C stops it and the dashboard", flush=True)
        return launch(voila_argv(args, simulated=True))
    finally:
        sim.terminate()
        sim.wait(10)
