"""The Tornado handlers of the tick server: one set of classes for every host.

Routes (under ``<base_url>qdash/``; :func:`qdash_handlers` builds them):

==========================  ===================================================================
``POST api/tick``            one tick (JSON object)
``POST api/ticks/batch``     a JSON array, one object, or NDJSON
``WS   ws/ingest``           ticks per message (object, array, NDJSON, or ``{"id", "ticks"}``);
                             every message is answered ``{"type": "ack"|"error", "seq", ...}``
``WS   ws/ticks?symbols=A,B`` subscribe to accepted ticks (all symbols without ``symbols``)
``GET  api/health``          counters; ``GET api/symbols``: stored symbols
``GET  collector``           the browser collector page
``GET  bokehjs/static/js/F`` the installed bokeh's built scripts (:mod:`.bokehjs`)
==========================  ===================================================================

Auth: ``Authorization: Bearer <token>`` (or ``token <token>``, or ``?token=``) with the qdash token
or, under Jupyter, the Jupyter server's token. Writes always need it; subscriptions too, unless
``loopback_subscribe`` is on and the client is on loopback. Handlers never use cookies, so they
skip Jupyter's xsrf check and answer CORS preflights (the collector may be opened as a file).

Answers are JSON: ``{"ok": true, "received", "stored", "duplicates", "skipped"}`` after the store
committed, or ``{"ok": false, "error", "message", "problems"?, "line"?, "column"?}`` with 400
(invalid body or tick), 401 (no or wrong token) or 413 (body over ``max_body``).
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path

import orjson
from tornado import web, websocket

from .. import __version__
from ..errors import IngestError
from ..model import parse_symbols
from . import bokehjs
from .ingest import parse_body, validate_items
from .service import IngestService

log = logging.getLogger(__name__)

COLLECTOR_HTML = Path(__file__).with_name("static") / "collector.html"
_LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")


def request_token(handler: web.RequestHandler) -> str | None:
    """The token a request carries: ``Authorization: Bearer|token X`` or ``?token=X``."""
    auth = handler.request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    return handler.get_query_argument("token", None) or None


class _QdashMixin:
    """Auth, CORS and JSON answers shared by the HTTP and WebSocket handlers."""

    service: IngestService

    def initialize(self, service: IngestService) -> None:
        self.service = service

    def check_xsrf_cookie(self) -> None:
        """Bearer-token auth only; no cookie is ever trusted, so there is nothing to forge."""

    def authorized(self) -> bool:
        token = request_token(self)
        if not token:
            return False
        accepted = [self.service.token]
        jupyter = getattr(self.settings.get("identity_provider"), "token", None)
        if jupyter:  # under Jupyter the server's own token works too
            accepted.append(jupyter)
        return any(hmac.compare_digest(token.encode(), t.encode()) for t in accepted)

    def is_loopback(self) -> bool:
        return self.request.remote_ip in _LOOPBACK

    def unauthorized_body(self) -> dict:
        return {"ok": False, "error": "unauthorized",
                "message": "missing or wrong token: send 'Authorization: Bearer <token>' (the "
                           "token qdash printed at start-up, or $QDASH_TOKEN); nothing stored"}


class _HTTPBase(_QdashMixin, web.RequestHandler):
    def set_default_headers(self) -> None:
        self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
        self.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.set_header("Cache-Control", "no-store")

    def options(self, *args) -> None:
        self.set_status(204)
        self.finish()

    def answer(self, status: int, body: dict) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(orjson.dumps(body))

    def write_error(self, status_code: int, **kwargs) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(orjson.dumps({"ok": False, "error": self._reason, "status": status_code}))


# A refused POST body (over the limit, or without the token) up to this many bytes is still read
# and dropped before the answer, so that a client that sends its whole body before reading
# (urllib, requests) gets the 413/401 instead of a broken pipe; larger ones are cut off.
DRAIN_BYTES = 64 * 2**20


@web.stream_request_body
class _IngestHandler(_HTTPBase):
    """POST bodies are streamed: an oversized one is never held in memory, a refused one is
    read and dropped, then answered (at once when the client waits for ``100-continue``)."""

    single = False

    def prepare(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._refused = False
        self._refusal: tuple[int, dict] | None = None
        if self.request.method != "POST":
            return
        limit = self.service.config.max_body
        self.request.connection.set_max_body_size(max(limit, DRAIN_BYTES))
        length = self.request.headers.get("Content-Length")
        size = int(length) if length and length.isdigit() else None
        if not self.authorized():
            self.set_header("WWW-Authenticate", "Bearer")
            self._refusal = (401, self.unauthorized_body())
        elif size is not None and size > limit:
            self._refusal = (413, self._too_large(size))
        if self._refusal and (size is not None and size > DRAIN_BYTES or self.request.headers.get(
                "Expect", "").lower() == "100-continue"):
            self._refuse(*self._refusal)  # no body follows, or too much to read

    def _refuse(self, status: int, body: dict) -> None:
        self._refused = True
        self.service.rejected += 1
        self.answer(status, body)

    def _too_large(self, size: int) -> dict:
        limit = self.service.config.max_body
        return {"ok": False, "error": "too-large",
                "message": f"body of {size} bytes is over the {limit}-byte limit; split it into "
                           "smaller batches; nothing stored"}

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._refusal is None and self._size <= self.service.config.max_body:
            self._chunks.append(chunk)

    async def post(self) -> None:
        if self._refused:
            return
        if self._refusal is not None:
            self._refuse(*self._refusal)
            return
        if self._size > self.service.config.max_body:
            self._refuse(413, self._too_large(self._size))
            return
        source = self.get_query_argument("source", "ingest")[:32] or "ingest"
        try:
            items, lines = parse_body(b"".join(self._chunks))
            if self.single and (len(items) != 1 or lines is not None):
                raise IngestError("expected one tick (a JSON object); send several to "
                                  "/qdash/api/ticks/batch", kind="invalid")
            batch = validate_items(items, source, lines)
        except IngestError as e:
            self._refuse(e.status, error_body(e))
            return
        result = await self.service.ingest(batch.ticks)
        self.answer(200, {"ok": True, "received": result.received, "stored": result.stored,
                          "duplicates": result.duplicates, "skipped": batch.skipped})


class TickHandler(_IngestHandler):
    """``POST /qdash/api/tick``: one tick."""

    single = True


class BatchHandler(_IngestHandler):
    """``POST /qdash/api/ticks/batch``: a JSON array or NDJSON body."""


class HealthHandler(_HTTPBase):
    """``GET /qdash/api/health``: liveness and counters (no token needed)."""

    def get(self) -> None:
        self.answer(200, {**self.service.health(), "version": __version__})


class SymbolsHandler(_HTTPBase):
    """``GET /qdash/api/symbols``: symbols in the store."""

    async def get(self) -> None:
        self.answer(200, {"ok": True, "symbols": await self.service.symbols()})


class CollectorHandler(_HTTPBase):
    """``GET /qdash/collector``: the browser collector page (static; the token is typed in or
    passed as ``?token=`` and never embedded by the server)."""

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(COLLECTOR_HTML.read_bytes())


def error_body(e: IngestError) -> dict:
    body = {"ok": False, "error": e.kind, "message": str(e)}
    if e.problems:
        body["problems"] = e.problems
    if e.line is not None:
        body["line"], body["column"] = e.line, e.column
    return body


class _WSBase(_QdashMixin, websocket.WebSocketHandler):
    def check_origin(self, origin: str) -> bool:
        """Any origin: access is decided by the token, never by cookies."""
        return True

    def get_compression_options(self):
        return None

    def refuse(self, status: int, body: dict) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(orjson.dumps(body))


class IngestSocket(_WSBase):
    """``WS /qdash/ws/ingest``: ticks per message, each answered by an ack or an error (in order;
    the next message is read only after the previous one committed)."""

    def prepare(self) -> None:
        self.seq = 0
        if not self.authorized():
            self.refuse(401, self.unauthorized_body())

    async def on_message(self, message: str | bytes) -> None:
        self.seq += 1
        raw = message.encode() if isinstance(message, str) else message
        msg_id = None
        try:
            if len(raw) > self.service.config.max_body:
                raise IngestError(f"message of {len(raw)} bytes is over the "
                                  f"{self.service.config.max_body}-byte limit; nothing stored",
                                  status=413, kind="too-large")
            items, lines = parse_body(raw)
            if len(items) == 1 and isinstance(items[0], dict) and "ticks" in items[0]:
                msg_id = items[0].get("id")
                items, lines = items[0]["ticks"], None
            batch = validate_items(items, "ws", lines)
        except IngestError as e:
            self.service.rejected += 1
            reply = {"type": "error", "seq": self.seq, **error_body(e)}
        else:
            result = await self.service.ingest(batch.ticks)
            reply = {"type": "ack", "seq": self.seq, "ok": True, "received": result.received,
                     "stored": result.stored, "duplicates": result.duplicates,
                     "skipped": batch.skipped}
        if msg_id is not None:
            reply["id"] = msg_id
        try:
            await self.write_message(orjson.dumps(reply))
        except websocket.WebSocketClosedError:
            pass


class TicksSocket(_WSBase):
    """``WS /qdash/ws/ticks?symbols=A,B``: receive accepted ticks (see :mod:`qdash.server.hub`).

    The first message is ``{"type": "hello", "symbols": [...] | null}``.
    """

    def prepare(self) -> None:
        self.subscription = None
        self.symbols = None
        raw = self.get_query_argument("symbols", "").strip()
        if raw and raw != "*":
            try:
                self.symbols = sorted(parse_symbols(raw))
            except ValueError as e:
                self.refuse(400, {"ok": False, "error": "invalid-symbol", "message": str(e)})
                return
        exempt = self.service.config.loopback_subscribe and self.is_loopback()
        if not exempt and not self.authorized():
            self.refuse(401, self.unauthorized_body())

    def open(self) -> None:
        self.write_message(orjson.dumps({"type": "hello", "symbols": self.symbols}))
        self.subscription = self.service.hub.subscribe(self.symbols, self._send, self.close)

    async def _send(self, msg: bytes) -> None:
        await self.write_message(msg)

    def on_message(self, message) -> None:
        """Subscribers only listen; anything they send is ignored."""

    def on_close(self) -> None:
        if self.subscription is not None:
            self.service.hub.unsubscribe(self.subscription)


def qdash_handlers(service: IngestService, base_url: str = "/",
                   legacy: bool = False) -> list[tuple]:
    """URL specs of every qdash handler under ``<base_url>qdash/``.

    ``legacy`` also answers the original design's ``/api/tick``, ``/api/ticks/batch`` and
    ``/health`` (the standalone ``qdash serve``).
    """
    root = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"
    p = root + "qdash/"
    kw = {"service": service}
    routes = [
        (p + "api/tick", TickHandler, kw),
        (p + "api/ticks/batch", BatchHandler, kw),
        (p + "ws/ingest", IngestSocket, kw),
        (p + "ws/ticks", TicksSocket, kw),
        (p + "api/health", HealthHandler, kw),
        (p + "api/symbols", SymbolsHandler, kw),
        (p + "collector/?", CollectorHandler, kw),
        bokehjs.static_route(root),
    ]
    if legacy:
        routes += [(root + "api/tick", TickHandler, kw),
                   (root + "api/ticks/batch", BatchHandler, kw),
                   (root + "health", HealthHandler, kw)]
    return routes
