"""``PaperTrader``: the pair's signal traded on both legs, beside a
:class:`~qdash.live.LiveSession`, on the same bars and the same :class:`~qdash.analytics.PairState`.

On every bar the pair takes, :class:`~qdash.trade.rule.SignalRule` decides as the backtest
would; an entry is sized by the bar's β and the equity (:func:`~qdash.trade.sizing.size_entry`),
an exit closes what the exchange holds for the trader; both legs go out at once and are seen
through by :class:`~qdash.trade.legging.Legging` (chase, unwind). One entry or exit at a time:
decisions queue behind the one being executed.

Order states come from the REST answers and the user-data stream (fills, positions); a working
order without news for :data:`POLL_AFTER_S` is asked for by REST, and after a stream drop the
trader reconciles (:func:`~qdash.trade.reconcile.reconcile`) and fetches the fills it missed
(``userTrades``). At start it reconciles too: it continues from what the exchange holds and
leaves alone what it did not open. :meth:`PaperTrader.flatten` is the kill switch.

Every order, fill, position change and legging goes to the store when one is given
(``store.orders``), with the signal bar that caused it. Times are ms UTC unless named ``_s``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import replace

import pandas as pd

from ..analytics.signal import SignalSpec
from ..binance import order_fields as F
from ..binance.order_updates import Fill, OrderUpdate, Position, order_params
from ..binance.rest import RestError
from ..config import Settings
from ..errors import QdashError
from ..model import timeframe_ms
from ..store.orders import FILL_COLUMNS, LEGGING_COLUMNS
from .account import Account
from .ids import KINDS, pair_prefix, parse_client_id
from .legging import Cancel, Legging, LeggingPolicy, Place
from .reconcile import Reconciliation, reconcile
from .records import TradeRecords
from .rule import Decision, SignalRule
from .sizing import size_entry

log = logging.getLogger(__name__)

POLL_AFTER_S = 0.25      # a working order without news this long is asked for by REST
LEGGING_DEADLINE_S = 30.0


def _now_ms() -> int:
    return int(time.time() * 1000)


class PaperTrader:
    """Trade the pair ``y``/``x`` on ``spec`` (a :class:`~qdash.analytics.signal.SignalSpec`;
    None: the attached session's) with the backtest's rule (``entry``, ``exit``, ``stop``,
    ``max_hold``) and sizing (``capital``, ``allocation``, ``leverage``; quote currency).

    ``rest_url``/``ws_url``: the exchange (default: the simulator of ``QDASH_SIM_REST_URL`` /
    ``QDASH_SIM_WS_URL``); ``api_key``/``api_secret`` default to ``QDASH_API_KEY`` /
    ``QDASH_API_SECRET``. ``policy``: the legging policy (:class:`LeggingPolicy`); ``store``: a
    :class:`~qdash.store.Store` for the trader's tables; ``armed``: whether decisions are sent
    (a disarmed trader still decides, and says what it would have done).

    Use: ``trader = PaperTrader(...).attach(session)``, then ``await trader.start()``; stop with
    ``await trader.stop()``, flatten everything with ``await trader.flatten()``.
    """

    def __init__(self, y: str, x: str, spec: SignalSpec | None = None, *, entry: float = 2.0,
                 exit: float = 0.0, stop: float | None = None, max_hold: int | None = None,
                 capital: float = 10_000.0, allocation: float = 0.95, leverage: float = 1.0,
                 timeframe: str | int = "1m", rest_url: str | None = None,
                 ws_url: str | None = None, api_key: str | None = None,
                 api_secret: str | None = None, policy: LeggingPolicy | None = None,
                 store=None, armed: bool = True):
        env = Settings.from_env()
        self.y, self.x = y.upper(), x.upper()
        self.pair = f"{self.y}/{self.x}"
        self.spec = spec
        self.levels = dict(entry=entry, exit=exit, stop=stop, max_hold=max_hold)
        self.capital, self.allocation, self.leverage = float(capital), allocation, leverage
        self.tf_ms = timeframe_ms(timeframe) if isinstance(timeframe, str) else int(timeframe)
        self.rest_url = rest_url or env.sim_rest_url
        self.ws_url = ws_url or env.sim_ws_url
        if not self.rest_url or not self.ws_url:
            raise QdashError("PaperTrader needs the exchange: rest_url= and ws_url= (or a "
                             "running simulator's QDASH_SIM_REST_URL / QDASH_SIM_WS_URL)")
        self.account = Account(self.rest_url, self.ws_url, api_key or env.api_key or "",
                               api_secret or env.api_secret or "")
        self.policy = policy or LeggingPolicy()
        self.armed = bool(armed)
        self.prefix = pair_prefix(self.y, self.x)
        self.rule: SignalRule | None = None if spec is None else self._new_rule(spec)
        self.filters: dict = {}
        self.amount = {self.y: 0.0, self.x: 0.0}        # what the trader holds, signed
        self.positions: dict[str, Position] = {}        # as the exchange last reported them
        self.reconciliation: Reconciliation | None = None
        self.blocked: str | None = None                 # why the trader does not trade
        self.decisions: list[Decision] = []
        self.records = TradeRecords(self.pair, self.prefix, store)
        self.errors: list[str] = []
        self.latencies_ms: list[float] = []             # bar taken -> both legs acknowledged
        self._live: dict[Legging, asyncio.Event] = {}
        self._todo: dict[Legging, list] = {}
        self._heard: dict[str, float] = {}              # client id -> monotonic time of news
        self._queue: asyncio.Queue = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self._state_id: int | None = None
        self._executing = False
        self.first_live_bar_ms: int | None = None      # the first bar taken while running
        self._detach = None
        self._session = None
        self.market_clock = _now_ms               # market time when a legging completes
        self.running = False
        self.stream_connected = asyncio.Event()

    def __repr__(self) -> str:
        return (f"PaperTrader({self.pair}, {'armed' if self.armed else 'disarmed'}, "
                f"{self.account!r})")

    def _new_rule(self, spec: SignalSpec) -> SignalRule:
        return SignalRule(spec, self.tf_ms, **self.levels)

    # --- lifecycle -------------------------------------------------------------------------------
    def attach(self, session) -> PaperTrader:
        """Trade on ``session``'s bars (a :class:`~qdash.live.LiveSession` of this pair)."""
        if (session.y, session.x) != (self.y, self.x):
            raise QdashError(f"the session watches {session.y}/{session.x}, the trader "
                             f"{self.pair}")
        self.tf_ms = session.tf_ms
        if self.rule is None:
            self.spec = session.pair_config.signal()
            self.rule = self._new_rule(self.spec)
        self._detach = session.on_pair_bar(self.on_bar)
        self._session = session
        self.market_clock = lambda: session.exchange_now_ms
        return self

    async def start(self) -> PaperTrader:
        """Read the symbols' filters, reconcile with the exchange, open the user-data stream
        and start executing decisions. Returns once the stream is connected (or after 5 s)."""
        if self.rule is None:
            self.spec = self.spec or SignalSpec.for_timeframe(self.tf_ms)
            self.rule = self._new_rule(self.spec)
        self.filters = await self.account.filters([self.y, self.x])
        f = self.filters                          # the sizing kernel loaded now, not at the
        size_entry(1, 1.0, 1.0, 1.0, 1.0, allocation=1.0, leverage=1.0,  # first entry
                   log_beta=True, filters_y=f[self.y], filters_x=f[self.x])
        await self.account.warm()
        await self.reconcile()
        self.running = True
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.account.stream(self._on_event, self._on_connect,
                                                            lambda: self.running)),
                       loop.create_task(self._worker())]
        try:
            await asyncio.wait_for(self.stream_connected.wait(), 5.0)
        except TimeoutError:
            self._error("user-data stream not connected after 5 s: fills come by REST")
        return self

    async def stop(self) -> None:
        """Stop trading (positions stay as they are; :meth:`flatten` closes them)."""
        self.running = False
        if self._detach is not None:
            self._detach()
            self._detach = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.account.close()

    def arm(self) -> None:
        self.armed = True

    def disarm(self) -> None:
        self.armed = False

    # --- bars and decisions ----------------------------------------------------------------------
    def on_bar(self, state) -> Decision | None:
        """The pair took a bar (a :meth:`LiveSession.on_pair_bar` listener): decide; queue
        the decision when armed."""
        if self._state_id != id(state):          # a fresh or warm-started state: its history
            self._state_id = id(state)           # feeds the reference β first
            if self.rule.reference.n == 0 and state.bars > 1:
                hist = state.frame().iloc[:-1]
                for yw, xw in zip(hist["y"].tolist(), hist["x"].tolist()):
                    self.rule.reference.push(yw, xw)
        if self.running and self.first_live_bar_ms is None:
            self.first_live_bar_ms = int(state.frame(last=1).index[-1].value // 1_000_000)
        d = self.rule.on_state(state)
        if d is None:
            return None
        self.decisions.append(d)
        if self.armed and not self.blocked and self.running:
            self._queue.put_nowait((d, time.perf_counter()))
        else:
            self._sync_rule()                     # nothing sent: the rule holds what we hold
        return d

    def _side(self) -> int:
        ay, ax = self.amount[self.y], self.amount[self.x]
        return 1 if ay > 0 or ax < 0 else -1 if ay < 0 or ax > 0 else 0

    def _sync_rule(self, entry_bar_ms: int | None = None) -> None:
        side = self._side()
        keep = self.rule.entry_bar_ms if side == self.rule.side else entry_bar_ms
        self.rule.set_position(side, keep if side else None)

    async def _worker(self) -> None:
        while True:
            d, t_bar = await self._queue.get()
            self._executing = True
            try:
                await self.enact(d, t_bar)
            except Exception as e:  # an execution that failed is reported; trading goes on
                self._error(f"{d.action} at bar {d.bar_ms}: {type(e).__name__}: {e}")
                await self.reconcile()
            finally:
                self._executing = False

    async def enact(self, d: Decision, t_bar: float | None = None) -> dict:
        """Send decision ``d`` (an entry sized now, or an exit of what the trader holds) and
        see both legs through; returns the legging record. ``t_bar``: ``perf_counter()`` when
        the bar was taken (for :attr:`latencies_ms`)."""
        ref = {self.y: d.price_y, self.x: d.price_x}
        if d.action == "enter":
            f = self.filters
            s = size_entry(d.side, d.beta, d.price_y, d.price_x, self.equity,
                           allocation=self.allocation, leverage=self.leverage,
                           log_beta=self.spec.log, filters_y=f[self.y], filters_x=f[self.x])
            if not s.ok:
                self._sync_rule()
                return self._record({"kind": "e", "bar_ms": d.bar_ms, "outcome": "refused",
                                     "problem": s.problem}, d)
            qty = {self.y: s.qty_y, self.x: s.qty_x}
            kind = "e"
        else:
            qty = {sym: -a for sym, a in self.amount.items()}
            kind = "x"
        touch = await self.touch(qty) if kind == "e" and self.policy.order_type == F.LIMIT \
            else {}
        legs = {leg: (sym, qty[sym], ref[sym], touch.get(sym))
                for leg, sym in (("y", self.y), ("x", self.x))}
        lg = Legging(kind, d.bar_ms, legs, self.policy, self.prefix, _now_ms(),
                     price_of=self._last_price, reduce_only=self._reduce_only(kind))
        await self._run(lg, t_bar)
        self._settle(lg)
        self._sync_rule(d.bar_ms)
        return self._record({**lg.record(), "market_ms": self.market_clock()}, d)

    def _reduce_only(self, kind: str) -> bool | None:
        """Closing orders are reduce-only, except beside a foreign position on a leg."""
        rec = self.reconciliation
        if kind != "e" and rec is not None and rec.foreign_on((self.y, self.x)):
            return False
        return None

    async def touch(self, qty: dict) -> dict:
        """The limit price of each leg's entry order (``qty``: signed quantities by symbol):
        the touch it joins, the best bid to buy and the ask to sell."""
        out = {}
        for sym, q in qty.items():
            bid, ask = await self.account.touch(sym)
            out[sym] = bid if q > 0 else ask
        return out

    def _last_price(self, symbol: str) -> float | None:
        """The symbol's last trade price as the session saw it (the forming candle's close),
        else the exchange's mark at the last reconciliation."""
        if self._session is not None:
            forming = self._session.forming(symbol)
            if len(forming):
                return float(forming["close"].iloc[-1])
        p = self.positions.get(symbol)
        return p.mark_price if p is not None and p.mark_price else None

    # --- one legging -----------------------------------------------------------------------------
    async def _run(self, lg: Legging, t_bar: float | None = None) -> None:
        """See ``lg`` through: send its orders, feed it what the exchange says and the time."""
        wake = self._live[lg] = asyncio.Event()
        self._todo[lg] = []
        deadline = time.monotonic() + LEGGING_DEADLINE_S
        try:
            await self._send(lg, lg.start())
            if t_bar is not None:
                self.latencies_ms.append((time.perf_counter() - t_bar) * 1000)
            while not lg.done:
                if self._todo[lg]:
                    todo, self._todo[lg] = self._todo[lg], []
                    await self._send(lg, todo)
                    continue
                try:
                    await asyncio.wait_for(wake.wait(), 0.05)
                except TimeoutError:
                    await self._poll(lg)
                wake.clear()
                self._todo[lg] += lg.on_timer(_now_ms())
                if time.monotonic() > deadline:
                    lg.outcome, lg.problem = "failed", "legging took longer than 30 s"
        finally:
            self._live.pop(lg, None)
            self._todo.pop(lg, None)

    async def _send(self, lg: Legging, actions: list) -> None:
        await asyncio.gather(*(self._place(lg, a) if isinstance(a, Place)
                               else self._cancel(lg, a) for a in actions))

    async def _place(self, lg: Legging, p: Place) -> None:
        f = self.filters[p.symbol]
        params = order_params(p.symbol, p.side, p.qty, f.qty_decimals, type=p.type,
                              price=p.price, price_decimals=f.price_decimals,
                              reduce_only=p.reduce_only, client_id=p.client_id)
        cid = parse_client_id(p.client_id, self.prefix)
        row = {"client_id": p.client_id, "pair": self.pair, "symbol": p.symbol, "leg": p.leg,
               "kind": KINDS[cid.kind], "side": p.side, "type": p.type, "qty": p.qty,
               "price": p.price, "reduce_only": int(p.reduce_only),
               "signal_bar_ms": lg.bar_ms, "sent_ms": _now_ms(), "status": F.NEW,
               "filled": 0.0}
        self._heard[p.client_id] = time.monotonic()
        self.records.order_sent(row)
        try:
            u = await self.account.new_order(params)
        except RestError as e:
            self.records.order_refused(p.client_id, f"{e.code}: {e.msg}")
            self._todo[lg] += lg.on_reject(p.client_id, e.code, e.msg or str(e), _now_ms())
            return
        self._apply(u)

    async def _cancel(self, lg: Legging, c: Cancel) -> None:
        try:
            self._apply(await self.account.cancel_order(c.symbol, c.client_id))
        except RestError:
            lg.on_cancel_failed(c.client_id)

    async def _poll(self, lg: Legging) -> None:
        """REST fallback: ask for working orders the exchange said nothing of lately."""
        now = time.monotonic()
        for leg in lg.legs.values():
            cid = leg.working
            if cid and now - self._heard.get(cid, now) > POLL_AFTER_S:
                self._heard[cid] = now
                try:
                    self._apply(await self.account.query_order(leg.symbol, cid))
                except RestError as e:
                    self._error(f"query of order {cid}: {e.code} {e.msg}")

    def _apply(self, u: OrderUpdate) -> None:
        """An order's state, from a REST answer or the stream: to its legging and the store."""
        self._heard[u.client_id] = time.monotonic()
        self.records.order_state(u)
        for lg, wake in list(self._live.items()):
            if u.client_id in lg.client_ids:
                self._todo[lg] += lg.on_update(u, _now_ms())
                wake.set()

    def _settle(self, lg: Legging) -> None:
        """Add what ``lg``'s orders filled to the trader's holdings."""
        for leg in lg.legs.values():
            sign = 1 if leg.target > 0 else -1
            unwound = sum(o.filled for o in leg.orders.values() if o.unwind)
            self.amount[leg.symbol] += sign * (leg.filled - unwound)
            if abs(self.amount[leg.symbol]) < 1e-12:
                self.amount[leg.symbol] = 0.0

    def _record(self, rec: dict, d: Decision | None) -> dict:
        rec = {**rec, "kind": {"e": "entry", "x": "exit", "k": "kill"}[rec["kind"]],
               "side": d.side if d else 0, "reason": d.reason if d else "kill",
               "z": d.z if d else math.nan, "beta": d.beta if d else math.nan,
               "ref_price_y": d.price_y if d else math.nan,
               "ref_price_x": d.price_x if d else math.nan}
        self.records.legging(rec)
        if rec.get("problem"):
            log.warning("%s %s at bar %s: %s", self.pair, rec["kind"], rec["bar_ms"],
                        rec["problem"])
        return rec

    @property
    def busy(self) -> bool:
        """Whether a decision is queued or being executed."""
        return bool(self._live) or not self._queue.empty() or self._executing

    def _error(self, text: str) -> None:
        self.errors.append(text)
        log.warning("%s: %s", self.pair, text)

    # --- the user-data stream ------------------------------------------------------------------
    def _on_event(self, event: dict) -> None:
        kind = event.get("e")
        if kind == "ORDER_TRADE_UPDATE":
            u = OrderUpdate.from_event(event)
            if parse_client_id(u.client_id, self.prefix) is None:
                return                                   # not this trader's order
            if u.is_fill:
                self.records.add_fills([Fill.from_update(u)], u.client_id)
            self._apply(u)
        elif kind == "ACCOUNT_UPDATE":
            for p in event.get("a", {}).get("P", []):
                if p.get("s") in self.amount:
                    pos = Position.from_account_update(p)
                    old = self.positions.get(pos.symbol)
                    self.positions[pos.symbol] = replace(pos, mark_price=old.mark_price
                                                         if old else 0.0)
                    self._store_position(pos, "fill", event.get("T"))

    def _store_position(self, pos: Position, reason: str, time_ms: int | None) -> None:
        self.records.position(pos, reason, time_ms or _now_ms(),
                              self.rule.entry_bar_ms if self.rule else None)

    async def _on_connect(self, reconnected: bool) -> None:
        self.stream_connected.set()
        if reconnected:                       # a gap: what the exchange did meanwhile, by REST
            await self.reconcile()
            since = max((f["time_ms"] for f in self.fills), default=None)
            for sym in (self.y, self.x):
                rows = await self.account.user_trades(sym, since)
                self.records.add_fills([Fill.from_user_trade(r) for r in rows])

    # --- reconciliation and the kill switch ----------------------------------------------------
    async def reconcile(self) -> Reconciliation:
        """Read positions, open orders and both legs' order history; continue from them (see
        :mod:`qdash.trade.reconcile`). The trader's own orders left open are cancelled."""
        positions, oy, ox, hy, hx = await asyncio.gather(
            self.account.positions(), self.account.open_orders(self.y),
            self.account.open_orders(self.x), self.account.all_orders(self.y),
            self.account.all_orders(self.x))
        self.positions = {p.symbol: p for p in positions if p.symbol in self.amount}
        known = {p.symbol: p.amount for p in (self.reconciliation.foreign
                                                if self.reconciliation else [])}
        rec = reconcile([p for p in positions if p.amount], oy + ox, hy + hx, self.y, self.x,
                        self.prefix, known)
        for o in rec.own_orders:
            try:
                await self.account.cancel_order(o.symbol, o.client_id)
            except RestError:
                pass
        self.amount = {self.y: rec.amount_y, self.x: rec.amount_x}
        foreign = rec.foreign_on((self.y, self.x))
        self.blocked = ("positions not opened by this trader on its legs: "
                        + ", ".join(f"{p.symbol} {p.amount:g}" for p in foreign)
                        if foreign else None)
        if self.rule is not None:
            self.rule.set_position(rec.side, rec.entry_bar_ms)
        for note in rec.notes:
            log.warning("%s: %s", self.pair, note)
        for sym in (self.y, self.x):
            self._store_position(Position(sym, self.amount[sym],
                                          self.positions.get(sym, Position(sym, 0, 0))
                                          .entry_price), "reconcile", None)
        self.reconciliation = rec
        return rec

    async def flatten(self) -> dict:
        """The kill switch: disarm, cancel every open order of both legs, and close what the
        trader holds on them with reduce-only market orders. Returns the kill's legging record
        with ``seconds`` (from the call to both legs flat)."""
        t0 = time.perf_counter()
        self.armed = False
        for lg in list(self._live):
            lg.outcome, lg.problem = "failed", "stopped by the kill switch"
        await asyncio.gather(self.account.cancel_all(self.y), self.account.cancel_all(self.x))
        await self.reconcile()                   # what the trader holds, by the exchange
        close = {sym: -a for sym, a in self.amount.items()}
        bar = ((self.market_clock() or _now_ms()) // self.tf_ms) * self.tf_ms
        legs = {leg: (sym, close[sym], self._last_price(sym) or 1.0, None)
                for leg, sym in (("y", self.y), ("x", self.x))}
        lg = Legging("k", bar, legs, self.policy, self.prefix, _now_ms(),
                     price_of=self._last_price, reduce_only=self._reduce_only("k"))
        if lg.legs:
            await self._run(lg)
        self._settle(lg)
        self._sync_rule()
        return self._record({**lg.record(), "seconds": time.perf_counter() - t0}, None)

    # --- what a reader sees --------------------------------------------------------------------
    @property
    def fills(self) -> list[dict]:
        """The trader's fills (``trade_fills`` rows), oldest first."""
        return self.records.fills

    @property
    def leggings(self) -> list[dict]:
        """Every entry's, exit's and kill's legging record, oldest first."""
        return self.records.leggings

    @property
    def equity(self) -> float:
        """Capital plus realized PnL minus commissions: what entries are sized on."""
        return self.capital + self.records.realized

    def orders_frame(self) -> pd.DataFrame:
        return self.records.orders_frame()

    def fills_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.fills, columns=list(FILL_COLUMNS))

    def leggings_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.leggings, columns=list(LEGGING_COLUMNS))
