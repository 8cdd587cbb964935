"""`runbook run` as an operator uses it: a real process, real kernels, exit codes, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pexpect
import pytest
from runner_helpers import RUNBOOK, cli, kernel_processes, write_book

from runner.runs.journal import read_events, verify

TWO_STEPS = """
1. Python.

   ```python {outputs=total}
   total = 1 + 1
   print("total", total, "for", host)
   ```

2. Shell.

   ```bash
   echo "shell sees $TOTAL"
   ```

3. Check the dashboard.
"""


def _runs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / ".runbook" / "runs").iterdir())


def test_run_yes_end_to_end(tmp_path: Path) -> None:
    book = write_book(tmp_path, TWO_STEPS, inputs="host:\n  required: true\n")
    done = cli(["run", book.name, "--yes", "-i", "host=web-1"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "[1/3]" in done.stdout and "total 2 for web-1" in done.stdout
    assert "shell sees 2" in done.stdout
    assert "manual step, needs a person" in done.stdout
    assert "journal:" in done.stdout and "time limit (within)" in done.stdout
    (run_dir,) = _runs(tmp_path)
    assert verify(run_dir).ok
    assert read_events(run_dir)[-1]["status"] == "succeeded"
    assert kernel_processes(str(tmp_path)) == []


def test_bad_input_stops_before_step_one(tmp_path: Path) -> None:
    book = write_book(
        tmp_path, TWO_STEPS, inputs="host:\n  required: true\n  pattern: '[a-z0-9-]+'\n"
    )
    done = cli(["run", book.name, "--yes", "-i", "host=NOT OK"], tmp_path)
    assert done.returncode == 2
    assert "does not match the pattern" in done.stderr and "book.md" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".runbook").exists()
    missing = cli(["run", book.name, "--yes"], tmp_path)
    assert missing.returncode == 2 and "input 'host' is required" in missing.stderr
    assert kernel_processes(str(tmp_path)) == []


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    book = write_book(tmp_path, TWO_STEPS, inputs="host:\n  default: web-9\n")
    done = cli(["run", book.name, "--dry-run"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "input host = 'web-9'" in done.stdout
    assert "python3" in done.stdout and "runbook-shell" in done.stdout and "manual" in done.stdout
    assert "total 2" not in done.stdout
    assert not (tmp_path / ".runbook").exists()


def test_secret_from_environment_is_redacted_on_the_terminal(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        1. Leak.

           ```bash
           echo "key=$API_KEY"
           printf '%s' "${API_KEY:0:4}"; sleep 0.1; printf '%s\\n' "${API_KEY:4}"
           ```

        2. Fail with it in the error (the summary table shows the error).

           ```python
           raise ValueError(api_key)
           ```
        """,
        inputs="api_key:\n  secret: true\n  required: true\n",
    )
    secret = "s3cr3t-Xy7"
    done = cli(["run", book.name, "--yes"], tmp_path, env={"RUNBOOK_INPUT_API_KEY": secret})
    assert done.returncode == 1, done.stderr
    assert "key=***" in done.stdout and "ValueError: ***" in done.stdout
    assert secret not in done.stdout + done.stderr
    for path in (tmp_path / ".runbook").rglob("*"):
        assert not path.is_file() or secret not in path.read_text(errors="replace")


