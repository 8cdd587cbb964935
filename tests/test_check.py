"""Lint rules across the plan: each code fires on the file that earns it, and not on a clean one."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.check.lint import check_path, iter_runbook_files, lint, load_for_run, resolve_runbook
from runner.errors import InvalidRunbook, UsageError
from runner.format.model import Problem
from runner.parse.markdown import parse_text

CLEAN = """\
---
name: Clean
service: edr
objective: Contain within 1 hour
time_limit: 1h
roles:
  L1: analyst
  L2: responder
inputs:
  severity: {type: string, default: high}
---
# Clean

## Steps

### 1. Confirm
Role: L1

```bash {id=confirm outputs=confirmed}
confirmed=yes
```

### 2. Isolate
Role: L2

```bash {approve=L2 when="confirmed == 'yes' and severity == 'high'" on_failure=procedure:manual}
curl -X POST http://edr/isolate
```

## Alternative procedures

### Manual

1. Unplug it.
   Role: L1

## Success criteria

- Isolated
"""


def lint_text(text: str, path: str = "runbooks/x.md") -> list[Problem]:
    return lint(parse_text(textwrap.dedent(text), path=path))


def found(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.code, p.level) for p in problems]


def test_clean_runbook_has_no_problems() -> None:
    assert lint_text(CLEAN) == []


CASES = [
    ("no-steps-section", ("## Steps", "## Procedure"), "RB020", "error", 1),
    ("block-in-no-step", ("### 1. Confirm", "Confirm:"), "RB045", "warning", 19),
    ("duplicate-id", ("{approve=L2", "{id=confirm approve=L2"), "RB022", "error", 23),
    ("unknown-when-name", ("confirmed == 'yes'", "confirmd == 'yes'"), "RB033", "error", 26),
    ("missing-procedure", ("procedure:manual}", "procedure:manaul}"), "RB034", "error", 26),
    ("undeclared-role", ("Role: L2", "Role: L3"), "RB035", "error", 23),
    ("undeclared-approver", ("approve=L2", "approve=IR-lead"), "RB038", "error", 26),
    ("no-kernel", ("```bash {id=confirm", "```ruby {id=confirm"), "RB036", "warning", 19),
    ("no-role", ("Role: L2\n", ""), "RB041", "warning", 23),
    ("no-objective", ("objective: Contain within 1 hour\n", ""), "RB042", "warning", 1),
    ("no-time-limit", ("time_limit: 1h\n", ""), "RB043", "warning", 1),
    ("no-success-criteria", ("## Success criteria", "## Notes"), "RB044", "warning", 1),
    ("kernel-not-installed", ("roles:", "kernels: {ruby: no-such-kernel}\nroles:"), "RB039",
     "error", 1),
]  # fmt: skip


@pytest.mark.parametrize(("change", "code", "level", "line"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_each_rule(change: tuple[str, str], code: str, level: str, line: int) -> None:
    old, new = change
    assert old in CLEAN
    problems = lint_text(CLEAN.replace(old, new, 1))
    assert [(code, level)] == [(p.code, p.level) for p in problems if p.code == code]
    assert [p.line for p in problems if p.code == code] == [line]


def test_steps_section_with_no_steps() -> None:
    text = CLEAN.split("### 1. Confirm")[0] + "Just prose.\n"
    problems = lint_text(text)
    assert [(p.code, p.level, p.line) for p in problems if p.code == "RB021"] == [
        ("RB021", "error", 14)  # the `## Steps` heading, where the author must add steps
    ]


def test_when_naming_a_later_output() -> None:
    text = CLEAN.replace(
        "{id=confirm outputs=confirmed}", "{id=confirm outputs=confirmed when=later}"
    )
    text = text.replace(
        "on_failure=procedure:manual}", "on_failure=procedure:manual outputs=later}"
    )
    [problem] = [p for p in lint_text(text) if p.code == "RB033"]
    assert "only set by a later step" in problem.message


def test_did_you_mean_for_names() -> None:
    text = CLEAN.replace("confirmed == 'yes'", "confirmd == 'yes'")
    [problem] = [p for p in lint_text(text) if p.code == "RB033"]
    assert "(did you mean 'confirmed'?)" in problem.message


def test_duplicate_ids_across_procedures() -> None:
    text = CLEAN.replace(
        "1. Unplug it.\n   Role: L1\n", "1. Unplug\n   ```bash {id=confirm}\n   x\n   ```\n"
    )
    assert "RB022" in [p.code for p in lint_text(text)]


def test_plain_markdown_gets_warnings_only() -> None:
    problems = lint_text("# Disk full\n\n## Check\n\n```bash\ndf -h\n```\n\n```ruby\nx\n```\n")
    assert found(problems) == [("RB020", "warning"), ("RB040", "warning"), ("RB036", "warning")]
    rb040 = next(p for p in problems if p.code == "RB040")
    assert "no front matter" in rb040.message and "time_limit" in rb040.message


def test_front_matter_that_is_not_yaml_is_not_called_plain_markdown() -> None:
    # name and service are written; the YAML error is the problem, not a missing format.
    problems = lint_text(CLEAN.replace("service: edr", "service: [edr"))
    assert ("RB010", "error") in found(problems)
    assert "RB040" not in [p.code for p in problems]


def test_runnable_blocks_in_no_step_are_reported_where_they_never_run() -> None:
    text = CLEAN.replace("## Steps\n", "## Steps\n\n```bash\nsetup\n```\n").replace(
        "### Manual\n", "### Manual\n\n```python {exec=false}\nshown()\n```\n\n```sh\nx\n```\n"
    )
    stray = [(p.line, p.level) for p in lint_text(text) if p.code == "RB045"]
    assert stray == [(16, "warning"), (42, "warning")]  # not the exec=false block


def test_exec_false_silences_no_kernel() -> None:
    text = CLEAN.replace("```bash {id=confirm", "```ruby {exec=false id=confirm")
    assert "RB036" not in [p.code for p in lint_text(text)]


def test_problems_are_sorted_by_line() -> None:
    text = CLEAN.replace("Role: L2", "Role: L9").replace("objective: Contain within 1 hour\n", "")
    lines = [p.line for p in lint_text(text)]
    assert lines == sorted(lines)


def test_check_path_turns_unreadable_into_a_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bin.md"
    bad.write_bytes(b"# x\n\x00\x01")
    [problem] = check_path(bad)
    assert (problem.code, problem.level, problem.line) == ("RB002", "error", 2)


def test_load_for_run_refuses_errors_and_allows_warnings(tmp_path: Path) -> None:
    good = tmp_path / "good.md"
    good.write_text(CLEAN.replace("objective: Contain within 1 hour\n", ""))
    assert load_for_run(good).metadata.name == "Clean"
    bad = tmp_path / "bad.md"
    bad.write_text(CLEAN.replace("Role: L2", "Role: L9"))
    with pytest.raises(InvalidRunbook) as info:
        load_for_run(bad)
    assert [p.code for p in info.value.problems] == ["RB035"]
    assert f"{bad}:23: error RB035" in str(info.value)


def test_iter_runbook_files(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    for name in ("a.md", "b/c.MD", "b/notes.txt", ".hidden/x.md"):
        (tmp_path / name).write_text("# x\n")
    files = iter_runbook_files([tmp_path, tmp_path / "a.md"])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a.md", "b/c.MD"]
    with pytest.raises(UsageError, match="no such file or folder"):
        iter_runbook_files([tmp_path / "missing"])


def test_resolve_runbook_by_path_stem_or_id(tmp_path: Path) -> None:
    (tmp_path / "file-name.md").write_text(
        CLEAN.replace("name: Clean", "id: clean-id\nname: Clean")
    )
    assert resolve_runbook("file-name", [tmp_path]).name == "file-name.md"
    assert resolve_runbook("clean-id", [tmp_path]).name == "file-name.md"
    with pytest.raises(UsageError, match="no runbook with that id"):
        resolve_runbook("nothing", [tmp_path])


def test_a_concurrency_target_must_be_a_declared_input_that_is_not_secret(tmp_path: Path) -> None:
    from runner.check.lint import lint
    from runner.parse.markdown import parse_file

    def codes(concurrency: str) -> list[str]:
        path = tmp_path / "limited.md"
        path.write_text(
            "---\nname: Limited\nservice: test\n"
            f"concurrency:\n{concurrency}\n"
            "inputs:\n  host: {type: string}\n  token: {type: string, secret: true}\n---\n"
            "# Limited\n\n## Steps\n\n1. Look.\n"
        )
        return [p.code for p in lint(parse_file(path)) if p.level == "error"]

    assert codes("  target: host\n  per_target: 2") == []
    assert codes("  target: hots") == ["RB018"]
    assert codes("  target: token") == ["RB019"]
    assert codes("  runs: 0") == ["RB014"]
    assert codes("  per_targets: 1") == ["RB013"]
