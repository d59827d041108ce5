"""``Sequencer``: exactly once, in id order, per symbol — pure logic, no sockets, no clocks.

A live trade stream can deliver frames twice (a rotation overlap, a replay after a reconnect), out
of order, or not at all (an outage). The sequencer turns decoded tick batches into a stream that
is, per symbol, in trade-id order with every id at most once, and says when ids are missing:

* ids at or below the last delivered id of the symbol are dropped (counted in ``duplicates``);
* ids consumed by frames that make no tick (Binance ``NA`` and ``INSURANCE_FUND`` trades) are
  passed as ``other`` ids: they count as seen, so they are not gaps;
* when ids jump, the ticks before the hole are delivered, the rest are **held**, and a
  :class:`Gap` (ids ``lo..hi``, trade times around it) is returned for the caller to fill — from
  late frames (:meth:`Sequencer.missing` tells how many ids are still absent) or from REST — and
  settle with :meth:`Sequencer.settle`, which delivers the hole's ticks and what was held;
* a symbol may be **resumed** from a stored position (:meth:`Sequencer.add` with ``last_id`` and
  ``last_ts``): its first ticks then open a gap from the stored trade to the stream, which the
  caller backfills. The resume point is checked against the first ticks: a stream whose ids do not
  continue the stored ones (an id at or below the stored one but a later trade time, or the
  reverse — a restarted simulator, another exchange) drops the resume point instead of
  discarding the stream as duplicates.

Ids are int64 trade ids (or aggregate ids for an ``@aggTrade`` stream: one id space per
sequencer); times are int64 ms UTC; the only clock is the ``now_ms`` argument, used as the upper
time bound of a gap after which no tick has arrived yet.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..model import tick_frame

log = logging.getLogger(__name__)

_NO_ID = -2**62


@dataclass(frozen=True)
class Gap:
    """Missing ids ``lo..hi`` (inclusive) of ``symbol``; ``t_before``/``t_after`` (ms) bound the
    trade times of the missing trades (the last tick delivered, the first tick held or the arrival
    time when nothing is held)."""

    symbol: str
    lo: int
    hi: int
    t_before: int
    t_after: int

    @property
    def size(self) -> int:
        return self.hi - self.lo + 1


@dataclass(eq=False)
class _State:
    last_id: int | None = None  # ids up to here are delivered or known non-market
    last_ts: int | None = None
    resumed: bool = False  # last_id came from a store and is not yet confirmed by the stream
    held: list = field(default_factory=list)  # DataFrames waiting behind the gap
    held_other: list = field(default_factory=list)
    gap: Gap | None = None


class Sequencer:
    """Per-symbol ordering, de-duplication and gap holding (see the module docstring).

    ``source`` names the empty batches it returns; with ``fill_gaps=False`` holes are accepted as
    they are (ids jump, nothing is held). Counters: ``duplicates``, ``gaps_found``,
    ``resumes_dropped``.
    """

    def __init__(self, source: str = "binance", *, fill_gaps: bool = True):
        self.source = source
        self.fill_gaps = fill_gaps
        self._states: dict[str, _State] = {}
        self.duplicates = 0
        self.gaps_found = 0
        self.resumes_dropped = 0

    # --- symbols -----------------------------------------------------------------------------
    @property
    def symbols(self) -> list[str]:
        return list(self._states)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._states

    def add(self, symbol: str, last_id: int | None = None, last_ts: int | None = None) -> None:
        """Track ``symbol``; with ``last_id``/``last_ts``, resume after that stored trade."""
        st = self._states.setdefault(symbol, _State())
        if last_id is not None and st.last_id is None:
            st.last_id, st.last_ts, st.resumed = int(last_id), last_ts, True

    def remove(self, symbol: str) -> None:
        """Stop tracking ``symbol``; its held ticks are discarded."""
        self._states.pop(symbol, None)

    def last_id(self, symbol: str) -> int | None:
        st = self._states.get(symbol)
        return None if st is None else st.last_id

    def gap(self, symbol: str) -> Gap | None:
        """The open gap of ``symbol`` (None when nothing is held)."""
        st = self._states.get(symbol)
        return None if st is None else st.gap

    # --- ticks -----------------------------------------------------------------------------------
    def accept(self, symbol: str, ticks: pd.DataFrame | None, other: Sequence[int] = (),
               now_ms: int = 0) -> tuple[pd.DataFrame, Gap | None]:
        """Take one symbol's decoded ticks (any order) and ids of its non-market frames; return
        the ticks ready to deliver (id order) and the gap this batch opened, if any."""
        st = self._states.get(symbol)
        if ticks is None:
            ticks = self._empty()
        if st is None:
            return self._empty(), None
        if st.resumed and len(ticks):
            self._check_resume(symbol, st, ticks)
        floor = st.last_id if st.last_id is not None else _NO_ID
        n0 = len(ticks)
        ticks = ticks[ticks["trade_id"].to_numpy() > floor].drop_duplicates("trade_id")
        self.duplicates += n0 - len(ticks)
        other = [int(i) for i in other if i > floor]
        if st.gap is not None:
            st.held.append(ticks)
            st.held_other += other
            return self._empty(), None
        return self._advance(symbol, st, ticks, other, now_ms)

    def missing(self, gap: Gap) -> int:
        """Ids of ``gap`` that no held frame has brought (0: late frames closed it)."""
        st = self._states.get(gap.symbol)
        if st is None or st.gap != gap:
            return 0
        have = np.concatenate([np.asarray(st.held_other, dtype=np.int64)]
                              + [h["trade_id"].to_numpy() for h in st.held])
        have = np.unique(have[(have >= gap.lo) & (have <= gap.hi)])
        return gap.size - len(have)

    def settle(self, gap: Gap, filled: pd.DataFrame | None,
               now_ms: int = 0) -> tuple[pd.DataFrame, Gap | None]:
        """Close ``gap`` with the ticks ``filled`` from elsewhere (REST; None when it could not be
        filled: the hole is then accepted). Stream ticks win over filled ones with the same id.
        Returns the ticks now ready (the hole's, then what was held, up to any next hole) and the
        next gap, if the held ticks have one."""
        st = self._states.get(gap.symbol)
        if st is None or st.gap != gap:
            return self._empty(), None
        parts = [h for h in st.held if len(h)] + ([filled] if filled is not None else [])
        other = [i for i in st.held_other if i > gap.hi]
        st.held, st.held_other, st.gap = [], [], None
        df = pd.concat(parts, ignore_index=True) if parts else self._empty()
        df = df[df["trade_id"].to_numpy() > st.last_id].drop_duplicates("trade_id")
        df = df.sort_values("trade_id", kind="stable")
        ids = df["trade_id"].to_numpy()
        inside, rest = df[ids <= gap.hi], df[ids > gap.hi]
        st.last_id = gap.hi  # the hole is settled: what REST did not have does not exist
        if len(inside):
            st.last_ts = int(inside["ts"].iloc[-1])
        ready, nxt = self._advance(gap.symbol, st, rest, other, now_ms)
        return _concat([inside, ready], self._empty), nxt

    def release_all(self) -> list[pd.DataFrame]:
        """Every held tick, past its unfilled gap (at shutdown: received ticks are not lost)."""
        out = []
        for st in self._states.values():
            if st.gap is None:
                continue
            df = _concat(st.held, self._empty)
            df = df[df["trade_id"].to_numpy() > st.last_id].drop_duplicates("trade_id")
            df = df.sort_values("trade_id", kind="stable")
            st.held, st.held_other, st.gap = [], [], None
            if len(df):
                st.last_id, st.last_ts = int(df["trade_id"].iloc[-1]), int(df["ts"].iloc[-1])
                out.append(df)
        return out

    # --- internals -------------------------------------------------------------------------------
    def _empty(self) -> pd.DataFrame:
        return tick_frame([], [], [], [], [], [], self.source)

    def _check_resume(self, symbol: str, st: _State, ticks: pd.DataFrame) -> None:
        st.resumed = False
        if st.last_ts is None:
            return
        ids, ts = ticks["trade_id"].to_numpy(), ticks["ts"].to_numpy()
        older_id_later_time = (ids <= st.last_id) & (ts > st.last_ts)
        newer_id_earlier_time = (ids > st.last_id) & (ts < st.last_ts)
        if older_id_later_time.any() or newer_id_earlier_time.any():
            self.resumes_dropped += 1
            log.warning("%s: the stream's trade ids do not continue the stored ones (stored "
                        "up to id %d at %d ms, stream id %d at %d ms): not resuming from the "
                        "store", symbol, st.last_id, st.last_ts, int(ids[0]), int(ts[0]))
            st.last_id = st.last_ts = None

    def _advance(self, symbol: str, st: _State, df: pd.DataFrame,
                 other: list[int], now_ms: int) -> tuple[pd.DataFrame, Gap | None]:
        """Deliver ``df`` (ids above ``last_id``) up to the first hole; hold the rest."""
        df = df.sort_values("trade_id", kind="stable")
        ids = df["trade_id"].to_numpy()
        all_ids = np.union1d(ids, np.asarray(other, dtype=np.int64))
        if len(all_ids) == 0:
            return df, None
        if st.last_id is None:
            st.last_id = int(all_ids[0]) - 1
        expected = st.last_id + 1 + np.arange(len(all_ids))
        breaks = np.flatnonzero(all_ids != expected)
        if len(breaks) == 0 or not self.fill_gaps:
            st.last_id = int(all_ids[-1])
            if len(df):
                st.last_ts = int(df["ts"].iloc[-1])
            return df, None
        k = int(breaks[0])
        lo, hi = st.last_id + 1 + k, int(all_ids[k]) - 1
        ready, later = df[ids < lo], df[ids > hi]
        if len(ready):
            st.last_ts = int(ready["ts"].iloc[-1])
        st.last_id = lo - 1
        t_after = int(later["ts"].iloc[0]) if len(later) else int(now_ms)
        t_before = st.last_ts if st.last_ts is not None else t_after - 60_000
        st.held, st.held_other = [later], [i for i in other if i > hi]
        st.gap = Gap(symbol, lo, hi, t_before, t_after)
        self.gaps_found += 1
        return ready, st.gap


def _concat(parts: list[pd.DataFrame], empty) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty()
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
