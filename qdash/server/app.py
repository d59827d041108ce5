"""The standalone tick server (``qdash serve``): a plain Tornado application on one port."""

from __future__ import annotations

import asyncio
import logging
import signal

from tornado import httpserver, netutil, web

from .handlers import qdash_handlers
from .service import IngestService, ServerConfig

log = logging.getLogger(__name__)


class _RootHandler(web.RequestHandler):
    def get(self) -> None:
        self.redirect("/qdash/collector" + (f"?{self.request.query}" if self.request.query else ""))


def make_app(service: IngestService) -> web.Application:
    """Tornado application with every qdash route plus the original design's paths."""
    return web.Application(qdash_handlers(service, legacy=True) + [(r"/", _RootHandler)],
                           websocket_max_message_size=service.config.max_body + 1024)


class StandaloneServer:
    """A running standalone server: ``await StandaloneServer.start(config, port=0)`` binds and
    returns at once; ``port`` is the bound port; ``await stop()`` closes it."""

    def __init__(self, service: IngestService, http: httpserver.HTTPServer, host: str, port: int):
        self.service, self.http, self.host, self.port = service, http, host, port

    @classmethod
    async def start(cls, config: ServerConfig | None = None, *, host: str = "127.0.0.1",
                    port: int = 5001) -> StandaloneServer:
        service = IngestService(config)
        # bodies are checked against max_body by the handlers (JSON 413 after reading a refused
        # body up to DRAIN_BYTES, each request sets its own transport limit)
        http = httpserver.HTTPServer(make_app(service))
        sockets = netutil.bind_sockets(port, host)
        http.add_sockets(sockets)
        return cls(service, http, host, sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def stop(self) -> None:
        self.http.stop()
        await self.http.close_all_connections()
        await asyncio.to_thread(self.service.close)


async def serve_forever(config: ServerConfig, host: str, port: int) -> None:
    """Run until SIGINT/SIGTERM (script use only: this owns the event loop)."""
    server = await StandaloneServer.start(config, host=host, port=port)
    service = server.service
    service.export_env(server.url)
    log.info("qdash server on %s (db %s)", server.url, service.db_path)
    _announce(server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def _announce(server: StandaloneServer) -> None:
    s = server.service
    lines = [f"qdash tick server on {server.url} (store: {s.db_path})",
             f"  POST {server.url}qdash/api/ticks/batch",
             f"  WS   {server.url.replace('http', 'ws', 1)}qdash/ws/ticks?symbols=A,B"]
    if s.token_generated:
        lines.append(f"  token (generated; set QDASH_TOKEN to fix it): {s.token}")
    else:
        lines.append("  token: from --token / $QDASH_TOKEN")
    lines.append(f"  collector: {server.url}qdash/collector"
                 + (f"?token={s.token}" if s.token_generated else ""))
    print("\n".join(lines), flush=True)
