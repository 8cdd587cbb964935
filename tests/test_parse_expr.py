"""The `when=` language: parsed by a small recursive-descent parser, never eval-ed."""

from __future__ import annotations

import pytest

from runner.errors import ExpressionError
from runner.format.expr import Value, describe, parse_expression

ENV: dict[str, Value] = {
    "severity": "high",
    "count": 3,
    "ratio": 0.5,
    "isolated": True,
    "empty": "",
    "hosts": ["a", "b"],
    "none": None,
}

TRUTH = [
    ("eq-string", "severity == 'high'", True),
    ("eq-double-quotes", 'severity == "low"', False),
    ("ne", "severity != 'low'", True),
    ("lt", "count < 4", True),
    ("le", "count <= 3", True),
    ("gt", "count > 3", False),
    ("ge-float", "ratio >= 0.5", True),
    ("negative", "count > -1", True),
    ("in-list", "severity in ['high', 'critical']", True),
    ("not-in-list", "severity not in ['high', 'critical']", False),
    ("in-name-list", "'a' in hosts", True),
    ("in-string", "'ig' in severity", True),
    ("bare-name", "isolated", True),
    ("empty-string-false", "empty", False),
    ("not", "not isolated", False),
    ("not-not", "not not isolated", True),
    ("and", "isolated and count == 3", True),
    ("or", "not isolated or count == 3", True),
    ("and-binds-tighter", "true or false and false", True),
    ("parentheses", "(true or false) and false", False),
    ("not-binds-looser-than-compare", "not count == 4", True),
    ("null", "none == null", True),
    ("python-spelling", "isolated == True and none == None", True),
    ("empty-list", "severity in []", False),
]


@pytest.mark.parametrize(("source", "expected"), [c[1:] for c in TRUTH],
                         ids=[c[0] for c in TRUTH])  # fmt: skip
def test_truth_table(source: str, expected: bool) -> None:
    assert parse_expression(source).evaluate(ENV) is expected


def test_names_are_collected_without_evaluating() -> None:
    expr = parse_expression("severity in ['high'] and not isolated or ticket_id != null")
    assert expr.names == {"severity", "isolated", "ticket_id"}


ERRORS = [
    ("empty", "", "empty condition"),
    ("unclosed-paren", "(a or b", "expected ')' but found the end at column 8"),
    ("dangling-operator", "a ==", "expected a value but found the end at column 5"),
    ("two-values", "a b", "unexpected 'b' at column 3"),
    ("bad-character", "a & b", "unexpected character '&' at column 3"),
    ("call", "__import__('os')", "unexpected '(' at column 11"),
    ("attribute-call", "os.system('ls')", "unexpected '(' at column 10"),
    ("lambda", "lambda: 1", "unexpected character ':' at column 7"),
    ("chained-compare", "1 < a < 3", "unexpected '<' at column 7"),
    ("not-without-in", "a not b", "expected 'in' after 'not' at column 3"),
    ("unclosed-list", "a in [1, 2", "expected ']' but found the end"),
    ("too-deep", "(" * 40 + "a" + ")" * 40, "nested more than 32 levels deep"),
    ("arithmetic", "count + 1 > 2", "unexpected character '+'"),
]


@pytest.mark.parametrize(("source", "words"), [c[1:] for c in ERRORS],
                         ids=[c[0] for c in ERRORS])  # fmt: skip
def test_syntax_errors_say_where(source: str, words: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(source)
    assert words in str(info.value)


def test_unknown_name_at_run_time_is_an_error_not_false() -> None:
    with pytest.raises(ExpressionError, match="'ticket' has no value"):
        parse_expression("ticket == 'x'").evaluate(ENV)


def test_comparing_incomparable_values_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="cannot compare"):
        parse_expression("count < 'x'").evaluate(ENV)


def test_evaluation_has_no_side_effects_on_the_environment() -> None:
    env = dict(ENV)
    parse_expression("severity in ['high'] and isolated").evaluate(env)
    assert env == ENV


DESCRIBE = [
    ("list", "severity in ['high','critical']", "only when severity is one of high or critical"),
    ("not-in", "x not in ['a']", "only when x is not one of a"),
    ("compare", "count >= 3 and not isolated", "only when count is at least 3 and not isolated"),
    ("quoted-space", "reason == 'logged in'", "only when reason is 'logged in'"),
    ("parens", "(a or b) and c", "only when (a or b) and c"),
    ("unparsable", "a ==", "only when a =="),
]


@pytest.mark.parametrize(("source", "words"), [c[1:] for c in DESCRIBE],
                         ids=[c[0] for c in DESCRIBE])  # fmt: skip
def test_describe_in_plain_words(source: str, words: str) -> None:
    assert describe(source) == words
