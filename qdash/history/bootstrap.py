"""The history a live session starts from, and the seam where the live stream takes over.

:func:`bootstrap_history` fetches, for every watched symbol, the last ``bars`` closed bars at the
session's timeframe and its recent funding over REST into the store (:func:`qdash.history.fetch`,
one shared :class:`~qdash.binance.rest.RestClient`: one weight budget), and reads them back:

* Timeframes that are Binance kline intervals (1m, 5m, 1h, ...): klines. Only klines that closed
  before the **seam** are asked for: ``seam_ms`` is the open time of the kline forming at fetch
  time, the first bar the live stream builds.
* Timeframes under a minute (Binance has no 1s klines on USDⓈ-M futures): aggregate trades
  resampled, one tick per underlying trade (as ``qdash fetch --kind aggTrades`` stores them). The
  seam is the last whole bar at least ``AGG_SETTLE_MS`` old (younger trades may not be published
  yet). aggTrades cost weight 20 a page of 1,000, so the span is cut to what
  :data:`AGG_BUDGET_WEIGHT` buys, estimated from the trade counts of the 1-minute klines; the
  result says so in ``notes``.
* Other timeframes (e.g. 2m): no history, a note says why.

Seamless continuation: ``resume`` holds, per symbol, the position just before the first trade at
or after the seam (``(trade id, ms)``, aggregate ids for an ``@aggTrade`` stream; for trades
fetched up to the seam, simply the last one fetched) for
:meth:`BinanceFutures.resume <qdash.feeds.binance.BinanceFutures.resume>`: the feed backfills
from there to the stream's first tick, so the forming bar gets every trade since the seam, and
bars before the seam come from REST only (the session seals its bar builders there). No open time
appears twice and none is skipped.

Times are int ms UTC; symbols upper case. Blocking (HTTP, SQLite): call it in a worker thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from ..bars import empty_bars, resample
from ..binance import pages as bp
from ..binance.limits import (
    AGG_TRADES,
    AGG_TRADES_LIMIT,
    FIXED_INTERVALS,
    FIXED_WEIGHTS,
    KLINE_MAX_LIMIT,
)
from ..binance.rest import RestClient
from ..binance.schema import kline_frame
from ..model import timeframe_ms, timeframe_name, venue_source
from ..store import Store
from .fetch import fetch
from .rest_pages import AGG_SETTLE_MS, AGG_SOURCE

log = logging.getLogger(__name__)

MAX_KLINE_BARS = 10_000   # klines: 7 pages of 1,500 (weight 70) per symbol at most
MAX_TRADE_BARS = 5_000    # sub-minute bars from aggTrades: 83 minutes of 1 s bars at most
AGG_BUDGET_WEIGHT = 1_200  # weight all aggTrades pages of one bootstrap may use (half a minute's)
AGG_WEIGHT = FIXED_WEIGHTS[AGG_TRADES]  # weight of one aggTrades request
FUNDING_LOOKBACK_MS = 7 * 86_400_000  # funding fetched at least this far back
MINUTE_MS = 60_000


@dataclass
class History:
    """What :func:`bootstrap_history` fetched.

    ``bars``: symbol → closed candles (index ``open_time`` UTC, every one opening before
    ``seam_ms``); ``funding``: symbol → :meth:`Store.funding` frame; ``resume``: symbol →
    ``(id, ts ms)`` to resume the feed after; ``notes``: why history is shorter than asked or
    missing; ``rest``: the REST client's counters; ``seconds``: wall time.
    """

    timeframe: str
    seam_ms: int
    start_ms: int
    bars: dict[str, pd.DataFrame] = field(default_factory=dict)
    funding: dict[str, pd.DataFrame] = field(default_factory=dict)
    resume: dict[str, tuple[int, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rest: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def source(self) -> str:
        """``"klines"``, ``"aggTrades"`` or ``""`` (no bar history)."""
        name = self.timeframe
        return "klines" if name in FIXED_INTERVALS else "aggTrades" if _sub_minute(name) else ""


def bars_needed(config, timeframe) -> int:
    """Bars of history a pair needs: its largest window (``beta_window + z_window``,
    ``corr_window``, the refresh ``window``), capped at :data:`MAX_KLINE_BARS`
    (:data:`MAX_TRADE_BARS` under a minute) but never below the signal's warm-up plus one."""
    want = max(config.beta_window + config.z_window, config.corr_window, config.window)
    cap = MAX_TRADE_BARS if _sub_minute(timeframe_name(timeframe)) else MAX_KLINE_BARS
    return max(min(want, cap), config.warmup_bars + 1)


def _sub_minute(name: str) -> bool:
    ms = timeframe_ms(name)
    return ms < MINUTE_MS and MINUTE_MS % ms == 0


