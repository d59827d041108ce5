"""Where a store lives: the default file every entry point finds, and its archive beside it.

Every entry point finds the same file: the ``db`` setting (``$QDASH_DB``, read through
:class:`qdash.config.Settings`) if set, else ``qdash.db`` in the user data directory, whatever the
working directory.
"""

from __future__ import annotations

import os

import platformdirs

from ..config import Settings

DEFAULT_DB = "qdash.db"
SIM_DB = "qdash-sim.db"


def default_db_path(simulated: bool = False) -> str:
    """The store every entry point uses when given none, as an absolute path: ``$QDASH_DB`` when
    set, else ``qdash.db`` in the user data directory (``$XDG_DATA_HOME/qdash``, by default
    ``~/.local/share/qdash`` on Linux; the platform's equivalent elsewhere).

    ``simulated``: the simulated exchange's own store (``$QDASH_SIM_DB``, else ``qdash-sim.db``
    beside the other), so simulated trades never mix with the exchange's of the same symbol."""
    settings = Settings.from_env()
    env = settings.sim_db if simulated else settings.db
    if env:
        return os.path.abspath(os.path.expanduser(env))
    return str(platformdirs.user_data_path("qdash") / (SIM_DB if simulated else DEFAULT_DB))


def resolve_db_path(path: str | os.PathLike | None = None, *, simulated: bool = False) -> str:
    """``path`` as an absolute path (``~`` expanded), or :func:`default_db_path` when None;
    ``":memory:"`` stays as it is."""
    if path is None or str(path) == "":
        return default_db_path(simulated)
    if str(path) == ":memory:":
        return ":memory:"
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def default_archive_dir(db_path: str) -> str | None:
    """``<db>.archive`` beside a store file (None for an in-memory store)."""
    return None if db_path == ":memory:" else f"{db_path}.archive"
