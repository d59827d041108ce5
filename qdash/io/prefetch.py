"""Parsing a tick file one chunk ahead of its writer, in a forked child process.

``load`` parses each chunk (Python, numba, pandas) and writes it (SQLite). One after the other, the
rate is 1 / (1/parse + 1/write); a thread cannot overlap the two, because both need the GIL (the
sqlite3 module takes it back between rows). A child process parses the next chunks while the
parent writes this one, so a load runs at about the rate of the slower of the two on two cores
(``bench/bench_load.py`` measures both ways).

The child is forked: it starts at once and inherits the imported modules and the compiled
decoder. Fork is only used from a process with a single thread (the ``qdash load`` command, a
script): a child forked from a multi-threaded process, such as a Jupyter kernel, can deadlock on a
lock another thread held at the fork. There, chunks are parsed in the calling process; ``!qdash
load FILE`` in a cell gets the parallel path.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..binance.scanner import warm_up
from ..errors import DataFormatError, QdashError
from .detect import detect
from .ticks import DEFAULT_CHUNK_ROWS, TickChunk, iter_tick_chunks

PREFETCH_CHUNKS = 2  # parsed chunks waiting for the writer (memory: these + one in each process)
# Rows per chunk when parsing in a child: small enough that the writer starts soon (the first chunk
# is parsed while it waits) and the transfer of one chunk stays cheap, large enough that the
# per-chunk costs are small (measured on bench_load.py's files: 16k-64k rows load at about the
# same rate; 200k-row chunks, the in-process default, were 15-25% slower).
PARALLEL_CHUNK_ROWS = 32_768
POLL_S = 0.5  # how often a waiting parent checks that the child is still alive (s)


def can_fork() -> bool:
    """True on Linux in a process with a single thread, where forking a parser is safe."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


@contextmanager
def parsed_chunks(path, *, bar=None, parallel: bool | None = None,
                  prepare: Callable[[TickChunk], Any] = lambda ch: ch,
                  chunk_rows: int = DEFAULT_CHUNK_ROWS, **kwargs) -> Iterator[Iterator[Any]]:
    """``prepare(chunk)`` for each chunk of ``iter_tick_chunks(path, bar=bar, chunk_rows=...,
    **kwargs)``, parsed and prepared in a child process when ``parallel`` (None: when
    :func:`can_fork`; chunks then hold at most :data:`PARALLEL_CHUNK_ROWS` rows).

    The child starts when the block is entered and is stopped when it is left, read to the end or
    not. A parse error is raised in the caller as it was in the child (a
    :class:`DataFormatError` keeps its file, line and field); ``bar`` (anything with
    ``update(n_bytes)``) advances in the caller as the child reads.
    """
    if parallel is None:
        parallel = can_fork()
    if not parallel:
        yield map(prepare, iter_tick_chunks(path, bar=bar, chunk_rows=chunk_rows, **kwargs))
        return
    kwargs["chunk_rows"] = min(chunk_rows, PARALLEL_CHUNK_ROWS)
    kwargs["detected"] = kwargs.get("detected") or detect(path, kwargs.get("format"))
    if kwargs["detected"].format == "ws-ndjson":
        warm_up()  # load the numba frame scanner once, here: every child inherits it
    ctx = mp.get_context("fork")
    chunks = ctx.Queue(PREFETCH_CHUNKS)
    child = ctx.Process(target=_parse, args=(path, kwargs, prepare, chunks), daemon=True,
                        name=f"qdash-parse-{getattr(path, 'name', path)}")
    child.start()
    try:
        yield _received(path, child, chunks, bar)
    finally:
        if child.is_alive():
            child.terminate()
        child.join()
        chunks.close()


class _ByteCount:
    """A progress bar stand-in in the child: counts bytes read since the last chunk was sent."""

    def __init__(self):
        self.n = 0

    def update(self, n: int) -> None:
        self.n += n

    def take(self) -> int:
        n, self.n = self.n, 0
        return n


def _parse(path, kwargs: dict, prepare, chunks) -> None:
    """Child process: send ``("chunk", prepare(chunk), bytes)`` items, then
    ``("done", None, bytes)`` or ``("error", exception, 0)``."""
    read = _ByteCount()
    try:
        for ch in iter_tick_chunks(path, bar=read, **kwargs):
            chunks.put(("chunk", prepare(ch), read.take()))
        chunks.put(("done", None, read.take()))
    except BaseException as e:  # noqa: BLE001 - every failure is reported to the parent
        chunks.put(("error", _portable(e), 0))


def _portable(e: BaseException) -> BaseException:
    """``e`` as an exception that survives pickling with its message and location."""
    if type(e) is DataFormatError:
        return _LocatedError(str(e), e.path, e.line, e.column)
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:  # noqa: BLE001 - an exception type that does not pickle
        return QdashError(f"{type(e).__name__}: {e}")


class _LocatedError(Exception):
    """A child's :class:`DataFormatError` in transit (its ``__init__`` re-formats the message)."""

    def __init__(self, message, path, line, column):
        super().__init__(message, path, line, column)

    def rebuilt(self) -> DataFormatError:
        message, path, line, column = self.args
        err = DataFormatError(message)
        err.path, err.line, err.column = path, line, column
        return err


def _received(path, child, chunks, bar) -> Iterator[Any]:
    while True:
        try:
            kind, payload, n_bytes = chunks.get(timeout=POLL_S)
        except queue.Empty:
            if not child.is_alive():
                raise QdashError(f"{path}: the parser process stopped (exit code "
                                 f"{child.exitcode}) before the end of the file") from None
            continue
        if bar is not None and n_bytes:
            bar.update(n_bytes)
        if kind == "chunk":
            yield payload
        elif kind == "error":
            raise payload.rebuilt() if isinstance(payload, _LocatedError) else payload
        else:
            return
