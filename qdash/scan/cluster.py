"""Dask glue for stage 2: a client for ``"local"`` or a scheduler address, and the block run.

Following Dask's best practices: one task per *block* of pairs (a few blocks per worker, never one
task per pair); the panel of closes is scattered to every worker once (``broadcast=True``) and the
tasks receive its future, so no large object is embedded in the graph; each worker is one process
with one thread, and :func:`qdash.scan.validate.validate_block` holds BLAS to one thread inside
the task (Dask's nanny also sets ``OMP/MKL/OPENBLAS_NUM_THREADS=1`` for the workers it spawns).
Results come back in block order, so the Dask path returns exactly the in-process result.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np
import pandas as pd

from ..errors import QdashError
from .io import Panel, tqdm_disable
from .validate import ValidateParams, validate_block

log = logging.getLogger(__name__)

BLOCKS_PER_WORKER = 4


def connect(scheduler="local", workers: int | None = None):
    """``(client, close)``: ``"local"`` starts a ``LocalCluster`` in this process (``workers``
    processes, default the CPU count, one thread each, no dashboard); ``"tcp://HOST:PORT"``
    connects to a running scheduler; a ``Client`` is used as it is (``close`` leaves it open)."""
    from distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        return scheduler, lambda: None
    if scheduler == "local":
        n = int(workers or os.cpu_count() or 1)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR,
                               # no dashboard; its health/metrics HTTP server on a free port
                               scheduler_kwargs={"dashboard_address": ":0"})
        client = Client(cluster)

        def close() -> None:
            client.close()
            cluster.close()
        return client, close
    try:
        client = Client(scheduler, timeout=30)
    except OSError as exc:
        raise QdashError(f"cannot reach the Dask scheduler at {scheduler}: {exc}; start one with "
                         "`dask scheduler` or use --scheduler local") from exc
    return client, client.close


def warm() -> None:
    """Import and load (numba cache) everything a stage-2 task uses, on a tiny panel
    (``client.run(warm)``: start-up cost paid before a timed run)."""
    n = 256
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(size=n)) * 0.01 + 3.0
    close = np.exp(np.column_stack([x, x + rng.normal(size=n) * 0.01]))
    panel = Panel(np.arange(n, dtype=np.int64) * 60_000, ["AUSDT", "BUSDT"], close,
                  np.full(2, np.nan), 60_000)
    validate_block(panel, np.array([0]), np.array([1]), np.array([1.0]), np.array([0.0]),
                   ValidateParams(z_window=20))


def blocks(n_pairs: int, n_workers: int, block_size: int | None = None) -> list[slice]:
    """Contiguous blocks of pair positions: ``block_size`` each, default enough for
    :data:`BLOCKS_PER_WORKER` blocks per worker (load balance without per-pair tasks)."""
    size = block_size or max(1, math.ceil(n_pairs / (BLOCKS_PER_WORKER * max(1, n_workers))))
    return [slice(s, min(n_pairs, s + size)) for s in range(0, n_pairs, size)]


def validate_on_dask(client, panel: Panel, iy: np.ndarray, ix: np.ndarray, beta: np.ndarray,
                     alpha: np.ndarray, params: ValidateParams, block_size: int | None = None,
                     progress: bool | None = None) -> pd.DataFrame:
    """:func:`~qdash.scan.validate.validate_block` over all pairs, one Dask task per block, rows
    in the input order."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    n_workers = len(client.scheduler_info()["workers"])
    if n_workers == 0:
        raise QdashError("the Dask cluster has no workers: start some with `dask worker ADDR`")
    parts = blocks(len(iy), n_workers, block_size)
    log.info("stage 2: %d pairs in %d blocks on %d workers", len(iy), len(parts), n_workers)
    panel_f = client.scatter(panel, broadcast=True, hash=False)
    futures = [client.submit(validate_block, panel_f, iy[s], ix[s], beta[s], alpha[s], params,
                             pure=False) for s in parts]
    where = {f.key: i for i, f in enumerate(futures)}
    results: list[pd.DataFrame | None] = [None] * len(futures)
    try:
        with tqdm(total=len(iy), desc="validate", unit="pair",
                  disable=tqdm_disable(progress), leave=False) as bar:
            for f, res in as_completed(futures, with_results=True):
                results[where[f.key]] = res
                bar.update(len(res))
    finally:
        client.cancel([*futures, panel_f])
    return pd.concat(results, ignore_index=True)
