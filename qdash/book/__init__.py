"""qdash.book: the walk-forward book of pairs (scan -> select -> allocate -> trade -> roll).

* :mod:`.engine`: :func:`~.engine.book`, the run (windows, metrics, baselines);
* :mod:`.data`: the checked bars, their grid and funding; :mod:`.select`: THE scan per window
  (Dask tasks), selection and allocation; :mod:`.trade`: signals, break checks and the state
  carried across windows; :mod:`.kernel`: the numba bar loop of the account;
* :mod:`.result`: :class:`~.result.BookResult`, the tables a run produces and how they are
  written.

``qdash.book`` is this package and can be called as :func:`~.engine.book`
(``qdash.book(bars, train="30d", trade="7d")``), so ``import qdash.book.result`` keeps working
beside the short call.
"""

import sys
import types

from .result import BOOK_TABLES, BookResult

__all__ = ["BOOK_TABLES", "BookResult", "book"]


def book(*args, **kwargs) -> BookResult:
    """Run the walk-forward book: :func:`qdash.book.engine.book` (imported on first call)."""
    from .engine import book as run

    return run(*args, **kwargs)


class _CallablePackage(types.ModuleType):
    """The package's module type: calling it calls :func:`book`."""

    def __call__(self, *args, **kwargs):
        return book(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
