"""Alert conditions: builder, text parser (precedence, errors with carets), JSON round-trip, and
agreement of the compiled (live) and vectorised (history) evaluations."""

import json
import math
import random

import numpy as np
import pandas as pd
import pytest

from qdash.alerts import (
    AlertRule,
    And,
    Not,
    Or,
    Rule,
    condition_from_dict,
    condition_from_json,
    parse,
)
from qdash.alerts.operators import OPERATOR_TABLE
from qdash.errors import AlertError, QdashError, RuleSyntaxError

METRICS = ["zscore", "corr", "adf_p", "half_life"]


def test_builder_operators_make_flat_trees():
    a, b, c = Rule("zscore", ">", 2), Rule("corr", ">", 0.8), Rule("adf_p", "<", 0.05)
    tree = a & b & c
    assert isinstance(tree, And) and tree.children == (a, b, c)
    assert isinstance(a | b | c, Or) and len((a | b | c).children) == 3
    assert (a & b) | ~c == Or(And(a, b), Not(c))
    assert str((a | b) & ~c) == "(zscore > 2 or corr > 0.8) and not adf_p < 0.05"
    assert tree.metrics == ["zscore", "corr", "adf_p"]


@pytest.mark.parametrize("text, expected", [
    ("zscore > 2 and corr > 0.8 or abs(zscore) > 3",
     Or(And(Rule("zscore", ">", 2), Rule("corr", ">", 0.8)), Rule("zscore", "abs>", 3))),
    ("zscore > 2 or corr > 0.8 and adf_p < 0.05",
     Or(Rule("zscore", ">", 2), And(Rule("corr", ">", 0.8), Rule("adf_p", "<", 0.05)))),
    ("(zscore > 2 or corr > 0.8) and adf_p < 0.05",
     And(Or(Rule("zscore", ">", 2), Rule("corr", ">", 0.8)), Rule("adf_p", "<", 0.05))),
    ("not zscore > 2 and corr > 0.8",
     And(Not(Rule("zscore", ">", 2)), Rule("corr", ">", 0.8))),
    ("not (zscore > 2 and corr > 0.8)",
     Not(And(Rule("zscore", ">", 2), Rule("corr", ">", 0.8)))),
    ("NOT NOT zscore <= -1.5e0", Not(Not(Rule("zscore", "<=", -1.5)))),
    ("|zscore| >= 3", Rule("zscore", "abs>=", 3)),
    ("zscore crosses above 2 reset 0.5", Rule("zscore", "crosses_above", 2, reset=0.5)),
    ("zscore crosses_below -2", Rule("zscore", "crosses_below", -2)),
    ("age_y_s>5", Rule("age_y_s", ">", 5)),
])
def test_parser_precedence_and_forms(text, expected):
    parsed = parse(text)
    assert parsed == expected
    assert parse(str(parsed)) == parsed


def _random_tree(rng: random.Random, depth: int):
    if depth == 0 or rng.random() < 0.3:
        op = rng.choice([">", ">=", "<", "<=", "abs>", "crosses_above", "crosses_below"])
        th = round(rng.uniform(-2, 2), 2)
        reset = None
        if op in (">", "crosses_above") and rng.random() < 0.3:
            reset = th - 0.5
        return Rule(rng.choice(METRICS), op, th, reset=reset)
    kind = rng.choice(["and", "or", "not"])
    if kind == "not":
        child = _random_tree(rng, depth - 1)
        while any(leaf.reset is not None for leaf in child.leaves()):
            child = _random_tree(rng, depth - 1)
        return Not(child)
    kids = [_random_tree(rng, depth - 1) for _ in range(rng.randint(2, 3))]
    return (And if kind == "and" else Or)(*kids)


def test_text_and_json_round_trip_random_trees():
    rng = random.Random(1)
    for _ in range(300):
        tree = _random_tree(rng, 4)
        assert parse(str(tree)) == tree, str(tree)
        assert condition_from_json(tree.to_json()) == tree
        assert condition_from_dict(json.loads(json.dumps(tree.to_dict()))) == tree


