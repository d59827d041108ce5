"""Fault injection for tests and benches: what a real exchange does to its clients on a bad day.

:class:`FaultInjection` is mixed into :class:`qdash.sim.exchange.SimExchange`; every fault is a
method of the exchange (and ``/sim/fault/<name>?arg=value`` over HTTP, :mod:`qdash.sim.control`).
"""

from __future__ import annotations

import asyncio
import collections
import socket
import struct

import tornado.httpserver

from .limiter import WeightLimiter
from .sockets import Connections
from .streams import StreamEngine


class FaultInjection:
    """Mixin: expects ``sockets`` (:class:`~qdash.sim.sockets.Connections`), ``streams``
    (:class:`~qdash.sim.streams.StreamEngine`), ``limiter``
    (:class:`~qdash.sim.limiter.WeightLimiter`), ``stats``, ``servers`` (the listening HTTP
    servers) and ``listen()`` (bind the port again)."""

    FAULTS = ("drop", "close", "stall", "garbage", "duplicate_on_reconnect", "refuse",
              "force_rotation", "rest_throttle", "depth_gap")

    sockets: Connections
    streams: StreamEngine
    limiter: WeightLimiter
    stats: collections.Counter
    servers: list[tornado.httpserver.HTTPServer]

    def listen(self) -> None:
        raise NotImplementedError

    def drop(self) -> None:
        """Abruptly drop every connection (TCP reset, no close frame: the client sees 1006)."""
        for conn in list(self.sockets.open):
            stream = conn.handler.ws_connection.stream if conn.handler.ws_connection else None
            if stream is not None and stream.socket is not None:
                stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                         struct.pack("ii", 1, 0))
                stream.close()
            self.sockets.open.discard(conn)
        self.stats["fault_drop"] += 1

    def close(self, code: int = 1001, reason: str = "") -> None:
        """Close every connection cleanly with ``code`` (1001 going away, 1008, 1011, ...)."""
        reasons = {1001: "going away", 1008: "Too many requests", 1011: "keepalive ping timeout"}
        self.sockets.close_all(code, reason or reasons.get(code, ""))
        self.stats[f"fault_close_{code}"] += 1

    def stall(self) -> None:
        """Stop sending data on every open connection, keeping the sockets (and pings) alive.
        New connections are served normally."""
        for conn in self.sockets.open:
            conn.stalled = True
        self.stats["fault_stall"] += 1

    def garbage(self, n: int = 5) -> None:
        """Send ``n`` rounds of malformed / unexpected frames to every connection."""
        junk = ["not json at all {", "[1,2,3]", '{"e":"trade","s":"BTCUSDT"}',
                '{"stream":"btcusdt@trade","data":null}', '{"e":"unknownEvent","E":1}',
                b"\x00\xff\xfebinary"]
        for conn in list(self.sockets.open):
            for _ in range(n):
                for j in junk:
                    conn.handler.send_text(j)
        self.stats["fault_garbage"] += 1

    def duplicate_on_reconnect(self, n: int = 50) -> None:
        """The next connection first receives the last ``n`` frames of each of its streams again,
        shuffled (duplicates, out of order), then the live stream."""
        self.sockets.duplicate_next = n

    def refuse(self, seconds: float = 1.0) -> None:
        """Drop every connection and refuse TCP connections for ``seconds``."""
        for server in self.servers:
            server.stop()
        self.drop()
        self.stats["fault_refuse"] += 1
        asyncio.get_running_loop().call_later(seconds, self.listen)

    def force_rotation(self, max_age: float = 1.0) -> None:
        """Set the connection lifetime limit to ``max_age`` seconds (Binance: 24 h)."""
        self.sockets.max_age = max_age

    def rest_throttle(self, n: int = 1, status: int = 429, retry_after: int = 1) -> None:
        """Answer the next ``n`` REST data requests with ``status`` and ``Retry-After``."""
        self.limiter.force(n, status, retry_after)

    def depth_gap(self, n: int = 1) -> None:
        """Lose the next ``n`` events of every diff depth stream (``<symbol>@depth``): the event
        after them has a ``pu`` the client never saw, so its local book must resync."""
        self.streams.lose_depth_events(n)
        self.stats["fault_depth_gap"] += 1
