"""Input values: typed, checked against their declaration, mistakes named before any step."""

from __future__ import annotations

import pytest

from runner.format.inputs import InputValueError, coerce, resolve
from runner.format.model import InputSpec, Metadata


def meta(*specs: InputSpec) -> Metadata:
    return Metadata(id="x", name="x", inputs=specs)


@pytest.mark.parametrize(
    ("spec", "given", "expected"),
    [
        (InputSpec("n", type="integer"), "42", 42),
        (InputSpec("n", type="number"), "1.5", 1.5),
        (InputSpec("b", type="boolean"), "yes", True),
        (InputSpec("b", type="boolean"), False, False),
        (InputSpec("l", type="list"), "a, b,c", ("a", "b", "c")),
        (InputSpec("l", type="list"), ["a", 1], ("a", 1)),
        (InputSpec("s", enum=("high", "low")), "high", "high"),
        (InputSpec("s", pattern=r"[a-z0-9-]+"), "wks-0042", "wks-0042"),
    ],
    ids=["integer", "number", "boolean-word", "boolean", "list-text", "list", "enum", "pattern"],
)
def test_values_are_typed(spec: InputSpec, given: object, expected: object) -> None:
    assert coerce(spec, given) == expected


@pytest.mark.parametrize(
    ("spec", "given", "message"),
    [
        (InputSpec("n", type="integer"), "4.2", "'4.2' is not a whole number"),
        (InputSpec("b", type="boolean"), "maybe", "'maybe' is not a boolean (use true or false)"),
        (InputSpec("s", enum=("high", "low")), "extreme", "'extreme' is not one of: high, low"),
        (InputSpec("s", pattern=r"[a-z]+"), "A1", "'A1' does not match the pattern '[a-z]+'"),
        (InputSpec("t", type="integer", secret=True), "hunter2", "the value is not a whole number"),
    ],
    ids=["integer", "boolean", "enum", "pattern", "secret-not-echoed"],
)
def test_bad_values_say_why(spec: InputSpec, given: object, message: str) -> None:
    with pytest.raises(InputValueError) as exc:
        coerce(spec, given)
    assert str(exc.value) == message


def test_defaults_fill_in_and_every_problem_is_listed() -> None:
    book = meta(
        InputSpec("host_id", default="wks-0042"),
        InputSpec("api_token", required=True, secret=True),
        InputSpec("severity", enum=("low", "high"), default="low"),
    )
    values, problems = resolve(book, {"hots_id": "x", "severity": "extreme"})
    assert values == {"host_id": "wks-0042"}
    assert problems == [
        "unknown input 'hots_id' (did you mean 'host_id'? "
        "this runbook's inputs: api_token, host_id, severity)",
        "input 'api_token' is required; give it with --inputs FILE, RUNBOOK_INPUT_API_TOKEN",
        "input 'severity': 'extreme' is not one of: low, high",
    ]
