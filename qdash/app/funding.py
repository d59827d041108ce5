"""Each leg's funding (Binance's premiumIndex: funding rate, next funding time, mark and index
price), polled over REST in a worker thread every :data:`FUNDING_EVERY_S` seconds."""

from __future__ import annotations

import asyncio

from ..binance.pages import query_premium_index
from ..periodic import PeriodicTask

FUNDING_EVERY_S = 5.0


class FundingPoller:
    """The last premiumIndex of each leg (``premium``: symbol → the endpoint's JSON object, None
    until the first answer; None before :meth:`start`) and why the last poll failed
    (``error``)."""

    def __init__(self, every_s: float = FUNDING_EVERY_S):
        self.every_s = every_s
        self.premium: dict[str, dict | None] | None = None
        self.error: str | None = None
        self._task: PeriodicTask | None = None

    def start(self, rest_url: str | None, legs) -> None:
        """Poll ``legs`` at ``rest_url`` from now on (without a URL: say there is none)."""
        from ..binance.rest import RestClient

        self.stop()
        self.premium = {sym: None for sym in legs}
        self.error = None if rest_url else "no REST source for this feed"
        if rest_url:
            client = RestClient(rest_url, retries=1, max_wait=self.every_s)
            self._task = PeriodicTask(lambda: self._poll(client), self.every_s,
                                      name="funding poll").start()

    def stop(self) -> None:
        """Stop polling; the last values stay."""
        if self._task is not None:
            self._task.stop()
            self._task = None

    async def _poll(self, client) -> None:
        legs = list(self.premium)

        def poll() -> dict:
            # the exchange's own weight limit first (once): every session of the user spends
            # from it, and a simulator's (qdash demo's) is far above Binance's default that the
            # client would otherwise hold each answer's used weight against
            client.exchange_info()
            return {sym: client.get(*query_premium_index(sym)) for sym in legs}

        try:
            got = await asyncio.to_thread(poll)
            self.premium.update(got)
            self.error = None
        except Exception as e:  # shown in the table; the next poll tries again
            self.error = f"{type(e).__name__}: {e}"
