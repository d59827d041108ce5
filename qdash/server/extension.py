"""The qdash Jupyter server extension: the tick server's handlers inside ``jupyter lab`` /
``jupyter server``.

Enabled on install by ``etc/jupyter/jupyter_server_config.d/qdash.json`` (wheel shared-data, which
hatchling installs for ``pip install -e .`` too). Settings come from
traitlets config ``c.Qdash.db``, ``c.Qdash.token``, ``c.Qdash.loopback_subscribe``,
``c.Qdash.max_body`` (a plain config section), else ``$QDASH_DB`` / ``$QDASH_TOKEN``. Besides the
qdash token, the Jupyter server's own token is accepted. The token, the store's absolute path and
the server URL are exported to the environment (``QDASH_TOKEN``, ``QDASH_DB``,
``QDASH_SERVER_URL``), so kernels the server starts find the hub and write the same store with no
configuration (:class:`qdash.feeds.hub_client.Hub`).
"""

from __future__ import annotations

from .handlers import qdash_handlers
from .service import IngestService, ServerConfig


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "qdash.server.extension"}]


def _load_jupyter_server_extension(serverapp) -> None:
    section = serverapp.config.get("Qdash", {})
    config = ServerConfig(db=section.get("db"), token=section.get("token"),
                          loopback_subscribe=bool(section.get("loopback_subscribe", False)))
    if "max_body" in section:
        config.max_body = int(section["max_body"])
    service = IngestService(config)
    service.export_env(serverapp.connection_url)
    serverapp.web_app.add_handlers(".*$", qdash_handlers(service, serverapp.base_url))
    serverapp.web_app.settings["qdash_service"] = service
    msg = f"qdash tick server at {serverapp.connection_url}qdash/ (store: {service.db_path})"
    if service.token_generated:
        msg += f"; generated token: {service.token} (the Jupyter token works too)"
    serverapp.log.info(msg)
