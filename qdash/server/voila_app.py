"""The published dashboard app: Voila serving one notebook, with the tick server beside it.

Standalone Voila loads no Jupyter server extensions, so :class:`QdashVoila` **prepends** the qdash
handlers in :meth:`init_handlers` (after Voila's catch-all notebook route they would never be
reached). It also applies the kernel-lifetime settings verified in
``shared/reference/jupyter-voila.md``:

* the page handler reads ``xsrf_token`` before answering, so the page gets its ``_xsrf`` cookie
  and Voila's unload beacon (``/voila/api/shutdown/<id>``) is not refused with 403 (voila #1458)
  — done in the handler rather than a ``prelaunch_hook``, which Voila refuses beside preheating;
* idle culling: ``MappingKernelManager.cull_interval`` / ``cull_idle_timeout`` and
  ``buffer_offline_messages = False`` (unless configured otherwise);
* a watchdog that shuts down kernels with no open connection for ``orphan_timeout`` seconds
  while not busy (a dashboard kernel streaming widget updates never looks idle to the culler;
  the clock does not run while the notebook is still executing for its page); kernels waiting in
  the preheated pool are not orphans, and a kernel a page took but has not connected to yet gets
  ``connect_timeout`` (the page is still loading its scripts: seconds on a quiet machine, tens of
  seconds on a loaded one, which a short ``orphan_timeout`` must not cut short).

First paint: unless configured otherwise (``--VoilaConfiguration.preheat_kernel=False``), Voila
keeps ``default_pool_size`` (1) kernel started with the notebook already executed, so a page load
only attaches to it (and the pool refills behind it) instead of starting a kernel and running the
notebook while the user waits. ``qdash/server/pairs.ipynb`` builds the dashboard, goes live and
ends its cell once the history is drawn (``Dashboard.ready``): the preheated kernel streams, with
its history on screen, before its page arrives. ``/qdash/api/health`` counts the
preheated kernels ready for the next page (notebook run, page rendered) in ``kernels_ready``.

First meaningful paint: with the ``qdash`` template, each kernel writes a snapshot of its market
view (candles, spread, z-score, stats table, status line) to ``snapshot_dir`` while it waits in
the pool (:mod:`qdash.app.page_snapshot`), and :class:`PageHandler` puts the snapshot of the
kernel a page takes into that page's head (:mod:`.snapshot`): the page draws it with BokehJS before
Voila's front end starts, which then starts and hands over to the live widgets.

Start-up prints one line with the URL actually served (a busy ``--port`` moves to the next free
one before anything is started, so kernels are told the right port too), the store and the token.

Kernels inherit ``QDASH_TOKEN`` and get ``VOILA_APP_PORT`` / ``VOILA_SERVER_URL``, which is all
:class:`qdash.feeds.hub_client.Hub` needs. Run: ``python -m qdash.server.voila_app NOTEBOOK.ipynb
[--port=8866] [--Qdash.db=FILE]`` or :func:`main`.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from tornado.ioloop import IOLoop, PeriodicCallback
from traitlets import Bool, Float, Int, Unicode
from voila.app import Voila
from voila.tornado.handler import TornadoVoilaHandler

from ..config import Settings
from . import bokehjs, snapshot
from .handlers import qdash_handlers
from .service import DEFAULT_MAX_BODY, IngestService, ServerConfig

log = logging.getLogger(__name__)

TEMPLATE = "qdash"
TEMPLATE_ROOT = Path(__file__).resolve().parent / "jupyter"  # holds voila/templates/qdash
CULL_INTERVAL_S = 60
CULL_IDLE_TIMEOUT_S = 600
ORPHAN_TIMEOUT_S = 5.0
"""Seconds a kernel whose page was connected may stay without a connection: a closed page's
kernel (each page load takes its own, and a reload takes a new one) is released within seconds,
while a page's own reconnect after a dropped WebSocket (its client retries within a second or
two) keeps it. At 300 s, three page loads left four kernels streaming, a core's worth of CPU."""
POOL_SIZE = 1  # preheated kernels kept ready per notebook
PAGE_HEADERS = {"Cache-Control": "no-store"}  # a back-navigation reloads, never a dead page


