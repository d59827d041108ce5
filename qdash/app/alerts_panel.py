"""The dashboard's alerts tab: the rule editor (text syntax, optional webhook), the active rules
and the firing history, over the monitor's :class:`~qdash.alerts.AlertManager`."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from .controls import AlertControls
from .dispatch import Dispatcher
from .monitor import PairMonitor
from .tables import frame_html


def alert_history_html(recent: list) -> str:
    """The firing history, newest last."""
    rows = [{"time": pd.Timestamp(al.ts, unit="ms", tz="UTC"), "rule": al.rule,
             "pair": al.pair, "severity": al.severity, "message": al.message}
            for al in recent]
    return frame_html(pd.DataFrame(rows), "qdash-alert-history")


class AlertsPanel(AlertControls):
    """The alerts tab of ``monitor``; ``say(text, level)`` reports in the status line."""

    def __init__(self, monitor: PairMonitor, dispatch: Dispatcher,
                 say: Callable[[str, str], None]):
        super().__init__()
        self.monitor, self.say = monitor, say
        dispatch.click(self.add, self.add_rule)
        self.rules.value = frame_html(monitor.rules_frame(), "qdash-rules")
        self.show_history(list(monitor.alerts.recent))

    def add_rule(self) -> None:
        """Add the rule typed in the editor (errors point at the bad token, in the status)."""
        kind = self.webhook_kind.value
        rule = self.monitor.add_rule(
            self.expression.value, name=self.name.value.strip() or None,
            severity=self.severity.value, cooldown_s=self.cooldown.value,
            webhook=None if kind == "none" else (kind, self.webhook_url.value.strip()))
        self.expression.value = ""
        self.name.value = ""
        self.rules.value = frame_html(self.monitor.rules_frame(), "qdash-rules")
        self.say(f"rule {rule.name!r} added", "ok")

    def show_history(self, recent: list) -> None:
        self.history.value = alert_history_html(recent)
