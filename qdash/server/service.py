"""What every host of the tick server shares: configuration, the token, the store writer, the hub.

One :class:`IngestService` backs every handler of one server. Writes go to the store on one
dedicated thread (SQLite stays off the event loop and writes commit in arrival order); a write's
newly stored ticks are then published to the hub in that same order. A 2xx answer is given only
after the store committed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd

from ..config import Settings
from ..store import Store, WriteResult, resolve_db_path
from .hub import DEFAULT_MAX_QUEUE, TickHub

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 16 * 2**20


@dataclass
class ServerConfig:
    """Settings of the tick server (the same for every host).

    ``db``: SQLite path (default :func:`qdash.store.default_db_path`: ``$QDASH_DB``, else the
    user data directory; opened on first use).
    ``token``: the bearer secret for writes and subscriptions (default ``$QDASH_TOKEN``, else
    generated at start-up). ``loopback_subscribe``: let clients on 127.0.0.1/::1 subscribe to
    ``/qdash/ws/ticks`` without a token. ``max_body``: request/message size limit in bytes.
    ``max_queue``: tick batches a subscriber may have unread before it is dropped.
    """

    db: str | None = None
    token: str | None = None
    loopback_subscribe: bool = False
    max_body: int = DEFAULT_MAX_BODY
    max_queue: int = DEFAULT_MAX_QUEUE
    synchronous: str = "FULL"


def resolve_token(configured: str | None) -> tuple[str, bool]:
    """The token to use and whether it was generated (no config, no ``$QDASH_TOKEN``)."""
    token = configured or Settings.from_env().token
    if token:
        return token, False
    return secrets.token_urlsafe(24), True


class IngestService:
    """Store writer + hub + auth secret + counters, shared by the handlers of one server."""

    def __init__(self, config: ServerConfig | None = None):
        self.config = config or ServerConfig()
        self.token, self.token_generated = resolve_token(self.config.token)
        self.db_path = resolve_db_path(self.config.db)
        self.hub = TickHub(self.config.max_queue)
        self.started = time.time()
        self.received = 0
        self.stored = 0
        self.rejected = 0
        self.health_extra: dict[str, Callable[[], object]] = {}  # host-specific health fields
        self._store: Store | None = None
        self._store_lock = threading.Lock()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="qdash-store-writer")

    def export_env(self, server_url: str | None = None) -> None:
        """Put the token and the store's absolute path (``$QDASH_TOKEN``, ``$QDASH_DB``) in this
        process's environment, so kernels it starts, whatever their working directory, use the
        same token and the same store; and ``server_url``, this server's HTTP base URL, as
        ``$QDASH_SERVER_URL`` unless one is set already (for :class:`qdash.feeds.Hub`)."""
        if Settings.from_env().server_url is not None:
            server_url = None
        Settings(token=self.token, db=self.db_path, server_url=server_url).export()

    @property
    def store(self) -> Store:
        """The store, opened on first use (a host that never ingests creates no file)."""
        with self._store_lock:
            if self._store is None:
                self._store = Store(self.db_path, synchronous=self.config.synchronous)
            return self._store

    async def ingest(self, ticks: pd.DataFrame) -> WriteResult:
        """Commit ``ticks`` to the store (on the writer thread), then publish the new ones."""
        loop = asyncio.get_running_loop()
        result, new = await loop.run_in_executor(self._writer, self._write, ticks)
        self.received += result.received
        self.stored += result.stored
        self.hub.publish(new)
        return result

    def _write(self, ticks: pd.DataFrame) -> tuple[WriteResult, pd.DataFrame]:
        """Writer thread: store, and find which rows were new (for the hub)."""
        if len(ticks) == 0:
            return WriteResult(0, 0), ticks
        return self.store.write_new_ticks(ticks)

    async def symbols(self) -> list[str]:
        """Stored symbols (read on a worker thread)."""
        return await asyncio.to_thread(lambda: self.store.symbols())

    def health(self) -> dict:
        """Counters for ``/qdash/api/health``."""
        return {"ok": True, "db": self.db_path, "uptime_s": round(time.time() - self.started, 3),
                "ticks_received": self.received, "ticks_stored": self.stored,
                "requests_rejected": self.rejected, "subscribers": len(self.hub.subscribers),
                "subscribers_dropped": self.hub.dropped_subscribers,
                "ticks_published": self.hub.published_ticks,
                **{name: get() for name, get in self.health_extra.items()}}

    def close(self) -> None:
        """Stop the hub, finish pending writes, close the store."""
        self.hub.close()
        self._writer.shutdown(wait=True)
        if self._store is not None:
            self._store.close()
