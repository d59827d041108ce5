"""Alert conditions on live pair metrics, and named alert rules.

A **condition** is a tree: leaves compare one metric with a threshold (:class:`Rule`), inner nodes
are :class:`And`, :class:`Or` and :class:`Not`, of any depth. Build one from Python::

    (Rule("zscore", ">", 2) & Rule("corr", ">", 0.8)) | Rule("zscore", "|x|>", 3)

from text (precedence ``not`` > ``and`` > ``or``, parentheses, keywords case-insensitive)::

    parse("zscore > 2 and corr > 0.8 or abs(zscore) > 3")
    parse("zscore crosses above 2 reset 0.5")        # leaf with a hysteresis reset level

or from JSON (``Condition.to_dict`` / :func:`condition_from_dict` round-trip; ``str(condition)``
prints text that parses back to an equal condition).

Operators: ``>``, ``>=``, ``<``, ``<=``, ``crosses_above``, ``crosses_below`` (the previous
update's value was on or beyond the threshold's other side and the current one is strictly past
it), and ``abs>`` (``|x| >``; also ``abs>=``, ``abs<``, ``abs<=``).

Metric values come as a flat ``Mapping[str, float]`` (the live pair state: ``zscore``, ``spread``,
``price_y``, ``beta_kalman``, ``corr``, ``adf_p``, ``half_life_s``, ``age_y_s`` ...; every one is
declared in :data:`qdash.analytics.pair_metrics.PAIR_METRICS`). A comparison on
a metric that is missing, ``None`` or NaN is **false** (so ``not corr > 0.8`` is true then).

An :class:`AlertRule` names a condition and adds what turns it into notifications: severity,
enabled flag, cooldown (seconds of event time between two firings for one pair) and hysteresis
(after firing, re-arm only once the condition has been false — with reset levels, only once the
*relaxed* condition, where each leaf uses its reset level instead of its threshold, has been
false). See :mod:`qdash.alerts.manager` for the evaluation.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import AlertError, RuleSyntaxError
from .operators import LEVEL_COMPARISONS, OPERATOR_TABLE, history_mask, live_code

Values = Mapping[str, Any]
"""Metric name → value (float; ``None``/NaN/missing make every comparison on it false)."""
Evaluator = Callable[[Values, Values], bool]
"""``f(values, previous_values) -> bool``: a compiled condition."""

SEVERITIES = ("info", "warning", "critical")

OPERATORS = tuple(OPERATOR_TABLE)
_METRIC_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KEYWORDS = {"and", "or", "not", "abs", "crosses", "above", "below", "reset",
             "crosses_above", "crosses_below"}


def normalize_operator(op: str) -> str:
    """Canonical operator name: ``"crosses above"`` → ``crosses_above``, ``"|x| >"`` → ``abs>``."""
    s = " ".join(str(op).strip().lower().split())
    s = s.replace("crosses ", "crosses_")
    for prefix in ("|x|", "abs", "abs(x)"):
        if s.startswith(prefix) and s[len(prefix):].strip() in LEVEL_COMPARISONS:
            s = "abs" + s[len(prefix):].strip()
    if s not in OPERATORS:
        raise AlertError(f"unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
    return s


def _number(x: Any, what: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise AlertError(f"{what} must be a number, got {x!r}") from None
    if not math.isfinite(v):
        raise AlertError(f"{what} must be finite, got {x!r}")
    return v


def _fmt(x: float) -> str:
    """Shortest text that parses back to exactly ``x``."""
    s = repr(float(x))
    return s[:-2] if s.endswith(".0") else s


# --- condition trees -----------------------------------------------------------------------------
class Condition:
    """Base of condition trees: combine with ``&`` (and), ``|`` (or), ``~`` (not)."""

    def __and__(self, other: Condition) -> And:
        return And(self, _as_condition(other))

    def __or__(self, other: Condition) -> Or:
        return Or(self, _as_condition(other))

    def __invert__(self) -> Not:
        return Not(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Condition) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def __repr__(self) -> str:
        return f"{type(self).__name__}<{self}>"

    # subclasses implement
    def to_dict(self) -> dict:
        """JSON-ready form: leaves ``{"metric", "op", "value"[, "reset"]}``, inner nodes
        ``{"and": [...]}``, ``{"or": [...]}``, ``{"not": {...}}``."""
        raise NotImplementedError

    def leaves(self) -> list[Rule]:
        """Every comparison of the tree, left to right."""
        raise NotImplementedError

    def _code(self, relaxed: bool) -> str:
        raise NotImplementedError

    def mask(self, frame: pd.DataFrame, *, relaxed: bool = False) -> np.ndarray:
        """Boolean array: where the condition holds on each row of ``frame`` (one column per
        metric, rows in time order; ``crosses`` compares each row with the row before)."""
        raise NotImplementedError

    # shared
    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @property
    def metrics(self) -> list[str]:
        """Metric names used, in order of first appearance."""
        return list(dict.fromkeys(leaf.metric for leaf in self.leaves()))

    @property
    def crossing_metrics(self) -> list[str]:
        """Metrics whose previous value a crossing comparison needs."""
        return list(dict.fromkeys(leaf.metric for leaf in self.leaves()
                                  if OPERATOR_TABLE[leaf.op].crossing))

    def compile(self, *, relaxed: bool = False) -> Evaluator:
        """A fast ``f(values, previous_values) -> bool`` for this tree (about 0.1–0.3 µs a leaf).

        ``relaxed=True`` compiles the re-arm test of hysteresis: each leaf uses its reset level
        when it has one, and a crossing leaf becomes the level test past its reset level (or its
        threshold), so the condition implies the relaxed one. The code is generated from validated
        metric identifiers and finite float literals only.
        """
        src = f"lambda v, p: bool({self._code(relaxed)})"
        return eval(compile(src, f"<alert condition {self}>", "eval"), {"abs": abs})

    def evaluate(self, values: Values, previous: Values | None = None) -> bool:
        """Whether the condition holds for ``values`` (``previous``: the pair's prior update)."""
        return self.compile()(values, previous or {})


def _as_condition(x: Any) -> Condition:
    if isinstance(x, Condition):
        return x
    if isinstance(x, str):
        return parse(x)
    if isinstance(x, Mapping):
        return condition_from_dict(x)
    raise AlertError(f"expected a Condition, an expression string or a dict, "
                     f"got {type(x).__name__}")


class Rule(Condition):
    """One comparison: ``metric op threshold``, with an optional hysteresis ``reset`` level.

    ``reset`` lies on the near side of the threshold (``<= threshold`` for ``>``, ``>=``,
    ``crosses_above``, ``abs>``, ``abs>=``; ``>= threshold`` otherwise): after firing, the rule
    re-arms only once the metric has gone back past it.
    """

    __slots__ = ("metric", "op", "threshold", "reset")

    def __init__(self, metric: str, op: str, threshold: float, *, reset: float | None = None):
        if not isinstance(metric, str) or not _METRIC_RE.match(metric) or \
                metric.lower() in _KEYWORDS:
            raise AlertError(f"metric must be an identifier such as 'zscore' (not a keyword), "
                             f"got {metric!r}")
        self.metric = metric
        self.op = normalize_operator(op)
        self.threshold = _number(threshold, f"threshold of {metric}")
        self.reset = None if reset is None else _number(reset, f"reset level of {metric}")
        if self.reset is not None:
            problem = _reset_problem(self.op, self.threshold, self.reset)
            if problem:
                raise AlertError(f"{metric} {self.op} {_fmt(self.threshold)}: {problem}")

    def to_dict(self) -> dict:
        d = {"metric": self.metric, "op": self.op, "value": self.threshold}
        if self.reset is not None:
            d["reset"] = self.reset
        return d

    def leaves(self) -> list[Rule]:
        return [self]

    def __str__(self) -> str:
        th, op = _fmt(self.threshold), OPERATOR_TABLE[self.op]
        if op.crossing:
            s = f"{self.metric} crosses {self.op.split('_')[1]} {th}"
        elif op.absolute:
            s = f"abs({self.metric}) {op.compare} {th}"
        else:
            s = f"{self.metric} {self.op} {th}"
        return s if self.reset is None else f"{s} reset {_fmt(self.reset)}"

    def _level(self, relaxed: bool) -> float:
        return self.reset if relaxed and self.reset is not None else self.threshold

    def _code(self, relaxed: bool) -> str:
        return live_code(OPERATOR_TABLE[self.op], self.metric, self._level(relaxed), relaxed)

    def mask(self, frame: pd.DataFrame, *, relaxed: bool = False) -> np.ndarray:
        if self.metric not in frame.columns:
            hint = _did_you_mean(self.metric, [str(c) for c in frame.columns])
            raise AlertError(f"history has no column {self.metric!r}{hint}; "
                             f"columns: {list(frame.columns)}")
        x = pd.to_numeric(frame[self.metric], errors="coerce").to_numpy(dtype=np.float64,
                                                                         na_value=np.nan)
        return history_mask(OPERATOR_TABLE[self.op], x, self._level(relaxed), relaxed)


def _reset_problem(op: str, threshold: float, reset: float) -> str | None:
    if OPERATOR_TABLE[op].upward:
        if reset > threshold:
            return f"reset level {_fmt(reset)} must be <= the threshold {_fmt(threshold)}"
        if OPERATOR_TABLE[op].absolute and reset < 0:
            return f"reset level {_fmt(reset)} of an absolute value must be >= 0"
    elif reset < threshold:
        return f"reset level {_fmt(reset)} must be >= the threshold {_fmt(threshold)}"
    return None


class _Group(Condition):
    """n-ary And/Or; nested groups of the same kind are flattened."""

    __slots__ = ("children",)
    keyword = ""

    def __init__(self, *children: Condition):
        if len(children) == 1 and isinstance(children[0], list | tuple):
            children = tuple(children[0])
        if len(children) < 2:
            raise AlertError(f"'{self.keyword}' needs at least two conditions, got {len(children)}")
        flat: list[Condition] = []
        for c in children:
            c = _as_condition(c)
            flat.extend(c.children if type(c) is type(self) else [c])
        self.children = tuple(flat)

    def to_dict(self) -> dict:
        return {self.keyword: [c.to_dict() for c in self.children]}

    def leaves(self) -> list[Rule]:
        return [leaf for c in self.children for leaf in c.leaves()]

    def _code(self, relaxed: bool) -> str:
        return "(" + f" {self.keyword} ".join(c._code(relaxed) for c in self.children) + ")"


class And(_Group):
    """All children hold."""

    __slots__ = ()
    keyword = "and"

    def __str__(self) -> str:
        return " and ".join(f"({c})" if isinstance(c, Or) else str(c) for c in self.children)

    def mask(self, frame: pd.DataFrame, *, relaxed: bool = False) -> np.ndarray:
        return np.logical_and.reduce([c.mask(frame, relaxed=relaxed) for c in self.children])


class Or(_Group):
    """At least one child holds."""

    __slots__ = ()
    keyword = "or"

    def __str__(self) -> str:
        return " or ".join(str(c) for c in self.children)

    def mask(self, frame: pd.DataFrame, *, relaxed: bool = False) -> np.ndarray:
        return np.logical_or.reduce([c.mask(frame, relaxed=relaxed) for c in self.children])


class Not(Condition):
    """The child does not hold. Its relaxed (re-arm) form is ``not child`` with the child's own
    thresholds, so reset levels below a NOT are not allowed (see :class:`AlertRule`)."""

    __slots__ = ("child",)

    def __init__(self, child: Condition):
        self.child = _as_condition(child)

    def to_dict(self) -> dict:
        return {"not": self.child.to_dict()}

    def leaves(self) -> list[Rule]:
        return self.child.leaves()

    def __str__(self) -> str:
        return f"not {self.child}" if isinstance(self.child, Rule | Not) else f"not ({self.child})"

    def _code(self, relaxed: bool) -> str:
        return f"(not {self.child._code(False)})"

    def mask(self, frame: pd.DataFrame, *, relaxed: bool = False) -> np.ndarray:
        return ~self.child.mask(frame)


def condition_from_dict(d: Mapping, *, path: str = "condition") -> Condition:
    """Rebuild a condition from :meth:`Condition.to_dict` output; errors name the JSON path."""
    if not isinstance(d, Mapping):
        raise AlertError(f"{path}: expected an object, got {type(d).__name__}")
    try:
        if "metric" in d:
            extra = set(d) - {"metric", "op", "value", "reset"}
            if extra:
                raise AlertError(f"unexpected keys {sorted(extra)}")
            missing = [k for k in ("op", "value") if k not in d]
            if missing:
                raise AlertError(f"comparison lacks {missing}")
            return Rule(d["metric"], d["op"], d["value"], reset=d.get("reset"))
        if len(d) != 1:
            raise AlertError(f"expected one of 'metric', 'and', 'or', 'not', got keys {sorted(d)}")
        (key, value), = d.items()
        if key == "not":
            return Not(condition_from_dict(value, path=f"{path}.not"))
        if key in ("and", "or"):
            if not isinstance(value, list):
                raise AlertError(f"'{key}' takes a list of conditions")
            kids = [condition_from_dict(c, path=f"{path}.{key}[{i}]") for i, c in enumerate(value)]
            return (And if key == "and" else Or)(*kids)
        raise AlertError(f"unknown node {key!r}; expected 'metric', 'and', 'or' or 'not'")
    except RuleSyntaxError:
        raise
    except AlertError as e:
        if str(e).startswith(path):
            raise
        raise AlertError(f"{path}: {e}") from None


def condition_from_json(text: str) -> Condition:
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise AlertError(f"condition JSON is invalid at line {e.lineno} column {e.colno}: "
                         f"{e.msg}") from None
    return condition_from_dict(d)


# --- text parser ---------------------------------------------------------------------------------
_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>>=|<=|>|<)
  | (?P<punct>[()|])
