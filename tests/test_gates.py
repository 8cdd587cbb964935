"""Issue 17's gate rules through real kernels: a quorum of distinct approvers, the two-person
rule on names and OS accounts, and a gate's expiry and escalation (journaled, fail closed)."""

from __future__ import annotations

import os
import pwd
import time
from pathlib import Path

import pytest
from runner_helpers import cli, finished, of, run_engine, write_book

from runner.errors import UsageError
from runner.exec.operator import ScriptedOperator
from runner.exec.policy import GateRule, Person, approval_problem, expiry_due, same_person
from runner.exec.session import decide, expire, open_run, waiting_gate
from runner.format.model import RunStatus
from runner.runs.journal import read_events, verify
from runner.runs.state import epoch

ROLES = "roles:\n  lead: Incident lead\n"


def _gated(tmp_path: Path, attrs: str) -> tuple[Path, Path]:
    marker = tmp_path / "gated-ran"
    book = write_book(
        tmp_path,
        f"""
        1. Isolate the host.

           ```bash {{id=isolate {attrs}}}
           touch {marker}
           ```
        """,
    )
    text = book.read_text().replace(ROLES, ROLES + "  manager: IR manager\n")
    book.write_text(text)
    return book, marker


def _paused(tmp_path: Path, book: Path, operator: ScriptedOperator | None = None) -> Path:
    result, _ = run_engine(book, tmp_path / "runs", operator=operator)
    assert result.status is RunStatus.PAUSED and result.exit_code == 3
    return next((tmp_path / "runs").iterdir())


def _approve(run_dir: Path, by: str, role: str | None = "lead", os_user: str | None = None) -> int:
    run = open_run(run_dir.parent, run_dir.name)
    approval = decide(
        run,
        waiting_gate(run, "isolate"),
        decision="approved",
        by=by,
        role=role,
        comment=None,
        os_user=os_user,
    )
    return int(approval.count or 1)


def _resume(tmp_path: Path, book: Path, run_dir: Path) -> tuple[RunStatus, list[dict[str, object]]]:
    state = open_run(run_dir.parent, run_dir.name).state
    result, events = run_engine(book, tmp_path / "runs", resume=state, run_dir=run_dir)
    return result.status, events


def test_quorum_needs_distinct_people_and_one_terminal_gives_one(tmp_path: Path) -> None:
    book, marker = _gated(tmp_path, "approve=lead*2")
    # The person at the terminal gives one approval; the run pauses for the second.
    run_dir = _paused(tmp_path, book, ScriptedOperator("alice", ["run", "approve:bob"]))
    first = of(read_events(run_dir), "approval")
    assert [(a["by"], a["count"], a["needed"]) for a in first] == [("bob", 1, 2)]
    assert not marker.exists()
    for same in ("bob", "BOB", " Bob "):
        with pytest.raises(UsageError, match="already approved step 1"):
            _approve(run_dir, same)
    refusals = of(read_events(run_dir), "approval_refused")
    assert len(refusals) == 3 and "2 distinct people" in refusals[0]["reason"]
    # A resume without the second approval asks again and pauses: nothing ran.
    status, _ = _resume(tmp_path, book, run_dir)
    assert status is RunStatus.PAUSED and not marker.exists()
    with pytest.raises(UsageError, match="holding the role 'lead'"):
        _approve(run_dir, "carol", role=None)
    assert _approve(run_dir, "carol") == 2
    status, events = _resume(tmp_path, book, run_dir)
    assert status is RunStatus.SUCCEEDED and marker.exists() and verify(run_dir).ok
    assert [a["by"] for a in of(events, "approval")] == ["bob", "carol"]


def test_one_denial_denies_a_quorum(tmp_path: Path) -> None:
    book, marker = _gated(tmp_path, "approve=lead*2")
    run_dir = _paused(tmp_path, book)
    assert _approve(run_dir, "alice") == 1
    run = open_run(run_dir.parent, run_dir.name)
    decide(run, waiting_gate(run, "1"), decision="denied", by="bob", role="lead", comment="no")
    status, events = _resume(tmp_path, book, run_dir)
    assert status is RunStatus.FAILED and not marker.exists()
    assert finished(events)["isolate"] == "denied"


def test_a_gate_escalates_once_then_expires_denied(tmp_path: Path) -> None:
    book, marker = _gated(tmp_path, "approve=lead approval_timeout=30m escalate=manager")
    run_dir = _paused(tmp_path, book)
    run = open_run(run_dir.parent, run_dir.name)
    waiting = waiting_gate(run, "isolate")
    asked = epoch(str(of(read_events(run_dir), "approval_requested")[0]["ts"]))
    assert expire(run, waiting, now=asked + 60) is None  # not yet
    escalated = expire(run, waiting, now=asked + 1801)
    assert escalated is not None and escalated.event == "approval_escalated"
    with pytest.raises(UsageError, match="holding the role 'manager'"):
        _approve(run_dir, "alice", role="lead")  # the lead's time is up
    # The escalation reset the clock once: 30 minutes from it, then denied.
    run = open_run(run_dir.parent, run_dir.name)
    assert expire(run, waiting, now=time.time() + 60) is None
    expired = expire(run, waiting, now=time.time() + 1801)
    assert expired is not None and expired.event == "approval_expired"
    with pytest.raises(UsageError, match="approval expired"):
        _approve(run_dir, "dana", role="manager")  # too late: nothing more is taken
    status, events = _resume(tmp_path, book, run_dir)
    assert status is RunStatus.FAILED and not marker.exists()
    denied = [e for e in of(events, "step_finished") if e["status"] == "denied"]
    assert denied[-1]["reason"] == "approval expired"
    assert of(events, "approval") == []