def test_truth_table_matches_python_precedence():
    """Independent reference: Python's own not/and/or precedence on boolean literals."""
    rng = random.Random(2)
    names = ["a", "b", "c", "d"]
    for _ in range(400):
        parts = []
        for i in range(rng.randint(1, 6)):
            if i:
                parts.append(rng.choice(["and", "or"]))
            parts.append("not " * rng.randint(0, 2) + f"{rng.choice(names)} > 0")
        text = " ".join(parts)
        if rng.random() < 0.5 and len(parts) >= 3:
            text = f"({' '.join(parts[:3])}) " + " ".join(parts[3:])
        truth = {n: rng.random() < 0.5 for n in names}
        values = {n: 1.0 if t else -1.0 for n, t in truth.items()}
        python_expr = text
        for n in names:
            python_expr = python_expr.replace(f"{n} > 0", str(truth[n]))
        assert parse(text).evaluate(values) == eval(python_expr), text


@pytest.mark.parametrize("text, column, token, fragment", [
    ("zscore > and corr > 0.8", 10, "and", "expected a number after '>'"),
    ("zscore > 2 and", 15, "", "expected a metric name"),
    ("(zscore > 2 or corr > 0.8", 26, "", "expected ')' to close the '(' at column 1"),
    ("zscore > 2)", 11, ")", "unmatched ')'"),
    ("zscore > 2 corr > 0.8", 12, "corr", "combine conditions with 'and' / 'or'"),
    ("zscore == 2", 8, "=", "use >=, <=, > or <"),
    ("zscore crosses 2", 16, "2", "expected 'above' or 'below'"),
    ("abs(zscore) crosses above 2", 13, "crosses", "abs(...) takes"),
    ("zscore > 2 reset 2.5", 18, "2.5", "must be <= the threshold 2"),
    ("zscore < -2 reset -3", 19, "-3", "must be >= the threshold -2"),
    ("zscore ~ 2", 8, "~", "unexpected character '~'"),
    ("zscore", 7, "", "expected a comparison"),
    ("", 1, "", "empty expression"),
])
def test_parse_errors_point_at_the_token(text, column, token, fragment):
    with pytest.raises(RuleSyntaxError) as info:
        parse(text)
    err = info.value
    assert isinstance(err, QdashError) and isinstance(err, ValueError)
    assert fragment in str(err)
    assert err.column == column and err.position == column - 1
    assert err.token == token
    lines = str(err).splitlines()
    assert lines[-2] == "  " + text
    caret = lines[-1]
    assert caret.index("^") == column - 1 + 2
    assert caret.count("^") == max(1, len(token))


def test_parse_error_on_second_line_names_line_and_column():
    with pytest.raises(RuleSyntaxError) as info:
        parse("zscore > 2\n  and corr >> 1")
    assert info.value.line == 2 and info.value.column == 13
    assert "(line 2, column 13)" in str(info.value)


def test_known_metrics_reject_typos_with_hint():
    with pytest.raises(RuleSyntaxError, match="unknown metric 'zscroe'; did you mean 'zscore'"):
        parse("zscroe > 2", known_metrics=["zscore", "corr"])


def test_leaf_validation_errors():
    with pytest.raises(AlertError, match="unknown operator"):
        Rule("zscore", "=>", 2)
    with pytest.raises(AlertError, match="finite"):
        Rule("zscore", ">", float("nan"))
    with pytest.raises(AlertError, match="identifier"):
        Rule("z score", ">", 2)
    with pytest.raises(AlertError, match="keyword"):
        Rule("and", ">", 2)
    with pytest.raises(AlertError, match="reset level 3 must be <="):
        Rule("zscore", ">", 2, reset=3)
    with pytest.raises(AlertError, match="absolute value must be >= 0"):
        Rule("zscore", "|x| >", 2, reset=-1)
    assert Rule("zscore", "crosses above", 2).op == "crosses_above"
    assert Rule("zscore", "|x| >", 2).op == "abs>"
    with pytest.raises(AlertError, match=r"condition.and\[1\]: comparison lacks \['value'\]"):
        condition_from_dict({"and": [{"metric": "zscore", "op": ">", "value": 1},
                                     {"metric": "corr", "op": ">"}]})
    with pytest.raises(AlertError, match="line 1 column"):
        condition_from_json('{"metric": ')


def test_comparisons_on_missing_none_nan_are_false():
    for op in [">", ">=", "<", "<=", "abs>", "crosses_above", "crosses_below"]:
        f = Rule("zscore", op, 0).compile()
        for values in ({}, {"zscore": None}, {"zscore": math.nan}):
            assert f(values, {"zscore": -1.0}) is False
            # a missing previous value only matters to crossings
            assert f({"zscore": 1.0}, values) is (op in (">", ">=", "abs>"))
    assert Not(Rule("corr", ">", 0.8)).evaluate({}) is True


