"""Universe scanner: every directed pair screened from cross-product matrices (stage 1), the
survivors validated in and out of sample on Dask (stage 2). See :func:`scan`."""

from .io import Panel, build_panel, read_table
from .pipeline import OUTPUT_COLUMNS, scan, screen
from .screen import bh_qvalues, engle_granger_all, mackinnon_p
from .validate import ValidateParams, oos_backtest, validate_block

__all__ = ["OUTPUT_COLUMNS", "Panel", "ValidateParams", "bh_qvalues", "build_panel",
           "engle_granger_all", "mackinnon_p", "read_table", "scan", "screen",
           "oos_backtest", "validate_block"]
