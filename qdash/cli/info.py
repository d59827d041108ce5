"""``qdash info``: what the store holds (symbols, counts, time spans)."""

from __future__ import annotations

import argparse

from .options import add_db


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_db(p, readonly=True)


def run(args: argparse.Namespace) -> int:
    from ..store import Store

    store = Store(args.db, readonly=True)
    stats = store.stats()
    print(f"store: {store.path} ({store.venue or 'no exchange or simulator'} trades)")
    if stats.empty:
        print("empty: load files with `qdash load` or record with `qdash record`")
        return 0
    print(stats.to_string(index=False))
    return 0
