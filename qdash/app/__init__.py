"""The pair monitor: :class:`PairMonitor` (the model: no widgets, plain data out) and
:class:`Dashboard` (its view: ipywidgets controls, Bokeh plots, a tab per panel).

Names load when first used, so ``qdash.app.monitor`` imports no widget library.
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {"Dashboard": ".dashboard", "PairMonitor": ".monitor", "load_bokehjs": ".bokeh_widget"}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
