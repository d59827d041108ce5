"""BokehJS as a cached script of the published page (``qdash/server/bokehjs.py``): the route
serves the installed bokeh's own file for good, and only the app's kernels skip
``output_notebook``. The page side is checked in Chromium (``test_dashboard_browser.py``)."""

import asyncio
import urllib.request

import bokeh
import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application

from qdash.config import var_name
from qdash.server import bokehjs


def test_the_script_is_the_installed_bokehs_own(monkeypatch):
    assert bokehjs.version() == bokeh.__version__
    script = (bokehjs.script_dir() / "bokeh.min.js").read_bytes()
    assert f'"{bokeh.__version__}"'.encode() in script[:200_000]  # its version string
    assert bokehjs.script_path() == f"qdash/bokehjs/static/js/bokeh.min.js?v={bokeh.__version__}"
    page_env = var_name("page_bokehjs")
    monkeypatch.delenv(page_env, raising=False)
    assert not bokehjs.page_has_bokehjs()  # a notebook in JupyterLab: inline BokehJS
    monkeypatch.setenv(page_env, "0.0.1")
    assert not bokehjs.page_has_bokehjs()  # a page with another BokehJS would not do
    monkeypatch.setenv(page_env, bokeh.__version__)
    assert bokehjs.page_has_bokehjs()


@pytest.mark.integration  # a server on loopback
def test_the_route_serves_it_cacheable_for_good():
    async def fetch(path: str):
        server = HTTPServer(Application([bokehjs.static_route("/base/")]))
        sock = bind_sockets(0, "127.0.0.1")[0]
        server.add_sockets([sock])
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/base/{path}"
        try:
            return await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10))
        finally:
            server.stop()

    async def main():
        resp = await fetch(bokehjs.script_path())
        return resp.status, dict(resp.headers), resp.read()

    status, headers, body = asyncio.run(main())
    assert status == 200
    assert body == (bokehjs.script_dir() / "bokeh.min.js").read_bytes()
    assert "javascript" in headers["Content-Type"]
    assert "max-age=315360000" in headers["Cache-Control"]  # versioned URL: cached for good


def test_a_notebook_loads_bokehjs_from_the_server_else_only_the_core_inline(monkeypatch):
    """``qdash.load_bokehjs``' resources: under a Jupyter server running qdash's extension, a URL
    of the route this module serves; offline without one, the core library only (not
    ``bokeh.resources.INLINE``'s five components)."""
    from bokeh.embed.bundle import bundle_for_objs_and_resources
    from bokeh.resources import INLINE

    from qdash.app.bokeh_widget import notebook_resources

    served = bundle_for_objs_and_resources(None, notebook_resources("http://h:8888/base/"))
    assert [str(u.url) for u in served.js_files] == [
        "http://h:8888/base/" + bokehjs.script_path().split("?")[0]]
    assert sum(map(len, served.js_raw)) < 1_000
    monkeypatch.delenv(var_name("server_url"), raising=False)
    inline = bundle_for_objs_and_resources(None, notebook_resources())
    full = bundle_for_objs_and_resources(None, INLINE)
    assert served.js_files and not inline.js_files
    assert sum(map(len, inline.js_raw)) < 0.4 * sum(map(len, full.js_raw))
