"""Where alerts go: Python callbacks and webhooks (Slack, Discord, templated JSON).

Every sink owns a bounded queue drained by its own worker task(s) on the running event loop, so
:meth:`Sink.submit` never waits: a slow, failing or unreachable endpoint delays only its own
queue, and when that queue is full the alert is recorded as ``dropped`` for that sink instead of
blocking the caller. Nothing a sink does raises into the caller: failures are logged and recorded
in the :class:`~qdash.alerts.events.Delivery` of the alert.

Webhooks follow freqtrade's ``rpc/webhook.py``: a payload built from a template, POSTed with a
timeout, retried (here with exponential backoff: ``backoff_s * 2**n``, capped at
``backoff_max_s``) on connection errors, timeouts, HTTP 5xx, 408 and 429, logged not raised. Any
other 4xx fails at once (a malformed request does not improve by repetition).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.simple_httpclient import HTTPTimeoutError

from ..errors import AlertError
from .events import Alert, Delivery, check_structure, check_template, render, render_structure
from .rules import SEVERITIES

logger = logging.getLogger(__name__)

OnDone = Callable[[Alert, str, Delivery], None]
_RETRYABLE_HTTP = {408, 429}
SEVERITY_COLORS = {"info": 0x3498DB, "warning": 0xF1C40F, "critical": 0xE74C3C}


class Sink:
    """Base class: a bounded queue of alerts delivered by ``workers`` tasks.

    Alerts submitted before :meth:`start` wait in the queue (up to ``queue_size``) and are
    delivered once it runs. Subclasses implement :meth:`deliver`.
    """

    def __init__(self, name: str, *, queue_size: int = 1000, workers: int = 1,
                 min_severity: str | None = None):
        if not isinstance(name, str) or not name:
            raise AlertError(f"sink name must be a non-empty string, got {name!r}")
        if queue_size < 1 or workers < 1:
            raise AlertError(f"sink {name!r}: queue_size and workers must be >= 1")
        if min_severity is not None and min_severity not in SEVERITIES:
            raise AlertError(f"sink {name!r}: min_severity must be one of {SEVERITIES}")
        self.name = name
        self.queue_size = int(queue_size)
        self.workers = int(workers)
        self.min_severity = min_severity
        self._buffer: deque = deque()  # jobs submitted while stopped
        self._queue: asyncio.Queue | None = None
        self._tasks: list[asyncio.Task] = []
        self.dropped = 0  # alerts refused because the queue was full

    # --- subclass API ----------------------------------------------------------------------------
    async def deliver(self, alert: Alert, delivery: Delivery) -> None:
        """Deliver one alert, updating ``delivery`` (status, attempts, error) in place."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release resources (HTTP clients) when the sink stops."""

    # --- queue -----------------------------------------------------------------------------------
    def accepts(self, alert: Alert) -> bool:
        """Whether this sink wants ``alert`` (severity at least ``min_severity``)."""
        return self.min_severity is None or \
            SEVERITIES.index(alert.severity) >= SEVERITIES.index(self.min_severity)

    @property
    def pending(self) -> int:
        """Alerts queued and not yet taken by a worker."""
        return self._queue.qsize() if self._queue is not None else len(self._buffer)

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def submit(self, alert: Alert, on_done: OnDone | None = None) -> Delivery:
        """Queue ``alert`` without waiting; returns its :class:`Delivery` (``pending``, or
        ``dropped`` when the queue is full). ``on_done(alert, sink_name, delivery)`` runs on the
        loop once delivery finished (sent or failed)."""
        delivery = Delivery()
        job = (alert, delivery, on_done)
        if self._queue is not None:
            try:
                self._queue.put_nowait(job)
                return delivery
            except asyncio.QueueFull:
                pass
        elif len(self._buffer) < self.queue_size:
            self._buffer.append(job)
            return delivery
        delivery.status = "dropped"
        delivery.error = f"queue full ({self.queue_size} alerts waiting)"
        self.dropped += 1
        if self.dropped in (1, 10) or self.dropped % 1000 == 0:  # a stall must not flood the log
            logger.warning("sink %r dropped alert %r for %s: %s (%d dropped so far)", self.name,
                           alert.rule, alert.pair, delivery.error, self.dropped)
        return delivery

    def start(self) -> None:
        """Start the worker task(s) on the running loop; returns at once."""
        if self._tasks:
            return
        self._queue = asyncio.Queue(maxsize=self.queue_size)
        while self._buffer:
            self._queue.put_nowait(self._buffer.popleft())
        self._tasks = [asyncio.create_task(self._work(), name=f"qdash-sink-{self.name}-{i}")
                       for i in range(self.workers)]

    async def join(self) -> None:
        """Wait until every queued alert has been delivered or has failed."""
        if self._queue is not None:
            await self._queue.join()

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Let queued deliveries finish for up to ``timeout_s``, then cancel the rest (recorded as
        failed) and release resources."""
        if not self._tasks:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
        except TimeoutError:
            logger.warning("sink %r: %d deliveries unfinished after %.1f s, cancelling",
                           self.name, self._queue.qsize() + self.workers, timeout_s)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        while not self._queue.empty():
            alert, delivery, on_done = self._queue.get_nowait()
            delivery.status, delivery.error = "failed", "not delivered: sink stopped"
            self._finish(alert, delivery, on_done)
        self._queue = None
        try:
            await self.aclose()
        except Exception:
            logger.exception("sink %r: error while closing", self.name)

    async def _work(self) -> None:
        queue = self._queue
        while True:
            alert, delivery, on_done = await queue.get()
            try:
                await self.deliver(alert, delivery)
            except asyncio.CancelledError:
                delivery.status = "failed"
                delivery.error = "cancelled: sink stopped during delivery"
                self._finish(alert, delivery, on_done)
                queue.task_done()
                raise
            except Exception as e:  # a sink must never take the loop down
                logger.exception("sink %r failed on alert %r", self.name, alert.rule)
                delivery.status, delivery.error = "failed", f"{type(e).__name__}: {e}"
            self._finish(alert, delivery, on_done)
            queue.task_done()

    def _finish(self, alert: Alert, delivery: Delivery, on_done: OnDone | None) -> None:
        if on_done is None:
            return
        try:
            on_done(alert, self.name, delivery)
        except Exception:
            logger.exception("delivery callback failed for sink %r", self.name)


class CallbackSink(Sink):
    """Calls ``fn(alert)``: a plain function (run on the loop, or in a thread with
    ``in_thread=True`` when it blocks) or a coroutine function (awaited, at most ``timeout_s``)."""

    def __init__(self, fn: Callable[[Alert], Any] | Callable[[Alert], Awaitable[Any]],
                 name: str | None = None, *, timeout_s: float | None = 30.0,
                 in_thread: bool = False, queue_size: int = 1000, workers: int = 1,
                 min_severity: str | None = None):
        if not callable(fn):
            raise AlertError(f"callback must be callable, got {type(fn).__name__}")
        name = name or getattr(fn, "__qualname__", None) or repr(fn)
        super().__init__(name, queue_size=queue_size, workers=workers, min_severity=min_severity)
        self.fn, self.timeout_s, self.in_thread = fn, timeout_s, in_thread

    async def deliver(self, alert: Alert, delivery: Delivery) -> None:
        delivery.attempts += 1
        try:
            if self.in_thread:
                result = await asyncio.to_thread(self.fn, alert)
            else:
                result = self.fn(alert)
            if inspect.isawaitable(result):
                await asyncio.wait_for(result, self.timeout_s)
        except TimeoutError:
            delivery.status, delivery.error = "failed", f"timeout after {self.timeout_s} s"
            logger.warning("callback %r timed out on alert %r", self.name, alert.rule)
            return
        except Exception as e:
            delivery.status, delivery.error = "failed", f"{type(e).__name__}: {e}"
            logger.warning("callback %r raised on alert %r: %r", self.name, alert.rule, e)
            return
        delivery.status = "sent"


def validate_url(url: str) -> str:
    """Return ``url`` if it is an absolute http(s) URL with a host, else raise AlertError."""
    if not isinstance(url, str):
        raise AlertError(f"webhook URL must be a string, got {type(url).__name__}")
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError as e:
        raise AlertError(f"webhook URL {url!r} is malformed: {e}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise AlertError(f"webhook URL {url!r}: only http and https URLs are accepted, "
                         f"got scheme {parts.scheme or '(none)'!r}")
    if not host:
        raise AlertError(f"webhook URL {url!r} has no host")
    return url.strip()


class WebhookSink(Sink):
    """POSTs each alert as JSON to ``url``.

    ``format``:
      - ``"slack"``: incoming-webhook payload ``{"text", "blocks"}``;
      - ``"discord"``: webhook payload ``{"content", "embeds", "allowed_mentions"}``;
      - ``"json"``: ``template`` (a JSON-like dict whose strings are templates; a string that is
        exactly one field, e.g. ``"{value}"``, keeps its type), or the alert record when no
        template is given.
    ``text`` is the template of the headline of Slack/Discord messages. Templates are checked
    here, at configuration, as is the URL (http/https only).

    Each attempt has ``timeout_s`` (connect and whole request); up to ``retries`` more attempts
    follow with exponential backoff.
    """

    FORMATS = ("slack", "discord", "json")

    def __init__(self, url: str, *, format: str = "json", template: Mapping | None = None,
                 text: str | None = None, name: str | None = None, retries: int = 3,
                 backoff_s: float = 0.5, backoff_max_s: float = 30.0, timeout_s: float = 10.0,
                 headers: Mapping[str, str] | None = None, queue_size: int = 1000,
                 workers: int = 2, min_severity: str | None = None):
        self.url = validate_url(url)
        if format not in self.FORMATS:
            raise AlertError(f"webhook format must be one of {self.FORMATS}, got {format!r}")
        super().__init__(name or f"{format}:{urlsplit(self.url).hostname}",
                         queue_size=queue_size, workers=workers, min_severity=min_severity)
        if template is not None:
            if format != "json":
                raise AlertError(f"webhook {self.name!r}: template= is for format='json'; "
                                 f"use text= for {format}")
            if not isinstance(template, Mapping):
                raise AlertError(f"webhook {self.name!r}: template must be a dict (JSON object)")
            check_structure(template, f"webhook {self.name!r} template")
        if text is not None:
            check_template(text, where=f"webhook {self.name!r} text")
        if retries < 0 or backoff_s < 0 or timeout_s <= 0:
            raise AlertError(f"webhook {self.name!r}: need retries >= 0, backoff_s >= 0, "
                             f"timeout_s > 0")
        self.format, self.template, self.text = format, template, text
        self.retries, self.backoff_s, self.backoff_max_s = int(retries), backoff_s, backoff_max_s
        self.timeout_s = float(timeout_s)
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self._client: AsyncHTTPClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def payload(self, alert: Alert) -> dict:
        """The JSON body for ``alert``."""
        ctx = alert.context()
        if self.format == "json":
            return alert.to_dict() if self.template is None else \
                render_structure(self.template, ctx)
        default = ("*[{severity}] {rule}* on `{pair}`: {message}" if self.format == "slack"
                   else "**[{severity}] {rule}** on {pair}: {message}")
        text = render(self.text or default, ctx | {"severity": alert.severity.upper()})
        if self.format == "slack":
            return {"text": text, "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "context", "elements": [
                    {"type": "mrkdwn", "text": f"{alert.time} · `{alert.condition}`"}]}]}
        fields = [{"name": m, "value": "n/a" if v is None else f"{v:.6g}", "inline": True}
                  for m, v in alert.values.items()][:25]
        return {"content": text[:2000], "allowed_mentions": {"parse": []}, "embeds": [{
            "title": f"{alert.rule} ({alert.severity})"[:256],
            "description": alert.message[:4096], "timestamp": alert.time,
            "color": SEVERITY_COLORS[alert.severity], "fields": fields,
            "footer": {"text": alert.pair[:2048]}}]}

    def _http(self) -> AsyncHTTPClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = AsyncHTTPClient(force_instance=True, max_clients=self.workers)
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._client_loop = None

    async def deliver(self, alert: Alert, delivery: Delivery) -> None:
        try:
            body = json.dumps(self.payload(alert), allow_nan=False)
        except (ValueError, TypeError, KeyError) as e:
            delivery.status, delivery.error = "failed", f"cannot build payload: {e}"
            logger.error("webhook %r: cannot build payload for %r: %s", self.name, alert.rule, e)
            return
        request = HTTPRequest(self.url, method="POST", body=body, headers=self.headers,
                              connect_timeout=self.timeout_s, request_timeout=self.timeout_s)
        client = self._http()
        while True:
            delivery.attempts += 1
            retryable = True
            try:
                response = await client.fetch(request, raise_error=False)
                delivery.code = response.code
                if 200 <= response.code < 300:
                    delivery.status, delivery.error = "sent", None
                    return
                delivery.error = f"HTTP {response.code} {response.reason}"
                retryable = response.code >= 500 or response.code in _RETRYABLE_HTTP
            except HTTPTimeoutError as e:
                delivery.code, delivery.error = e.code, f"{e} (timeout_s={self.timeout_s})"
            except HTTPClientError as e:  # 599: connection closed mid-request
                delivery.code, delivery.error = e.code, str(e)
            except OSError as e:  # refused, unreachable, DNS failure
                delivery.code = None
                delivery.error = f"connection failed: {e.strerror or e}"
            except Exception as e:
                delivery.code = None
                delivery.error = f"{type(e).__name__}: {e}"
            if not retryable or delivery.retries >= self.retries:
                delivery.status = "failed"
                logger.error("webhook %r: alert %r not delivered after %d attempt(s): %s",
                             self.name, alert.rule, delivery.attempts, delivery.error)
                return
            delay = min(self.backoff_max_s, self.backoff_s * 2 ** (delivery.attempts - 1))
            logger.warning("webhook %r: attempt %d for alert %r failed (%s); retrying in %.2f s",
                           self.name, delivery.attempts, alert.rule, delivery.error, delay)
            await asyncio.sleep(delay)
