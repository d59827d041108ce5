"""qdash.alerts: rules on live pair metrics, their evaluation, history and notifications.

- :mod:`.rules`: conditions (``Rule``, ``And``, ``Or``, ``Not``, ``parse``) and ``AlertRule``;
- :mod:`.manager`: ``AlertManager`` (evaluation, cooldown, hysteresis, history, persistence);
- :mod:`.sinks`: ``CallbackSink``, ``WebhookSink`` (Slack, Discord, templated JSON);
- :mod:`.events`: ``Alert`` (one firing) and ``Delivery`` (its status per sink).
"""

from .events import Alert, Delivery
from .manager import AlertManager
from .rules import (
    OPERATORS,
    AlertRule,
    And,
    Condition,
    Not,
    Or,
    Rule,
    condition_from_dict,
    condition_from_json,
    parse,
)
from .sinks import CallbackSink, Sink, WebhookSink

__all__ = ["OPERATORS", "Alert", "AlertManager", "AlertRule", "And",
           "CallbackSink", "Condition", "Delivery", "Not", "Or", "Rule", "Sink", "WebhookSink",
           "condition_from_dict", "condition_from_json", "parse"]