def bootstrap_history(symbols: list[str], timeframe: str | int, bars: int, store: Store,
                      client: RestClient, *, stream: str = "trade", funding: bool = True,
                      resume_horizon_s: float | None = None,
                      progress: Callable[[str], None] | None = None,
                      now_ms: int | None = None) -> History:
    """Fetch and read back the history of ``symbols`` (see the module docstring).

    ``bars``: closed bars wanted per symbol; ``stream``: the live feed's stream (``trade`` or
    ``aggTrade``: which id the resume positions carry); ``resume_horizon_s``: the feed's horizon
    (a seam older than it gets no resume position: the forming bar then starts with the first live
    trade, and a note says so); ``progress(text)`` is called at each phase (from this thread).
    Raises :class:`~qdash.history.FetchError` / :class:`~qdash.binance.rest.RestError` when REST
    fails.
    """
    t0 = time.perf_counter()
    say = progress or (lambda text: None)
    name = timeframe_name(timeframe)
    tf = timeframe_ms(name)
    now = int(time.time() * 1000) if now_ms is None else int(now_ms)
    symbols = list(dict.fromkeys(s.upper() for s in symbols))
    hist = History(name, now // tf * tf, now // tf * tf)
    kind = hist.source
    if kind == "klines":
        hist.start_ms = hist.seam_ms - bars * tf
        say(f"history: {bars:,} {name} klines of {', '.join(symbols)}…")
        fetch(symbols, "klines", name, hist.start_ms, hist.seam_ms, store, client=client,
              progress=False)
        for s in symbols:
            hist.bars[s] = store.bars(s, name, hist.start_ms, hist.seam_ms)
    elif kind == "aggTrades":
        hist.seam_ms = (now - AGG_SETTLE_MS) // tf * tf
        hist.start_ms = _affordable_start(client, symbols, hist.seam_ms - bars * tf,
                                          hist.seam_ms, tf, hist.notes)
        n = (hist.seam_ms - hist.start_ms) // tf
        say(f"history: trades of the last {n:,} {name} bars of {', '.join(symbols)}…")
        fetch(symbols, "aggTrades", None, hist.start_ms, hist.seam_ms, store, client=client,
              progress=False)
        for s in symbols:
            ticks = store.ticks(s, hist.start_ms, hist.seam_ms)
            fetched = venue_source(AGG_SOURCE, client.venue())
            ticks = ticks[ticks["source"].to_numpy() == fetched]
            hist.bars[s] = resample(ticks, tf) if len(ticks) else empty_bars()
            if len(ticks) and stream == "trade":  # the feed resumes after the last one fetched
                hist.resume[s] = (int(ticks["trade_id"].iloc[-1]), int(ticks["ts"].iloc[-1]))
    else:
        hist.notes.append(f"no history for {name} bars: Binance klines come in "
                          f"{', '.join(FIXED_INTERVALS)}, and trades are resampled only for "
                          "bars that divide a minute")
        say(hist.notes[-1])
    if funding:
        say(f"history: funding of {', '.join(symbols)}…")
        f_start = min(hist.start_ms, now - FUNDING_LOOKBACK_MS)
        fetch(symbols, "funding", None, f_start, now, store, client=client, progress=False)
        hist.funding = {s: store.funding(s, f_start, now + 1) for s in symbols}
    if kind:
        if resume_horizon_s is not None and now - hist.seam_ms > resume_horizon_s * 1000:
            hist.notes.append(f"the forming {name} bar starts with the first live trade: its "
                              "start is older than the feed's resume horizon")
        else:
            todo = [s for s in symbols if s not in hist.resume]
            if todo:
                say("history: where the live stream takes over…")
            hist.resume.update({s: p for s in todo if (p := resume_position(
                client, s, hist.seam_ms, stream)) is not None})
    hist.rest = client.stats()
    hist.seconds = time.perf_counter() - t0
    return hist


def _affordable_start(client: RestClient, symbols: list[str], start: int, seam: int, tf: int,
                      notes: list[str]) -> int:
    """The earliest start ≥ ``start`` whose trades (estimated from the 1-minute klines' trade
    counts, an upper bound on aggregates) fit :data:`AGG_BUDGET_WEIGHT` across ``symbols``."""
    per_symbol = AGG_BUDGET_WEIGHT / len(symbols) / AGG_WEIGHT * AGG_TRADES_LIMIT
    first_min = start // MINUTE_MS * MINUTE_MS
    minutes = (seam - first_min) // MINUTE_MS + 1
    out = start
    for s in symbols:
        bars = kline_frame(client.get(*bp.query_klines(s, "1m", first_min, seam,
                                                        min(KLINE_MAX_LIMIT, minutes))))
        counts = list(zip(bars.index.tolist(), bars["trades"].tolist(), strict=True))
        total = 0
        for t, n in reversed(counts):  # newest minute first
            total += n
            if total > per_symbol:
                cut = min(seam, t + MINUTE_MS)
                cut = -(-cut // tf) * tf
                if cut > out:
                    out = cut
                    rate = sum(n for _, n in counts) / max(1, len(counts))
                    notes.append(
                        f"{s} trades about {rate:,.0f} times a minute: {(seam - cut) // tf:,} "
                        f"of {(seam - start) // tf:,} bars of history fit the REST budget "
                        f"({AGG_BUDGET_WEIGHT:,} weight of aggTrades pages)")
                break
    return out


def resume_position(client: RestClient, symbol: str, seam_ms: int,
                    stream: str = "trade") -> tuple[int, int] | None:
    """``(id, ts)`` just before ``symbol``'s first trade at or after ``seam_ms`` (trade ids for
    a ``trade`` stream, aggregate ids for ``aggTrade``); None when it has never traded."""
    first = client.get(*bp.query_agg_trades_at(symbol, seam_ms))
    if first:
        r = first[0]
        return (int(r["f"] if stream == "trade" else r["a"]) - 1,
                min(seam_ms, int(r["T"])) - 1)
    last = client.get(*bp.query_last_agg_trade(symbol))
    if not last:
        return None
    r = last[0]
    if int(r["T"]) < seam_ms:  # nothing since the seam: resume after the last trade
        return int(r["l"] if stream == "trade" else r["a"]), int(r["T"])
    return int(r["f"] if stream == "trade" else r["a"]) - 1, seam_ms - 1


__all__ = ["History", "bars_needed", "bootstrap_history", "resume_position",
           "MAX_KLINE_BARS", "MAX_TRADE_BARS", "AGG_BUDGET_WEIGHT"]

