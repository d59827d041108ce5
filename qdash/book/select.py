"""Select and allocate: THE scan on each window's train span, the pairs kept, their weights.

:func:`scan_window` is one window's work (a Dask task, or run here): the scan
(:func:`qdash.scan.scan`, stage 1 + stage 2 + the same FDR, ``scheduler=None`` inside the task) on
the bars of ``[train_start, window_start)`` only, and the baseline's candidates. Windows are
independent, so :func:`scan_windows` runs them as tasks on the scan's ``--scheduler``
(:func:`qdash.scan.cluster.connect`: a ``LocalCluster``, an address, or none), the bar grid
(closes and quote volumes, :class:`~qdash.book.data.BookData` without its funding) scattered to
every worker once; results come back in window order, so Dask and no Dask give the same
selections.

Selection (:func:`choose`): the scan's passing pairs in its rank order (out-of-sample Sharpe
first), one direction per unordered pair (the first ranked, or the one held in the window before
when it passed too), at most ``max_pairs``. The no-coint-gate
baseline ranks, without the FDR or any rule, the ``BASELINE_POOL × max_pairs`` most correlated
unordered pairs (stage 1's ``corr``) by the same train-span out-of-sample Sharpe (stage 2's
``test_sharpe``, :func:`qdash.scan.validate.validate_block`), and keeps ``max_pairs``: ranking
every one of N·(N−1) pairs by a backtest would cost a backtest per pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import QdashError
from ..scan.io import panel_from_bars
from .data import BookData

BASELINE_POOL = 2
"""The no-coint-gate baseline ranks this many times ``max_pairs`` candidates."""
SELECTED = ["y", "x", "beta", "alpha", "half_life", "q", "test_sharpe"]
ALLOCATIONS = ("equal", "inverse-vol", "risk-parity")


@dataclass
class WindowScan:
    """One window's scan: ``passing`` (:data:`SELECTED` columns: every directed pair that passed,
    in the scan's rank order; :func:`choose` keeps at most ``max_pairs`` of them),
    ``baseline`` (the no-gate baseline's pairs, same columns), ``tested`` (directed pairs
    tested), ``oos_sharpe`` (annualised test Sharpes of the stage-2 survivors, for the deflated
    Sharpe's trial variance), ``skipped`` (symbols the scan skipped) and ``error`` (why the
    scan could not run on this train span, e.g. fewer than two symbols with enough bars: the
    window then selects nothing)."""

    passing: pd.DataFrame
    baseline: pd.DataFrame
    tested: int
    oos_sharpe: np.ndarray
    skipped: list[dict]
    error: str = ""


def _unordered_head(df: pd.DataFrame, n: int) -> pd.DataFrame:
    """The first row of each unordered pair, at most ``n`` of them, in ``df``'s order."""
    head = df.head(2 * n)                 # n unordered pairs lie within the first 2n rows
    if head.empty:
        return head
    codes, _ = pd.factorize(np.concatenate([head["y"].to_numpy(object),
                                            head["x"].to_numpy(object)]))
    a, b = codes[:len(head)], codes[len(head):]
    key = np.minimum(a, b) * (codes.max() + 1) + np.maximum(a, b)
    first = ~pd.Series(key).duplicated().to_numpy()
    return head[first].head(n)


def scan_window(data: BookData, lo: int, hi: int, max_pairs: int, scan_kw: dict,
                baseline: bool = True) -> WindowScan:
    """THE scan on the bars of grid rows ``[lo, hi)`` (a window's train span), and the
    window's selections (module docstring)."""
    from ..scan.pipeline import rank, scan

    try:
        panel = panel_from_bars(data.window_bars(lo, hi), timeframe=scan_kw.get("timeframe"))
        df = scan(panel, scheduler=None, progress=False, **scan_kw)
    except QdashError as exc:
        none = pd.DataFrame({c: [] for c in SELECTED})
        return WindowScan(none, none, 0, np.zeros(0), [], str(exc))
    passing = df[df["pass"]][SELECTED].reset_index(drop=True)
    survivors = df["test_sharpe"].to_numpy(dtype=float)[(df["q"] <= scan_kw["fdr"]).to_numpy()]
    base = passing.iloc[:0]
    if baseline:
        base = _baseline(panel, df, max_pairs, scan_kw, rank)
    return WindowScan(passing, base, len(df), survivors[np.isfinite(survivors)],
                      df.attrs.get("skipped", []))


def choose(passing: pd.DataFrame, max_pairs: int, held: set[tuple[str, str]]) -> pd.DataFrame:
    """A window's pairs: the first ``max_pairs`` unordered pairs of ``passing`` in rank order,
    each in the direction ranked first, unless the other direction also passed and is ``held``
    (selected in the window before): a pair that stays selected keeps its orientation, so its
    position carries instead of being closed and reopened the other way round."""
    head = _unordered_head(passing, max_pairs).reset_index(drop=True)
    if not held or head.empty:
        return head
    where = {(y, x): i for i, (y, x) in enumerate(zip(passing["y"], passing["x"]))}
    rows = [where[(x, y)] if (x, y) in held and (x, y) in where else where[(y, x)]
            for y, x in zip(head["y"], head["x"])]
    return passing.iloc[rows].reset_index(drop=True)