""", re.VERBOSE)
_OP_HINT = "a comparison (>, >=, <, <=, crosses above, crosses below)"


class _Tok:
    __slots__ = ("kind", "text", "pos")

    def __init__(self, kind: str, text: str, pos: int):
        self.kind, self.text, self.pos = kind, text, pos

    @property
    def word(self) -> str:
        return self.text.lower() if self.kind == "name" else ""


def _tokenize(text: str) -> list[_Tok]:
    toks, pos = [], 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            ch = text[pos]
            hint = {"=": "; use >=, <=, > or <", "!": "; use 'not'", "&": "; use 'and'"}.get(ch, "")
            raise RuleSyntaxError(f"unexpected character {ch!r}{hint}", text=text, position=pos)
        if m.lastgroup != "ws":
            toks.append(_Tok(m.lastgroup, m.group(), pos))
        pos = m.end()
    toks.append(_Tok("end", "", len(text)))
    return toks


class _Parser:
    """Recursive descent: or_expr := and_expr ('or' and_expr)*; and_expr := not_expr ('and'
    not_expr)*; not_expr := 'not' not_expr | '(' or_expr ')' | comparison."""

    def __init__(self, text: str, known: Iterable[str] | None):
        self.text, self.toks, self.i = text, _tokenize(text), 0
        self.known = None if known is None else set(known)

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def fail(self, message: str, tok: _Tok | None = None):
        tok = tok or self.tok
        shown = "the end of the expression" if tok.kind == "end" else repr(tok.text)
        raise RuleSyntaxError(message.replace("{got}", shown), text=self.text,
                              position=tok.pos, length=max(1, len(tok.text)))

    def next(self) -> _Tok:
        tok = self.tok
        self.i += 1
        return tok

    def parse(self) -> Condition:
        if self.tok.kind == "end":
            self.fail("empty expression; write a comparison such as 'zscore > 2'")
        cond = self.or_expr()
        if self.tok.kind != "end":
            if self.tok.text == ")":
                self.fail("unmatched ')'")
            self.fail("unexpected {got} after a complete condition; combine conditions with "
                      "'and' / 'or'")
        return cond

    def or_expr(self) -> Condition:
        return self._chain(Or, self.and_expr)

    def and_expr(self) -> Condition:
        return self._chain(And, self.not_expr)

    def _chain(self, group: type[_Group], operand: Callable[[], Condition]) -> Condition:
        """``operand (keyword operand)*`` as one ``group`` (the operand alone when single)."""
        parts = [operand()]
        while self.tok.word == group.keyword:
            self.next()
            parts.append(operand())
        return parts[0] if len(parts) == 1 else group(*parts)

    def not_expr(self) -> Condition:
        if self.tok.word == "not":
            self.next()
            return Not(self.not_expr())
        if self.tok.text == "(":
            opening = self.next()
            inner = self.or_expr()
            if self.tok.text != ")":
                self.fail(f"expected ')' to close the '(' at column {opening.pos + 1}, got {{got}}")
            self.next()
            return inner
        return self.comparison()

    def metric_name(self) -> _Tok:
        tok = self.tok
        if tok.kind != "name" or tok.word in _KEYWORDS:
            self.fail("expected a metric name such as 'zscore', got {got}")
        if self.known is not None and tok.text not in self.known:
            self.fail(f"unknown metric {tok.text!r}{_did_you_mean(tok.text, self.known)}")
        return self.next()

    def comparison(self) -> Rule:
        absolute = False
        if self.tok.word == "abs" and self.toks[self.i + 1].text == "(":
            self.i += 2
            metric = self.metric_name()
            if self.tok.text != ")":
                self.fail("expected ')' after the metric of abs(...), got {got}")
            self.next()
            absolute = True
        elif self.tok.text == "|":
            self.next()
            metric = self.metric_name()
            if self.tok.text != "|":
                self.fail("expected '|' to close |metric|, got {got}")
            self.next()
            absolute = True
        else:
            metric = self.metric_name()
        op_tok = self.tok
        if op_tok.kind == "op":
            op = self.next().text
        elif op_tok.word in ("crosses_above", "crosses_below"):
            op = self.next().word
        elif op_tok.word == "crosses":
            self.next()
            if self.tok.word not in ("above", "below"):
                self.fail("expected 'above' or 'below' after 'crosses', got {got}")
            op = "crosses_" + self.next().word
        else:
            self.fail(f"expected {_OP_HINT} after {metric.text!r}, got {{got}}")
        if absolute:
            if op not in LEVEL_COMPARISONS:
                self.fail("abs(...) takes >, >=, < or <=, not a crossing", op_tok)
            op = "abs" + op
        value_tok = self.tok
        if value_tok.kind != "num":
            self.fail(f"expected a number after {op_tok.text!r}, got {{got}}")
        self.next()
        reset = None
        if self.tok.word == "reset":
            self.next()
            reset_tok = self.tok
            if reset_tok.kind != "num":
                self.fail("expected a number after 'reset', got {got}")
            self.next()
            reset = float(reset_tok.text)
            problem = _reset_problem(op, float(value_tok.text), reset)
            if problem:
                self.fail(problem, reset_tok)
        try:
            return Rule(metric.text, op, float(value_tok.text), reset=reset)
        except AlertError as e:
            self.fail(str(e), value_tok)


def parse(text: str, *, known_metrics: Iterable[str] | None = None) -> Condition:
    """Parse a condition such as ``"zscore > 2 and corr > 0.8 or abs(zscore) > 3"``.

    Grammar: ``or`` binds loosest, then ``and``, then ``not``; parentheses group; a comparison is
    ``metric OP number``, ``abs(metric) OP number`` (or ``|metric| OP number``) or
    ``metric crosses above|below number``, optionally followed by ``reset number``. With
    ``known_metrics``, other metric names are rejected. Raises :class:`RuleSyntaxError` pointing
    at the offending token.
    """
    if not isinstance(text, str):
        raise AlertError(f"expected an expression string, got {type(text).__name__}")
    return _Parser(text, known_metrics).parse()


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# --- named alert rules ---------------------------------------------------------------------------
class AlertRule:
    """A named condition with what makes it an alert.

    - ``severity``: ``info``, ``warning`` or ``critical``.
    - ``cooldown_s``: minimum seconds of event time between two firings for one pair.
    - ``hysteresis``: after firing, stay silent until the (relaxed) condition has been false.
      ``reset`` is a shortcut that sets the reset level of a single-comparison condition.
    - ``pair``: only evaluate for this pair name (``None``: every pair).
    - ``message``: ``str.format`` template over ``{rule}``, ``{pair}``, ``{severity}``,
      ``{time}``, ``{ts}``, ``{metric}``, ``{value}`` and the condition's metrics
      (``"z={zscore:.2f}"``); default: the metric values and the condition.
    - ``actions``: names of the sinks to notify (``None``: all).
    """

    def __init__(self, name: str, condition: Condition | str | Mapping, *,
                 severity: str = "warning", enabled: bool = True, cooldown_s: float = 0.0,
                 hysteresis: bool = True, reset: float | None = None, pair: str | None = None,
                 message: str | None = None, actions: Iterable[str] | None = None):
        if not isinstance(name, str) or not name.strip():
            raise AlertError(f"rule name must be a non-empty string, got {name!r}")
        self.name = name.strip()
        cond = _as_condition(condition)
        if reset is not None:
            leaves = cond.leaves()
            if len(leaves) != 1 or not isinstance(cond, Rule):
                raise AlertError(f"rule {self.name!r}: reset= applies to a single comparison; "
                                 f"write 'reset LEVEL' after each comparison of {cond}")
            cond = Rule(cond.metric, cond.op, cond.threshold, reset=reset)
        _reject_reset_under_not(cond, self.name)
        self.condition = cond
        if severity not in SEVERITIES:
            raise AlertError(f"rule {self.name!r}: severity must be one of {SEVERITIES}, "
                             f"got {severity!r}")
        self.severity = severity
        self.enabled = bool(enabled)
        self.cooldown_s = _number(cooldown_s, f"rule {self.name!r} cooldown_s")
        if self.cooldown_s < 0:
            raise AlertError(f"rule {self.name!r}: cooldown_s must be >= 0, got {cooldown_s!r}")
        self.hysteresis = bool(hysteresis)
        self.pair = pair
        self.actions = None if actions is None else tuple(actions)
        if isinstance(actions, str):
            raise AlertError(f"rule {self.name!r}: actions must be a list of sink names")
        self.message = message
        if message is not None:
            from .events import check_template
            check_template(message, set(self.condition.metrics), f"rule {self.name!r} message")

    @property
    def metrics(self) -> list[str]:
        return self.condition.metrics

    def to_dict(self) -> dict:
        """JSON-ready definition (also the form stored in the ``alert_rules`` table)."""
        return {"name": self.name, "condition": self.condition.to_dict(),
                "text": str(self.condition), "severity": self.severity, "enabled": self.enabled,
                "cooldown_s": self.cooldown_s, "hysteresis": self.hysteresis, "pair": self.pair,
                "message": self.message,
                "actions": None if self.actions is None else list(self.actions)}

    @classmethod
    def from_dict(cls, d: Mapping) -> AlertRule:
        """Inverse of :meth:`to_dict`; ``condition`` may also be an expression string."""
        if not isinstance(d, Mapping) or "name" not in d or "condition" not in d:
            raise AlertError("an alert rule needs at least 'name' and 'condition'")
        known = {"name", "condition", "text", "severity", "enabled", "cooldown_s", "hysteresis",
                 "pair", "message", "actions", "reset"}
        extra = set(d) - known
        if extra:
            raise AlertError(f"rule {d['name']!r}: unexpected keys {sorted(extra)}; "
                             f"known: {sorted(known)}")
        kw = {k: d[k] for k in known - {"name", "condition", "text"} if d.get(k) is not None}
        return cls(d["name"], d["condition"], **kw)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> AlertRule:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise AlertError(f"rule JSON is invalid at line {e.lineno} column {e.colno}: "
                             f"{e.msg}") from None

    def replace(self, **changes) -> AlertRule:
        """A copy with some fields changed (``enabled=False``, ``cooldown_s=60`` ...)."""
        return AlertRule.from_dict(self.to_dict() | changes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AlertRule) and self.to_dict() == other.to_dict()

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        flags = [self.severity] + ([] if self.enabled else ["disabled"])
        if self.cooldown_s:
            flags.append(f"cooldown {_fmt(self.cooldown_s)}s")
        return f"AlertRule({self.name!r}: {self.condition} [{', '.join(flags)}])"


def _reject_reset_under_not(cond: Condition, name: str, under_not: bool = False) -> None:
    if isinstance(cond, Rule):
        if under_not and cond.reset is not None:
            raise AlertError(f"rule {name!r}: a reset level inside 'not' has no meaning ({cond}); "
                             f"invert the comparison instead")
    elif isinstance(cond, Not):
        _reject_reset_under_not(cond.child, name, True)
    else:
        for c in cond.children:
            _reject_reset_under_not(c, name, under_not)
