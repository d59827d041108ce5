"""Alert persistence in the :class:`~qdash.store.Store`: rules and firings as JSON in the
store's alert tables (:mod:`qdash.store.alerts`, ``store.alerts``), and the firing history as a
frame.

``metric_values`` holds every metric of the rule at the firing (a JSON object); ``delivery`` maps
sink name → ``{status, attempts, retries, error, code}``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Sequence

import pandas as pd

from ..errors import AlertError
from ..io.export import write_csv
from ..model import ms_to_index
from ..store import Store
from .events import Alert, Delivery
from .rules import AlertRule

logger = logging.getLogger(__name__)

HISTORY_COLUMNS = ["id", "ts", "rule", "severity", "pair", "message", "values", "delivery",
                   "status"]
LogOp = tuple  # ("insert", alert, row) | ("delivery", alert, delivery_json)


def delivery_json(alert: Alert) -> str:
    return json.dumps({name: d.to_dict() for name, d in alert.delivery.items()})


def insert_row(alert: Alert) -> tuple:
    """The ``alerts_log`` row of ``alert`` (serialised now, on the caller's thread)."""
    return (alert.ts, alert.rule, alert.severity, alert.pair, alert.message,
            json.dumps(alert.values), delivery_json(alert))


class AlertLog:
    """Reads and writes the alert tables of one store. Writes are short transactions; call
    :meth:`write` from a worker thread when on the event loop."""

    def __init__(self, store: Store):
        self.store = store

    # --- rules -----------------------------------------------------------------------------------
    def save_rule(self, rule: AlertRule) -> None:
        self.store.alerts.save_rule(rule.name, rule.to_json(), int(time.time() * 1000))

    def delete_rule(self, name: str) -> None:
        self.store.alerts.delete_rule(name)

    def load_rules(self) -> list[AlertRule]:
        """Stored rules in name order; a definition that no longer loads is logged and skipped."""
        rules = []
        for name, definition in self.store.alerts.rules():
            try:
                rules.append(AlertRule.from_json(definition))
            except AlertError as e:
                logger.error("stored alert rule %r in %s is invalid, skipped: %s", name,
                             self.store.path, e)
        return rules

    # --- history ---------------------------------------------------------------------------------
    def write(self, ops: Sequence[LogOp]) -> None:
        """Apply inserts and delivery updates in order, in one transaction; sets ``log_id``."""
        with self.store.transaction():
            for kind, alert, payload in ops:
                if kind == "insert":
                    alert.log_id = self.store.alerts.append(payload)
                elif alert.log_id is not None:
                    self.store.alerts.set_delivery(alert.log_id, payload)

    def frame(self, start=None, end=None, rule: str | None = None,
              pair: str | None = None) -> pd.DataFrame:
        """Firings with ``start <= ts < end`` (optionally one rule / pair), oldest first."""
        rows = self.store.alerts.history(start, end, rule, pair)
        return history_frame(r[:6] + (json.loads(r[6] or "{}"), json.loads(r[7] or "{}"))
                              for r in rows)


def history_frame(rows: Iterable[tuple]) -> pd.DataFrame:
    """DataFrame of firings from ``(id, ts, rule, severity, pair, message, values, delivery)``
    rows (``values``/``delivery`` as dicts). Index: UTC ``time``; ``status`` summarises the
    delivery per sink (``"slack: sent after 2 retries; log: sent"``)."""
    data = [list(r) + [delivery_summary(r[7])] for r in rows]
    df = pd.DataFrame(data, columns=HISTORY_COLUMNS)
    df["ts"] = df["ts"].astype("int64")
    df["id"] = df["id"].astype("Int64")
    df.index = ms_to_index(df["ts"].to_numpy(), name="time")
    return df


def delivery_summary(delivery: dict) -> str:
    parts = []
    for name, d in delivery.items():
        status = Delivery(d["status"], d["attempts"], d.get("error"), d.get("code"))
        parts.append(f"{name}: {status}")
    return "; ".join(parts)


def history_to_csv(df: pd.DataFrame, path: str | os.PathLike) -> str:
    """Write a history frame as CSV (``values``/``delivery`` as JSON text, the time ISO 8601 UTC
    as in every qdash CSV: :func:`qdash.io.export.write_csv`); returns the path."""
    out = df.copy()
    for column in ("values", "delivery"):
        out[column] = out[column].map(json.dumps)
    write_csv(out, path, index_label="time")
    return str(path)
