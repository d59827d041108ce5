"""Paper trading a recorded tick file, then the backtest on the same ticks: the shortfall.

:func:`replay_paper` starts the simulated exchange on the file (in process, a fresh paper
account), a :class:`~qdash.live.LiveSession` and a :class:`~qdash.trade.PaperTrader` on it, and
plays the file through. The session's ticks are the file's (:class:`ReplayTap`: what the
simulator has published of the file, one bar at a time), so its bars are the bars the backtest
computes from the same ticks; the trader's orders fill on the simulator's book at that moment.
While the trader executes a decision the simulator is paused, so a legging completes within the
bar whenever the exchange lets it. At the end the trader flattens what it still holds; then
:func:`qdash.backtest.run` runs on the file's bars with the same spec, levels, capital and costs,
and :func:`~qdash.trade.shortfall.shortfall` compares the round trips.

The simulator makes any capture a valid trade stream (ids and sides where the file has none:
:mod:`qdash.sim.replay`); the session's ticks and the backtest's bars are the ticks it replays.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..analytics.pair import PairConfig
from ..analytics.signal import SignalSpec
from ..bars import resample
from ..feeds.base import TickFeed
from .legging import LeggingPolicy
from .shortfall import round_trips, shortfall, summary
from .trader import PaperTrader

PUMP_S = 0.002


class ReplayTap(TickFeed):
    """The ticks the simulator ``sim`` has published of its replay, emitted one bar
    (``tf_ms``) at a time; while ``hold()`` is true (the trader executes) the simulator is
    paused and nothing more is emitted."""

    source = "replay"

    def __init__(self, sim, symbols: list[str], tf_ms: int, hold=lambda: False):
        super().__init__("replay tap")
        self.sim, self.tf_ms, self.hold = sim, int(tf_ms), hold
        ticks = sim.replay.ticks
        self._keep = ticks["symbol"].isin(symbols).to_numpy()
        self._ticks = ticks
        self._ts = ticks["ts"].to_numpy()
        self.sent = 0
        self._task: asyncio.Task | None = None

    @property
    def done(self) -> bool:
        return self.sent >= len(self._ticks)

    def _run_tasks(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        while True:
            pos = self.sim.replay.pos
            if pos > self.sent:
                bar_end = (self._ts[self.sent] // self.tf_ms + 1) * self.tf_ms
                end = min(pos, int(np.searchsorted(self._ts, bar_end, side="left")) or pos)
                end = max(end, self.sent + 1)
                part = self._ticks.iloc[self.sent:end][self._keep[self.sent:end]]
                self.sent = end
                self._emit(part)
                await asyncio.sleep(0)            # the trader takes the bar's decision
                if self.hold():
                    self.sim.pause()
                    while self.hold():
                        await asyncio.sleep(PUMP_S)
                    self.sim.resume()
                continue
            await asyncio.sleep(PUMP_S)

    async def _shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


@dataclass
class ReplayResult:
    """A replay: the ``trader`` (its orders, fills, leggings), the paper's ``trips``, the
    ``backtest`` (:class:`~qdash.backtest.engine.BacktestResult`), the ``shortfall`` table and
    its ``summary``."""

    trader: PaperTrader
    trips: pd.DataFrame
    backtest: object
    shortfall: pd.DataFrame
    summary: dict


async def replay_paper(ticks, y: str, x: str, spec: SignalSpec, *, timeframe: str = "1s",
                       entry: float = 2.0, exit: float = 0.0, stop: float | None = None,
                       max_hold: int | None = None, capital: float = 10_000.0,
                       leverage: float = 1.0, fee_bps: float = 4.0, slippage_bps: float = 0.0,
                       speed: float = 20.0, policy: LeggingPolicy | None = None,
                       store=None, order_latency_ms: str | float = 0) -> ReplayResult:
    """Paper trade ``ticks`` (frame or file) on the simulator, then backtest the same bars
    (see the module docstring). ``speed``: the replay's pace (× real time; between decisions)."""
    from ..live import LiveSession
    from ..model import timeframe_ms
    from ..sim.exchange import SimExchange

    y, x = y.upper(), x.upper()
    tf = timeframe_ms(timeframe)
    key, secret = secrets.token_hex(16), secrets.token_hex(32)
    sim = SimExchange([y, x], replay=ticks, speed=speed, accounts=[(key, secret, capital * 10)],
                      order_latency_ms=order_latency_ms)
    data = sim.replay.ticks
    sim.pause()
    async with sim:
        trader = PaperTrader(y, x, spec, entry=entry, exit=exit, stop=stop, max_hold=max_hold,
                             capital=capital, leverage=leverage, timeframe=tf,
                             rest_url=sim.rest_url, ws_url=sim.ws_url, api_key=key,
                             api_secret=secret, policy=policy, store=store)
        tap = ReplayTap(sim, [y, x], tf, hold=lambda: trader.busy)
        cfg = PairConfig(**spec.to_dict(), corr_window=min(spec.z_window, 120),
                         window=max(len(data), 10), history=max(len(data), 10))
        session = LiveSession(tap, y=y, x=x, timeframe=timeframe, bootstrap=False,
                              pair_config=cfg, refresh_every_s=3600.0, tolerance_ms=0)
        trader.attach(session)
        await trader.start()
        session.start()
        sim.resume()
        while not (tap.done and sim.replay_done):
            await asyncio.sleep(0.01)
        while trader.busy:
            await asyncio.sleep(0.01)
        if any(trader.amount.values()):
            await trader.flatten()
        await session.stop()
        await trader.stop()
    bars = {s: resample(data, tf, symbol=s) for s in (y, x)}
    return against_backtest(trader, bars[y], bars[x], fee_bps=fee_bps,
                            slippage_bps=slippage_bps)


def against_backtest(trader: PaperTrader, bars_y: pd.DataFrame, bars_x: pd.DataFrame, *,
                     fee_bps: float = 4.0, slippage_bps: float = 0.0) -> ReplayResult:
    """The trader's round trips against :func:`qdash.backtest.run` on ``bars_y``/``bars_x``
    (the bars it traded, and the history before them for the signal's windows) with its spec,
    levels, capital and leverage and these costs; the backtest's round trips entering before
    the trader's first live bar are left out."""
    from ..backtest.engine import run as run_backtest

    bt = run_backtest(bars_y, bars_x, trader.spec, **trader.levels, capital=trader.capital,
                      allocation=trader.allocation, leverage=trader.leverage, fee_bps=fee_bps,
                      slippage_bps=slippage_bps, fill="open")
    trips = round_trips(trader.leggings, trader.fills_frame(), trader.tf_ms)
    trades = bt.trades
    if trader.first_live_bar_ms is not None:     # the bars before it were history, not traded
        first = pd.Timestamp(trader.first_live_bar_ms, unit="ms", tz="UTC")
        trades = trades[trades["entry_time"] > first]
    table = shortfall(trips, trades, trader.leggings, trader.tf_ms)
    return ReplayResult(trader, trips, bt, table, summary(table, slippage_bps))
