"""``qdash serve``: the standalone tick ingestion server (the lead wires it into qdash/cli.py)."""

from __future__ import annotations

import argparse
import asyncio

from .service import DEFAULT_MAX_BODY, ServerConfig


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``qdash serve``."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=5001, help="TCP port (default 5001)")
    parser.add_argument("--db", default=None, help="SQLite file (default: $QDASH_DB or ./qdash.db)")
    parser.add_argument("--token", default=None,
                        help="bearer token for writes and subscriptions (default: $QDASH_TOKEN, "
                             "else generated and printed)")
    parser.add_argument("--loopback-subscribe", action="store_true",
                        help="let clients on this machine subscribe to /qdash/ws/ticks without "
                             "the token")
    parser.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY / 2**20,
                        help="largest accepted request body in MiB (default 16; larger: 413)")


def run_serve(args: argparse.Namespace) -> int:
    """Run the server until Ctrl-C / SIGTERM; returns the exit code."""
    from .app import serve_forever

    config = ServerConfig(db=args.db, token=args.token,
                          loopback_subscribe=args.loopback_subscribe,
                          max_body=int(args.max_body_mb * 2**20))
    try:
        asyncio.run(serve_forever(config, args.host, args.port))
    except OSError as e:
        print(f"qdash serve: error: cannot listen on {args.host}:{args.port}: {e}")
        return 1
    return 0