def _start(tmp_path: Path, book: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(tmp_path), "RUNBOOK_OPERATOR": "tester"}
    return subprocess.Popen(
        [RUNBOOK, "run", book.name, "--yes"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def _wait_for(predicate: object, timeout: float = 30) -> None:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


SLOW = """
1. Quick.

   ```bash
   echo quick
   ```

2. Slow.

   ```bash
   echo started-slow; sh -c "sleep 60; : $TMPDIR"
   ```
"""


def _slow_step_started(tmp_path: Path) -> bool:
    runs = tmp_path / ".runbook" / "runs"
    if not runs.exists() or not any(runs.iterdir()):
        return False
    return any(e.get("text") == "started-slow\n" for e in read_events(next(runs.iterdir())))


def test_sigkill_mid_run_leaves_a_valid_journal_then_resume_finishes(tmp_path: Path) -> None:
    book = write_book(tmp_path, SLOW)
    proc = _start(tmp_path, book)
    _wait_for(lambda: _slow_step_started(tmp_path))
    proc.kill()
    proc.wait()
    (run_dir,) = _runs(tmp_path)
    assert verify(run_dir).ok
    kinds = [e["event"] for e in read_events(run_dir)]
    assert kinds[:1] == ["run_started"] and "step_finished" in kinds and kinds[-1] == "output"
    # the kernels die with the runner (PR_SET_PDEATHSIG), even though it had no time to clean
    # up, and so do bash and the command it ran (`sh -c ... $TMPDIR` names tmp_path)
    _wait_for(lambda: kernel_processes(str(tmp_path)) == [], timeout=5)
    (tmp_path / "book.md").write_text(book.read_text().replace("sleep 60", "echo resumed"))
    refused = cli(["resume", run_dir.name], tmp_path)
    assert refused.returncode == 2 and "changed since the run started" in refused.stderr
    done = cli(["resume", run_dir.name, "--allow-changed", "--yes"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    events = read_events(run_dir)
    resumed = next(e for e in events if e["event"] == "run_resumed")
    assert (resumed["attempt"], resumed["allow_changed"]) == (2, True)
    quick_runs = [e for e in events if e["event"] == "step_started" and e["step"] == 1]
    assert len(quick_runs) == 1  # the completed step was not run again
    assert events[-1]["status"] == "succeeded" and verify(run_dir).ok


def test_sigterm_ends_the_run_cancelled_and_leaves_no_kernel(tmp_path: Path) -> None:
    book = write_book(
        tmp_path, SLOW.replace("```bash\n   echo quick", "```python\n   print('quick')")
    )
    proc = _start(tmp_path, book)
    _wait_for(lambda: _slow_step_started(tmp_path))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 130
    (run_dir,) = _runs(tmp_path)
    last = read_events(run_dir)[-2:]
    assert last[0]["event"] == "step_finished" and last[0]["status"] == "cancelled"
    assert last[1]["event"] == "run_finished" and last[1]["status"] == "cancelled"
    assert verify(run_dir).ok
    _wait_for(lambda: kernel_processes(str(tmp_path)) == [], timeout=5)


def test_interactive_run_in_a_terminal(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        1. First.

           ```bash
           echo first-ran
           ```

        2. Second.

           ```bash
           echo second-ran
           ```

        3. Call the owner.
        """,
    )
    env = {**os.environ, "TMPDIR": str(tmp_path), "RUNBOOK_OPERATOR": "carol", "COLUMNS": "120"}
    child = pexpect.spawn(
        RUNBOOK, ["run", book.name], cwd=str(tmp_path), env=env, encoding="utf-8", timeout=30
    )
    child.expect(r"\[1/3\]")
    child.expect("run")
    child.expect("> ")
    child.sendline("?")
    child.expect("off-script")
    child.expect("> ")
    child.sendline("!echo from-the-operator")
    child.expect("from-the-operator")
    child.expect("> ")
    child.sendline("r")
    child.expect("first-ran")
    child.expect(r"\[2/3\]")
    child.expect("> ")
    child.sendline("s")
    child.expect("note")
    child.sendline("not needed today")
    child.expect(r"\[3/3\]")
    child.expect("done")
    child.expect("> ")
    child.sendline("d")
    child.expect("note")
    child.sendline("owner called")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    (run_dir,) = _runs(tmp_path)
    events = read_events(run_dir)
    statuses = [(e["step"], e["status"]) for e in events if e["event"] == "step_finished"]
    assert statuses == [(1, "succeeded"), (2, "skipped"), (3, "succeeded")]
    notes = [e["note"] for e in events if e["event"] == "decision"]
    assert notes == [None, "not needed today", "owner called"]
    assert any(e["event"] == "off_script" and e["by"] == "carol" for e in events)
    assert "second-ran" not in json.dumps(events)


@pytest.mark.parametrize("flag", [["--only", "9"], ["--from", "nope"], ["--procedure", "x"]])
def test_unknown_step_references_exit_2(tmp_path: Path, flag: list[str]) -> None:
    book = write_book(tmp_path, TWO_STEPS, inputs="host:\n  default: a\n")
    done = cli(["run", book.name, "--yes", *flag], tmp_path)
    assert done.returncode == 2 and "no such" in done.stderr


def test_steps_left_out_are_named_by_number_not_counted(tmp_path: Path) -> None:
    book = write_book(tmp_path, TWO_STEPS, inputs="host:\n  default: a\n")
    done = cli(["run", book.name, "--yes", "--only", "1"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "[1/3] Python." in done.stdout and "[step 2] Shell." in done.stdout
    assert "[?/?]" not in done.stdout


def test_only_a_step_that_reads_a_left_out_step_s_output_stops_it(tmp_path: Path) -> None:
    book = write_book(tmp_path, TWO_STEPS, inputs="host:\n  default: a\n")
    done = cli(["run", book.name, "--yes", "--only", "2"], tmp_path)
    assert done.returncode == 1, done.stderr
    flat = " ".join(done.stdout.split())
    assert "reads total, which step 1 (python) sets but ended skipped" in flat
    assert "shell sees" not in done.stdout  # `echo "shell sees $TOTAL"` never ran


def test_dry_run_needs_no_secret_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    book = write_book(
        tmp_path,
        f"1. Touch.\n\n   ```bash\n   touch {marker}\n   ```\n",
        inputs="token:\n  secret: true\n  required: true\n  pattern: '[a-z]+'\n",
    )
    done = cli(["run", book.name, "--dry-run"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "input token = ***" in done.stdout
    assert not marker.exists() and not (tmp_path / ".runbook").exists()
    bad = cli(["run", book.name, "--dry-run", "-i", "token=NOT-OK-AT-ALL"], tmp_path)
    assert bad.returncode == 2 and "does not match the pattern" in bad.stderr
