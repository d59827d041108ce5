"""The user-data stream of the simulated exchange: listen keys and the events sent on them.

``POST /fapi/v1/listenKey`` gives an account its listen key (the same one while it is valid,
and its validity is extended), ``PUT`` extends it by 60 minutes, ``DELETE`` closes it. A
WebSocket on ``/ws/<listenKey>``, ``/private/ws/<listenKey>``, ``/private/ws?listenKey=<key>``
or a combined ``/stream?streams=<listenKey>`` receives the account's events
(``ORDER_TRADE_UPDATE``, ``ACCOUNT_UPDATE``, ``MARGIN_CALL``; :mod:`qdash.binance.orders`) and
``listenKeyExpired`` when the key lapses. Times are ms on the exchange clock.
"""

from __future__ import annotations

import json
import secrets
from typing import Protocol

from ..binance.limits import LISTEN_KEY_TTL_MS
from ..binance.orders import listen_key_expired
from .accounts import Account


class EventSink(Protocol):
    """A connection that takes user events: ``combined`` ones get the stream envelope."""

    combined: bool

    def send_text(self, frame) -> None: ...


class UserStreams:
    """Listen keys (key → account, expiry ms) and the connections listening on them."""

    def __init__(self):
        self.keys: dict[str, tuple[Account, int]] = {}
        self.listening: dict[str, set[EventSink]] = {}

    def key_of(self, acc: Account) -> str | None:
        return next((k for k, (a, _) in self.keys.items() if a is acc), None)

    def create(self, acc: Account, now_ms: int) -> str:
        """The account's listen key (a new one if it has none), valid 60 minutes from now."""
        key = self.key_of(acc) or secrets.token_urlsafe(48).replace("-", "a").replace("_", "b")
        self.keys[key] = (acc, now_ms + LISTEN_KEY_TTL_MS)
        return key

    def keepalive(self, acc: Account, now_ms: int) -> str | None:
        """Extend the account's key; None when it has none."""
        key = self.key_of(acc)
        if key is not None:
            self.keys[key] = (acc, now_ms + LISTEN_KEY_TTL_MS)
        return key

    def close(self, acc: Account) -> None:
        key = self.key_of(acc)
        if key is not None:
            del self.keys[key]

    def is_key(self, name: str) -> bool:
        return name in self.keys

    def attach(self, key: str, sink: EventSink) -> None:
        self.listening.setdefault(key, set()).add(sink)

    def detach(self, sink: EventSink, key: str | None = None) -> None:
        """Stop sending to ``sink`` (on ``key`` only, or on every key)."""
        for k, sinks in self.listening.items():
            if key is None or k == key:
                sinks.discard(sink)

    def emit(self, acc: Account, event: dict) -> None:
        """Send ``event`` to every connection on the account's key."""
        key = self.key_of(acc)
        sinks = self.listening.get(key) if key else None
        if sinks:
            self._send(key, sinks, event)

    @staticmethod
    def _send(key: str, sinks, event: dict) -> None:
        raw = json.dumps(event, separators=(",", ":"))
        for sink in list(sinks):
            sink.send_text(f'{{"stream":"{key}","data":{raw}}}' if sink.combined else raw)

    def expire(self, now_ms: int) -> None:
        """Drop the keys past their validity, telling their listeners ``listenKeyExpired``."""
        for key, (_, until) in list(self.keys.items()):
            if until <= now_ms:
                del self.keys[key]
                sinks = self.listening.pop(key, set())
                self._send(key, sinks, listen_key_expired(key, now_ms))
