"""Issue 4 through real kernels: approval gates, conditions, retries, alternative procedures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from runner_helpers import cli, finished, of, run_engine, stdout_text, write_book

from runner.exec.engine import RunOptions
from runner.exec.operator import ScriptedOperator
from runner.format.model import RunStatus
from runner.runs.journal import read_events, verify
from runner.runs.state import resume_state


def _gated(tmp_path: Path, approve: str = "true") -> tuple[Path, Path]:
    marker = tmp_path / "gated-ran"
    book = write_book(
        tmp_path,
        f"""
        1. Look.

           ```bash
           echo looked
           ```

        2. Isolate the host.

           ```bash {{approve={approve}}}
           touch {marker}
           echo "isolating $HOST"
           ```

        3. Tell people.

           ```bash
           echo told
           ```
        """,
        inputs="host:\n  default: web-1\n",
    )
    return book, marker


def test_interactive_gate_records_the_approver(tmp_path: Path) -> None:
    book, marker = _gated(tmp_path, "lead")
    operator = ScriptedOperator("alice", ["run", "run", "approve:bob:looks right", "run"])
    result, events = run_engine(
        book, tmp_path / "runs", inputs={"host": "web-1"}, operator=operator
    )
    assert result.status is RunStatus.SUCCEEDED and marker.exists()
    request = of(events, "approval_requested")[0]
    assert request["approver_role"] == "lead" and "export HOST=web-1" in request["code"]
    approval = of(events, "approval")[0]
    assert (approval["decision"], approval["by"], approval["comment"]) == (
        "approved",
        "bob",
        "looks right",
    )
    assert approval["seq"] < next(e["seq"] for e in of(events, "step_started") if e["step"] == 2)


def test_interactive_deny_follows_on_failure(tmp_path: Path) -> None:
    book, marker = _gated(tmp_path)
    operator = ScriptedOperator("alice", ["run", "run", "deny:bob:not now"])
    result, events = run_engine(book, tmp_path / "runs", operator=operator)
    assert finished(events) == {"look": "succeeded", "isolate-the-host": "denied"}
    assert result.status is RunStatus.FAILED and result.exit_code == 1 and not marker.exists()


def test_two_person_rule_refuses_the_operator_as_approver(tmp_path: Path) -> None:
    book, marker = _gated(tmp_path)
    operator = ScriptedOperator("alice", ["run", "run", "approve:alice"])
    result, events = run_engine(
        book,
        tmp_path / "runs",
        operator=operator,
        options=RunOptions(require_distinct_approver=True),
    )
    assert result.status is RunStatus.PAUSED and result.exit_code == 3 and not marker.exists()
    assert of(events, "approval") == []
    (refusal,) = of(events, "approval_refused")  # refused, asked again, left for later
    assert refusal["by"] == "alice" and "two-person rule" in refusal["reason"]
    assert operator.asked == ["step 1", "step 2", "approve 2", "approve 2"]


def test_pause_approve_resume(tmp_path: Path) -> None:
    book, marker = _gated(tmp_path)
    done = cli(["run", book.name, "--yes", "--require-distinct-approver"], tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "runbook approve" in done.stdout and not marker.exists()
    run_dir = next((tmp_path / ".runbook" / "runs").iterdir())
    assert read_events(run_dir)[-1]["event"] == "run_paused"
    own = cli(["approve", run_dir.name, "2", "--by", "tester"], tmp_path)
    assert own.returncode == 2 and "two-person rule" in own.stderr
    ok = cli(
        ["approve", run_dir.name, "isolate-the-host", "--by", "dana", "--comment", "go"], tmp_path
    )
    assert ok.returncode == 0, ok.stderr
    resumed = cli(["resume", run_dir.name, "--yes"], tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    events = read_events(run_dir)
    assert marker.exists() and verify(run_dir).ok
    assert [e["by"] for e in of(events, "approval")] == ["dana"]
    assert len([e for e in of(events, "step_started") if e["step"] == 1]) == 1
    assert events[-1]["status"] == "succeeded"


def test_deny_then_resume_marks_the_step_denied(tmp_path: Path) -> None:
    book, marker = _gated(tmp_path)
    assert cli(["run", book.name, "--yes"], tmp_path).returncode == 3
    run_dir = next((tmp_path / ".runbook" / "runs").iterdir())
    assert cli(["deny", run_dir.name, "2", "--by", "dana"], tmp_path).returncode == 0
    resumed = cli(["resume", run_dir.name, "--yes"], tmp_path)
    assert resumed.returncode == 1
    assert finished(read_events(run_dir))["isolate-the-host"] == "denied" and not marker.exists()


@pytest.mark.parametrize(
    "args",
    [["--yes"], ["--yes", "--only", "2"], ["--yes", "--from", "2"]],
    ids=["yes", "only", "from"],
)
def test_no_path_around_a_gate(tmp_path: Path, args: list[str]) -> None:
    book, marker = _gated(tmp_path)
    first = cli(["run", book.name, *args], tmp_path)
    assert first.returncode == 3 and not marker.exists()
    run_dir = next((tmp_path / ".runbook" / "runs").iterdir())
    again = cli(["resume", run_dir.name, "--yes"], tmp_path)  # resume without an approval
    assert again.returncode == 3 and not marker.exists()
    rerun = cli(["run", book.name, *args], tmp_path)  # a fresh run needs its own approval
    assert rerun.returncode == 3 and not marker.exists()


def test_preapproval_on_the_command_line_is_recorded(tmp_path: Path) -> None:
    book, marker = _gated(tmp_path)
    done = cli(["run", book.name, "--yes", "--approve", "2"], tmp_path)
    assert done.returncode == 0 and marker.exists()
    run_dir = next((tmp_path / ".runbook" / "runs").iterdir())
    approval = of(read_events(run_dir), "approval")[0]
    assert (approval["by"], approval["preapproved"]) == ("tester", True)
    both = cli(
        ["run", book.name, "--yes", "--approve", "2", "--require-distinct-approver"], tmp_path
    )
    assert both.returncode == 2 and "two-person rule" in both.stderr


CONDITIONS = """
1. Only when high.

   ```bash {when="level == 'high'"}
   echo high-branch
   ```

