"""Approval gates and failure choices as a person meets them: `runbook run` in a pseudo-terminal."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pexpect
from runner_helpers import RUNBOOK, finished, of, write_book

from runner.runs.journal import read_events, verify

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _gated(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "isolated"
    book = write_book(
        tmp_path,
        f"""
        1. Look.

           ```bash
           echo looked
           ```

        2. Isolate the host.

           ```bash {{approve=true}}
           touch {marker}
           echo "isolating $HOST"
           ```
        """,
        inputs="host:\n  required: true\n",
    )
    return book, marker


class Session:
    """`runbook run` in a pty: waits for text (colours stripped) and answers prompts."""

    def __init__(self, tmp_path: Path, args: list[str], operator: str = "carol") -> None:
        env = {
            **os.environ,
            "TMPDIR": str(tmp_path),
            "RUNBOOK_OPERATOR": operator,
            "COLUMNS": "120",
            "NO_COLOR": "1",
        }
        env.pop("RUNBOOK_RUNS_DIR", None)
        self.child = pexpect.spawn(
            RUNBOOK, ["run", *args], cwd=str(tmp_path), env=env, encoding="utf-8", timeout=60
        )
        self.seen = ""  # everything shown so far, without colour codes

    def wait(self, text: str) -> str:
        """Wait until ``text`` has been shown; return what came before it since the last wait."""
        self.child.expect_exact(text)
        before = ANSI.sub("", str(self.child.before))
        self.seen += before + text
        return before

    def answer(self, prompt: str, reply: str) -> str:
        before = self.wait(prompt)
        self.child.sendline(reply)
        return before

    def finish(self) -> int:
        self.child.expect(pexpect.EOF)
        self.seen += ANSI.sub("", str(self.child.before))
        self.child.close()
        return int(self.child.exitstatus if self.child.exitstatus is not None else -1)


def _run_dir(tmp_path: Path) -> Path:
    (run_dir,) = (tmp_path / ".runbook" / "runs").iterdir()
    return run_dir


def test_approve_in_the_terminal_shows_the_code_and_evidence(tmp_path: Path) -> None:
    book, marker = _gated(tmp_path)
    run = Session(tmp_path, [book.name, "-i", "host=web-1"])
    run.answer("? help > ", "r")
    run.answer("? help > ", "r")
    shown = run.answer("leave for later (l) > ", "a")
    assert "Approval needed for step 2 Isolate the host." in shown
    assert "Evidence so far:\n" in shown.replace("\r", "")
    assert "1 Look. (succeeded)" in shown
    # the exact code, preceded by the values it uses
    code = shown.replace("\r", "").split("with the values it uses:\n", 1)[1]
    assert code.startswith(f'export HOST=web-1\ntouch {marker}\necho "isolating $HOST"\n')
    assert not marker.exists()
    run.answer("approver's name [carol] > ", "dana")
    run.answer("comment (optional) > ", "checked the host")
    run.wait("isolating web-1")
    assert run.finish() == 0
    assert marker.exists()
    events = read_events(_run_dir(tmp_path))
    (approval,) = of(events, "approval")
    assert (approval["decision"], approval["by"], approval["comment"]) == (
        "approved",
        "dana",
        "checked the host",
    )
    assert approval["preapproved"] is False
    assert "export HOST=web-1" in of(events, "approval_requested")[0]["code"]
    assert finished(events) == {"look": "succeeded", "isolate-the-host": "succeeded"}
    assert verify(_run_dir(tmp_path)).ok


def test_deny_in_the_terminal_marks_the_step_denied(tmp_path: Path) -> None:
    book, marker = _gated(tmp_path)
    run = Session(tmp_path, [book.name, "-i", "host=web-1"])
    run.answer("? help > ", "r")
    run.answer("? help > ", "r")
    run.answer("leave for later (l) > ", "d")
    run.answer("approver's name [carol] > ", "")  # the operator denies it themselves
    run.answer("comment (optional) > ", "not during business hours")
    run.wait("denied")
    assert run.finish() == 1
    assert not marker.exists()
    events = read_events(_run_dir(tmp_path))
    (approval,) = of(events, "approval")
    assert (approval["decision"], approval["by"], approval["comment"]) == (
        "denied",
        "carol",
        "not during business hours",
    )
    assert finished(events)["isolate-the-host"] == "denied"
    assert events[-1]["status"] == "failed"


def test_two_person_rule_refuses_the_operator_in_the_terminal(tmp_path: Path) -> None:
    book, marker = _gated(tmp_path)
    run = Session(tmp_path, [book.name, "-i", "host=web-1", "--require-distinct-approver"])
    run.answer("? help > ", "r")
    run.answer("? help > ", "r")
    shown = run.answer("leave for later (l) > ", "a")
    assert "Two-person rule: the approver may not be carol." in shown
    run.answer("approver's name > ", "carol")
    run.answer("comment (optional) > ", "")
    refused = run.answer("leave for later (l) > ", "a")  # asked again: someone else may approve
    assert "approval by carol refused" in refused and "two-person rule" in refused
    assert not marker.exists()
    run.answer("approver's name > ", "dana")
    run.answer("comment (optional) > ", "second pair of eyes")
    run.wait("isolating web-1")
    assert run.finish() == 0
    events = read_events(_run_dir(tmp_path))
    (refusal,) = of(events, "approval_refused")
    assert refusal["by"] == "carol" and "two-person rule" in refusal["reason"]
    (approval,) = of(events, "approval")
    assert (approval["by"], approval["distinct_required"]) == ("dana", True)
    assert refusal["seq"] < approval["seq"] < of(events, "block_started")[1]["seq"]


def test_two_person_rule_leave_for_later_pauses(tmp_path: Path) -> None:
    book, marker = _gated(tmp_path)
    run = Session(tmp_path, [book.name, "-i", "host=web-1", "--require-distinct-approver"])
    run.answer("? help > ", "r")
    run.answer("? help > ", "r")
    run.answer("leave for later (l) > ", "l")
    assert run.finish() == 3
    assert not marker.exists()
    events = read_events(_run_dir(tmp_path))
    assert of(events, "approval") == [] and events[-1]["event"] == "run_paused"


RECOVERY = """
1. Isolate through the EDR.

   ```bash {role=lead on_failure=procedure:manual-isolation}
   echo edr-down; exit 7
   ```

