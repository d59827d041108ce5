"""``Backoff``: THE exponential backoff with jitter of qdash (WebSocket reconnects, REST retries).

A plain value object with an injectable ``rng``, so loops that use it stay deterministic in tests.
Times are seconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Exponential backoff with jitter: :meth:`next` returns ``step × U(½, 1)`` and doubles the
    step up to ``maximum``; :meth:`reset` starts again at ``initial`` (seconds)."""

    initial: float
    maximum: float
    rng: Callable[[], float] = random.random
    step: float = field(init=False)

    def __post_init__(self):
        self.step = self.initial

    def next(self) -> float:
        wait = self.step * (0.5 + 0.5 * self.rng())
        self.step = min(self.step * 2, self.maximum)
        return wait

    def reset(self) -> None:
        self.step = self.initial
