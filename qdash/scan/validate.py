"""Stage 2 of the scan: validate the pairs that passed the screen, in and out of sample.

Per pair (y, x), on the working series (log closes by default) of ``n`` bars:

- ``half_life`` (bars, :func:`qdash.analytics.half_life`), ``hurst``
  (:func:`qdash.analytics.hurst`) and ``crossings`` (sign changes of the full-sample spread
  ``y − beta·x − alpha``, whose mean is 0 by construction) of the full-sample spread;
- train window, the first ``k = floor(train_frac·n)`` bars: Engle–Granger (trend ``c``, ``lags``
  fixed) refitted there → ``beta_train``, ``alpha_train``, ``train_p``; ``pass_train``:
  ``train_p <= level``;
- test window, bars ``k … n−1``: the spread ``y − beta_train·x − alpha_train`` with the *train*
  coefficients, ADF with a constant and ``lags`` lags → ``test_p``; ``pass_test``: ``test_p <=
  level``. The hedge ratio is not estimated on the test window, so Dickey–Fuller (N = 1) critical
  values are the right ones there; the constant lets the spread's level have moved;
- ``test_trades``, ``test_return`` (total, net of fees), ``test_sharpe`` and its standard error
  ``test_sharpe_se`` (both annualised on the 24/7 bar clock, from the test window's bar equity
  curve; :func:`qdash.backtest.metrics.sharpe_with_se`, given whatever the window's span) and
  ``test_days`` (the span they are measured over): the z-score mean-reversion rule backtested
  with fees on the test window (:func:`oos_backtest`). ``test_sharpe`` is NaN only when the
  equity stayed flat (no trade: no risk taken).

:func:`validate_block` does this for a block of pairs; it is what one Dask task runs
(:mod:`qdash.scan.cluster`), and what the in-process path runs on all pairs at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..analytics.stats import adf, coint, half_life, hurst
from ..errors import QdashError
from .io import Panel

COLUMNS = ["half_life", "hurst", "crossings", "beta_train", "alpha_train", "train_p",
           "pass_train", "test_p", "pass_test", "test_trades", "test_return", "test_sharpe",
           "test_sharpe_se", "test_days"]


@dataclass(frozen=True)
class ValidateParams:
    """Stage-2 settings. ``lags``: lagged differences in the train Engle–Granger and the test ADF;
    ``train_frac``: share of bars in the train window; ``level``: significance of the train and
    test tests; ``log``: work on log closes; ``z_window`` (bars), ``entry``/``exit`` (|z|
    levels), ``fee_bps`` (taker fee per leg per fill): the test-window backtest."""

    lags: int = 1
    train_frac: float = 0.7
    level: float = 0.05
    log: bool = True
    z_window: int = 500
    entry: float = 2.0
    exit: float = 0.0
    fee_bps: float = 4.0

    def check(self, n: int) -> None:
        """Raise :class:`QdashError` when the windows cannot hold the tests for ``n`` bars."""
        if not 0 < self.train_frac < 1:
            raise QdashError(f"train_frac must be in (0, 1), got {self.train_frac}")
        k = int(self.train_frac * n)
        need = 2 * (self.lags + 2) + 2
        if min(k, n - k) < need:
            raise QdashError(f"train ({k} bars) and test ({n - k} bars) windows need at least "
                             f"{need} bars each for lags={self.lags}: use more bars or another "
                             f"train_frac")


def oos_backtest(price_y: np.ndarray, price_x: np.ndarray, beta: float, alpha: float,
                         k: int, index: pd.DatetimeIndex, params: ValidateParams) -> dict:
    """Backtest the z-score rule on bars ``k…`` with the train hedge ``beta``, ``alpha``.

    The signal is THE pair signal (:func:`qdash.analytics.signal.compute_signal`, ``hedge="fixed"``,
    log prices when ``params.log``, ``params.z_window``); its rolling z warms up on the
    ``z_window`` train bars before ``k`` (causal: no test bar is used before it happens). The
    trades run through :func:`qdash.backtest.run` on the test window only, filled at the next
    bar's close, with ``params.fee_bps`` per leg per fill. Returns the backtest metrics (a test
    window under 30 days is flagged ``short_sample``; its Sharpe is given with ``sharpe_se``).
    """
    from ..analytics.signal import SignalSpec, compute_signal
    from ..backtest import run

    lo = max(0, k - params.z_window)
    y = pd.Series(price_y[lo:], index[lo:])
    x = pd.Series(price_x[lo:], index[lo:])
    frame = compute_signal(y, x, SignalSpec(hedge="fixed", beta=beta, alpha=alpha,
                                            log=params.log, z_window=params.z_window))
    test = frame.index >= index[k]
    res = run(y.iloc[k - lo:], x.iloc[k - lo:], beta=frame["beta"][test],
              z=frame["zscore"][test], log=params.log, entry=params.entry, exit=params.exit,
              fee_bps=params.fee_bps, fill="close")
    return res.metrics


def _one(py, px, wy, wx, beta, alpha, index, p: ValidateParams) -> dict:
    n = len(wy)
    k = int(p.train_frac * n)
    e = wy - beta * wx - alpha
    out = {"half_life": half_life(e), "hurst": hurst(e),
           "crossings": int(np.count_nonzero(np.diff(np.signbit(e))))}
    tr = coint(wy[:k], wx[:k], trend="c", maxlag=p.lags, autolag=None)
    out.update(beta_train=tr.beta, alpha_train=tr.alpha, train_p=tr.pvalue,
               pass_train=bool(tr.pvalue <= p.level))
    s = wy[k:] - tr.beta * wx[k:] - tr.alpha
    test = adf(s, regression="c", maxlag=p.lags, autolag=None)
    out.update(test_p=test.pvalue, pass_test=bool(test.pvalue <= p.level))
    m = oos_backtest(py, px, tr.beta, tr.alpha, k, index, p)
    out.update(test_trades=int(m["trades"]), test_return=m["total_return"],
               test_sharpe=m["sharpe"], test_sharpe_se=m["sharpe_se"],
               test_days=m["span_days"])
    return out


def validate_block(panel: Panel, iy: np.ndarray, ix: np.ndarray, beta: np.ndarray,
                   alpha: np.ndarray, params: ValidateParams) -> pd.DataFrame:
    """Stage 2 for the pairs ``(panel.symbols[iy[i]], panel.symbols[ix[i]])`` whose full-sample
    coefficients are ``beta[i]``, ``alpha[i]``; one row per pair (:data:`COLUMNS`), in order.

    BLAS is held to one thread while it runs (one worker, one core; the small regressions here
    are faster single-threaded), so the result does not depend on where it runs.
    """
    from threadpoolctl import threadpool_limits

    index = panel.index
    cache: dict[int, np.ndarray] = {}

    def work(j: int) -> np.ndarray:
        if j not in cache:
            c = panel.close[:, j]
            cache[j] = np.log(c) if params.log else c
        return cache[j]

    rows = []
    with threadpool_limits(1):
        for a, b, be, al in zip(np.asarray(iy), np.asarray(ix), np.asarray(beta),
                                np.asarray(alpha)):
            try:
                rows.append(_one(panel.close[:, a], panel.close[:, b], work(a), work(b),
                                 float(be), float(al), index, params))
            except QdashError as exc:  # a degenerate window: the pair fails with the reason
                rows.append({"error": str(exc)})
    df = pd.DataFrame(rows, columns=[*COLUMNS, "error"])
    df["pass_train"] = df["pass_train"].astype("boolean")
    df["pass_test"] = df["pass_test"].astype("boolean")
    df["crossings"] = df["crossings"].astype("Int64")
    df["test_trades"] = df["test_trades"].astype("Int64")
    return df

