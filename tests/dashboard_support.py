"""Run the real dashboard app (``qdash demo`` / ``qdash dashboard``) as processes on 127.0.0.1 and
look at it with headless Chromium: shared by ``tests/test_dashboard_browser.py`` and
``bench/bench_dashboard.py``.

:class:`App` starts ``python -m qdash demo|dashboard ...`` in its own working directory, where a
``voila.json`` sets the kernel-lifetime knobs (Voila reads ``voila.json`` from the working
directory): a short orphan timeout and cull interval, and a known connection-file directory, so a
test can reach a dashboard kernel with ``jupyter_client`` (:meth:`App.kernel_client`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
from playwright.sync_api import sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]

# every ColumnDataSource of every Bokeh document of the page: {model id: {column: values}}
JS_SOURCES = """() => {
  const out = {};
  for (const doc of Bokeh.documents) {
    for (const m of doc.all_models) {
      if (m.data === undefined || m.data === null || typeof m.data !== "object") continue;
      const cols = {};
      const entries = m.data instanceof Map ? [...m.data.entries()] : Object.entries(m.data);
      for (const [k, v] of entries) cols[k] = Array.from(v);
      out[m.id] = cols;
    }
  }
  return out;
}"""

# titles of every plot that has a view on the page (walks the rendered view tree)
JS_TITLES = """() => {
  const out = [];
  const walk = (view) => {
    const title = view.model && view.model.title;
    if (title && title.text !== undefined) out.push(title.text);
    for (const child of (view.child_views ?? [])) walk(child);
  };
  for (const root of Object.values(Bokeh.index)) walk(root);
  return out;
}"""

# what the page snapshot's Bokeh document holds while it is drawn: candles (both legs) and finite
# z-scores ({} once the live view took its place)
JS_SNAPSHOT_SHOWS = """() => {
  const root = Object.values(Bokeh.index).find((v) => String(v.model.id).startsWith("qs-"));
  if (!root) return {};
  let candles = 0, z = 0;
  for (const m of root.model.document.all_models) {
    const d = m.data;
    if (!d || typeof d !== "object") continue;
    const get = (k) => (d instanceof Map ? d.get(k) : d[k]);
    if (get("high")) candles += get("high").length;
    if (get("z") && get("spread")) z += Array.from(get("z")).filter(Number.isFinite).length;
  }
  return {candles, z};
}"""

KERNEL_DUMP = """
import json as _json
import numpy as _np
def _cols(src):
    return {k: (_np.asarray(v).tolist() if len(v) and not isinstance(v[0], str) else list(v))
            for k, v in src.data.items()}
_f = dashboard.figures
print(_json.dumps({s.id: _cols(s) for s in [_f.candles["y"], _f.candles["x"], _f.pair, _f.live,
                                            _f.trades, _f.heat, _f.equity]}))
"""


def notebook(*cells: list[str]) -> dict:
    """A Python 3 notebook (nbformat 4.5 JSON) of code cells, each given by its source lines."""
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": f"cell{i}",
                       "metadata": {}, "outputs": [], "source": lines}
                      for i, lines in enumerate(cells)],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                        "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


@contextlib.contextmanager
def chromium():
    """Headless Chromium (the system one the README installs) for one test module or bench."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(fn, timeout: float = 60.0, what: str = "condition", interval: float = 0.2):
    """Poll ``fn`` until it returns something truthy; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fn()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def http(url: str, body=None, token: str | None = None, timeout: float = 10.0):
    """(status, parsed JSON) of a GET, or of a POST when ``body`` is given."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class App:
    """``python -m qdash <command> ...`` on a free port, in ``workdir`` (see module doc).

    ``env`` adds to the environment (``QDASH_WINDOW`` ...). ``orphan_timeout`` /
    ``connect_timeout`` (a page that took a kernel has this long to connect) / ``cull_interval``
    in seconds; ``voila`` adds config sections to ``voila.json`` (e.g.
    ``{"VoilaConfiguration": {"preheat_kernel": False}}``). ``url`` is the page, ``token`` the
    tick-write token. ``notebook``: serve this notebook with the same Voila application instead
    of running ``qdash <command>`` (``command`` then only names the log).
    """

    def __init__(self, command: str, workdir: Path, db: Path, *, args=(), env=None,
                 notebook: Path | None = None,
                 token: str = "test-token", orphan_timeout: float = 4.0,
                 connect_timeout: float = 30.0,
                 cull_interval: float = 2.0, cull_idle_timeout: float = 20.0,
                 voila: dict | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db, self.token, self.port = Path(db), token, free_port()
        self.connection_dir = self.workdir / "connections"
        self.connection_dir.mkdir(exist_ok=True)
        (self.workdir / "voila.json").write_text(json.dumps({
            "Voila": {"connection_dir_root": str(self.connection_dir)},
            "QdashVoila": {"orphan_timeout": orphan_timeout,
                           "connect_timeout": connect_timeout},
            "MappingKernelManager": {"cull_interval": cull_interval,
                                     "cull_idle_timeout": cull_idle_timeout},
            **(voila or {}),
        }))
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = self.workdir / f"{command}.log"
        self._log = open(self.log_path, "wb")
        cmd = [sys.executable, "-m", "qdash", command, "--port", str(self.port), "--no-browser",
               "--db", str(self.db), "--token", token, *args]
        if notebook is not None:
            cmd = [sys.executable, "-c", "from qdash.server.voila_app import QdashVoila; "
                   "QdashVoila.launch_instance()", str(notebook), f"--port={self.port}",
                   "--no-browser", f"--QdashVoila.qdash_db={self.db}",
                   f"--QdashVoila.qdash_token={token}", *args]
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, env={**os.environ, **(env or {})},
                                     stdout=self._log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.proc.poll() is not None or self.health(), timeout=90,
                   what=f"`qdash {command}` to serve ({self.log_path})")
        assert self.proc.poll() is None, self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def health(self):
        try:
            status, body = http(self.url + "qdash/api/health", timeout=2)
        except OSError:
            return None
        return body if status == 200 else None

    def post_ticks(self, ticks: list[dict], token: str | None = None):
        """POST to ``/qdash/api/tick`` (one) or ``/qdash/api/ticks/batch`` (several)."""
        token = self.token if token is None else token
        if len(ticks) == 1:
            return http(self.url + "qdash/api/tick", ticks[0], token)
        return http(self.url + "qdash/api/ticks/batch", ticks, token)

    def page_kernel_pid(self) -> int:
        """The oldest live kernel: the one the first page took (a preheated kernel waiting for
        the next page is started after it)."""
        pids = self.kernel_pids()
        assert pids, "no dashboard kernel"
        return min(pids, key=lambda pid: psutil.Process(pid).create_time())

    def kernel_pids(self) -> list[int]:
        """Live ipykernel processes started by this app."""
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        pids = []
        for c in children:
            try:
                if c.status() != psutil.STATUS_ZOMBIE and "ipykernel" in " ".join(c.cmdline()):
                    pids.append(c.pid)
            except psutil.NoSuchProcess:
                pass
        return pids

    def connection_file(self, kernel_id: str) -> Path:
        found = list(self.connection_dir.glob(f"*/kernel-{kernel_id}.json"))
        assert found, f"no connection file for kernel {kernel_id} under {self.connection_dir}"
        return found[0]

    def kernel_client(self, kernel_id: str):
        """A started ``BlockingKernelClient`` on a dashboard kernel (call ``stop_channels``)."""
        from jupyter_client import BlockingKernelClient

        kc = BlockingKernelClient(connection_file=str(self.connection_file(kernel_id)))
        kc.load_connection_file()
        kc.start_channels()
        kc.wait_for_ready(timeout=30)
        return kc

    def stop(self) -> None:
        """Stop the app and every process it started (idempotent)."""
        if self._log.closed:
            return
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for c in children:  # the demo's simulator, kernels: never leave one behind
            try:
                c.terminate()
                c.wait(10)
            except psutil.NoSuchProcess:
                pass
            except psutil.TimeoutExpired:
                c.kill()
        self._log.close()