def keep_orientation(pairs: pd.DataFrame, held: set[tuple[str, str]]) -> pd.DataFrame:
    """``pairs`` with each pair whose other direction is ``held`` turned round: ``y`` and ``x``
    swapped and the line ``y = β·x + α`` written as ``x = y/β − α/β`` (the same line). For the
    no-coint-gate baseline, whose candidates are ranked by a correlation that has no direction,
    so that it carries positions across windows as the book does (:func:`choose`)."""
    flip = np.array([(x, y) in held for y, x in zip(pairs["y"], pairs["x"])], dtype=bool)
    if not flip.any():
        return pairs
    out = pairs.copy()
    b, a = out.loc[flip, "beta"].to_numpy(), out.loc[flip, "alpha"].to_numpy()
    out.loc[flip, ["y", "x"]] = out.loc[flip, ["x", "y"]].to_numpy()
    out.loc[flip, "beta"], out.loc[flip, "alpha"] = 1.0 / b, -a / b
    return out


def _baseline(panel, df: pd.DataFrame, max_pairs: int, scan_kw: dict, rank) -> pd.DataFrame:
    """The no-coint-gate baseline's pairs: the most correlated unordered pairs of the scan's
    stage-1 table, ranked by the scan's rank on their stage-2 out-of-sample Sharpe (taken from
    the scan where it validated the pair, computed here otherwise), ``max_pairs`` kept."""
    from ..scan.validate import COLUMNS, ValidateParams, validate_block

    m = 2 * BASELINE_POOL * max_pairs
    corr = df["corr"].to_numpy()
    top = np.argpartition(-corr, m)[:m] if len(corr) > m else np.arange(len(corr))
    top = top[np.lexsort((top, -corr[top]))]          # by corr, ties in the scan's order
    pool = _unordered_head(df.iloc[top], BASELINE_POOL * max_pairs).reset_index(drop=True)
    todo = pool["test_sharpe"].isna().to_numpy() & pool["hurst"].isna().to_numpy()
    if todo.any():
        col = {s: j for j, s in enumerate(panel.symbols)}
        kw = {k: scan_kw[k] for k in ("lags", "entry", "exit", "fee_bps") if k in scan_kw}
        part = pool[todo]
        v = validate_block(panel, np.array([col[s] for s in part["y"]]),
                           np.array([col[s] for s in part["x"]]), part["beta"].to_numpy(),
                           part["alpha"].to_numpy(), ValidateParams(**kw))
        for c in COLUMNS:
            pool.loc[todo, c] = v[c].to_numpy()
    pool["pass"] = pool["test_sharpe"].notna()
    return rank(pool)[lambda d: d["pass"]].head(max_pairs)[SELECTED].reset_index(drop=True)


def scan_windows(data: BookData, spans: list[tuple[int, int]], max_pairs: int, scan_kw: dict,
                 scheduler=None, workers: int | None = None, baseline: bool = True
                 ) -> list[WindowScan]:
    """:func:`scan_window` for every ``(train_start, window_start)`` span of grid rows, in
    order: here (``scheduler`` None) or one Dask task per window (module docstring)."""
    if scheduler is None or not spans:
        return [scan_window(data, lo, hi, max_pairs, scan_kw, baseline) for lo, hi in spans]
    from ..scan.cluster import connect

    client, close = connect(scheduler, workers)
    try:
        if not client.scheduler_info()["workers"]:
            raise QdashError("the Dask cluster has no workers: start some with "
                             "`dask worker ADDR`")
        data_f = client.scatter(data.for_scans(), broadcast=True, hash=False)
        futures = [client.submit(scan_window, data_f, lo, hi, max_pairs, scan_kw, baseline,
                                 pure=False) for lo, hi in spans]
        try:
            return client.gather(futures)
        finally:
            client.cancel([*futures, data_f])
    finally:
        close()


def spread_returns(close: np.ndarray, cols: dict[str, int], pairs: pd.DataFrame) -> np.ndarray:
    """Bar returns of each pair's train-span spread ``ln y − β ln x − α`` (``close``: the train
    span's ``bars × symbols`` closes; rows where a leg has no bar dropped): ``bars × pairs``."""
    logc = np.log(close)
    s = np.column_stack([logc[:, cols[y]] - b * logc[:, cols[x]] - a for y, x, b, a in
                         zip(pairs["y"], pairs["x"], pairs["beta"], pairs["alpha"])])
    r = np.diff(s, axis=0)
    return r[np.isfinite(r).all(axis=1)]


def risk_parity(cov: np.ndarray, iters: int = 500, tol: float = 1e-12) -> np.ndarray:
    """Weights (sum 1, > 0) whose risk contributions ``w_i (Σw)_i`` are equal (Maillard,
    Roncalli and Teïletche 2010), by the cyclical coordinate solution of
    ``w_i (Σw)_i = b`` for a unit budget, normalised at the end."""
    n = cov.shape[0]
    w = 1.0 / np.sqrt(np.diag(cov))
    for _ in range(iters):
        prev = w.copy()
        for i in range(n):
            c = cov[i] @ w - cov[i, i] * w[i]          # Σ_{j≠i} cov_ij w_j
            w[i] = (-c + np.sqrt(c * c + 4.0 * cov[i, i])) / (2.0 * cov[i, i])
        if np.max(np.abs(w - prev)) < tol * np.max(w):
            break
    return w / w.sum()


def allocate(method: str, returns: np.ndarray) -> np.ndarray:
    """Each pair's share of the book's gross (sum 1): ``equal``, ``inverse-vol`` (∝ 1/σ of its
    spread returns) or ``risk-parity`` (:func:`risk_parity` on their covariance)."""
    n = returns.shape[1]
    if method not in ALLOCATIONS:
        raise QdashError(f"allocation {method!r}: use one of {', '.join(ALLOCATIONS)}")
    if n == 0:
        return np.zeros(0)
    if method == "equal" or returns.shape[0] < 3:
        return np.full(n, 1.0 / n)
    if method == "inverse-vol":
        inv = 1.0 / returns.std(axis=0, ddof=1)
        return inv / inv.sum()
    cov = np.atleast_2d(np.cov(returns, rowvar=False))
    return risk_parity(cov)
