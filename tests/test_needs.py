"""A step never runs without the outputs it reads: when the step that sets one did not (its
condition was false, a person skipped or denied it, a failure was handled), the step stops
before its code runs and says which output, which step and why. Real kernels."""

from __future__ import annotations

from pathlib import Path

from runner_helpers import cli, finished, of, run_engine, stdout_text, write_book

from runner.format.model import RunStatus
from runner.format.reads import reads
from runner.parse.markdown import parse_text

SKIPPED_SETTER = """
1. Find the host.

   ```bash {{id=find outputs=host when="go"}}
   HOST=wks-0042
   ```

2. Isolate it.

   ```{lang} {{id=isolate}}
{code}
   ```
"""


def _book(tmp_path: Path, lang: str, code: str) -> Path:
    body = "\n".join("   " + line for line in code.splitlines())
    return write_book(
        tmp_path, SKIPPED_SETTER.format(lang=lang, code=body),
        inputs="go:\n  type: boolean\n  default: false\n",
    )  # fmt: skip


def test_a_step_reading_an_output_its_skipped_step_never_set_does_not_run(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "isolated"
    book = _book(tmp_path, "bash", f'echo "isolating [$HOST]" > {marker}')
    result, events = run_engine(book, tmp_path / "runs", inputs={"go": False})
    assert result.status is RunStatus.FAILED
    assert finished(events) == {"find": "skipped", "isolate": "failed"}
    [stopped] = [e for e in of(events, "step_finished") if e["step_id"] == "isolate"]
    assert "reads host, which step 1 (find) sets but ended skipped" in stopped["error"]
    assert "condition false: go" in stopped["error"]
    assert not marker.exists() and "isolating" not in stdout_text(events)
    assert not [e for e in of(events, "block_started") if e["step_id"] == "isolate"]


def test_python_reads_are_names_it_loads_not_names_it_assigns(tmp_path: Path) -> None:
    book = _book(tmp_path, "python", "print('isolating', host)")
    result, events = run_engine(book, tmp_path / "runs", inputs={"go": False})
    assert result.status is RunStatus.FAILED
    assert "reads host" in str([e.get("error") for e in of(events, "step_finished")])
    own = tmp_path / "own"
    own.mkdir()
    book = _book(own, "python", "host = 'wks-0099'\nprint('isolating', host)")
    result, events = run_engine(book, own / "runs", inputs={"go": False})
    assert result.status is RunStatus.SUCCEEDED
    assert "isolating wks-0099" in stdout_text(events)


def test_once_the_setter_ran_the_reader_runs(tmp_path: Path) -> None:
    book = _book(tmp_path, "bash", 'echo "isolating [$HOST]"')
    result, events = run_engine(book, tmp_path / "runs", inputs={"go": True})
    assert result.status is RunStatus.SUCCEEDED
    assert "isolating [wks-0042]" in stdout_text(events)


def test_reads_follow_each_language_s_rule() -> None:
    book = parse_text(
        "---\nname: R\nservice: s\nobjective: o\n---\n# R\n\n## Steps\n\n"
        "1. A.\n\n   ```bash\n   echo ${HOST} ${SITE:-none} $USER_NAME $PATH site\n   ```\n\n"
        "2. B.\n\n   ```python\n   for n in hosts: print(n, user)\n   ```\n",
        "r.md",
    )
    bash, python = (s.blocks[0] for s in book.steps)
    assert reads(bash, ["host", "site", "user", "user_name", "path"]) == ["host", "user_name"]
    assert reads(python, ["hosts", "user", "n"]) == ["hosts", "user"]


def test_check_warns_where_a_read_output_can_be_unset(tmp_path: Path) -> None:

    book = _book(tmp_path, "bash", 'echo "isolating [$HOST]"')
    done = cli(["check", book.name], tmp_path)
    assert "RB117 step 2 reads host, which step 1 (find) sets only when 'go'" in done.stdout
    # The reader shares its setter's condition: nothing to say.
    book.write_text(book.read_text().replace("{id=isolate}", '{id=isolate when="go"}'))
    assert 'when="go"}' in book.read_text()
    assert "RB117" not in cli(["check", book.name], tmp_path).stdout