def run_in_kernel(kc, code: str, timeout: float = 60.0) -> str:
    """Execute ``code`` in a kernel; returns its stdout, raises on an error."""
    out, errors = [], []

    def hook(msg):
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream" and content["name"] == "stdout":
            out.append(content["text"])
        elif kind == "error":
            errors.append("\n".join(content["traceback"]))

    reply = kc.execute_interactive(code, output_hook=hook, timeout=timeout, allow_stdin=False)
    assert reply["content"]["status"] == "ok" and not errors, "".join(errors) or reply
    return "".join(out)


class PageLog:
    """Requests and console messages of one page."""

    def __init__(self, page):
        self.requests: list[str] = []
        self.console: list[tuple[str, str]] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", lambda m: self.console.append((m.type, m.text)))
        page.on("pageerror", lambda e: self.console.append(("pageerror", str(e))))

    def external(self) -> list[str]:
        """Requested URLs whose host is not 127.0.0.1 (``data:``/``blob:``/``about:`` are local)."""
        hosts = []
        for url in self.requests:
            m = re.match(r"^(?:https?|wss?)://([^/:]+)", url)
            if m and m.group(1) != "127.0.0.1":
                hosts.append(url)
            elif not m and not url.startswith(("data:", "blob:", "about:")):
                hosts.append(url)
        return hosts

    def errors(self) -> list[str]:
        return [text for kind, text in self.console if kind in ("error", "pageerror")]


def open_dashboard(browser, url: str, timeout: float = 180.0, viewport=(1400, 1000),
                   views: int = 2, init_script: str | None = None):
    """A new page on the app, once ``views`` of the Bokeh views shown at first paint (the
    market panels and the heatmap; the backtest tab's view is built when it is opened) rendered:
    (page, log, seconds from navigation to then). ``init_script`` runs before the page's own."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    if init_script:
        page.add_init_script(init_script)
    log = PageLog(page)
    t0 = time.monotonic()
    try:
        page.goto(url, timeout=timeout * 1000, wait_until="commit")
        page.wait_for_function(
            f"() => window.Bokeh !== undefined && Bokeh.documents.length >= {views}",
            timeout=timeout * 1000)
    except Exception:
        page.close()  # a page left loading would slow every later test
        raise
    return page, log, time.monotonic() - t0


def kernel_id(page) -> str:
    """The id of the page's kernel (Voila writes it into ``jupyter-config-data``)."""
    return page.evaluate(
        "() => JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")


def sources(page) -> dict:
    return page.evaluate(JS_SOURCES)


def find_source(all_sources: dict, *columns: str) -> list[dict]:
    """The sources having every one of ``columns``."""
    return [cols for cols in all_sources.values() if all(c in cols for c in columns)]


def click_tab(page, title: str) -> None:
    """Click the dashboard tab whose title contains ``title``."""
    page.locator(".lm-TabBar-tab", has_text=title).first.click()


def text_of(page, css: str) -> str:
    """Text of the first element matching ``css`` ("" when there is none)."""
    loc = page.locator(css)
    return loc.first.text_content() if loc.count() else ""
