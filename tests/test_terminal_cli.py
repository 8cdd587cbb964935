"""What the commands around a run print, as an operator pastes and pipes them: the hints after a
run (with --runs-dir and --role), `runbook pending`, the summary's `not reached` steps and plain
messages, `report -o -`, `verify --format json`, and `runbook log` telling off-script output
and refused approvals right. Real kernels, the real console script, no TTY."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from runner_helpers import RUNBOOK, cli, run_engine, write_book

from runner.exec.engine import RunOptions
from runner.exec.operator import ScriptedOperator

GATED = """
1. Look the host up.

   ```bash
   echo "first line"; echo "second line"; echo "host $HOST seen"
   ```

2. Isolate the host.

   The host is cut off the network; only the EDR channel stays open.

   ```bash {approve=lead}
   echo "isolating $HOST"
   ```
"""


def _hint(output: str, label: str) -> list[str]:
    """The command printed after `label:`, split as the shell would, run by our script."""
    line = next(line for line in output.splitlines() if line.strip().startswith(label + ":"))
    words = shlex.split(line.split(":", 1)[1])
    assert words[0] == "runbook"
    return [RUNBOOK, *words[1:]]


def test_paused_run_hints_paste_and_pending_shows_the_gate(tmp_path: Path) -> None:
    book = write_book(tmp_path, GATED, inputs="host:\n  type: string\n  default: web-1\n")
    runs = tmp_path / "elsewhere"
    ran = cli(["run", book.name, "--yes", "--runs-dir", str(runs)], tmp_path)
    assert ran.returncode == 3, ran.stderr
    out = ran.stdout
    # Each hint names the runs folder and, for approve, the role the step needs.
    approve = _hint(out, "approve")
    assert approve[-4:] == ["--role", "lead", "--runs-dir", str(runs)]
    assert "--runs-dir" in _hint(out, "see it") and "--runs-dir" in _hint(out, "then")
    # Pasted from another folder, the pending hint shows the gate in full.
    other = tmp_path / "other"
    other.mkdir()
    pending = cli(_hint(out, "see it")[1:], other)
    assert pending.returncode == 0, pending.stderr
    shown = pending.stdout
    flat = " ".join(shown.split())  # prose reflows to the width; compare it unwrapped
    assert "step 2 Isolate the host. waits for an approval by role lead" in flat
    assert "only the EDR channel stays open" in flat  # the step's prose
    assert 'export HOST=web-1\necho "isolating $HOST"' in shown  # the code with its values
    assert "host = web-1" in shown
    # Evidence: the earlier step, its status and its last lines of output.
    assert "1 Look the host up. (succeeded)" in shown
    assert "│ host web-1 seen" in shown and "│ second line" in shown
    as_json = json.loads(cli([*_hint(out, "see it")[1:], "--format", "json"], other).stdout)
    gate = as_json["gates"][0]
    assert gate["step_id"] == "isolate-the-host" or gate["step"] == 2
    assert gate["values"] == {"host": "web-1"} and gate["approver_role"] == "lead"
    # The approve hint, with a name put in, records the approval; the resume hint finishes.
    decided = cli([a if a != "NAME" else "dana" for a in approve][1:], other)
    assert decided.returncode == 0, decided.stderr
    resumed = cli(_hint(decided.stdout.replace("continue with", "\n  then"), "then")[1:], other)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "isolating web-1" in resumed.stdout
    nothing = cli(["pending", "last", "--runs-dir", str(runs)], other)
    assert nothing.returncode == 1 and "not waiting for an approval" in nothing.stderr
    # Paused time counts: the record gives wall time, and active time beside it.
    report = cli(["report", "last", "--runs-dir", str(runs), "-o", "-"], other).stdout
    assert "Wall time " in report and "waiting for approvals) against a time limit" in report
    listed = cli(["runs", "--runs-dir", str(runs)], other).stdout
    assert " / 5m00s ✓" in listed


def test_failed_run_says_exit_status_lists_not_reached_and_the_next_command(
    tmp_path: Path,
) -> None:
    book = write_book(
        tmp_path,
        """
        1. Time out.

           ```bash {timeout=1s}
           sleep 30
           ```

        2. Fail.

           ```python
           exit(3)
           ```

        3. Never run.

           ```bash
           echo never
           ```
        """.replace("{timeout=1s}", "{timeout=1s on_failure=continue}"),
    )
    ran = cli(["run", book.name, "--yes"], tmp_path)
    assert ran.returncode == 1
    out = ran.stdout
    assert "timed out after 1s (timeout=1s)" in out
    assert "exit status 3" in out
    assert "ExitStatus" not in out and "KeyboardInterrupt" not in out and "Traceback" not in out
    assert "not reached" in next(line for line in out.splitlines() if "Never run" in line)
    assert _hint(out, "continue")[1:3] == ["resume", _hint(out, "what happened")[2]]


def test_report_to_stdout_and_verify_as_json(tmp_path: Path) -> None:
    book = write_book(tmp_path, '1. Say hi.\n\n   ```bash\n   echo "hi there"\n   ```\n')
    assert cli(["run", book.name, "--yes"], tmp_path).returncode == 0
    report = cli(["report", "last", "-o", "-"], tmp_path)
    assert report.returncode == 0, report.stderr
    assert report.stdout.startswith("# Run report: Test book") and "hi there" in report.stdout
    assert not (tmp_path / "-").exists() and not list(tmp_path.glob("*durations.png"))
    html = cli(["report", "last", "--format", "html", "-o", "-"], tmp_path)
    assert html.stdout.lstrip().lower().startswith("<!doctype html")
    verified = cli(["verify", "last", "--format", "json"], tmp_path)
    data = json.loads(verified.stdout)
    assert verified.returncode == 0 and data["verdict"] == "intact" and data["keyed"] is True
    journal = Path(data["journal"])
    journal = journal if journal.is_absolute() else tmp_path / journal
    journal.write_text(journal.read_text().replace("hi there", "hi thera"))
    broken = cli(["verify", "last", "--format", "json"], tmp_path)
    assert broken.returncode == 1 and json.loads(broken.stdout)["verdict"] == "not_intact"


def test_log_puts_off_script_output_under_its_command_and_shows_refusals(tmp_path: Path) -> None:
    book = write_book(tmp_path, "1. Gate.\n\n   ```bash {approve=true}\n   echo gated\n   ```\n")
    runs = tmp_path / "runs"
    operator = ScriptedOperator(
        name="carol",
        answers=[
            "!echo out-of-first",
            "!echo out-of-second",
            "run",
            "approve:carol",
            "approve:bob",
        ],
    )
    result, _ = run_engine(
        book, runs, operator=operator, options=RunOptions(require_distinct_approver=True)
    )
    assert result.exit_code == 0
    log = cli(["log", "last", "--runs-dir", str(runs)], tmp_path).stdout
    first, second = log.index("echo out-of-first"), log.index("echo out-of-second")
    assert first < log.index("│ out-of-first") < second < log.index("│ out-of-second")
    assert "approval by carol (no role) refused: " in log
    report = cli(["report", "last", "--runs-dir", str(runs), "-o", "-"], tmp_path).stdout
    assert "approval by carol (no role) **refused**" in report


def test_log_follow_shows_a_run_as_it_goes_and_ends_with_it(tmp_path: Path) -> None:
    go = tmp_path / "go"
    book = write_book(
        tmp_path,
        f"""
        1. Wait for the go.

           ```bash
           echo "waiting for the go"
           while [ ! -e {go} ]; do sleep 0.05; done
           echo "got the go"
           ```
        """,
    )
    env = {**os.environ, "TMPDIR": str(tmp_path), "RUNBOOK_OPERATOR": "tester"}
    env.pop("RUNBOOK_RUNS_DIR", None)
    run = subprocess.Popen(
        [RUNBOOK, "run", book.name, "--yes"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL
    )
    follow = None
    try:
        journal = tmp_path / ".runbook" / "runs"
        until = time.monotonic() + 60
        while not list(journal.glob("*/journal.jsonl")):  # the run has started: a marker
            assert time.monotonic() < until and run.poll() is None
            time.sleep(0.02)
        follow = subprocess.Popen(
            [RUNBOOK, "log", "last", "--follow"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert follow.stdout is not None
        seen = []
        for line in follow.stdout:  # blocks until the follower prints the step's first line
            seen.append(line)
            if "waiting for the go" in line:
                break
        assert not any("got the go" in line for line in seen)
        go.touch()
        rest = follow.stdout.read()  # to its end: the follower stops when the run does
        assert follow.wait(timeout=60) == 0
        assert run.wait(timeout=60) == 0
    finally:
        for proc in (run, follow):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert "│ got the go" in rest and "→ ✓ succeeded" in rest
    assert rest.rstrip().splitlines()[-1].startswith("run ✓ succeeded")
    assert "".join(seen).count("Wait for the go") == 1 and "Wait for the go" not in rest


def test_ctrl_c_is_answered_at_once_with_its_levels(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        1. Ignore Ctrl-C.

           ```bash
           trap '' INT
           echo "step started"
           sleep 60
           ```
        """,
    )
    env = {**os.environ, "TMPDIR": str(tmp_path), "RUNBOOK_OPERATOR": "tester"}
    run = subprocess.Popen(
        [RUNBOOK, "run", book.name, "--yes"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert run.stdout is not None and run.stderr is not None
        for line in run.stdout:  # blocks until the step runs
            if "step started" in line:
                break
        run.send_signal(signal.SIGINT)
        first = run.stderr.readline() + run.stderr.readline()  # the feedback, at once
        assert "Ctrl-C: interrupting the step" in first
        assert "Ctrl-C again: restart the kernel now and cancel the step" in first
        assert "a third time: end the run" in first
        run.send_signal(signal.SIGINT)  # the step ignored the first: the second level
        second = run.stderr.readline() + run.stderr.readline()
        assert "Ctrl-C again: restarting the kernel and cancelling the step" in second
        out = run.stdout.read()
        assert run.wait(timeout=60) == 130
    finally:
        if run.poll() is None:
            run.kill()
    assert "cancelled" in out and "interrupted" in out and "KeyboardInterrupt" not in out


def test_ids_are_whole_in_piped_tables_however_narrow(tmp_path: Path) -> None:
    name = "an-uncommonly-long-runbook-identifier-for-narrow-pipes"
    book = write_book(tmp_path, "1. Say hi.\n\n   ```bash\n   echo hi\n   ```\n", name=f"{name}.md")
    assert cli(["run", book.name, "--yes"], tmp_path).returncode == 0
    (run,) = json.loads(cli(["runs", "--format", "json"], tmp_path).stdout)["runs"]
    narrow = {"COLUMNS": "40"}
    listed = cli(["runs"], tmp_path, narrow).stdout
    assert run["run_id"] in listed and f" {name} " in listed
    assert name in cli(["stats"], tmp_path, narrow).stdout
    assert run["run_id"] in cli(["log", "last"], tmp_path, narrow).stdout
