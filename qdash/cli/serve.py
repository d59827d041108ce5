"""``qdash serve``: the standalone tick ingestion server (HTTP + WebSocket), until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio

from ..server.service import DEFAULT_MAX_BODY, ServerConfig
from .options import add_db, add_listen, add_token


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_listen(p, 5001)
    add_db(p)
    add_token(p)
    p.add_argument("--loopback-subscribe", action="store_true",
                   help="let clients on this machine subscribe to /qdash/ws/ticks without the "
                        "token")
    p.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY / 2**20,
                   help="largest accepted request body in MiB (default 16; larger: 413)")


def run(args: argparse.Namespace) -> int:
    """Run the server until Ctrl-C / SIGTERM; returns the exit code."""
    from ..server.app import serve_forever

    config = ServerConfig(db=args.db, token=args.token,
                          loopback_subscribe=args.loopback_subscribe,
                          max_body=int(args.max_body_mb * 2**20))
    try:
        asyncio.run(serve_forever(config, args.host, args.port))
    except OSError as e:
        print(f"qdash serve: error: cannot listen on {args.host}:{args.port}: {e}")
        return 1
    return 0
