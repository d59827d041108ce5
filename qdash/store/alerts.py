"""The alert tables: rule definitions (``alert_rules``) and the firing history (``alerts_log``).

``alerts_log`` rows: ``ts`` (event time, epoch ms UTC), ``rule``, ``severity``, ``pair``,
``message``, ``metric_values`` (JSON object: every metric of the rule at the firing) and
``delivery`` (JSON object: sink name → ``{status, attempts, retries, error, code}``).
``alert_rules`` rows: ``name``, ``definition`` (the rule as JSON), ``updated_ms`` (epoch ms UTC).
What the JSON means is :mod:`qdash.alerts`' business; this module only stores it.
"""

from __future__ import annotations

from ..model import parse_time
from .connection import StoreFile


class AlertTables:
    """``store.alerts``: the alert tables of one store. Each write is one transaction, or joins
    the caller's :meth:`~qdash.store.Store.transaction`."""

    def __init__(self, store: StoreFile):
        self._store = store

    # --- rules -----------------------------------------------------------------------------------
    def save_rule(self, name: str, definition: str, updated_ms: int) -> None:
        """Store rule ``name`` (replacing one of that name)."""
        self._store.execute_many(
            "INSERT OR REPLACE INTO alert_rules (name, definition, updated_ms) VALUES (?, ?, ?)",
            [(name, definition, updated_ms)])

    def delete_rule(self, name: str) -> None:
        self._store.execute_many("DELETE FROM alert_rules WHERE name = ?", [(name,)])

    def rules(self) -> list[tuple[str, str]]:
        """Every stored rule as ``(name, definition)``, in name order."""
        return self._store.connection().execute(
            "SELECT name, definition FROM alert_rules ORDER BY name").fetchall()

    # --- history ---------------------------------------------------------------------------------
    def append(self, row: tuple) -> int:
        """Insert one firing ``(ts, rule, severity, pair, message, metric_values, delivery)``;
        returns its ``id``."""
        with self._store.transaction() as conn:
            return conn.execute(
                "INSERT INTO alerts_log (ts, rule, severity, pair, message, metric_values, "
                "delivery) VALUES (?, ?, ?, ?, ?, ?, ?)", row).lastrowid

    def set_delivery(self, log_id: int, delivery: str) -> None:
        """Replace the ``delivery`` JSON of firing ``log_id``."""
        with self._store.transaction() as conn:
            conn.execute("UPDATE alerts_log SET delivery = ? WHERE id = ?", (delivery, log_id))

    def history(self, start=None, end=None, rule: str | None = None,
                pair: str | None = None) -> list[tuple]:
        """Firings with ``start <= ts < end`` (optionally of one rule / pair), oldest first, as
        ``(id, ts, rule, severity, pair, message, metric_values, delivery)`` rows (JSON text)."""
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
        return self._store.connection().execute(
            "SELECT id, ts, rule, severity, pair, message, metric_values, delivery "
            f"FROM alerts_log WHERE {' AND '.join(where)} ORDER BY ts, id", params).fetchall()
