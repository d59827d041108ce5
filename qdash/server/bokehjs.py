"""BokehJS as a script of the published page, not a cell output.

A notebook gets BokehJS from ``bokeh.io.output_notebook``: 1.3 MB of script inside the cell's
output, which the page evaluates with ``eval`` once Voila's front-end has started (0.5 s of main
thread on the bench machine, on every page load, with nothing cached) and which forces MathJax to
start for the output's HTML. The published app's page instead loads the installed bokeh's own
``bokeh.min.js`` with ``<script defer>`` (the ``qdash`` Voila template): the browser fetches and
compiles it while Voila's bundles download, caches it (the URL carries bokeh's version), and
keeps its compiled code for the next visit. :func:`static_route` serves it; the app exports
``$QDASH_PAGE_BOKEHJS`` (:class:`qdash.config.Settings`) so that its kernels
(:meth:`qdash.app.Dashboard.show`) skip ``output_notebook``. A notebook in JupyterLab (whose
server runs qdash's extension) loads the same files from :data:`ROOT` as Bokeh's server-mode
resources (:func:`qdash.app.bokeh_widget.notebook_resources`): a URL in the output, not 1.3 MB.

Nothing here imports bokeh: the server finds the package's files without loading it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

from tornado.web import StaticFileHandler

from ..config import Settings

ROOT = "qdash/bokehjs/"  # under the server's base URL: Bokeh's ``Resources(mode="server")`` root
ROUTE = ROOT + "static/js/"  # where bokeh's server mode looks for its scripts under that root


def version() -> str:
    """The installed bokeh's version (BokehJS must match the Python side exactly)."""
    return importlib.metadata.version("bokeh")


def script_dir() -> Path:
    """Where the installed bokeh keeps ``bokeh.min.js`` and its other built scripts."""
    spec = importlib.util.find_spec("bokeh")
    return Path(spec.submodule_search_locations[0]) / "server" / "static" / "js"


def script_path() -> str:
    """``bokeh.min.js`` relative to the base URL; ``?v=`` makes it cacheable for good."""
    return f"{ROUTE}bokeh.min.js?v={version()}"


def static_route(root: str) -> tuple:
    """The URL spec serving :func:`script_dir` under ``<root>qdash/bokehjs/static/js/``."""
    return (root + ROUTE + "(.*)", StaticFileHandler, {"path": str(script_dir())})


def page_has_bokehjs() -> bool:
    """True in a kernel of the published app, whose page loaded this very BokehJS."""
    return Settings.from_env().page_bokehjs == version()
