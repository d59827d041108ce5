"""The simulated exchange's WebSocket side: connections, Binance's control protocol and the frame
writer.

Routes (same rules as Binance since 2026-04): ``/public/ws/<stream>[/<stream>...]`` and
``/public/stream?streams=a/b`` carry ``@trade``; ``/market/...`` carries ``@aggTrade``; the
unrouted ``/ws/...`` and ``/stream?...`` are served as ``/public``; ``/private/...`` is accepted
(market streams subscribed there stay silent). A stream subscribed on the wrong route is
acknowledged and then delivers nothing. ``/ws`` paths send raw payloads, ``/stream`` paths the
combined envelope ``{"stream": ..., "data": ...}``.

Control messages SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS get Binance's replies
(``{"result": null, "id": N}``) and errors (``{"error": {"code": 2, "msg": ...}, "id": N}``); an
unknown or malformed stream name is such an error (in the URL: the error frame, ``id`` null,
then the valid streams); a ``/ws/`` path segment that is not shaped like a stream at all
(:func:`~qdash.sim.streams.names_a_stream`: ccxt.pro's connection counter in ``/public/ws/0``)
is ignored, as Binance ignores it; more than 10 incoming messages in one second close the
connection with 1008; connections older than ``max_age`` seconds are closed with 1001.
"""

from __future__ import annotations

import collections
import json
import random
import time
from dataclasses import dataclass, field

import tornado.websocket

from .past import Instrument
from .streams import (
    INVALID_STREAM,
    StreamEngine,
    error_reply,
    names_a_stream,
    parse_stream,
    stream_route,
)

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
MAX_STREAMS = 1024
MAX_INCOMING_PER_S = 10
RECENT_FRAMES = 1000  # trade frames kept per stream, for duplicate_on_reconnect


@dataclass(eq=False)
class Connection:
    """One client connection: its route (public, market, private), framing and streams."""

    handler: StreamSocket
    route: str
    combined: bool
    streams: dict = field(default_factory=dict)  # ordered set
    stalled: bool = False
    opened: float = field(default_factory=time.monotonic)
    incoming: collections.deque = field(default_factory=collections.deque)

    def wants(self, stream: str) -> bool:
        return stream in self.streams and stream_route(stream) == self.route


def text_frames(texts: list[str]) -> bytes:
    """Unmasked, unfragmented server text frames (RFC 6455 §5.2), back to back."""
    buf = bytearray()
    for text in texts:
        data = text.encode()
        n = len(data)
        if n < 126:
            buf += bytes((0x81, n))
        elif n < 65536:
            buf += b"\x81\x7e" + n.to_bytes(2, "big")
        else:
            buf += b"\x81\x7f" + n.to_bytes(8, "big")
        buf += data
    return bytes(buf)


class Connections:
    """The open connections of one exchange, their subscriptions and what is sent to them.

    ``instruments``: the listed symbols (stream names are checked against them); ``streams``:
    the emitter of non-trade streams, told of every (un)subscription; ``stats``: counters shared
    with the exchange; ``max_age``: seconds a connection may live (Binance: 24 h).
    """

    def __init__(self, instruments: dict[str, Instrument], streams: StreamEngine,
                 stats: collections.Counter, max_age: float):
        self.instruments, self.streams, self.stats = instruments, streams, stats
        self.max_age = max_age
        self.open: set[Connection] = set()
        self.ever_streams: set[str] = set()  # streams subscribed at least once
        self.recent: dict[str, collections.deque] = collections.defaultdict(
            lambda: collections.deque(maxlen=RECENT_FRAMES))
        self.duplicate_next = 0  # frames per stream the next connection gets again first
        self.user_streams = None  # the exchange's listen keys (qdash.sim.user_stream)

    # --- life of a connection ---------------------------------------------------------------
    def opened(self, conn: Connection) -> None:
        self.open.add(conn)
        self.ever_streams.update(conn.streams)
        self.streams.add(conn.streams)
        self.stats["connections_opened"] += 1
        if self.duplicate_next:
            n, self.duplicate_next = self.duplicate_next, 0
            old = [(s, p) for s in conn.streams if conn.wants(s) for p in list(self.recent[s])[-n:]]
            random.Random(n).shuffle(old)
            self.stats["duplicates_sent"] += len(old)
            self.send(conn, old)

    def closed(self, conn: Connection) -> None:
        self.open.discard(conn)
        self.streams.remove(conn.streams)

    def close_all(self, code: int, reason: str) -> None:
        """Close every connection cleanly with ``code``."""
        for conn in list(self.open):
            conn.handler.close(code, reason)
            self.open.discard(conn)

    def enforce_age(self) -> None:
        """Close (1001) the connections older than ``max_age``."""
        now = time.monotonic()
        for conn in list(self.open):
            if now - conn.opened > self.max_age:
                self.stats["closed_age"] += 1
                conn.handler.close(1001, "connection lifetime limit reached")
                self.open.discard(conn)

    # --- control messages -------------------------------------------------------------------
    def control(self, conn: Connection, message) -> dict | None:
        """The reply to one control message: ``{"result": ..., "id": N}`` or Binance's error
        ``{"error": {"code": C, "msg": ...}, "id": N}``."""
        try:
            req = json.loads(message)
        except (ValueError, UnicodeDecodeError) as e:
            return error_reply(f"Invalid JSON: {e}", None, 3)
        if not isinstance(req, dict):
            return error_reply("Invalid request: request must be a JSON object", None)
        rid = req.get("id")
        if "method" not in req:
            return error_reply("Invalid request: missing field `method`", rid)
        if "id" not in req:
            return error_reply("Invalid request: missing field `id`", None)
        if not (isinstance(rid, int) and rid >= 0) and not isinstance(rid, str):
            return error_reply("Invalid request: request ID must be an unsigned integer", None)
        method = req["method"]
        if method not in METHODS:
            return error_reply(f"Invalid request: unknown variant `{method}`, expected one of "
                               "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, "
                               "`SET_PROPERTY`, `GET_PROPERTY`", rid)
        params = req.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(conn.streams), "id": rid}
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return {"result": False if method == "GET_PROPERTY" else None, "id": rid}
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return error_reply("Invalid value type: expected an array of strings", rid, 1)
        users = self.user_streams
        keys = [p for p in params if users is not None and users.is_key(p)]
        for key in keys:  # a listen key subscribes to the account's user-data stream
            if method == "SUBSCRIBE":
                users.attach(key, conn.handler)
            else:
                users.detach(conn.handler, key)
        params = [p for p in params if p not in keys]
        if any(parse_stream(p, self.instruments) is None for p in params):
            return error_reply(INVALID_STREAM, rid)
        if method == "SUBSCRIBE":
            if len(set(conn.streams) | set(params)) > MAX_STREAMS:
                return error_reply(f"Invalid request: too many streams, at most {MAX_STREAMS} "
                                   "per connection", rid)
            added = [p for p in dict.fromkeys(params) if p not in conn.streams]
            conn.streams.update(dict.fromkeys(added))
            self.ever_streams.update(added)
            self.streams.add(added)
        else:
            removed = [p for p in dict.fromkeys(params) if p in conn.streams]
            for p in removed:
                conn.streams.pop(p)
            self.streams.remove(removed)
        return {"result": None, "id": rid}

    # --- sending ----------------------------------------------------------------------------
    def broadcast(self, frames: list[tuple[str, str]]) -> None:
        """Send (stream, payload) frames to every connection that wants them (not stalled)."""
        if not frames:
            return
        for conn in list(self.open):
            if not conn.stalled:
                self.send(conn, [(s, p) for s, p in frames if conn.wants(s)])

    def send(self, conn: Connection, frames: list[tuple[str, str]]) -> None:
        """Send (stream, payload) frames in one socket write; Tornado's per-message path costs
        several times more at 20,000 frames/s."""
        if not frames:
            return
        if conn.combined:
            texts = [f'{{"stream":"{stream}","data":{payload}}}' for stream, payload in frames]
        else:
            texts = [payload for _, payload in frames]
        ws = conn.handler.ws_connection
        if ws is None or ws.is_closing() or ws.stream.closed():
            return
        ws.stream.write(text_frames(texts))
        self.stats["frames_sent"] += len(frames)