class _NotTrustedFilter(logging.Filter):
    """Drops the contents manager's "Notebook X is not trusted" (a published app runs its one
    notebook whatever its trust; the warning is start-up noise)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is not trusted" not in record.getMessage()


class PageHandler(TornadoVoilaHandler):
    """Voila's notebook page, with the ``_xsrf`` cookie set before the page is sent and the
    page's kernel's snapshot in its head (:mod:`.snapshot`)."""

    async def prepare(self, **kwargs) -> None:
        await super().prepare(**kwargs)
        self.xsrf_token  # noqa: B018 (the property sets the cookie)

    def write(self, chunk) -> None:
        if isinstance(chunk, str):
            chunk = snapshot.inject(chunk, self.settings.get("qdash_snapshot_dir"))
        super().write(chunk)


def _add_jupyter_path(root: Path) -> None:
    """Put ``root`` first on ``JUPYTER_PATH`` (Voila looks up templates and their static files
    under ``<root>/voila/templates`` of every Jupyter data path, at each request)."""
    paths = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    if str(root) not in paths:
        os.environ["JUPYTER_PATH"] = os.pathsep.join([str(root), *paths])


class QdashVoila(Voila):
    """Voila + the qdash tick server handlers (``/qdash/...``) + kernel-lifetime fixes."""

    name = "qdash-voila"
    qdash_db = Unicode(None, allow_none=True, config=True,
                       help="SQLite store for ingested ticks (default $QDASH_DB, else qdash.db "
                            "in the user data directory)")
    qdash_token = Unicode(None, allow_none=True, config=True,
                          help="bearer token for tick writes (default $QDASH_TOKEN, else "
                               "generated and printed)")
    qdash_loopback_subscribe = Bool(False, config=True,
                                    help="let loopback clients subscribe without the token")
    qdash_max_body = Int(DEFAULT_MAX_BODY, config=True, help="request body limit in bytes")
    orphan_timeout = Float(ORPHAN_TIMEOUT_S, config=True,
                           help="shut down kernels whose page has been closed for this many "
                                "seconds (0 disables)")
    connect_timeout = Float(60.0, config=True,
                            help="seconds a page that took a kernel has to connect to it before "
                                 "the orphan watchdog counts it (at least orphan_timeout)")

    snapshot_dir: str | None = None  # where kernels write their page snapshots (qdash template)

    aliases = {**Voila.aliases, "qdash-db": "QdashVoila.qdash_db",
               "qdash-token": "QdashVoila.qdash_token"}

    def initialize(self, argv=None):
        _add_jupyter_path(TEMPLATE_ROOT)
        super().initialize(argv)
        self.log.addFilter(_NotTrustedFilter())
        mkm = self.config.MappingKernelManager
        for key, value in (("cull_interval", CULL_INTERVAL_S),
                           ("cull_idle_timeout", CULL_IDLE_TIMEOUT_S),
                           ("buffer_offline_messages", False)):
            if key not in mkm:
                mkm[key] = value
        conf, configured = self.voila_configuration, self.config.VoilaConfiguration
        if ("preheat_kernel" not in configured and conf.prelaunch_hook is None
                and not conf.progressive_rendering):
            conf.preheat_kernel = True
            if "default_pool_size" not in configured:
                conf.default_pool_size = POOL_SIZE
        if "headers" not in self.tornado_settings:
            self.tornado_settings = {**self.tornado_settings, "headers": PAGE_HEADERS}
        self.qdash = IngestService(ServerConfig(
            db=self.qdash_db, token=self.qdash_token,
            loopback_subscribe=self.qdash_loopback_subscribe, max_body=self.qdash_max_body))
        self.qdash.export_env()  # kernels inherit os.environ
        if conf.template == TEMPLATE:  # its page loads BokehJS; kernels need not send it
            # ... and paints the kernel's snapshot before Voila's front end starts
            self.snapshot_dir = tempfile.mkdtemp(prefix="qdash-snapshots-")
            Settings(page_bokehjs=bokehjs.version(), snapshot_dir=self.snapshot_dir).export()
            self.config.VoilaConfiguration.resources = {  # what the template reads
                **conf.resources, "qdash_bokehjs": bokehjs.script_path()}
        self.qdash.health_extra["kernels_ready"] = lambda: len(self._pooled(rendered=True))

    def setup_template_dirs(self):
        """Default to the offline-clean ``qdash`` template unless one was configured."""
        if "template" not in self.config.VoilaConfiguration:
            self.voila_configuration.template = TEMPLATE
        super().setup_template_dirs()

    def init_handlers(self) -> list:
        voila = [(h[0], PageHandler, *h[2:]) if h[1] is TornadoVoilaHandler else h
                 for h in super().init_handlers()]
        return qdash_handlers(self.qdash, self.server_url) + voila

    def init_settings(self) -> dict:
        settings = super().init_settings()
        settings["qdash_snapshot_dir"] = self.snapshot_dir
        settings["websocket_max_message_size"] = self.qdash.config.max_body + 1024
        return settings

    def start(self):
        self.port = self._free_port()
        super().start()

    def _free_port(self) -> int:
        """The first port Voila would try that is free now (so that kernels, started before
        the server binds, are told the port it will serve)."""
        for port in self.random_ports(self.port, self.port_retries + 1):
            with socket.socket(socket.AF_INET6 if ":" in self.ip else socket.AF_INET) as s:
                try:
                    s.bind((self.ip, port))
                except OSError as e:
                    if e.errno not in (errno.EADDRINUSE, errno.EACCES):
                        raise
                    continue
            if port != self.port:
                self.log.warning("port %d is in use; serving on %d", self.port, port)
            return port
        return self.port  # Voila's own loop reports the failure

    def listen(self):
        IOLoop.current().add_callback(self._announce)  # runs once bound: self.port is final
        if self.orphan_timeout > 0:
            self._orphans: dict[str, float] = {}
            self._connected: set[str] = set()  # kernels a page has connected to at least once
            km = self.kernel_manager
            notify_connect = km.notify_connect

            def note_connection(kernel_id: str) -> None:
                self._connected.add(kernel_id)
                notify_connect(kernel_id)

            km.notify_connect = note_connection
            PeriodicCallback(self._cull_orphans,
                             1000 * max(1.0, min(30.0, self.orphan_timeout / 4))).start()
        super().listen()

    def _announce(self) -> None:
        """The one start-up line: the URL served, the store, the tick endpoint and token."""
        host = "127.0.0.1" if self.ip in ("", "0.0.0.0", "::") else self.ip
        url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}{self.base_url}"
        msg = (f"qdash dashboard at {url} (store: {self.qdash.db_path}; ticks: POST "
               f"{url}qdash/api/ticks/batch")
        msg += f", token: {self.qdash.token})" if self.qdash.token_generated else ")"
        print(msg, flush=True)

    def _pooled(self, rendered: bool = False) -> set[str]:
        """Ids of the preheated kernels waiting for a page; ``rendered``: only those whose
        notebook has run and whose page is rendered (a pool entry is there as soon as its kernel
        started: a page taking it before then waits for the notebook to run)."""
        ids = set()
        for pool in getattr(self.kernel_manager, "_pools", {}).values():
            for fut in pool:
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    item = fut.result()
                    if not rendered or item["task"].done():
                        ids.add(item["kernel_id"])
        return ids

    async def _cull_orphans(self) -> None:
        """Shut down kernels that have had no open connection for ``orphan_timeout`` s
        (``connect_timeout`` while no page has connected yet)."""
        km = self.kernel_manager
        now = time.monotonic()
        kernels = set(km.list_kernel_ids())
        self._connected &= kernels
        live = kernels - self._pooled()
        for kid in list(self._orphans):
            if kid not in live:
                del self._orphans[kid]
        for kid in live:
            busy = getattr(km._kernels.get(kid), "execution_state", None) == "busy"
            if busy or km._kernel_connections.get(kid, 0) > 0:  # rendering, or a page is open
                self._orphans.pop(kid, None)
                continue
            since = self._orphans.setdefault(kid, now)
            limit = (self.orphan_timeout if kid in self._connected
                     else max(self.orphan_timeout, self.connect_timeout))
            if now - since >= limit:
                self.log.info("qdash: shutting down kernel %s (no connection for %.0f s)", kid,
                              now - since)
                del self._orphans[kid]
                try:
                    await km.shutdown_kernel(kid)
                except Exception as e:  # already gone
                    self.log.debug("kernel %s shutdown: %s", kid, e)

    def stop(self):
        super().stop()
        self.qdash.close()
        if self.snapshot_dir:
            shutil.rmtree(self.snapshot_dir, ignore_errors=True)


main = QdashVoila.launch_instance

if __name__ == "__main__":
    main()
