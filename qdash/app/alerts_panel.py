"""The dashboard's alerts tab: the rule editor (text syntax, optional webhook), the active rules
and the firing history, over the monitor's :class:`~qdash.alerts.AlertManager`."""

from __future__ import annotations

import html
from collections.abc import Callable

import pandas as pd

from ..alerts.schedule import evaluation_note
from ..errors import QdashError
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


def rule_feedback_html(text: str, *, error: bool = False) -> str:
    """The line under the rule editor: an error in red, else a note."""
    color = "#b00020" if error else "#555"
    return (f"<div class='qdash-rule-{'error' if error else 'note'}' "
            f"style='color:{color};font-size:12px;white-space:pre-wrap'>{html.escape(text)}</div>")


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
        """Add the rule typed in the editor. What became of it shows under the editor, where it
        was typed: the error (pointing at the bad token; the text stays to be corrected), or
        that it was added and when it is first evaluated (rules see closed bars only)."""
        kind = self.webhook_kind.value
        try:
            rule = self.monitor.add_rule(
                self.expression.value, name=self.name.value.strip() or None,
                severity=self.severity.value, cooldown_s=self.cooldown.value,
                webhook=None if kind == "none" else (kind, self.webhook_url.value.strip()))
        except QdashError as e:
            self.feedback.value = rule_feedback_html(str(e), error=True)
            return
        self.expression.value = ""
        self.name.value = ""
        self.rules.value = frame_html(self.monitor.rules_frame(), "qdash-rules")
        next_ms = self.monitor.next_rule_evaluation_ms()
        when = ("nothing is live: it runs once a live source streams" if next_ms is None
                else evaluation_note(self.monitor.timeframe, next_ms))
        self.feedback.value = rule_feedback_html(f"rule {rule.name!r} added; {when}")
        self.say(f"rule {rule.name!r} added", "ok")

    def show_history(self, recent: list) -> None:
        self.history.value = alert_history_html(recent)
