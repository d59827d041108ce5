"""Binance request signing (HMAC-SHA256), for the clients and the simulator alike.

Binance signs the *total params*: the query string, concatenated with the request body when a
POST carries one (``query + body``, no separator), keyed by the API secret; the hex digest is
sent as the ``signature`` parameter, last, and the key as the ``X-MBX-APIKEY`` header. Every
signed request carries ``timestamp`` (ms UTC) and may carry ``recvWindow`` (ms, default
:data:`DEFAULT_RECV_WINDOW_MS`, at most :data:`MAX_RECV_WINDOW_MS`).

The secret is only ever an argument of :func:`signature`; nothing here logs or formats it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

API_KEY_HEADER = "X-MBX-APIKEY"
DEFAULT_RECV_WINDOW_MS = 5_000
MAX_RECV_WINDOW_MS = 60_000


def signature(payload: str, secret: str) -> str:
    """The hex HMAC-SHA256 of ``payload`` (query string + body) under ``secret``."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def signature_ok(payload: str, secret: str, sent: str) -> bool:
    """Whether ``sent`` is the signature of ``payload`` (constant-time comparison)."""
    return hmac.compare_digest(signature(payload, secret), sent.lower())


def signer(api_key: str, api_secret: str, recv_window_ms: int | None = None,
           clock: Callable[[], float] = time.time) -> Callable[[str], tuple[str, dict]]:
    """The ``sign`` hook of :class:`qdash.binance.rest.RestClient`: ``query -> (signed query,
    headers)``, appending ``timestamp`` (from ``clock``, seconds) and optionally ``recvWindow``,
    then ``signature``."""

    def sign(query: str) -> tuple[str, dict]:
        parts = [query] if query else []
        parts.append(f"timestamp={int(clock() * 1000)}")
        if recv_window_ms is not None:
            parts.append(f"recvWindow={int(recv_window_ms)}")
        signed = "&".join(parts)
        return f"{signed}&signature={signature(signed, api_secret)}", {API_KEY_HEADER: api_key}

    return sign