2. Names an optional input nobody gave.

   ```bash {when="ticket == 'T-1'"}
   echo never
   ```
"""


@pytest.mark.parametrize("level", ["high", "low"])
def test_condition_true_false_and_error(tmp_path: Path, level: str) -> None:
    book = write_book(
        tmp_path, CONDITIONS, inputs="level:\n  default: low\nticket:\n  type: string\n"
    )
    result, events = run_engine(book, tmp_path / "runs", inputs={"level": level})
    steps = of(events, "step_finished")
    if level == "high":
        assert steps[0]["status"] == "succeeded" and "high-branch" in stdout_text(events)
    else:
        assert (steps[0]["status"], steps[0]["reason"]) == (
            "skipped",
            "condition false: level == 'high'",
        )
    assert steps[1]["status"] == "failed" and "ticket" in steps[1]["error"]
    assert result.status is RunStatus.FAILED


def test_retries_with_backoff_are_journaled(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    book = write_book(
        tmp_path,
        f"""
        1. Flaky.

           ```bash {{retries=2 retry_delay=200ms retry_backoff=2}}
           echo x >> {counter}
           [ "$(wc -l < {counter})" -ge 3 ]
           ```
        """,
    )
    result, events = run_engine(book, tmp_path / "runs")
    attempts = of(events, "step_finished")
    assert [(e["attempt"], e["attempts"], e["status"]) for e in attempts] == [
        (1, 3, "failed"),
        (2, 3, "failed"),
        (3, 3, "succeeded"),
    ]
    assert [e.get("retry_in") for e in attempts] == [0.2, 0.4, None]
    starts = [
        dt.datetime.fromisoformat(e["ts"].replace("Z", "+00:00"))
        for e in of(events, "step_started")
    ]
    assert (starts[1] - starts[0]).total_seconds() >= 0.2 and (
        starts[2] - starts[1]
    ).total_seconds() >= 0.4
    assert result.status is RunStatus.SUCCEEDED


RECOVERY = """
1. Primary.

   ```bash {on_failure=procedure:fallback}
   echo primary-failed; exit 3
   ```

2. After.

   ```bash
   echo after
   ```

## Alternative procedures

### Fallback

1. Do it another way.

   ```bash
   echo fallback-ran
   ```
