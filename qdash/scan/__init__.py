"""Universe scanner: every directed pair screened from cross-product matrices (stage 1), the
survivors validated in and out of sample on Dask (stage 2). See :func:`scan`.

``qdash.scan`` is this package and can be called as :func:`scan` (``qdash.scan(bars, ...)``), so
``import qdash.scan.cluster`` and ``qdash.scan.io`` keep working beside the short call.
"""

import sys
import types

from .io import Panel, build_panel, read_table
from .pipeline import OUTPUT_COLUMNS, scan, screen
from .screen import bh_qvalues, engle_granger_all, mackinnon_p
from .validate import ValidateParams, oos_backtest, validate_block

__all__ = ["OUTPUT_COLUMNS", "Panel", "ValidateParams", "bh_qvalues", "build_panel",
           "engle_granger_all", "mackinnon_p", "oos_backtest", "read_table", "scan", "screen",
           "validate_block"]


class _CallablePackage(types.ModuleType):
    """The package's module type: calling it calls :func:`scan`."""

    def __call__(self, *args, **kwargs):
        return scan(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
