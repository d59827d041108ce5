"""The alert manager: evaluates every enabled rule on each update of a pair's metrics, applies
cooldown and hysteresis, records firings in the store and hands them to the sinks.

Per (rule, pair) the manager keeps a tiny state machine, in **event time** (the ``ts_ms`` of the
updates, so replaying history gives the live result):

- *armed* (initially): the rule fires when its condition holds and at least ``cooldown_s`` has
  passed since its last firing for that pair;
- after firing with ``hysteresis`` on, it is *disarmed* until an update on which the relaxed
  condition (reset levels in place of thresholds, see :mod:`qdash.alerts.rules`) is false.

So a z-score that stays above 2 fires once; with ``zscore > 2 reset 1.5`` one that hovers around
2.0 fires once until it has been back below 1.5.

:meth:`AlertManager.update` is synchronous and cheap (about 1 µs a rule): it never waits for a
sink or the disk. Deliveries go through each sink's bounded queue; firings and delivery outcomes
are written to ``alerts_log`` by a writer task in a worker thread. Run it on the kernel's loop::

    manager = AlertManager(store, sinks=[WebhookSink(url, format="slack")])
    manager.add("zscore > 2 and corr > 0.8", name="z-high", cooldown_s=300)
    manager.start()                                   # returns at once
    manager.update("BTCUSDT/ETHUSDT", state.values(), ts_ms)   # on every pair-state update
    await manager.stop()
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections import deque
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from ..analytics.pair_metrics import RULE_METRICS
from ..errors import AlertError
from ..model import parse_time
from ..store import Store
from .events import Alert, Delivery, clean_value, render
from .log import AlertLog, delivery_json, history_frame, history_to_csv, insert_row
from .rules import AlertRule, Condition, Values, _did_you_mean, parse
from .sinks import Sink

logger = logging.getLogger(__name__)

_EMPTY: Mapping = {}


class _State:
    """Hysteresis/cooldown state of one rule for one pair."""

    __slots__ = ("armed", "last_ms")

    def __init__(self) -> None:
        self.armed = True
        self.last_ms = -math.inf


class AlertManager:
    """Rules, their evaluation, the firing history and the sinks.

    ``store``: a :class:`~qdash.store.Store` (or a path) where rules persist (``alert_rules``,
    reloaded at construction when ``load=True``) and firings are logged (``alerts_log``); ``None``
    keeps everything in memory. ``known_metrics``: the metric names a rule may use (default: every
    metric of the live pair state, :data:`~qdash.analytics.pair_metrics.RULE_METRICS`; ``None``:
    any name); a rule on another name is rejected when added, pointing at it. ``memory``: how
    many recent firings :attr:`recent` keeps.

    Until :meth:`start`, firings wait in memory for the log writer (or :meth:`flush`) and
    deliveries wait in the sinks' queues. Rule changes (:meth:`add`, :meth:`remove`,
    :meth:`enable`) are written to the store at once: they are rare user actions.
    """

    def __init__(self, store: Store | str | os.PathLike | None = None, *,
                 sinks: Iterable[Sink] = (), load: bool = True,
                 known_metrics: Iterable[str] | None = RULE_METRICS, memory: int = 10_000):
        self.store = Store(store) if isinstance(store, str | os.PathLike) else store
        self._log = AlertLog(self.store) if self.store is not None else None
        self.known_metrics = None if known_metrics is None else frozenset(known_metrics)
        self._rules: dict[str, AlertRule] = {}
        self._sinks: dict[str, Sink] = {}
        self._compiled: list[tuple] = []
        self._cross_metrics: tuple[str, ...] = ()
        self._states: dict[str, list[_State]] = {}
        self._prev: dict[str, dict] = {}
        self._failed_rules: set[str] = set()
        self.recent: deque[Alert] = deque(maxlen=memory)
        self.evaluations = 0
        self._log_ops: list[tuple] = []
        self._log_event: asyncio.Event | None = None
        self._log_lock: asyncio.Lock | None = None
        self._writer: asyncio.Task | None = None
        for sink in sinks:
            self.add_sink(sink)
        if load and self._log is not None:
            for rule in self._log.load_rules():
                self._rules[rule.name] = rule
            self._rebuild()

    # --- rules -----------------------------------------------------------------------------------
    @property
    def rules(self) -> list[AlertRule]:
        """The rules, in the order they were added (or loaded, by name)."""
        return list(self._rules.values())

    def get(self, name: str) -> AlertRule:
        try:
            return self._rules[name]
        except KeyError:
            raise AlertError(f"no alert rule named {name!r}"
                             f"{_did_you_mean(name, self._rules)}") from None

    def add(self, rule: AlertRule | Condition | str | Mapping, name: str | None = None, *,
            replace: bool = False, **options) -> AlertRule:
        """Add (and persist) a rule: an :class:`AlertRule`, a JSON-like dict of one, or a
        condition (object or text) with ``name`` and :class:`AlertRule` options (``severity``,
        ``cooldown_s``, ``hysteresis``, ``reset``, ``pair``, ``message``, ``actions``,
        ``enabled``). The name defaults to the condition's text. A rule of the same name is an
        error unless ``replace=True``."""
        if isinstance(rule, AlertRule):
            if name is not None:
                options["name"] = name
            rule = rule.replace(**options) if options else rule
        elif isinstance(rule, Mapping) and "condition" in rule:
            rule = AlertRule.from_dict({**rule, **options} | ({"name": name} if name else {}))
        else:
            if isinstance(rule, str):
                rule = parse(rule, known_metrics=self.known_metrics)
            rule = AlertRule(name or str(rule), rule, **options)
        if self.known_metrics is not None:
            unknown = [m for m in rule.metrics if m not in self.known_metrics]
            if unknown:
                raise AlertError(f"rule {rule.name!r} uses unknown metric {unknown[0]!r}"
                                 f"{_did_you_mean(unknown[0], self.known_metrics)}")
        if rule.name in self._rules and not replace:
            raise AlertError(f"an alert rule named {rule.name!r} exists; pass replace=True or "
                             f"remove it first")
        if self._log is not None:
            self._log.save_rule(rule)
        self._rules[rule.name] = rule
        self._rebuild()
        return rule

    def remove(self, name: str) -> AlertRule:
        """Remove a rule (and its stored definition); returns it."""
        rule = self.get(name)
        if self._log is not None:
            self._log.delete_rule(name)
        del self._rules[name]
        self._rebuild()
        return rule

    def enable(self, name: str, enabled: bool = True) -> AlertRule:
        """Enable (or with ``enabled=False`` disable) a rule; persisted."""
        return self.add(self.get(name).replace(enabled=enabled), replace=True)

    def reload(self) -> list[AlertRule]:
        """Replace the rules with those stored (e.g. edited by another process)."""
        if self._log is None:
            raise AlertError("this AlertManager has no store to reload rules from")
        self._rules = {r.name: r for r in self._log.load_rules()}
        self._rebuild()
        return self.rules

    def _rebuild(self) -> None:
        """Compile enabled rules; keep the state of rules whose definition did not change."""
        old = {entry[0].to_json(): i for i, entry in enumerate(self._compiled)}
        compiled, cross = [], {}
        for rule in self._rules.values():
            if not rule.enabled:
                continue
            c = rule.condition
            compiled.append((rule, c.compile(), c.compile(relaxed=True), rule.cooldown_s * 1000.0,
                             rule.hysteresis, rule.pair))
            cross.update(dict.fromkeys(c.crossing_metrics))
        keep = [old.get(entry[0].to_json()) for entry in compiled]
        self._states = {pair: [_State() if j is None else states[j] for j in keep]
                        for pair, states in self._states.items()}
        self._compiled, self._cross_metrics = compiled, tuple(cross)

    # --- sinks -----------------------------------------------------------------------------------
    @property
    def sinks(self) -> dict[str, Sink]:
        return dict(self._sinks)

    def add_sink(self, sink: Sink) -> Sink:
        """Register a sink (started at once if the manager runs). Names must be unique."""
        if not isinstance(sink, Sink):
            raise AlertError(f"expected a Sink (CallbackSink, WebhookSink), got {sink!r}")
        if sink.name in self._sinks:
            raise AlertError(f"a sink named {sink.name!r} exists; pass name= to tell them apart")
        self._sinks[sink.name] = sink
        if self._writer is not None:
            sink.start()
        return sink

    async def remove_sink(self, name: str, timeout_s: float = 5.0) -> None:
        sink = self._sinks.pop(name)
        await sink.stop(timeout_s)

    # --- evaluation ------------------------------------------------------------------------------
    def update(self, pair: str, values: Values, ts_ms: int) -> list[Alert]:
        """Evaluate every enabled rule on one update of ``pair``'s metrics at event time
        ``ts_ms`` (epoch ms UTC); returns the alerts fired (usually none). Never blocks on sinks
        or the store, never raises because of a rule or a sink."""
        prev = self._prev.get(pair, _EMPTY)
        states = self._states.get(pair)
        if states is None:
            states = self._states[pair] = [_State() for _ in self._compiled]
        fired = None
        for (rule, cond, relaxed, cooldown_ms, hysteresis, only), st in zip(self._compiled,
                                                                               states):
            if only is not None and only != pair:
                continue
            try:
                if not st.armed:
                    if relaxed(values, prev):
                        continue
                    st.armed = True
                if cond(values, prev) and ts_ms - st.last_ms >= cooldown_ms:
                    st.last_ms = ts_ms
                    st.armed = not hysteresis
                    fired = [rule] if fired is None else fired + [rule]
            except Exception as e:
                self._rule_failed(rule, e)
        if self._cross_metrics:
            self._prev[pair] = {m: values.get(m) for m in self._cross_metrics}
        self.evaluations += 1
        if fired is None:
            return []
        return [self._fire(rule, pair, values, ts_ms) for rule in fired]

    def _rule_failed(self, rule: AlertRule, error: Exception) -> None:
        if rule.name not in self._failed_rules:
            self._failed_rules.add(rule.name)
            logger.error("alert rule %r could not be evaluated (treated as false): %r",
                         rule.name, error)

    def _fire(self, rule: AlertRule, pair: str, values: Values, ts_ms: int) -> Alert:
        alert = Alert(rule.name, rule.severity, pair, int(ts_ms), "",
                      {m: clean_value(values.get(m)) for m in rule.metrics},
                      condition=str(rule.condition))
        alert.message = self._message(rule, alert)
        for sink in self._targets(rule):
            try:
                if sink.accepts(alert):
                    alert.delivery[sink.name] = sink.submit(alert, self._delivered)
            except Exception as e:
                logger.exception("sink %r rejected alert %r", sink.name, rule.name)
                alert.delivery[sink.name] = Delivery("failed", 0, f"{type(e).__name__}: {e}")
        self.recent.append(alert)
        self._enqueue_log(("insert", alert, insert_row(alert)))
        return alert

    def _targets(self, rule: AlertRule) -> list[Sink]:
        if rule.actions is None:
            return list(self._sinks.values())
        missing = [a for a in rule.actions if a not in self._sinks]
        if missing:
            logger.warning("alert rule %r names sinks %s that are not registered", rule.name,
                           missing)
        return [self._sinks[a] for a in rule.actions if a in self._sinks]

    @staticmethod
    def _message(rule: AlertRule, alert: Alert) -> str:
        if rule.message is not None:
            try:
                return render(rule.message, alert.context())
            except Exception as e:  # checked at configuration; a value may still not format
                logger.warning("message of rule %r did not format (%r); using the default",
                               rule.name, e)
        shown = ", ".join(f"{m}={'n/a' if v is None else format(v, '.6g')}"
                          for m, v in alert.values.items())
        return f"{shown} ({alert.condition})"

    def _delivered(self, alert: Alert, sink_name: str, delivery: Delivery) -> None:
        self._enqueue_log(("delivery", alert, delivery_json(alert)))

    def evaluate_history(self, frame: pd.DataFrame, pair: str = "",
                         rules: Iterable[str] | None = None) -> pd.DataFrame:
        """Where each rule would have fired over ``frame`` — one row per firing, with cooldown
        and hysteresis applied exactly as live (same result as feeding the rows to
        :meth:`update` in order, from a fresh state).

        ``frame``: metric columns, rows in time order, time as a UTC DatetimeIndex or an int64
        ``ts`` (epoch ms) column. ``rules``: names (default: every enabled rule; a rule bound to
        another ``pair`` is skipped). Returns a frame indexed by UTC ``time`` with columns
        ``ts, rule, severity, pair, message, value, values``. Nothing is logged or delivered.
        """
        ts = _frame_ms(frame)
        if rules is None:
            selected = [r for r in self._rules.values() if r.enabled]
        else:
            selected = [self.get(name) for name in rules]
        alerts: list[tuple[int, int, Alert]] = []
        for order, rule in enumerate(selected):
            if rule.pair is not None and rule.pair != pair:
                continue
            cond = rule.condition.mask(frame)
            relaxed = rule.condition.mask(frame, relaxed=True) if rule.hysteresis else None
            columns = {m: frame[m].to_numpy() for m in rule.metrics}
            text = str(rule.condition)
            for i in fire_indices(cond, relaxed, ts, rule.cooldown_s * 1000.0):
                alert = Alert(rule.name, rule.severity, pair, int(ts[i]), "",
                              {m: clean_value(col[i]) for m, col in columns.items()},
                              condition=text)
                alert.message = self._message(rule, alert)
                alerts.append((alert.ts, order, alert))
        alerts.sort(key=lambda t: t[:2])
        df = pd.DataFrame([(a.ts, a.rule, a.severity, a.pair, a.message, a.value, a.values)
                           for _, _, a in alerts],
                          columns=["ts", "rule", "severity", "pair", "message", "value", "values"])
        df["ts"] = df["ts"].astype("int64")
        df.index = pd.DatetimeIndex(pd.to_datetime(df["ts"], unit="ms", utc=True), name="time")
        return df

    # --- history ---------------------------------------------------------------------------------
    def history(self, start=None, end=None, rule: str | None = None,
                pair: str | None = None) -> pd.DataFrame:
        """Logged firings (from ``alerts_log``; without a store, from :attr:`recent`) as a frame
        indexed by UTC ``time``: ``id, ts, rule, severity, pair, message, values, delivery,
        status``. Firings still being written appear after ``await join()``."""
        if self._log is not None:
            return self._log.frame(start, end, rule, pair)
        rows = [(None, a.ts, a.rule, a.severity, a.pair, a.message, dict(a.values),
                 {n: d.to_dict() for n, d in a.delivery.items()}) for a in self.recent
                if (rule is None or a.rule == rule) and (pair is None or a.pair == pair)]
        df = history_frame(rows)
        lo, hi = parse_time(start), parse_time(end)
        keep = np.ones(len(df), dtype=bool)
        if lo is not None:
            keep &= df["ts"].to_numpy() >= lo
        if hi is not None:
            keep &= df["ts"].to_numpy() < hi
        return df[keep]

    def to_csv(self, path: str | os.PathLike, **filters) -> str:
        """Export :meth:`history` (same filters) as CSV; returns the path."""
        return history_to_csv(self.history(**filters), path)

    # --- lifecycle -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._writer is not None

    def start(self) -> None:
        """Start sink workers and the log writer on the running loop; returns at once."""
        if self._writer is not None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise AlertError("AlertManager.start() needs a running event loop: call it from a "
                             "notebook cell or async code (without a loop, use update() and "
                             "flush())") from None
        self._log_event, self._log_lock = asyncio.Event(), asyncio.Lock()
        for sink in self._sinks.values():
            sink.start()
        self._writer = asyncio.create_task(self._write_loop(), name="qdash-alert-log")
        if self._log_ops:
            self._log_event.set()

    async def join(self) -> None:
        """Wait until every queued delivery finished and every firing is in the store."""
        await asyncio.gather(*(s.join() for s in self._sinks.values()))
        if self._writer is not None:
            await self._write_pending()

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Give pending deliveries ``timeout_s`` to finish (the rest are recorded as failed),
        write the log, stop every task."""
        if self._writer is None:
            return
        await asyncio.gather(*(s.stop(timeout_s) for s in self._sinks.values()))
        await self._write_pending()
        self._writer.cancel()
        await asyncio.gather(self._writer, return_exceptions=True)
        self._writer = self._log_event = self._log_lock = None

    def flush(self) -> None:
        """Write logged firings now, on this thread (for use without a running manager)."""
        if self._writer is not None:
            raise AlertError("the manager is running: use 'await manager.join()' instead")
        ops, self._log_ops = self._log_ops, []
        if ops and self._log is not None:
            self._log.write(ops)

    def _enqueue_log(self, op: tuple) -> None:
        if self._log is None:
            return
        self._log_ops.append(op)
        if self._log_event is not None:
            self._log_event.set()

    async def _write_loop(self) -> None:
        while True:
            await self._log_event.wait()
            self._log_event.clear()
            await self._write_pending()

    async def _write_pending(self) -> None:
        async with self._log_lock:
            while self._log_ops:
                ops, self._log_ops = self._log_ops, []
                try:
                    await asyncio.to_thread(self._log.write, ops)
                except Exception:
                    logger.exception("could not write %d alert log entries to %s", len(ops),
                                     self.store.path)


def fire_indices(cond: np.ndarray, relaxed: np.ndarray | None, ts: np.ndarray,
                 cooldown_ms: float) -> list[int]:
    """Rows where a rule fires, given its condition and (with hysteresis) relaxed-condition
    masks and event times: the state machine of :meth:`AlertManager.update`, visiting only rows
    where something can change."""
    hysteresis = relaxed is not None
    rows = np.flatnonzero(cond | ~relaxed) if hysteresis else np.flatnonzero(cond)
    out, armed, last = [], True, -math.inf
    for i in rows.tolist():
        if not armed:
            if relaxed[i]:
                continue
            armed = True
        if cond[i] and ts[i] - last >= cooldown_ms:
            last = ts[i]
            out.append(i)
            armed = not hysteresis
    return out


def _frame_ms(frame: pd.DataFrame) -> np.ndarray:
    if isinstance(frame.index, pd.DatetimeIndex):
        idx = frame.index if frame.index.tz is not None else frame.index.tz_localize("UTC")
        return idx.as_unit("ms").asi8
    if "ts" in frame.columns:
        return frame["ts"].to_numpy(dtype=np.int64)
    raise AlertError("history frame needs a UTC DatetimeIndex or an int64 'ts' column (epoch ms)")
