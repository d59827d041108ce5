"""BokehJS as a script of the published page, not a cell output.

A notebook gets BokehJS from ``bokeh.io.output_notebook``: 1.3 MB of script inside the cell's
output, which the page evaluates with ``eval`` once Voila's front-end has started (0.5 s of main
thread on the bench machine, on every page load, with nothing cached) and which forces MathJax to
start for the output's HTML. The published app's page instead loads the installed bokeh's own
``bokeh.min.js`` with ``<script defer>`` (the ``qdash`` Voila template): the browser fetches and
compiles it while Voila's bundles download, caches it (the URL carries bokeh's version), and
keeps its compiled code for the next visit. :func:`routes` serve it; the app exports
``$QDASH_PAGE_BOKEHJS`` (:class:`qdash.config.Settings`) so that its kernels
(:meth:`qdash.app.Dashboard.show`) skip ``output_notebook``. A notebook in JupyterLab (whose
server runs qdash's extension) loads the same files from :data:`ROOT` as Bokeh's server-mode
resources (:func:`qdash.app.bokeh_widget.notebook_resources`): a URL in the output, not 1.3 MB.

``bokeh.min.js`` is served with V8's explicit compile hint (:data:`COMPILE_HINT`, Chrome 136+;
other browsers read a comment): V8 compiles every function of the file with the script, and
keeps them in the code cache of a returning visitor, instead of compiling ~2,000 functions one by
one the first time each is called while the page draws its first figures. Measured on the
snapshot's first paint in headless Chromium (bench machine, medians of 10 loads): 386 -> 326 ms
without a code cache, 259 -> 230 ms with one.

Nothing here imports bokeh: the server finds the package's files without loading it.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from pathlib import Path

from tornado.web import RequestHandler, StaticFileHandler

from ..config import Settings

ROOT = "qdash/bokehjs/"  # under the server's base URL: Bokeh's ``Resources(mode="server")`` root
ROUTE = ROOT + "static/js/"  # where bokeh's server mode looks for its scripts under that root
CORE = "bokeh.min.js"  # BokehJS itself (the other files are optional components)
COMPILE_HINT = b"//# allFunctionsCalledOnLoad\n"  # V8: compile all functions eagerly, cache them
CACHE_FOR_GOOD_S = 315_360_000  # a versioned URL (``?v=``) never changes: ten years


def version() -> str:
    """The installed bokeh's version (BokehJS must match the Python side exactly)."""
    return importlib.metadata.version("bokeh")


def script_dir() -> Path:
    """Where the installed bokeh keeps ``bokeh.min.js`` and its other built scripts."""
    spec = importlib.util.find_spec("bokeh")
    return Path(spec.submodule_search_locations[0]) / "server" / "static" / "js"


def script_path() -> str:
    """``bokeh.min.js`` relative to the base URL; ``?v=`` makes it cacheable for good."""
    return f"{ROUTE}{CORE}?v={version()}"


@functools.cache
def core_script() -> bytes:
    """:data:`CORE` as served: :data:`COMPILE_HINT`, then the installed file unchanged."""
    return COMPILE_HINT + (script_dir() / CORE).read_bytes()


class CoreScriptHandler(RequestHandler):
    """Serves :func:`core_script`; with ``?v=`` (the version) cacheable for good. Tornado adds
    the ETag and answers a matching ``If-None-Match`` with 304."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/javascript; charset=UTF-8")
        if self.get_argument("v", None):
            self.set_header("Cache-Control", f"max-age={CACHE_FOR_GOOD_S}, public")
        self.finish(core_script())


def routes(root: str) -> list[tuple]:
    """The URL specs serving :func:`script_dir` under ``<root>qdash/bokehjs/static/js/``:
    :data:`CORE` by :class:`CoreScriptHandler`, the other files as they are."""
    return [(root + ROUTE + CORE.replace(".", r"\."), CoreScriptHandler),
            (root + ROUTE + "(.*)", StaticFileHandler, {"path": str(script_dir())})]


def page_has_bokehjs() -> bool:
    """True in a kernel of the published app, whose page loaded this very BokehJS."""
    return Settings.from_env().page_bokehjs == version()
