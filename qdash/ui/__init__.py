"""The dashboard: ipywidgets controls and Bokeh plots over the programmatic API."""

from .dashboard import Dashboard

__all__ = ["Dashboard"]
