"""Mistakes that change what runs are errors: each seeded into a copy of an example runbook.

Each case edits one example the way a new author would get it wrong and asserts the code, the
line and the severity `runbook check` reports; the last tests make single-character edits of
every step heading, fence language and attribute brace and assert that none changes the plan
without an error.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from runner.check.lint import lint
from runner.format.model import Problem, Runbook
from runner.parse.markdown import parse_text

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "runbooks").glob("*.md"))
ENDPOINT = (ROOT / "runbooks" / "compromised-endpoint.md").read_text(encoding="utf-8")
CLOUD = (ROOT / "runbooks" / "cloud-misconfiguration.md").read_text(encoding="utf-8")
RUNBOOK = ROOT / ".venv" / "bin" / "runbook"


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def lint_text(text: str) -> list[Problem]:
    return lint(parse_text(text, path="runbooks/x.md"))


def seeded(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# (id, source, old, new, code, level, the text whose line the finding names)
CASES = [
    ("h2-step", ENDPOINT, "### 2. Check", "## 2. Check", "RB023", "error", "## 2. Check"),
    ("h4-step", ENDPOINT, "### 2. Check", "#### 2. Check", "RB023", "error", "#### 2. Check"),
    ("h5-step", ENDPOINT, "### 4. Isolate", "##### 4. Isolate", "RB023", "error", "##### 4."),
    ("no-space", ENDPOINT, "### 2. Check", "###2. Check", "RB023", "error", "###2. Check"),
    ("no-space-h2", ENDPOINT, "### 4. Isolate", "##4. Isolate", "RB023", "error", "##4. Isol"),
    ("h4-sub-heading", ENDPOINT, "Read the alert and", "#### Read it\n\nRead the alert and",
     "RB024", "error", "#### Read it"),
    ("unbraced", CLOUD, "{id=redeploy approve=IR-lead", "id=redeploy approve=IR-lead",
     "RB028", "error", "id=redeploy approve=IR-lead"),
    ("misspelled-bash", ENDPOINT, "```bash {id=isolate", "```bsah {id=isolate", "RB026", "error",
     "```bsah"),
    ("misspelled-sh", ENDPOINT, "```bash {id=isolate", "```hs {id=isolate", "RB026", "error",
     "```hs"),
    ("misspelled-python", CLOUD, "```python {id=redeploy", "```pyhton {id=redeploy", "RB026",
     "error", "```pyhton"),
    ("no-language", ENDPOINT, "```bash {id=isolate", "``` {id=isolate", "RB027", "error",
     "``` {id=isolate"),
    ("shell-lower-case-input", ENDPOINT, '"$BASE_URL/api/edr/hosts/$HOST_ID/isolate"',
     '"$BASE_URL/api/edr/hosts/$host_id/isolate"', "RB062", "error", "hosts/$host_id"),
    ("shell-squashed-input", ENDPOINT, '"$BASE_URL/api/edr/hosts/$HOST_ID/isolate"',
     '"$BASE_URL/api/edr/hosts/$HOSTID/isolate"', "RB062", "error", "hosts/$HOSTID"),
    ("shell-braced-input", ENDPOINT, '"$BASE_URL/api/edr/hosts/$HOST_ID/isolate"',
     '"$BASE_URL/api/edr/hosts/${host_id}/isolate"', "RB062", "error", "hosts/${host_id}"),
    ("shell-if-without-fi", ENDPOINT, "SHA=$(curl", "if true; then\nSHA=$(curl", "RB061", "error",
     "VERDICT=$(jq -er"),
    ("duplicate-key", ENDPOINT, "severity: high\nobjective", "severity: critical\nseverity: low\n"
     "objective", "RB016", "error", "severity: low"),
    ("required-with-default", ENDPOINT, "    required: true\n", "    required: true\n"
     "    default: x\n", "RB017", "error", "---"),
    ("role-contradicts", ENDPOINT, "```bash {id=isolate", "```bash {role=L1 id=isolate", "RB047",
     "warning", "```bash {role=L1"),
    ("kernel-not-installed", ENDPOINT, "tags: [edr", "kernels: {bash: no-such-kernel}\ntags: [edr",
     "RB039", "error", "---"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "old", "new", "code", "level", "at"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])  # fmt: skip
def test_each_mistake_is_reported(
    source: str, old: str, new: str, code: str, level: str, at: str
) -> None:
    text = seeded(source, old, new)
    found = [(p.code, p.level, p.line) for p in lint_text(text) if p.code == code]
    assert found == [(code, level, line_of(text, at))]


PYTHON_CASES = [
    ("syntax-error", "print('x'", "RB060", "does not compile"),
    ("near-miss-input", "print(apitoken)", "RB063", "'api_token'"),
    ("squashed-input", "print(baseurl)", "RB063", "'base_url'"),
    ("typo-output", "print(exposed_objets)", "RB063", "'exposed_objects'"),
]


@pytest.mark.parametrize(("code_line", "code", "says"), [c[1:] for c in PYTHON_CASES],
                         ids=[c[0] for c in PYTHON_CASES])  # fmt: skip
def test_python_mistakes(code_line: str, code: str, says: str) -> None:
    opener = "```python {id=redeploy"
    start = CLOUD.index(opener)
    body = CLOUD.index("\n", start) + 1
    text = CLOUD[:body] + code_line + "\n" + CLOUD[body:]
    found = [p for p in lint_text(text) if p.code == code]
    assert [(p.level, p.line) for p in found] == [("error", line_of(text, opener) + 1)]
    assert says in found[0].message


def test_an_unclosed_fence_that_swallows_a_step_is_reported_where_the_next_one_opens() -> None:
    closing = "\n```\n\n### 4. Isolate"
    text = seeded(ENDPOINT, closing, "\n\n### 4. Isolate")
    problems = lint_text(text)
    assert ("RB025", "error", line_of(text, "```bash {id=isolate")) in [
        (p.code, p.level, p.line) for p in problems
    ]


def test_an_output_set_by_two_steps_names_both() -> None:
    text = seeded(
        ENDPOINT, "```bash {id=confirm-alert", "```bash {id=confirm-alert outputs=ticket_id"
    )
    [found] = [p for p in lint_text(text) if p.code == "RB046"]
    assert found.level == "warning" and "step 1" in found.message and "step 5" in found.message


def test_runbook_keys_without_name_are_an_error_not_plain_markdown() -> None:
    text = "---\nseverity: high\ninputs:\n  host: {type: string}\n---\n# X\n\n## Steps\n\n"
    problems = lint_text(text + "### 1. Look\n\n```bash\necho $HOST\n```\n")
    assert {("RB012", "error")} <= {(p.code, p.level) for p in problems}
    assert "RB040" not in [p.code for p in problems]
    assert any("'name'" in p.message for p in problems if p.code == "RB012")


def test_run_refuses_a_file_check_rejects_naming_the_code(tmp_path: Path) -> None:
    book = tmp_path / "x.md"
    book.write_text(seeded(ENDPOINT, "### 2. Check", "#### 2. Check"), encoding="utf-8")
    run = subprocess.run([str(RUNBOOK), "run", str(book), "--dry-run"], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert run.returncode != 0
    assert "RB023" in run.stdout + run.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_are_clean(path: Path) -> None:
    assert lint(parse_text(path.read_text(encoding="utf-8"), path=path)) == []


# --- single-character edits ----------------------------------------------------------------


def shape(runbook: Runbook) -> tuple[int, int, int]:
    """What a silent change would alter: steps, runnable blocks, approval gates."""
    blocks = [b for s in runbook.steps for b in s.executable_blocks]
    return len(runbook.steps), len(blocks), sum(b.approve for b in blocks)


def edits(text: str) -> list[tuple[str, str]]:
    """(what, edited text) for each single-character edit of a step heading's `#`s, a fence's
    language, or an attribute brace."""
    out: list[tuple[str, str]] = []
    lines = text.split("\n")
    for n, line in enumerate(lines):

        def at(new: str, what: str, n: int = n) -> None:
            out.append((f"line {n + 1}: {what}", "\n".join([*lines[:n], new, *lines[n + 1 :]])))

        heading = re.match(r"^(#{3}) (\d+\..*)$", line)
        if heading:
            at("#" + line, "one # more")
            at(line[1:], "one # less")
            at(heading.group(1) + heading.group(2), "no space")
        fence = re.match(r"^(```)(\w+)(.*)$", line)
        if fence:
            mark, lang, rest = fence.groups()
            for k in range(len(lang)):
                at(mark + lang[:k] + lang[k + 1 :] + rest, f"language without {lang[k]!r}")
                if k + 1 < len(lang):
                    swapped = lang[:k] + lang[k + 1] + lang[k] + lang[k + 2 :]
                    at(mark + swapped + rest, f"language {swapped}")
            if "{" in rest:
                at(line.replace("{", "", 1), "no opening brace")
                at(line.replace("{", " ", 1), "a space for the opening brace")
            if rest.rstrip().endswith("}"):
                at(line.rstrip()[:-1], "no closing brace")
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_no_single_character_edit_changes_the_plan_silently(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    before = shape(parse_text(text, path=path))
    silent = []
    for what, edited in edits(text):
        runbook = parse_text(edited, path=path)
        if shape(runbook) != before and not any(p.level == "error" for p in lint(runbook)):
            silent.append(f"{what}: {before} -> {shape(runbook)}")
    assert silent == []


def test_a_kernel_that_is_not_installed_gets_one_verdict_from_check_run_and_site(
    tmp_path: Path,
) -> None:
    from test_site import build, make_project  # the site tests' real MkDocs build

    project = make_project(tmp_path / "p")
    book = project / "runbooks" / "k.md"
    text = seeded(ENDPOINT, "tags: [edr", "kernels: {bash: no-such-kernel}\ntags: [edr")
    book.write_text(text, encoding="utf-8")
    env = {**os.environ, "RUNBOOK_INPUT_API_TOKEN": "x"}
    checked = subprocess.run([str(RUNBOOK), "check", str(book)], capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    ran = subprocess.run([str(RUNBOOK), "run", str(book), "--yes"], capture_output=True,
                         text=True, timeout=120, env=env, cwd=tmp_path)  # fmt: skip
    site = build(project, tmp_path / "out")
    assert checked.returncode == 1 and "error RB039" in checked.stdout
    assert ran.returncode == 2 and "RB039" in ran.stderr
    assert site.returncode == 1 and "runbooks/k.md:1: RB039" in site.stderr