class StreamSocket(tornado.websocket.WebSocketHandler):
    """One client WebSocket connection (routes and control messages as on Binance)."""

    def initialize(self, connections: Connections, route: str, combined: bool):
        self.connections, self.route, self.combined = connections, route, combined
        self.conn: Connection | None = None

    def check_origin(self, origin: str) -> bool:
        return True

    def open(self, path: str = ""):
        if self.combined:
            names = self._listen([s for s in self.get_argument("streams", "").split("/") if s])
        else:  # a listen key, then stream names; other segments (ccxt.pro's counter) name none
            names = [s for s in self._listen(path.split("/")) if names_a_stream(s)]
        names = self._listen(names + [self.get_argument("listenKey", "")])
        valid = [s for s in names if parse_stream(s, self.connections.instruments) is not None]
        self.conn = Connection(self, self.route, self.combined, dict.fromkeys(valid))
        self.connections.opened(self.conn)
        if len(valid) < len(names):  # the valid streams flow; the rest is answered, not ignored
            self.send_text(json.dumps(error_reply(INVALID_STREAM, None), separators=(",", ":")))

    def _listen(self, names: list[str]) -> list[str]:
        """Attach this connection to the user-data stream of the listen keys among ``names``;
        returns the other names."""
        users = self.connections.user_streams
        keys = [n for n in names if users is not None and users.is_key(n)]
        for key in keys:
            users.attach(key, self)
        return [n for n in names if n and n not in keys]

    def on_message(self, message):
        conn = self.conn
        now = time.monotonic()
        conn.incoming.append(now)
        while conn.incoming and now - conn.incoming[0] > 1.0:
            conn.incoming.popleft()
        if len(conn.incoming) > MAX_INCOMING_PER_S:
            self.connections.stats["closed_1008"] += 1
            self.close(1008, "Too many requests")
            return
        reply = self.connections.control(conn, message)
        if reply is not None:
            self.send_text(json.dumps(reply, separators=(",", ":")))

    def on_pong(self, data):
        self.connections.stats["pongs"] += 1

    def on_close(self):
        if self.conn is not None:
            self.connections.closed(self.conn)
        if self.connections.user_streams is not None:
            self.connections.user_streams.detach(self)

    def send_text(self, frame) -> None:
        """One message (``bytes`` go as a binary frame); nothing when the socket has closed."""
        try:
            self.write_message(frame, binary=isinstance(frame, bytes))
        except tornado.websocket.WebSocketClosedError:
            pass

    def send_texts(self, texts: list[str]) -> None:
        """Text messages in one socket write; nothing when the socket has closed."""
        ws = self.ws_connection
        if ws is None or ws.is_closing() or ws.stream.closed():
            return
        ws.stream.write(text_frames(texts))


def socket_routes(connections: Connections) -> list:
    """Tornado routes of every WebSocket entry point (public, market, private, unrouted)."""
    routes = []
    for prefix, route in (("/public", "public"), ("/market", "market"),
                          ("/private", "private"), ("", "public")):
        kw = {"connections": connections, "route": route}
        routes += [(prefix + r"/ws/?(.*)", StreamSocket, kw | {"combined": False}),
                   (prefix + r"/stream/?", StreamSocket, kw | {"combined": True})]
    return routes
