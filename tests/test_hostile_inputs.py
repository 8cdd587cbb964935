"""Inputs built to stall the tools finish fast with a message: each case well under a second."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from test_records_cli import run_cli

from runner.format.expr import parse_expression
from runner.parse.markdown import parse_text

HEAD = "---\nname: Hostile\nservice: test\nobjective: Test\n{extra}---\n# Hostile\n\n## Steps\n\n"


def _check(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str, float]:
    started = time.monotonic()
    code, out, err = run_cli(capsys, "check", str(path))
    return code, out + err, time.monotonic() - started


def test_a_long_role_line_is_parsed_in_linear_time() -> None:
    # Spaces around a name then a stray mark: the old pattern took 16 s at n=100 (growth n⁴).
    line = "Role:" + " " * 5000 + "x" + " " * 5000 + "*x"
    text = HEAD.format(extra="") + f"1. Step\n\n   {line}\n\n   ```bash\n   echo\n   ```\n"
    started = time.monotonic()
    book = parse_text(text)
    assert time.monotonic() - started < 1
    assert book.steps[0].role is None  # a stray `*` after the name: not a role line


@pytest.mark.parametrize(
    "role_line, role",
    [
        ("Role: lead", "lead"),
        ("**Role:** incident lead", "incident lead"),
        ("_role_: `lead`", "lead"),
    ],
)
def test_role_lines_still_read(role_line: str, role: str) -> None:
    text = HEAD.format(extra="") + f"1. Step\n\n   {role_line}\n\n   ```bash\n   echo\n   ```\n"
    assert parse_text(text).steps[0].role == role


def test_a_yaml_alias_bomb_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        bomb += f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]\n"
    path = tmp_path / "bomb.md"
    path.write_text(HEAD.format(extra=bomb))
    code, text, took = _check(capsys, path)
    assert took < 1 and code == 1
    assert "front matter is not valid YAML: uses the YAML alias *a; write the value out" in text


def test_a_huge_integer_is_a_message_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "big.md"
    path.write_text(HEAD.format(extra="time_limit: " + "9" * 5000 + "\n"))
    code, text, took = _check(capsys, path)
    assert took < 1 and code == 1
    assert "front matter is not valid YAML" in text and "internal error" not in text


def test_a_fifo_is_refused_without_blocking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    code, text, took = _check(capsys, fifo)
    assert took < 1 and code == 1  # check: 1 when it finds problems, this one included
    assert "is not a regular file" in text


def test_dev_zero_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, text, took = _check(capsys, Path("/dev/zero"))
    assert took < 1 and code == 1 and "not a regular file" in text


def test_a_thousand_clause_condition_evaluates() -> None:
    source = " or ".join(f"x == {i}" for i in range(1000)) + " and y"
    started = time.monotonic()
    expression = parse_expression(source)
    assert expression.evaluate({"x": 999, "y": True}) is True
    assert expression.evaluate({"x": 1000, "y": True}) is False
    assert time.monotonic() - started < 1
