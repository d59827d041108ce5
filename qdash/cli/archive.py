"""``qdash archive``: move closed days of ticks and candles into a Parquet archive."""

from __future__ import annotations

import argparse

from .options import add_db, add_no_progress


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--dir", default=None,
                   help="archive directory or fsspec URL (default: <db>.archive beside the db)")
    p.add_argument("--before", default=None,
                   help="archive days before this ISO time (default: every closed UTC day)")
    add_no_progress(p)


def run(args: argparse.Namespace) -> int:
    """Prints what moved, returns 0."""
    from ..store import Store
    from ..store.parquet import archive

    store = Store(args.db, archive=args.dir)
    print(archive(store, before=args.before, progress=not args.no_progress))
    return 0