def test_crossing_semantics():
    up = Rule("zscore", "crosses above", 2).compile()
    assert up({"zscore": 2.1}, {"zscore": 1.9})
    assert up({"zscore": 2.1}, {"zscore": 2.0})       # from on the threshold
    assert not up({"zscore": 2.0}, {"zscore": 1.9})   # must end strictly above
    assert not up({"zscore": 2.2}, {"zscore": 2.1})   # already above
    assert not up({"zscore": 2.2}, {})                # no previous value
    down = Rule("zscore", "crosses below", -2).compile()
    assert down({"zscore": -2.1}, {"zscore": -1.0}) and not down({"zscore": -1.0}, {"zscore": -3})


def test_compiled_and_vectorised_evaluations_agree():
    """The live (compiled, row by row with the previous row) and history (numpy mask) forms."""
    rng = random.Random(3)
    n = 200
    nprng = np.random.default_rng(3)
    frame = pd.DataFrame({m: nprng.normal(0, 1.2, n).round(1) for m in METRICS})
    frame.iloc[nprng.choice(n, 15, replace=False), 0] = np.nan
    records = frame.to_dict("records")
    for _ in range(150):
        tree = _random_tree(rng, 3)
        for relaxed in (False, True):
            f = tree.compile(relaxed=relaxed)
            live = [f(records[i], records[i - 1] if i else {}) for i in range(n)]
            assert tree.mask(frame, relaxed=relaxed).tolist() == live, (str(tree), relaxed)


def test_relaxed_condition_is_implied_by_the_condition():
    rng = random.Random(4)
    nprng = np.random.default_rng(4)
    frame = pd.DataFrame({m: nprng.normal(0, 1.5, 300) for m in METRICS})
    for _ in range(150):
        tree = _random_tree(rng, 3)
        cond, relaxed = tree.mask(frame), tree.mask(frame, relaxed=True)
        assert not (cond & ~relaxed).any(), str(tree)


def test_alert_rule_validation_and_json():
    rule = AlertRule("z-high", "zscore > 2 and corr > 0.8", severity="critical", cooldown_s=60,
                     message="z={zscore:.2f} on {pair}", actions=["slack"])
    again = AlertRule.from_json(rule.to_json())
    assert again == rule and again.condition == rule.condition and again.actions == ("slack",)
    assert AlertRule("z", "zscore > 2", reset=1.5).condition == Rule("zscore", ">", 2, reset=1.5)
    with pytest.raises(AlertError, match="single comparison"):
        AlertRule("z", "zscore > 2 and corr > 0.5", reset=1.5)
    with pytest.raises(AlertError, match="inside 'not'"):
        AlertRule("z", "not zscore > 2 reset 1")
    with pytest.raises(AlertError, match="severity"):
        AlertRule("z", "zscore > 2", severity="urgent")
    with pytest.raises(AlertError, match=r"unknown field \{zscroe\}; did you mean \{zscore\}"):
        AlertRule("z", "zscore > 2", message="{zscroe}")
    with pytest.raises(AlertError, match="does not format"):
        AlertRule("z", "zscore > 2", message="{zscore:.2q}")
    with pytest.raises(AlertError, match="unexpected keys"):
        AlertRule.from_dict({"name": "z", "condition": "zscore > 2", "cooldown": 5})
    with pytest.raises(RuleSyntaxError):
        AlertRule("z", "zscore >")


@pytest.mark.parametrize("op", sorted(OPERATOR_TABLE))
@pytest.mark.parametrize("relaxed", [False, True])
def test_each_operator_of_the_one_table_agrees_live_and_on_history(op, relaxed):
    x = np.array([0.5, 2.5, np.nan, -3.0, 1.0, 2.0, 2.0, -2.5, 3.0, -1.0])
    rule = Rule("zscore", op, 2.0)
    live = rule.compile(relaxed=relaxed)
    prev: dict = {}
    expect = []
    for v in x:
        cur = {"zscore": v}
        expect.append(live(cur, prev))
        prev = cur
    got = rule.mask(pd.DataFrame({"zscore": x}), relaxed=relaxed)
    assert got.tolist() == expect
