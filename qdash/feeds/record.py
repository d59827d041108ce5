"""Recording live ticks into the Store, and the ``qdash record`` command.

:class:`Recorder` drains a feed subscription whole at every wake-up and writes it with one
``Store.write_ticks`` call in a worker thread (``asyncio.to_thread``), so SQLite never blocks the
event loop and writes never fall behind by more than one batch per commit. On ``stop()`` it
writes everything still buffered: what the feed received is stored.

Restart without holes: a Recorder created before its feed starts resumes each symbol after its
last stored trade of the feed's source (:func:`stored_positions`, :meth:`BinanceFutures.resume`):
the outage — a crash, a ``kill -9``, a reboot — is backfilled over REST while the stream's ticks
wait, up to the feed's ``resume_horizon``; an older last trade is reported and left alone.

``qdash record SYMBOLS [--db DB] [--stream trade|aggTrade] [--ws-url URL] [--rest-url URL]
[--duration SECONDS] [--resume-horizon SECONDS]`` runs a
:class:`~qdash.feeds.binance.BinanceFutures` feed and a Recorder until Ctrl-C (or the duration),
with a one-line live status on stderr and a summary on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time

import pandas as pd

from ..errors import StoreError
from ..store import Store, default_db_path
from .base import TickFeed
from .binance import DEFAULT_REST_URL, DEFAULT_RESUME_HORIZON_S, DEFAULT_WS_URL, BinanceFutures

log = logging.getLogger(__name__)

RECORDER_MAXSIZE = 50_000_000  # ticks buffered before the recorder must drop (it logs an error)


class Recorder:
    """Writes every tick batch of ``feed`` into ``store``, off the loop, in arrival order.

    Counters: ``received`` (ticks taken from the feed), ``stored`` (new rows), ``duplicates``
    (rows already in the store), ``writes`` (transactions), ``failed`` (ticks a write could not
    store after retries; logged as errors). With ``resume`` (default) and a feed that can resume
    (``feed.resumable``) and has not started, the feed continues after the stored trades
    (``resumed_from``: symbol → (trade id, ts ms)).
    """

    def __init__(self, feed: TickFeed, store: Store, *, retries: int = 3, resume: bool = True):
        self.feed, self.store, self.retries = feed, store, retries
        self.sub = feed.batches(RECORDER_MAXSIZE)
        self.sub.name = "recorder"
        self.received = self.stored = self.duplicates = self.writes = self.failed = 0
        self.resumed_from: dict[str, tuple[int, int]] = {}
        self._task: asyncio.Task | None = None
        if resume and feed.resumable and not feed.running:
            self.resumed_from = feed.resume(stored_positions(store, feed.symbols, feed.source))

    def start(self) -> Recorder:
        """Start writing on the running loop; returns at once."""
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def _run(self) -> None:
        while await self.sub.wait():
            batch = self.sub.drain()
            if batch is None:
                continue
            self.received += len(batch)
            for attempt in range(self.retries + 1):
                try:
                    res = await asyncio.to_thread(self.store.write_ticks, batch)
                except StoreError as e:
                    if attempt == self.retries:
                        self.failed += len(batch)
                        log.error("recorder: %d ticks could not be stored: %s", len(batch), e)
                    else:
                        await asyncio.sleep(0.5 * (attempt + 1))
                    continue
                self.stored += res.stored
                self.duplicates += res.duplicates
                self.writes += 1
                break

    @property
    def dropped(self) -> int:
        """Ticks the recorder's buffer had to drop (0 unless the disk cannot keep up)."""
        return self.sub.dropped_ticks

    async def stop(self) -> None:
        """Write everything buffered, then end (stop the feed first to include its last ticks)."""
        self.feed.unsubscribe_batches(self.sub)
        if self._task is not None:
            await self._task
            self._task = None


def stored_positions(store: Store, symbols, source: str) -> dict[str, tuple[int, int]]:
    """The last stored exchange trade ``(trade_id, ts ms)`` of each symbol among ticks whose
    source is ``source`` or ``source:...`` (its REST backfills); symbols without one are absent.
    Reads the newest end of the ``(symbol, ts, trade_id)`` key, so it costs a few page reads."""
    conn = store.connection()
    prefix = source + ":"
    out = {}
    for sym in symbols:
        row = conn.execute(
            "SELECT trade_id, ts FROM tick_data WHERE symbol = ? AND trade_id >= 0 "
            "AND (source = ? OR substr(source, 1, ?) = ?) ORDER BY ts DESC, trade_id DESC "
            "LIMIT 1", (sym, source, len(prefix), prefix)).fetchone()
        if row is not None:
            out[sym] = (int(row[0]), int(row[1]))
    return out


