"""The user-data stream of the simulated exchange: listen keys and the events sent on them.

``POST /fapi/v1/listenKey`` gives an account its listen key (the same one while it is valid,
and its validity is extended), ``PUT`` extends it by 60 minutes, ``DELETE`` closes it. A
WebSocket on ``/ws/<listenKey>``, ``/private/ws/<listenKey>``, ``/private/ws?listenKey=<key>``
or a combined ``/stream?streams=<listenKey>`` receives the account's events
(``ORDER_TRADE_UPDATE``, ``ACCOUNT_UPDATE``, ``MARGIN_CALL``; :mod:`qdash.binance.orders`) and
``listenKeyExpired`` when the key lapses. Times are ms on the exchange clock.

Events an order request causes go out after its REST answer: they are queued and sent on the
event loop's next turn, each connection's in one socket write (on Binance the two race; the
answer no longer waits for the events' writes, which cost more than the matching).
"""

from __future__ import annotations

import asyncio
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

    def send_texts(self, texts: list[str]) -> None:
        """Several text messages in one socket write."""


class UserStreams:
    """Listen keys (key → account, expiry ms) and the connections listening on them."""

    def __init__(self):
        self.keys: dict[str, tuple[Account, int]] = {}
        self.listening: dict[str, set[EventSink]] = {}
        self._pending: list[tuple[str, dict]] = []     # (key, event) not yet sent, in order

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
        """Send ``event`` to every connection on the account's key: on the event loop's next
        turn when one runs (after the answer being written), else at once."""
        key = self.key_of(acc)
        if not key or not self.listening.get(key):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._send(key, self.listening[key], [event])
            return
        if not self._pending:
            loop.call_soon(self.flush)
        self._pending.append((key, event))

    def flush(self) -> None:
        """Send the queued events, in order; each connection's in one write."""
        pending, self._pending = self._pending, []
        by_key: dict[str, list[dict]] = {}
        for key, event in pending:
            by_key.setdefault(key, []).append(event)
        for key, events in by_key.items():
            self._send(key, self.listening.get(key, ()), events)

    @staticmethod
    def _send(key: str, sinks, events: list[dict]) -> None:
        raws = [json.dumps(e, separators=(",", ":")) for e in events]
        for sink in list(sinks):
            sink.send_texts([f'{{"stream":"{key}","data":{raw}}}' for raw in raws]
                            if sink.combined else raws)

    def expire(self, now_ms: int) -> None:
        """Drop the keys past their validity, telling their listeners ``listenKeyExpired``
        (after the events queued before)."""
        if self._pending:
            self.flush()
        for key, (_, until) in list(self.keys.items()):
            if until <= now_ms:
                del self.keys[key]
                sinks = self.listening.pop(key, set())
                self._send(key, sinks, [listen_key_expired(key, now_ms)])
