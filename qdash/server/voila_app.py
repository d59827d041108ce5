"""The published dashboard app: Voila serving one notebook, with the tick server beside it.

Standalone Voila loads no Jupyter server extensions, so :class:`QdashVoila` **prepends** the qdash
handlers in :meth:`init_handlers` (after Voila's catch-all notebook route they would never be
reached). It also applies the kernel-lifetime settings verified in
``shared/reference/jupyter-voila.md``:

* a ``prelaunch_hook`` that reads ``req.xsrf_token``, so the page gets its ``_xsrf`` cookie and
  Voila's unload beacon (``/voila/api/shutdown/<id>``) is not refused with 403 (voila #1458);
  a prelaunch hook cannot be combined with ``preheat_kernel``, so it is skipped when that is on;
* idle culling: ``MappingKernelManager.cull_interval`` / ``cull_idle_timeout`` and
  ``buffer_offline_messages = False`` (unless configured otherwise);
* a watchdog that shuts down kernels with no open connection for ``orphan_timeout`` seconds
  while not busy (a dashboard kernel streaming widget updates never looks idle to the culler;
  the clock does not run while the notebook is still executing for its page).

The page uses qdash's own Voila template (``qdash``, in ``qdash/server/jupyter/voila/templates``:
Voila's ``lab`` template without its CDN links), found by putting that directory on
``JUPYTER_PATH`` — which works from an editable install too. ``--VoilaConfiguration.template=lab``
(or any other) still wins.

Kernels inherit ``QDASH_TOKEN`` and get ``VOILA_APP_PORT`` / ``VOILA_SERVER_URL``, which is all
:class:`qdash.feeds.hub.Hub` needs. Run: ``python -m qdash.server.voila_app NOTEBOOK.ipynb
[--port=8866] [--Qdash.db=FILE]`` or :func:`main`.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from tornado.ioloop import PeriodicCallback
from traitlets import Bool, Float, Int, Unicode
from voila.app import Voila

from .handlers import qdash_handlers
from .service import DEFAULT_MAX_BODY, IngestService, ServerConfig

log = logging.getLogger(__name__)

TEMPLATE = "qdash"
TEMPLATE_ROOT = Path(__file__).resolve().parent / "jupyter"  # holds voila/templates/qdash
CULL_INTERVAL_S = 60
CULL_IDLE_TIMEOUT_S = 600


def xsrf_prelaunch_hook(req, notebook, cwd) -> None:
    """Voila prelaunch hook: touching ``xsrf_token`` sets the ``_xsrf`` cookie on the page."""
    req.xsrf_token  # noqa: B018 (the property sets the cookie)


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
                       help="SQLite store for ingested ticks (default $QDASH_DB or ./qdash.db)")
    qdash_token = Unicode(None, allow_none=True, config=True,
                          help="bearer token for tick writes (default $QDASH_TOKEN, else "
                               "generated and printed)")
    qdash_loopback_subscribe = Bool(False, config=True,
                                    help="let loopback clients subscribe without the token")
    qdash_max_body = Int(DEFAULT_MAX_BODY, config=True, help="request body limit in bytes")
    orphan_timeout = Float(300.0, config=True,
                           help="shut down kernels with no connection for this many seconds "
                                "(0 disables)")

    aliases = {**Voila.aliases, "qdash-db": "QdashVoila.qdash_db",
               "qdash-token": "QdashVoila.qdash_token"}

    def initialize(self, argv=None):
        _add_jupyter_path(TEMPLATE_ROOT)
        super().initialize(argv)
        mkm = self.config.MappingKernelManager
        for key, value in (("cull_interval", CULL_INTERVAL_S),
                           ("cull_idle_timeout", CULL_IDLE_TIMEOUT_S),
                           ("buffer_offline_messages", False)):
            if key not in mkm:
                mkm[key] = value
        conf = self.voila_configuration
        if conf.prelaunch_hook is None and not conf.preheat_kernel:
            conf.prelaunch_hook = xsrf_prelaunch_hook
        self.qdash = IngestService(ServerConfig(
            db=self.qdash_db, token=self.qdash_token,
            loopback_subscribe=self.qdash_loopback_subscribe, max_body=self.qdash_max_body))
        self.qdash.export_env()  # kernels inherit os.environ

    def setup_template_dirs(self):
        """Default to the offline-clean ``qdash`` template unless one was configured."""
        if "template" not in self.config.VoilaConfiguration:
            self.voila_configuration.template = TEMPLATE
        super().setup_template_dirs()

    def init_handlers(self) -> list:
        return qdash_handlers(self.qdash, self.server_url) + super().init_handlers()

    def init_settings(self) -> dict:
        settings = super().init_settings()
        settings["websocket_max_message_size"] = self.qdash.config.max_body + 1024
        return settings

    def listen(self):
        msg = f"qdash tick server at /qdash/ on port {self.port} (store: {self.qdash.db_path})"
        if self.qdash.token_generated:
            msg += f"; token: {self.qdash.token}"
            print(msg, flush=True)
        self.log.info(msg)
        if self.orphan_timeout > 0:
            self._orphans: dict[str, float] = {}
            PeriodicCallback(self._cull_orphans,
                             1000 * max(1.0, min(30.0, self.orphan_timeout / 4))).start()
        super().listen()

    async def _cull_orphans(self) -> None:
        """Shut down kernels that have had no open connection for ``orphan_timeout`` s."""
        km = self.kernel_manager
        now = time.monotonic()
        live = set(km.list_kernel_ids())
        for kid in list(self._orphans):
            if kid not in live:
                del self._orphans[kid]
        for kid in live:
            busy = getattr(km._kernels.get(kid), "execution_state", None) == "busy"
            if busy or km._kernel_connections.get(kid, 0) > 0:  # rendering, or a page is open
                self._orphans.pop(kid, None)
                continue
            since = self._orphans.setdefault(kid, now)
            if now - since >= self.orphan_timeout:
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


main = QdashVoila.launch_instance

if __name__ == "__main__":
    main()
