"""Alert persistence in the :class:`~qdash.store.Store`: rule definitions (``alert_rules``) and
the firing history (``alerts_log``).

``alerts_log`` rows: ``ts`` (event time, epoch ms UTC), ``rule``, ``severity``, ``pair``,
``message``, ``metric_values`` (JSON object: every metric of the rule at the firing) and
``delivery`` (JSON object: sink name → ``{status, attempts, retries, error, code}``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Sequence

import pandas as pd

from ..errors import AlertError
from ..model import ms_to_index, parse_time
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
        self.store.execute_many(
            "INSERT OR REPLACE INTO alert_rules (name, definition, updated_ms) VALUES (?, ?, ?)",
            [(rule.name, rule.to_json(), int(time.time() * 1000))])

    def delete_rule(self, name: str) -> None:
        self.store.execute_many("DELETE FROM alert_rules WHERE name = ?", [(name,)])

    def load_rules(self) -> list[AlertRule]:
        """Stored rules in name order; a definition that no longer loads is logged and skipped."""
        rows = self.store.connection().execute(
            "SELECT name, definition FROM alert_rules ORDER BY name").fetchall()
        rules = []
        for name, definition in rows:
            try:
                rules.append(AlertRule.from_json(definition))
            except AlertError as e:
                logger.error("stored alert rule %r in %s is invalid, skipped: %s", name,
                             self.store.path, e)
        return rules

    # --- history ---------------------------------------------------------------------------------
    def write(self, ops: Sequence[LogOp]) -> None:
        """Apply inserts and delivery updates in order, in one transaction; sets ``log_id``."""
        conn = self.store.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for kind, alert, payload in ops:
                if kind == "insert":
                    cur = conn.execute(
                        "INSERT INTO alerts_log (ts, rule, severity, pair, message, "
                        "metric_values, delivery) VALUES (?, ?, ?, ?, ?, ?, ?)", payload)
                    alert.log_id = cur.lastrowid
                elif alert.log_id is not None:
                    conn.execute("UPDATE alerts_log SET delivery = ? WHERE id = ?",
                                 (payload, alert.log_id))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def frame(self, start=None, end=None, rule: str | None = None,
              pair: str | None = None) -> pd.DataFrame:
        """Firings with ``start <= ts < end`` (optionally one rule / pair), oldest first."""
        where, params = ["1=1"], []
        for column, value in (("rule", rule), ("pair", pair)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if (s := parse_time(start)) is not None:
            where.append("ts >= ?")
            params.append(s)
        if (e := parse_time(end)) is not None:
            where.append("ts < ?")
            params.append(e)
        rows = self.store.connection().execute(
            "SELECT id, ts, rule, severity, pair, message, metric_values, delivery "
            f"FROM alerts_log WHERE {' AND '.join(where)} ORDER BY ts, id", params).fetchall()
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
    """Write a history frame as CSV (``values``/``delivery`` as JSON text); returns the path."""
    out = df.copy()
    for column in ("values", "delivery"):
        out[column] = out[column].map(json.dumps)
    out.to_csv(path, index_label="time", date_format="%Y-%m-%dT%H:%M:%S.%fZ")
    return str(path)
