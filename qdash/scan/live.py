"""``LiveScanner``: the universe scan re-run on every closed bar of the live kline streams.

On :meth:`LiveScanner.start`, in a worker thread, every universe symbol's last ``lookback`` of
closed klines at the scan ``timeframe`` is fetched into the store (:func:`qdash.history.fetch`,
idempotent: what is stored already is not asked again) and read back; a first scan runs on it.
Then the universe's ``<symbol>@kline_<timeframe>`` streams are read on the **/market** route
(combined streams, at most :data:`~qdash.binance.limits.MAX_STREAMS_PER_CONNECTION` per
connection, each kept up by :class:`~qdash.feeds.connection.ConnectionLoop`). A kline with
``x == true`` is a closed bar (:func:`qdash.binance.schema.closed_kline`); once
every symbol's bar opening at ``t`` closed, or ``grace_s`` seconds after the first of them, the
scan runs again (stage 1 and stage 2 in-process, ``scheduler=None``) in a worker thread, never on
the loop; rescans asked for while one runs collapse into one. Symbols whose bars since the seam have
a hole (a lost frame, a reconnect, a symbol silent through the grace) get it from REST first; a
bar REST does not have either (no trade in it) is the last close with no volume, as Binance's
klines show an idle interval.

Each result is the :func:`qdash.scan.scan` frame (``attrs["end"]`` its last bar); it is kept in
:attr:`LiveScanner.result`, counted in :attr:`LiveScanner.scans` and passed to every
``on_result`` callback, on the loop. Times are int ms UTC, symbols upper case.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..binance.limits import MAX_STREAMS_PER_CONNECTION, STREAM_ROUTES
from ..binance.schema import closed_kline
from ..defaults import DEFAULT_TIMEFRAME, defaults_for
from ..errors import QdashError
from ..feeds.connection import ConnectionLoop
from ..model import ALL_SYMBOLS, parse_symbols, timeframe_ms, timeframe_name

log = logging.getLogger(__name__)

DEFAULT_GRACE_S = 5.0


class LiveScanner:
    """Rescan ``symbols`` (a list, or ``"all"``: every TRADING perpetual of exchangeInfo) on every
    closed ``timeframe`` bar (see the module docstring).

    ``lookback``: the scanned window (``"30d"`` or ms; None: the timeframe's, from
    :mod:`qdash.defaults`, as ``qdash scan``'s), also the history fetched at start;
    ``store``: where the history goes; ``rest_url``/``ws_url``: Binance or the simulator;
    ``grace_s``: how long after a bar's first close the rescan waits for the other symbols;
    ``scan_options``: keyword arguments of :func:`qdash.scan.scan` (``fdr``, ``min_quote_volume``,
    ...; ``scheduler`` is always None here); ``clock()``: exchange time in ms (default: the wall
    clock), which decides the history's seam; ``on_result(frame)`` / ``on_status(text, level)``:
    called on the loop.
    """

    def __init__(self, symbols, *, store, rest_url: str, ws_url: str,
                 timeframe: str = DEFAULT_TIMEFRAME, lookback: str | int | None = None,
                 grace_s: float = DEFAULT_GRACE_S,
                 scan_options: dict | None = None, clock: Callable[[], int] | None = None,
                 on_result: Callable[[pd.DataFrame], None] | None = None,
                 on_status: Callable[[str, str], None] | None = None,
                 connect=None):
        self.wanted = symbols
        self.store, self.rest_url, self.ws_url = store, rest_url, ws_url.rstrip("/")
        self.timeframe = timeframe_name(timeframe)
        self.tf_ms = timeframe_ms(self.timeframe)
        if lookback is None:
            lookback = defaults_for(self.timeframe).scan_lookback
        self.lookback_ms = timeframe_ms(lookback) if isinstance(lookback, str) else int(lookback)
        if self.lookback_ms < 100 * self.tf_ms:
            raise QdashError(f"live scan: a lookback of {lookback} holds fewer than 100 "
                             f"{self.timeframe} bars; scan over a longer lookback")
        self.grace_s = float(grace_s)
        self.scan_options = {k: v for k, v in (scan_options or {}).items() if k != "scheduler"}
        self.clock = clock or (lambda: int(time.time() * 1000))
        self.callbacks = [on_result] if on_result else []
        self.on_status = on_status or (lambda text, level: None)
        self._connect = connect
        self.symbols: list[str] = []
        self.seam_ms = 0
        self.result: pd.DataFrame | None = None
        self.scans = 0
        self.last_bar_ms: int | None = None   # open time of the last bar scanned
        self.error: str | None = None
        self.running = False
        self.closed_frames = 0
        self.connections: list[ConnectionLoop] = []
        self._hist: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._live: dict[str, dict[int, tuple[float, float]]] = {}
        self._closed: dict[int, set[str]] = {}
        self._want_ms: int | None = None
        self._scanning: asyncio.Task | None = None
        self._tasks: list[asyncio.Task] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> LiveScanner:
        """Load the history, scan, then follow the kline streams; returns at once (on the loop)."""
        if self.running:
            return self
        self.loop = asyncio.get_running_loop()
        self.running = True
        self._tasks.append(self.loop.create_task(self._run()))
        return self

    async def stop(self) -> None:
        """Close the streams and wait for a running scan to end."""
        self.running = False
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._scanning is not None:
            await asyncio.gather(self._scanning, return_exceptions=True)

    async def _run(self) -> None:
        try:
            self._say(f"scanner: loading {self.timeframe} history…", "info")
            await asyncio.to_thread(self._load_history)
            self._say(f"scanner: history of {len(self.symbols)} symbols loaded; scanning…",
                      "info")
            self._want_ms = self.seam_ms - self.tf_ms
            await self._scan_loop()
        except Exception as e:   # shown by the panel; the streams need the symbol list
            self.error = f"{type(e).__name__}: {e}" if not isinstance(e, QdashError) else str(e)
            self._say(f"scanner: {self.error}", "error")
            self.running = False
            return
        for i in range(0, len(self.symbols), MAX_STREAMS_PER_CONNECTION):
            streams = [f"{s.lower()}@kline_{self.timeframe}"
                       for s in self.symbols[i:i + MAX_STREAMS_PER_CONNECTION]]
            url = f"{self._base()}/stream?streams={'/'.join(streams)}"
            kw = {"connect": self._connect} if self._connect else {}
            conn = ConnectionLoop(f"scanner connection {i // MAX_STREAMS_PER_CONNECTION}",
                                  lambda url=url: url, self._on_message,
                                  keep_going=lambda: self.running, stale_timeout=60.0, **kw)
            self.connections.append(conn)
            self._tasks.append(self.loop.create_task(conn.run()))

    def _base(self) -> str:
        base = self.ws_url
        return base if base.endswith(("/public", "/market")) else f"{base}/{STREAM_ROUTES['kline']}"

    def _say(self, text: str, level: str) -> None:
        log.info("%s", text)
        self.on_status(text, level)

    def closes(self, symbol: str) -> pd.Series:
        """The closes of ``symbol`` this scanner holds: its history and the closed bars of its
        kline stream since (the scanned window), a float Series by UTC open time; empty before the
        history is loaded or for a symbol it does not scan. On the loop."""
        t, c, _ = self._hist.get(symbol, (np.empty(0, np.int64), np.empty(0), None))
        live = self._live.get(symbol, {})
        lt = np.fromiter(live, np.int64, len(live))
        lc = np.array([v[0] for v in live.values()], dtype=np.float64)
        keep = lt > (t[-1] if len(t) else -1)
        times, values = np.concatenate([t, lt[keep]]), np.concatenate([c, lc[keep]])
        order = np.argsort(times, kind="stable")
        return pd.Series(values[order], index=pd.to_datetime(times[order], unit="ms", utc=True),
                         name=symbol, dtype=np.float64)

    # --- history (worker thread) ---------------------------------------------------------------
    def _load_history(self) -> None:
        from ..binance.rest import RestClient
        from ..history import fetch

        client = RestClient(self.rest_url)
        names = parse_symbols(self.wanted)
        self.symbols = parse_symbols(client.perpetuals()) if names == [ALL_SYMBOLS] else names
        if len(self.symbols) < 2:
            raise QdashError("live scan: name at least two symbols (or 'all')")
        self.seam_ms = self.clock() // self.tf_ms * self.tf_ms
        start = self.seam_ms - self.lookback_ms
        fetch(self.symbols, "klines", self.timeframe, start, self.seam_ms, self.store,
              client=client, progress=False)
        for s in self.symbols:
            b = self.store.bars(s, self.timeframe, start, self.seam_ms)
            self._hist[s] = (b.index.as_unit("ms").asi8.copy(), b["close"].to_numpy(),
                             b["quote_volume"].to_numpy())
            self._live.setdefault(s, {})

    def _fill_holes(self, live: dict[str, dict[int, tuple[float, float]]], through: int
                    ) -> dict[str, dict[int, tuple[float, float]]]:
        """Bars missing between the seam and ``through`` (inclusive), from REST (worker thread):
        symbol → {open time: (close, quote volume)}."""
        from ..history import fetch

        floor = max(self.seam_ms, through + self.tf_ms - self.lookback_ms)
        want = np.arange(floor, through + 1, self.tf_ms)
        holes = {s: want[~np.isin(want, np.fromiter(live[s], np.int64, len(live[s])))]
                 for s in self.symbols}
        holes = {s: h for s, h in holes.items() if len(h)}
        if not holes:
            return {}
        first = int(min(h[0] for h in holes.values()))
        log.info("scanner: %d symbols miss bars since %s; fetching them", len(holes),
                 pd.Timestamp(first, unit="ms", tz="UTC"))
        fetch(list(holes), "klines", self.timeframe, first, through + self.tf_ms, self.store,
              rest_url=self.rest_url, progress=False)
        got = {}
        for s, missing in holes.items():
            b = self.store.bars(s, self.timeframe, first, through + self.tf_ms)
            bars = dict(zip(b.index.as_unit("ms").asi8.tolist(),
                            zip(b["close"].tolist(), b["quote_volume"].tolist())))
            t_hist, c_hist, _ = self._hist[s]
            for t in missing.tolist():   # no trade in the bar: the last close, no volume
                if t not in bars:
                    prev = bars.get(t - self.tf_ms) or live[s].get(t - self.tf_ms)
                    close = prev[0] if prev else (c_hist[-1] if len(c_hist) else None)
                    if close is not None:
                        bars[t] = (close, 0.0)
            got[s] = bars
        return got

    def _table(self, live: dict[str, dict[int, tuple[float, float]]]) -> pd.DataFrame:
        """The long bar table the scan reads: history and closed live bars of every symbol."""
        parts = {"symbol": [], "open_time": [], "close": [], "quote_volume": []}
        for s in self.symbols:
            t, c, q = self._hist[s]
            lt = np.fromiter(live[s], np.int64, len(live[s]))
            lv = np.array(list(live[s].values()), dtype=np.float64).reshape(-1, 2)
            keep = lt >= (t[-1] + 1 if len(t) else 0)
            parts["open_time"] += [t, lt[keep]]
            parts["close"] += [c, lv[keep, 0]]
            parts["quote_volume"] += [q, lv[keep, 1]]
            parts["symbol"].append(np.full(len(t) + int(keep.sum()), s, dtype=object))
        return pd.DataFrame({k: np.concatenate(v) for k, v in parts.items()})

    def _scan(self, live, through: int) -> tuple[pd.DataFrame, dict]:
        """Fill holes, then scan the window ending at bar ``through`` (worker thread)."""
        from .pipeline import scan

        got = self._fill_holes(live, through) if through >= self.seam_ms else {}
        for s, bars in got.items():
            live[s] = {**bars, **live[s]}
        table = self._table(live)
        table = table[table["open_time"].to_numpy() <= through]
        opts = {"min_coverage": 0.9, "progress": False} | self.scan_options
        frame = scan(table, timeframe=self.timeframe, lookback=self.lookback_ms,
                     scheduler=None, **opts)
        return frame, got

    # --- streams (on the loop) ---------------------------------------------------------------
    def _on_message(self, message) -> None:
        k = closed_kline(message)
        if k is None or k.interval != self.timeframe:
            return
        sym, t = k.symbol, k.open_time
        if sym not in self._live or t < self.seam_ms:
            return
        self.closed_frames += 1
        self._live[sym][t] = (k.close, k.quote_volume)
        if self.last_bar_ms is not None and t <= self.last_bar_ms:
            return
        first = t not in self._closed
        done = self._closed.setdefault(t, set())
        done.add(sym)
        if len(done) == len(self.symbols):
            self._request(t)
        elif first:
            self.loop.call_later(self.grace_s, self._request, t)

    def _request(self, t: int) -> None:
        """Ask for a scan through bar ``t`` (collapses with one running or asked for)."""
        if not self.running or (self.last_bar_ms is not None and t <= self.last_bar_ms):
            return
        self._want_ms = max(t, self._want_ms or t)
        if self._scanning is None or self._scanning.done():
            self._scanning = self.loop.create_task(self._scan_loop())

    async def _scan_loop(self) -> None:
        while self.running and self._want_ms is not None:
            through, self._want_ms = self._want_ms, None
            live = {s: dict(v) for s, v in self._live.items()}
            t0 = time.perf_counter()
            try:
                frame, got = await asyncio.to_thread(self._scan, live, through)
            except Exception as e:  # the next bar tries again
                self.error = str(e) if isinstance(e, QdashError) else f"{type(e).__name__}: {e}"
                self._say(f"scanner: scan through {_iso(through)} failed: {self.error}", "error")
                continue
            for s, bars in got.items():
                self._live[s] = {**bars, **self._live[s]}
            self.result, self.error = frame, None
            self.scans += 1
            self.last_bar_ms = through
            for old in [o for o in self._closed if o <= through]:
                del self._closed[old]
            self._trim(through + self.tf_ms - self.lookback_ms)
            self._say(f"scanner: {len(frame):,} pairs through {_iso(through)}, "
                      f"{int(frame['pass'].sum())} pass ({time.perf_counter() - t0:.2f} s)",
                      "ok")
            for fn in list(self.callbacks):
                try:
                    fn(frame)
                except Exception:
                    log.exception("scanner: a result callback failed")


    def _trim(self, cut: int) -> None:
        """Forget bars opening before ``cut``: they left the scanned window."""
        for s, (t, c, q) in self._hist.items():
            if len(t) and t[0] < cut:
                keep = t >= cut
                self._hist[s] = (t[keep], c[keep], q[keep])
        for s, bars in self._live.items():
            if bars and min(bars) < cut:
                self._live[s] = {k: v for k, v in bars.items() if k >= cut}


def _iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M")


__all__ = ["LiveScanner"]