def test_an_approval_after_the_deadline_is_refused(tmp_path: Path) -> None:
    book, marker = _gated(tmp_path, "approve=lead approval_timeout=0.05")
    run_dir = _paused(tmp_path, book)
    asked = epoch(str(of(read_events(run_dir), "approval_requested")[0]["ts"]))
    while time.time() < asked + 0.06:  # the deadline passes: the cause, not a guess at it
        time.sleep(0.01)
    with pytest.raises(UsageError, match="approval expired"):
        _approve(run_dir, "alice")
    kinds = [e["event"] for e in read_events(run_dir)]
    assert "approval_expired" in kinds and "approval" not in kinds
    status, _ = _resume(tmp_path, book, run_dir)
    assert status is RunStatus.FAILED and not marker.exists()


def test_two_person_rule_compares_names_and_accounts() -> None:
    starter = Person("root", "root")
    assert same_person(Person("ROOT", "dana"), starter)
    assert same_person(Person("dana", "root"), starter)  # `--by dana` typed by root
    assert not same_person(Person("dana", "soc"), Person("carol", "soc"))  # a shared account
    problem = approval_problem(1, None, "ROOT", None, "root", True, os_user="root")
    assert problem and "two-person rule" in problem
    # A triggered run was started by its alert source: any holder may approve.
    assert approval_problem(1, None, "root", None, "root", True, triggered=True) is None
    rule = GateRule("lead", 1, 10.0, "manager")
    assert expiry_due(rule, 100.0, None, 109.0) is None
    assert expiry_due(rule, 100.0, None, 110.0) == "escalate"
    assert expiry_due(rule, 100.0, 110.0, 119.0) is None
    assert expiry_due(rule, 100.0, 110.0, 120.0) == "expire"
    assert expiry_due(GateRule("lead", 1, 10.0), 100.0, None, 110.0) == "expire"


def test_approve_by_the_starter_in_capitals_is_refused(tmp_path: Path) -> None:
    book, marker = _gated(tmp_path, "approve=true")
    me = pwd.getpwuid(os.geteuid()).pw_name
    env = {"RUNBOOK_OPERATOR": "", "USER": me, "LOGNAME": me}
    done = cli(["run", book.name, "--yes", "--require-distinct-approver"], tmp_path, env)
    assert done.returncode == 3, done.stdout + done.stderr
    run_dir = next((tmp_path / ".runbook" / "runs").iterdir())
    for by in (me.upper(), "someone-else"):  # the second is typed from the starter's account
        own = cli(["approve", run_dir.name, "1", "--by", by], tmp_path, env)
        assert own.returncode == 2 and "two-person rule" in own.stderr, own.stderr
    refusals = of(read_events(run_dir), "approval_refused")
    assert [(r["by"], r["os_user"]) for r in refusals] == [(me.upper(), me), ("someone-else", me)]
    assert of(read_events(run_dir), "run_started")[0]["os_user"] == me
    assert of(read_events(run_dir), "approval") == [] and not marker.exists()


def test_quorum_lint(tmp_path: Path) -> None:
    for attrs, code in [
        ("approve=lead*0", "RB052"),
        ("approve=true*2", "RB053"),
        ("approve=lead escalate=manager", "RB051"),
        ("approval_timeout=5m", "RB051"),
    ]:
        book, _ = _gated(tmp_path, attrs)
        done = cli(["check", book.name], tmp_path)
        assert done.returncode == 1 and code in done.stdout + done.stderr, (attrs, done.stdout)


def test_the_service_timer_activity_escalates_then_denies(tmp_path: Path) -> None:
    """The workflow's durable timer runs `expire_gate` (tested here in Temporal's activity
    environment, not through a dev server): the rule is the session's, the step is denied."""
    from temporalio.testing import ActivityEnvironment

    from runner.service.activities import RunActivities
    from runner.service.messages import DecideRequest

    book, marker = _gated(tmp_path, "approve=lead approval_timeout=0.05 escalate=manager")
    run_dir = _paused(tmp_path, book)
    runs, activities, env = str(run_dir.parent), RunActivities(), ActivityEnvironment()
    ask = DecideRequest(run_dir.name, runs, None, step="isolate")
    asked = epoch(str(of(read_events(run_dir), "approval_requested")[0]["ts"]))
    while time.time() < asked + 0.06:  # the first deadline passes
        time.sleep(0.01)
    first = env.run(activities.expire_gate, ask)
    assert (first.status, first.paused_step, first.reason) == ("paused", "isolate", "escalated")
    assert first.deadline is not None and first.deadline > asked + 0.05
    while time.time() < first.deadline + 0.01:  # the escalated gate's deadline passes
        time.sleep(0.01)
    second = env.run(activities.expire_gate, ask)
    assert second.status == "failed" and not marker.exists()
    kinds = [e["event"] for e in read_events(run_dir)]
    assert kinds.count("approval_escalated") == 1 and kinds.count("approval_expired") == 1
    assert finished(read_events(run_dir))["isolate"] == "denied"