def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``qdash record``."""
    parser.add_argument("symbols", help="comma- or space-separated symbols, e.g. BTCUSDT,ETHUSDT",
                        nargs="+")
    parser.add_argument("--db", default=None, help="SQLite store (default $QDASH_DB or qdash.db)")
    parser.add_argument("--stream", choices=("trade", "aggTrade"), default="trade",
                        help="@trade on /public (default) or @aggTrade on /market; aggTrade "
                             "ticks carry aggregate ids, so give them a store of their own")
    parser.add_argument("--ws-url", default=DEFAULT_WS_URL, help=f"default {DEFAULT_WS_URL}")
    parser.add_argument("--rest-url", default=DEFAULT_REST_URL,
                        help=f"default {DEFAULT_REST_URL}")
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--stale-timeout", type=float, default=30.0,
                        help="reconnect when a stream is silent this long (s)")
    parser.add_argument("--resume-horizon", type=float, default=DEFAULT_RESUME_HORIZON_S,
                        help="on start, backfill over REST the outage since each symbol's last "
                             "stored trade when it is at most this old (s; default "
                             f"{DEFAULT_RESUME_HORIZON_S:.0f}; 0: start from the live stream)")


def run_record(args: argparse.Namespace) -> int:
    """``qdash record``: returns 0 when everything received was stored, else 1."""
    symbols = [s for part in args.symbols for s in part.replace(",", " ").split() if s]
    return asyncio.run(_record(symbols, args))


def _status(feed: BinanceFutures, rec: Recorder) -> str:
    st = feed.stats()
    lags = " ".join(f"{s}:{v['lag_ms']:.0f}ms" if v["lag_ms"] is not None else f"{s}:-"
                    for s, v in list(st["symbols"].items())[:4])
    return (f"{st['ticks_per_s']:7.0f} ticks/s | {rec.received} received, {rec.stored} stored | "
            f"lag {lags} | reconnects {st['reconnects']} | gaps {st['gaps_filled']}/"
            f"{st['gaps_found']}")


async def _record(symbols: list[str], args: argparse.Namespace) -> int:
    db = args.db or default_db_path()
    store = Store(db, synchronous="NORMAL")
    feed = BinanceFutures(symbols, stream=args.stream, ws_url=args.ws_url,
                          rest_url=args.rest_url, stale_timeout=args.stale_timeout,
                          resume_horizon=args.resume_horizon,
                          source="binance" if args.stream == "trade" else "binance-agg")
    rec = Recorder(feed, store, resume=args.resume_horizon > 0)
    for sym, (tid, ts) in rec.resumed_from.items():
        print(f"{sym}: resuming after stored trade {tid} "
              f"({pd.Timestamp(ts, unit='ms', tz='UTC'):%Y-%m-%d %H:%M:%S} UTC)",
              file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    t0 = time.monotonic()
    feed.start()
    rec.start()
    tty = sys.stderr.isatty()
    last_line = 0.0
    try:
        while not stop.is_set():
            timeout = 1.0
            if args.duration is not None:
                timeout = min(timeout, max(0.0, t0 + args.duration - time.monotonic()))
            try:
                await asyncio.wait_for(stop.wait(), timeout)
            except TimeoutError:
                pass
            if args.duration is not None and time.monotonic() - t0 >= args.duration:
                break
            if tty:
                print("\r" + _status(feed, rec), end="", file=sys.stderr, flush=True)
            elif time.monotonic() - last_line >= 10:
                print(_status(feed, rec), file=sys.stderr, flush=True)
                last_line = time.monotonic()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await feed.stop()
        await rec.stop()
        store.close()
    if tty:
        print(file=sys.stderr)
    st = feed.stats()
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(st["dropped"].items())) or "none"
    print(f"recorded {rec.received} ticks of {','.join(feed.symbols)} in "
          f"{time.monotonic() - t0:.1f}s into {db}: {rec.stored} new, {rec.duplicates} already "
          f"stored, {rec.failed + rec.dropped} lost; reconnects {st['reconnects']}, gaps "
          f"{st['gaps_filled']}/{st['gaps_found']} filled ({st['backfilled_ticks']} ticks "
          f"backfilled, {st['resumed']} symbols resumed from the store); frames not stored: "
          f"{dropped}")
    return 0 if rec.failed + rec.dropped == 0 else 1


def main(argv=None) -> int:
    """``python -m qdash.feeds.record`` (the same as ``qdash record``)."""
    parser = argparse.ArgumentParser(prog="qdash record", description=__doc__.split("\n\n")[0])
    add_record_arguments(parser)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_record(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
