"""What a firing is (:class:`Alert`), how its delivery went (:class:`Delivery`), and the
``str.format`` templates that turn it into text.

Template placeholders: ``{rule}``, ``{pair}``, ``{severity}``, ``{message}``, ``{time}`` (ISO 8601
UTC with milliseconds), ``{ts}`` (epoch ms), ``{metric}`` and ``{value}`` (the rule's first
metric and its value), ``{condition}`` (the rule's text), ``{values}`` (JSON of every metric of
the rule) and each metric by name (``{zscore:.2f}``). A missing metric formats as NaN.
"""

from __future__ import annotations

import difflib
import json
import math
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..analytics.pair_metrics import RULE_METRICS
from ..errors import AlertError

ALERT_FIELDS = ("rule", "pair", "severity", "message", "time", "ts", "metric", "value",
                "condition", "values")


@dataclass
class Delivery:
    """Delivery status of one alert to one sink.

    ``status``: ``pending`` (queued or in flight), ``sent``, ``failed`` (``error`` says why) or
    ``dropped`` (the sink's queue was full). ``attempts`` counts requests made; ``retries`` is
    ``attempts - 1``. ``code`` is the last HTTP status for webhooks.
    """

    status: str = "pending"
    attempts: int = 0
    error: str | None = None
    code: int | None = None

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)

    def to_dict(self) -> dict:
        return {"status": self.status, "attempts": self.attempts, "retries": self.retries,
                "error": self.error, "code": self.code}

    def __str__(self) -> str:
        s = self.status
        if self.retries:
            s += f" after {self.retries} retr{'y' if self.retries == 1 else 'ies'}"
        return f"{s}: {self.error}" if self.error else s


@dataclass
class Alert:
    """One firing of one rule for one pair at event time ``ts`` (epoch ms, UTC).

    ``values`` holds every metric of the rule at that update (``None`` when missing/NaN);
    ``delivery`` maps sink name → :class:`Delivery`, updated in place as deliveries finish;
    ``log_id`` is the ``alerts_log`` row id once written.
    """

    rule: str
    severity: str
    pair: str
    ts: int
    message: str
    values: dict[str, float | None]
    condition: str = ""
    delivery: dict[str, Delivery] = field(default_factory=dict)
    log_id: int | None = None

    @property
    def metric(self) -> str:
        return next(iter(self.values), "")

    @property
    def value(self) -> float | None:
        return next(iter(self.values.values()), None)

    @property
    def time(self) -> str:
        """Event time, ISO 8601 UTC with milliseconds."""
        return iso_time(self.ts)

    def context(self) -> dict[str, Any]:
        """Template fields (metric values first, so a metric cannot shadow a field)."""
        nan = float("nan")
        ctx: dict[str, Any] = {m: nan if v is None else v for m, v in self.values.items()}
        ctx.update(rule=self.rule, pair=self.pair, severity=self.severity, message=self.message,
                   time=self.time, ts=self.ts, metric=self.metric,
                   value=nan if self.value is None else self.value, condition=self.condition,
                   values=json.dumps(self.values))
        return ctx

    def to_dict(self) -> dict:
        """JSON-ready record (the default generic webhook payload)."""
        return {"rule": self.rule, "severity": self.severity, "pair": self.pair, "ts": self.ts,
                "time": self.time, "message": self.message, "condition": self.condition,
                "metric": self.metric, "value": self.value, "values": dict(self.values)}


def iso_time(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def clean_value(x: Any) -> float | None:
    """Float for JSON: ``None`` for missing, NaN, infinite or non-numeric values."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


class _Context(dict):
    def __missing__(self, key: str) -> float:
        return float("nan")  # a metric the firing rule does not have


def template_fields(template: str) -> list[str]:
    """Top-level field names used by a ``str.format`` template (``{a.b}``/``{a[0]}`` → ``a``)."""
    out = []
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None:
            out.append(name.split(".")[0].split("[")[0])
    return out


def check_template(template: str, metrics: Iterable[str] = (), where: str = "template") -> None:
    """Raise :class:`AlertError` (at configuration time) unless ``template`` formats: known
    fields only (:data:`ALERT_FIELDS`, ``metrics``, the pair metrics
    :data:`~qdash.analytics.pair_metrics.RULE_METRICS`), valid format specs."""
    if not isinstance(template, str):
        raise AlertError(f"{where} must be a string, got {type(template).__name__}")
    allowed = set(ALERT_FIELDS) | set(metrics) | set(RULE_METRICS)
    try:
        names = template_fields(template)
    except ValueError as e:
        raise AlertError(f"{where} {template!r} is not a valid format string: {e}; "
                         f"write literal braces as {{{{ and }}}}") from None
    for name in names:
        if name == "" or name.isdigit():
            raise AlertError(f"{where} {template!r}: use named fields such as {{rule}}, "
                             f"not positional {{}}")
        if name not in allowed:
            close = difflib.get_close_matches(name, sorted(allowed), n=1)
            hint = f"; did you mean {{{close[0]}}}?" if close else ""
            raise AlertError(f"{where} {template!r}: unknown field {{{name}}}{hint} "
                             f"Fields: {', '.join(ALERT_FIELDS)} and metric names")
    sample = Alert("rule", "info", "PAIR", 0, "message", {m: 1.0 for m in metrics})
    try:
        render(template, sample.context())
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise AlertError(f"{where} {template!r} does not format: {e}") from None


def render(template: str, context: dict[str, Any]) -> str:
    """Format ``template`` with ``context``; unknown metric fields format as NaN."""
    return template.format_map(_Context(context))


def render_structure(template: Any, context: dict[str, Any]) -> Any:
    """Render every string of a JSON-like structure. A string that is exactly one field
    (``"{value}"``) becomes that field's raw value, so numbers stay numbers in the JSON."""
    if isinstance(template, str):
        names = template_fields(template)
        if len(names) == 1 and template == "{" + names[0] + "}" and names[0] in context:
            v = context[names[0]]
            return clean_value(v) if isinstance(v, float) else v
        return render(template, context)
    if isinstance(template, dict):
        return {k: render_structure(v, context) for k, v in template.items()}
    if isinstance(template, list | tuple):
        return [render_structure(v, context) for v in template]
    return template


def check_structure(template: Any, where: str = "template") -> None:
    """:func:`check_template` for every string of a JSON-like structure."""
    if isinstance(template, str):
        check_template(template, where=where)
    elif isinstance(template, dict):
        for k, v in template.items():
            check_structure(v, f"{where}[{k!r}]")
    elif isinstance(template, list | tuple):
        for i, v in enumerate(template):
            check_structure(v, f"{where}[{i}]")
    elif not (template is None or isinstance(template, bool | int | float)):
        raise AlertError(f"{where}: a JSON template holds strings, numbers, lists and objects, "
                         f"got {type(template).__name__}")
