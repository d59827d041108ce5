"""Order latency of the simulated exchange: how long an order waits before it is accepted and
matched (``qdash sim --order-latency-ms SPEC``).

``SPEC`` (milliseconds): ``"5"`` a fixed delay; ``"uniform:2:10"`` uniform between 2 and 10;
``"lognormal:5:0.5"`` lognormal with median 5 and log-sd 0.5 (a long right tail, as measured
order latencies have); ``"0"`` (the default) none. Draws are seeded, so a run repeats.
"""

from __future__ import annotations

import random


class Latency:
    """A latency distribution (see the module doc); :meth:`draw` returns seconds."""

    def __init__(self, spec: str | float = 0, seed: int = 0):
        self.spec = str(spec)
        parts = self.spec.split(":")
        try:
            if len(parts) == 1:
                self.kind, self.args = "fixed", (float(parts[0]),)
            elif parts[0] in ("uniform", "lognormal") and len(parts) == 3:
                self.kind, self.args = parts[0], (float(parts[1]), float(parts[2]))
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f"order latency {self.spec!r}: expected MS, uniform:LO:HI or "
                             "lognormal:MEDIAN:SIGMA (milliseconds)") from None
        if min(self.args) < 0:
            raise ValueError(f"order latency {self.spec!r}: negative milliseconds")
        self.rng = random.Random(seed)

    def draw(self) -> float:
        """One delay in seconds."""
        a = self.args
        if self.kind == "fixed":
            ms = a[0]
        elif self.kind == "uniform":
            ms = self.rng.uniform(a[0], a[1])
        else:
            ms = a[0] * self.rng.lognormvariate(0.0, a[1])
        return ms / 1000.0
