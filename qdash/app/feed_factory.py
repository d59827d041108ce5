"""The pair monitor's tick feeds, built by source; and the simulated exchange it may start in
this kernel (when no running one is named), which it owns and stops.

Sources: ``sim`` (the simulated exchange: the one at ``sim_ws_url``/``sim_rest_url``, else one
started here), ``binance`` (Binance USDⓈ-M live), ``hub`` (ticks pushed to the qdash server).
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import QdashError
from ..feeds.base import TickFeed

FEED_SOURCES = ("sim", "binance", "hub")


class FeedFactory:
    """Builds a :class:`~qdash.feeds.base.TickFeed` per source (:meth:`make`).

    ``sim_rate``: trades per second per symbol of the simulator started here.
    """

    def __init__(self, sim_ws_url: str | None = None, sim_rest_url: str | None = None,
                 sim_rate: float = 200.0):
        self.sim_ws_url = sim_ws_url
        self.sim_rest_url = sim_rest_url
        self.sim_rate = sim_rate
        self.own_sim = None  # the SimExchange started in this kernel, if any

    async def make(self, source: str, symbols: list[str]) -> TickFeed:
        """A new (not started) feed of ``symbols`` from ``source``; for ``sim`` without a
        running simulator named, the one of this kernel is started first (once)."""
        if source == "binance":
            from ..feeds.binance import BinanceFutures
            return BinanceFutures(symbols)
        if source == "hub":
            from ..feeds.hub_client import Hub
            return Hub(symbols)
        if source == "sim":
            from ..feeds.binance import BinanceFutures
            ws, rest = self.sim_ws_url, self.sim_rest_url
            if not ws:
                sim = await self._start_own_sim(symbols)
                ws, rest = sim.ws_url, sim.rest_url
            return BinanceFutures(symbols, ws_url=ws, rest_url=rest)  # labelled by its venue
        raise QdashError(f"unknown source {source!r}: use sim, binance, hub or store")

    async def _start_own_sim(self, symbols: list[str]):
        from ..sim.exchange import DEMO_WEIGHT_LIMIT, SimExchange

        if self.own_sim is None:
            self.own_sim = SimExchange(symbols, rate=self.sim_rate,
                                       weight_limit=DEMO_WEIGHT_LIMIT)
            await self.own_sim.start()
        return self.own_sim

    @property
    def clock(self) -> Callable[[], int] | None:
        """The exchange clock (ms) of the simulator started here; None: the wall clock."""
        return self.own_sim.now_ms if self.own_sim is not None else None

    async def close(self) -> None:
        """Stop the simulator started here, if any."""
        if self.own_sim is not None:
            sim, self.own_sim = self.own_sim, None
            await sim.stop()