2. Tell people.

   ```bash
   echo told
   ```

## Alternative procedures

### Manual isolation

1. Pull the cable.

   ```bash
   echo cable-pulled
   ```
"""


def test_failure_prompt_offers_the_steps_on_failure_procedure(tmp_path: Path) -> None:
    book = write_book(tmp_path, RECOVERY)
    run = Session(tmp_path, [book.name])
    run.answer("? help > ", "r")
    shown = run.answer("? help > ", "p")
    assert "step 1 failed" in shown
    assert "run procedure manual-isolation (p)" in shown
    run.answer("? help > ", "r")  # the procedure's step, asked like any other
    run.wait("cable-pulled")
    run.answer("? help > ", "r")  # step 2 of the main list
    run.wait("told")
    assert run.finish() == 0
    events = read_events(_run_dir(tmp_path))
    decisions = [(e["step_id"], e["decision"], e["role"]) for e in of(events, "decision")]
    assert ("isolate-through-the-edr", "on_failure", "lead") in decisions
    statuses = [(e["procedure"], e["step_id"], e["status"]) for e in of(events, "step_finished")]
    assert statuses == [
        (None, "isolate-through-the-edr", "failed"),
        ("manual-isolation", "pull-the-cable", "succeeded"),
        (None, "isolate-through-the-edr", "handled"),
        (None, "tell-people", "succeeded"),
    ]
    assert events[-1]["status"] == "succeeded_with_handled_failures"


def test_end_of_input_at_a_prompt_ends_the_run_cleanly(tmp_path: Path) -> None:
    """Ctrl-D at a prompt (the terminal's end of input) ends the run as Ctrl-C does: journaled
    as cancelled, exit 130, never an internal error."""
    book, marker = _gated(tmp_path)
    run = Session(tmp_path, [book.name, "-i", "host=web-1"])
    run.wait("? help > ")
    run.child.sendeof()
    assert run.finish() == 130
    assert "internal error" not in run.seen
    events = read_events(_run_dir(tmp_path))
    assert events[-1]["event"] == "run_finished" and events[-1]["status"] == "cancelled"
    assert not marker.exists()