"""


def test_procedure_recovery_gives_succeeded_with_handled_failures(tmp_path: Path) -> None:
    book = write_book(tmp_path, RECOVERY)
    result, events = run_engine(book, tmp_path / "runs")
    assert result.status is RunStatus.SUCCEEDED_WITH_HANDLED_FAILURES and result.exit_code == 0
    statuses = [(e["procedure"], e["step_id"], e["status"]) for e in of(events, "step_finished")]
    assert statuses == [
        (None, "primary", "failed"),
        ("fallback", "do-it-another-way", "succeeded"),
        (None, "primary", "handled"),
        (None, "after", "succeeded"),
    ]
    assert of(events, "run_finished")[0]["status"] == "succeeded_with_handled_failures"


@pytest.mark.parametrize(
    ("answer", "status", "ran"),
    [("on_failure", "failed", False), ("quit", "cancelled", False), ("skip", "failed", True)],
)
def test_after_a_failure_the_operator_may_apply_on_failure(
    tmp_path: Path, answer: str, status: str, ran: bool
) -> None:
    """With the default on_failure (abort), applying it fails the run; quitting cancels it."""
    book = write_book(tmp_path, RECOVERY.replace(" {on_failure=procedure:fallback}", ""))
    operator = ScriptedOperator("alice", ["run", answer, "run"])
    result, events = run_engine(book, tmp_path / "runs", operator=operator)
    assert result.status.value == status
    assert ("after\n" in stdout_text(events)) is ran
    decision = of(events, "decision")[1]
    assert (decision["step_id"], decision["decision"], decision["by"]) == (
        "primary",
        answer,
        "alice",
    )


def test_on_failure_chosen_by_the_operator_runs_the_procedure(tmp_path: Path) -> None:
    book = write_book(tmp_path, RECOVERY)
    operator = ScriptedOperator("alice", ["run", "on_failure", "run", "run"])
    result, events = run_engine(book, tmp_path / "runs", operator=operator)
    assert result.status is RunStatus.SUCCEEDED_WITH_HANDLED_FAILURES
    assert operator.asked == ["step 1", "failed 1", "step 1", "step 2"]
    assert finished(events)["primary"] == "handled"
    decision = next(e for e in of(events, "decision") if e["decision"] == "on_failure")
    assert decision["procedure"] is None and decision["step_id"] == "primary"
    inner = [e for e in of(events, "decision") if e["procedure"] == "fallback"]
    assert [e["step_id"] for e in inner] == ["do-it-another-way"]


def test_continue_goes_on_and_procedure_runs_alone(tmp_path: Path) -> None:
    book = write_book(tmp_path, RECOVERY.replace("procedure:fallback", "continue"))
    result, events = run_engine(book, tmp_path / "runs")
    assert finished(events) == {"primary": "failed", "after": "succeeded"}
    assert result.status is RunStatus.FAILED
    alone, events = run_engine(
        book, tmp_path / "runs", options=RunOptions(mode="procedure", procedure="fallback")
    )
    assert alone.status is RunStatus.SUCCEEDED
    assert stdout_text(events) == "fallback-ran\n"


def test_resume_state_restores_outputs_and_skips_done_steps(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        1. Produce.

           ```python {outputs=answer}
           answer = 41
           ```

        2. Fail once.

           ```python
           print(answer + 1)
           assert resumed
           ```
        """,
        inputs="resumed:\n  type: boolean\n  default: false\n",
    )
    first, _ = run_engine(book, tmp_path / "runs", inputs={"resumed": False})
    assert first.status is RunStatus.FAILED
    state = resume_state(read_events(first.run_dir), keyed_from=1)
    assert state.outputs == {"answer": 41} and list(state.done) == [(None, "produce")]
    second, events = run_engine(
        book, tmp_path / "runs", inputs={"resumed": True}, resume=state, run_dir=first.run_dir
    )
    assert second.status is RunStatus.SUCCEEDED
    assert len(of(events, "run_resumed")) == 1 and "42\n" in stdout_text(events)
    assert len([e for e in of(events, "step_started") if e["step"] == 1]) == 1


def test_preapproval_names_a_step_of_the_plan_not_a_procedure_step(tmp_path: Path) -> None:
    """`--approve 1` is checked against the steps being run; it must not also approve step 1
    of an alternative procedure that a failure brings in."""
    book = write_book(
        tmp_path,
        RECOVERY.replace(
            "   ```bash\n   echo fallback", "   ```bash {approve=true}\n   echo fallback"
        ),
    )
    result, events = run_engine(book, tmp_path / "runs", options=RunOptions(approve=("1",)))
    assert "fallback-ran" not in stdout_text(events)
    assert result.status is RunStatus.PAUSED and result.exit_code == 3
    assert of(events, "approval") == []


def test_an_approval_does_not_cover_code_changed_after_it(tmp_path: Path) -> None:
    """Approve, then edit the gated step and resume with --allow-changed: the approver never saw
    the new code, so the step waits for a fresh approval."""
    book, marker = _gated(tmp_path)
    assert cli(["run", book.name, "--yes"], tmp_path).returncode == 3
    run_dir = next((tmp_path / ".runbook" / "runs").iterdir())
    assert cli(["approve", run_dir.name, "2", "--by", "dana"], tmp_path).returncode == 0
    book.write_text(book.read_text().replace('echo "isolating $HOST"', "echo changed"))
    resumed = cli(["resume", run_dir.name, "--yes", "--allow-changed"], tmp_path)
    assert resumed.returncode == 3, resumed.stdout + resumed.stderr
    assert not marker.exists()
    requested = of(read_events(run_dir), "approval_requested")
    assert len(requested) == 2 and "echo changed" in requested[-1]["code"]


def test_procedure_named_by_its_title_keeps_only(tmp_path: Path) -> None:
    """`--procedure` takes an id or a title; `--only` must apply either way."""
    book = write_book(
        tmp_path,
        RECOVERY.replace(
            "echo fallback-ran\n   ```\n",
            "echo fallback-ran\n   ```\n\n2. Second way.\n\n"
            "   ```bash\n   echo second-ran\n   ```\n",
        ),
    )
    _result, events = run_engine(
        book,
        tmp_path / "runs",
        options=RunOptions(mode="procedure", procedure="Fallback", only=("2",)),
    )
    assert "second-ran" in stdout_text(events) and "fallback-ran" not in stdout_text(events)
