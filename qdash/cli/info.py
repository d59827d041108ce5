"""``qdash info``: what the store holds (its venue; symbols, counts, time spans of SQLite and its
Parquet archive together)."""

from __future__ import annotations

import argparse

from .options import add_db

VENUE_TEXT = {"exchange": "exchange data", "simulated": "simulated data (from qdash's simulator)"}
NO_VENUE = "no venue recorded: files, collectors and pushes have none"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_db(p, readonly=True)


def run(args: argparse.Namespace) -> int:
    from ..store import Store

    store = Store(args.db, readonly=True)
    stats = store.stats()
    venue = VENUE_TEXT.get(store.venue, NO_VENUE)
    print(f"store: {store.path} ({venue if not stats.empty else 'empty'})")
    if stats.empty:
        print("empty: load files with `qdash load`, record with `qdash record` or fetch with "
              "`qdash fetch`")
        return 0
    arch = store.archive
    if arch is not None and arch.exists():
        print(f"archive: {arch.root} (counted with SQLite below)")
    print(stats.to_string(index=False))
    return 0
