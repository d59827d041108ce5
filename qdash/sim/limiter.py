"""Binance's REST request-weight limit per IP, as the simulated exchange enforces it.

Each request costs its endpoint's weight in the current wall-clock minute (UTC minutes since the
epoch, as ``X-MBX-USED-WEIGHT-1M`` counts them). A request that would take an IP over ``limit``
is refused with 429 and a ``Retry-After`` to the next minute; another request from that IP
before the Retry-After has passed earns 418, a ban of ``ban_seconds``, and every request during
a ban is refused with 418 and the seconds left. Refused requests cost nothing.
"""

from __future__ import annotations

import collections
import time
from typing import NamedTuple


class Refusal(NamedTuple):
    """Why a request is not served: HTTP ``status`` (429 or 418), ``retry_after`` in whole
    seconds, and the IP's ``used`` weight this minute."""

    status: int
    retry_after: int
    used: int


class WeightLimiter:
    """The weight an IP used this minute, and the verdict on its next request."""

    def __init__(self, limit: int = 2400, ban_seconds: int = 120):
        self.limit, self.ban_seconds = limit, ban_seconds
        self._weights: collections.Counter[tuple[str, int]] = collections.Counter()
        self._retry_until: dict[str, float] = {}  # ip → wall time (s) its 429 expires
        self._ban_until: dict[str, float] = {}    # ip → wall time (s) its 418 ban ends
        self._forced: list[tuple[int, int]] = []  # (status, retry_after) to answer next

    def used(self, ip: str) -> int:
        """Weight ``ip`` used in the current minute."""
        return self._weights[(ip, int(time.time() // 60))]

    def admit(self, ip: str, weight: int) -> Refusal | None:
        """None when ``ip`` may be served (its ``weight`` is then counted), else the refusal."""
        now = time.time()
        minute = int(now // 60)
        used = self._weights[(ip, minute)]
        if self._forced:
            status, retry = self._forced.pop(0)
            return Refusal(status, retry, used)
        if self._ban_until.get(ip, 0) > now:
            return Refusal(418, int(self._ban_until[ip] - now) + 1, used)
        if self._retry_until.get(ip, 0) > now:
            self._ban_until[ip] = now + self.ban_seconds
            return Refusal(418, self.ban_seconds, used)
        if used + weight > self.limit:
            retry = int((minute + 1) * 60 - now) + 1
            self._retry_until[ip] = now + retry
            return Refusal(429, retry, used)
        self._weights[(ip, minute)] = used + weight
        return None

    def force(self, n: int, status: int, retry_after: int) -> None:
        """Refuse the next ``n`` requests, whatever their weight, with ``status`` and
        ``retry_after`` seconds (fault injection)."""
        self._forced += [(status, retry_after)] * n


class OrderCounter:
    """Binance's order-count limits per account: ``limits`` as (orders, window ms) pairs,
    counted over sliding windows of wall-clock time. :meth:`admit` counts ``n`` new orders and
    returns the counts per window, or the (limit, window index, seconds to wait) that refuses
    them (refused orders are not counted)."""

    def __init__(self, limits: tuple[tuple[int, int], ...]):
        self.limits = limits
        self._times: dict[str, collections.deque] = collections.defaultdict(collections.deque)

    def admit(self, account: str, n: int = 1,
              now_ms: int | None = None) -> tuple[list[int], tuple[int, int, int] | None]:
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        times = self._times[account]
        longest = max(w for _, w in self.limits)
        while times and times[0] <= now - longest:
            times.popleft()
        counts = []
        for i, (limit, window) in enumerate(self.limits):
            inside = [t for t in times if t > now - window]
            if len(inside) + n > limit:
                k = min(len(inside) + n - limit, len(inside)) - 1
                wait_ms = inside[k] + window - now if k >= 0 else window
                return [len(x) for x in ([t for t in times if t > now - w]
                                         for _, w in self.limits)], (limit, i,
                                                                     wait_ms // 1000 + 1)
            counts.append(len(inside) + n)
        times.extend([now] * n)
        return counts, None
