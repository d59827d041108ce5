"""Replay of recorded ticks by the simulated exchange, in place of its market model.

The ticks (a tick DataFrame, or a path any qdash reader accepts) play in trade order at
``speed`` × real time (0 = as fast as possible, 5,000 ticks a step); trade ids and times are the
recorded ones. Wall times are ``time.monotonic()`` seconds; tick times int64 ms UTC.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FAST_STEP = 5000  # ticks a publishing step when speed is 0


def load_replay(replay, symbols: list[str] | None) -> pd.DataFrame:
    """The ticks of ``replay`` (frame or file), only ``symbols`` when given, sorted by time,
    symbol and trade id."""
    if isinstance(replay, pd.DataFrame):
        df = replay
    else:
        from ..io import read_ticks
        df = read_ticks(replay)
    df = df.reset_index(drop=True)
    if symbols:
        df = df[df["symbol"].isin([s.upper() for s in symbols])]
    return df.sort_values(["ts", "symbol", "trade_id"], kind="stable", ignore_index=True)


class Replay:
    """Where a replay stands: the ticks played so far and the clock that makes the rest due."""

    def __init__(self, ticks: pd.DataFrame, speed: float):
        self.ticks, self.speed = ticks, speed
        self.pos = 0  # ticks[:pos] are published
        self._ts = ticks["ts"].to_numpy()
        self._base_ms = int(self._ts[0]) if len(ticks) else 0  # tick time at _base_wall
        self._base_wall = 0.0

    @property
    def done(self) -> bool:
        return self.pos >= len(self.ticks)

    def restart(self, wall: float) -> None:
        """Play on from the next tick at wall time ``wall`` (start, or resume after a pause:
        the paused interval is skipped)."""
        self._base_wall = wall
        if not self.done:
            self._base_ms = int(self._ts[self.pos])

    def due(self, wall: float) -> pd.DataFrame | None:
        """The ticks due at wall time ``wall`` and not yet played (now counted as played)."""
        if self.done:
            return None
        if self.speed <= 0:
            end = min(self.pos + FAST_STEP, len(self.ticks))
        else:
            due_ms = self._base_ms + (wall - self._base_wall) * 1000.0 * self.speed
            end = int(np.searchsorted(self._ts, due_ms, side="right"))
        if end <= self.pos:
            return None
        part = self.ticks.iloc[self.pos:end]
        self.pos = end
        return part
