"""A decision made through the service: by an authenticated identity, under a role it holds.

The console's approval page and `POST /api/runs/{id}/decisions` (the CLI's `runbook approve
--server`) both come here. The gate's role and the two-person rule are checked before anything
is sent (`runner.exec.session.approver_problem`, the rules `runbook approve` applies); a
refusal is journaled (`approval_refused`) and answered 403. An accepted decision goes to the
run's workflow as its `decide` signal; the worker journals it through
`runner.exec.session.decide` with the user id, the role and how they authenticated, and resumes
the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from runner.errors import RunbookError
from runner.exec.session import (
    OpenRun,
    approver_problem,
    code_digest,
    open_run,
    waiting_gate,
)
from runner.format.answers import read_answer
from runner.format.model import Question
from runner.identity.model import Identity
from runner.runs import events as ev
from runner.runs.state import RunRecord
from runner.runs.store import RunStore


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the service sends a run's workflow (`runbook serve` makes its `decide` signal)."""

    step: str
    decision: str  # approved | denied
    by: str  # the authenticated user id
    role: str | None
    comment: str | None
    auth: str  # password | token
    answer: str | None = None  # a decision step's answer (decision "answered")


#: Sends a verdict to the workflow with this id.
Send = Callable[[str, Verdict], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int  # the HTTP status: 202 sent, 403 refused, 404/409 nothing to decide
    message: str
    verdict: Verdict | None = None


shown_digest = code_digest  # the approval page sends it back with the decision


def _refuse(run: OpenRun, waiting: ev.StepFinished, who: Identity, role: str | None,
            reason: str) -> Outcome:  # fmt: skip
    with RunStore().reopen(run.run_dir) as journal:
        journal.append(
            ev.ApprovalRefused(step=waiting.step, step_id=waiting.step_id,
                               procedure=waiting.procedure, by=who.user, role=role,
                               reason=reason)
        )  # fmt: skip
    return Outcome(403, reason)


async def decide(
    runs_dir: Path,
    run_id: str,
    step: str,
    decision: str,
    who: Identity,
    comment: str | None,
    send: Send,
    shown: str | None = None,
) -> Outcome:
    # Verifying the journal and writing a refusal are file work: off the event loop.
    checked = await asyncio.to_thread(_check, runs_dir, run_id, step, decision, who, comment,
                                      shown)  # fmt: skip
    if isinstance(checked, Outcome):
        return checked
    workflow_id, verdict, said = checked
    await send(workflow_id, verdict)
    return Outcome(202, said, verdict)


def _check(
    runs_dir: Path,
    run_id: str,
    step: str,
    decision: str,
    who: Identity,
    comment: str | None,
    shown: str | None,
) -> Outcome | tuple[str, Verdict, str]:
    """The verdict to send and the workflow to send it to, or why not (a refusal journaled)."""
    if decision not in ("approved", "denied"):
        return Outcome(400, f"a decision is approved or denied, not {decision!r}")
    try:
        run = open_run(runs_dir, run_id)
        waiting = waiting_gate(run, step)
    except RunbookError as exc:
        # Not the store's message: it names the server's folders.
        if "not waiting" in str(exc):
            return Outcome(409, f"run {run_id} has no gate {step} waiting for a decision")
        return Outcome(404, f"no run {run_id} to decide on")
    requested = run.record.request_for(waiting)
    gate = run.record.gate_for(waiting)
    # The role the gate asks now: once it escalated, the escalation's (and only it).
    role = gate.role if gate else requested.approver_role if requested else None
    if shown is not None and shown != shown_digest(requested.code if requested else ""):
        return Outcome(409, "the gate is not what your page showed; reload it and look again")
    if not who.holds(role):
        held = ", ".join(sorted(who.roles)) or "none"
        return _refuse(run, waiting, who, role,
                       f"{who.user} does not hold role {role} (roles held: {held})")  # fmt: skip
    if decision == "approved" and (problem := approver_problem(run, waiting, who.user, role)):
        return _refuse(run, waiting, who, role, problem)
    workflow_id = workflow_of(run.record)
    if not workflow_id:
        return Outcome(409, f"run {run_id} was not started by the service; decide on it where "
                            "it runs, with `runbook approve` and `runbook resume`")  # fmt: skip
    verdict = Verdict(str(waiting.step_id or waiting.step), decision, who.user, role,
                      comment or None, who.auth)  # fmt: skip
    return str(workflow_id), verdict, f"step {waiting.step} {decision} by {who.user}"


def workflow_of(record: RunRecord) -> str | None:
    """The service workflow of a run: named in its trigger, or, for a run started by hand
    through the API, by its run id. None for a run the service did not start."""
    trigger = record.start.get("trigger") or {}
    if trigger.get("workflow_id"):
        return str(trigger["workflow_id"])
    if record.start.get("operator") == "service-api":
        return manual_workflow_id(str((record.start.get("runbook") or {}).get("id")),
                                  record.run_dir.name)  # fmt: skip
    return None


def manual_workflow_id(runbook_id: str, run_id: str) -> str:
    """A run started by hand has no dedup key: its workflow is named by its run."""
    return f"manual:{runbook_id}:{run_id}"


async def answer_question(
    runs_dir: Path, run_id: str, step: str, value: str, who: Identity, send: Send
) -> Outcome:
    """A decision step's answer, by an authenticated identity holding the step's role."""
    checked = await asyncio.to_thread(_check_answer, runs_dir, run_id, step, value, who)
    if isinstance(checked, Outcome):
        return checked
    workflow_id, verdict, said = checked
    await send(workflow_id, verdict)
    return Outcome(202, said, verdict)


def _check_answer(
    runs_dir: Path, run_id: str, step: str, value: str, who: Identity
) -> Outcome | tuple[str, Verdict, str]:
    try:
        run = open_run(runs_dir, run_id)
    except RunbookError:
        return Outcome(404, f"no run {run_id} to answer on")
    waiting = run.record.waiting_answer(step)
    asked = run.record.question_for(waiting) if waiting is not None else None
    if waiting is None or asked is None:
        return Outcome(409, f"run {run_id} has no question {step} waiting for an answer")
    role = next((s.role for s in run.record.steps if s.step_id == waiting.step_id
                 and s.procedure == waiting.procedure), None)  # fmt: skip
    if not who.holds(role):
        held = ", ".join(sorted(who.roles)) or "none"
        return Outcome(403, f"{who.user} does not hold role {role} (roles held: {held}), which "
                            "answers this question")  # fmt: skip
    question = Question(asked.question, asked.type, tuple(asked.choices), asked.output)  # type: ignore[arg-type]
    try:
        read_answer(question, value)  # checked here too, so a typo is a 400 at once
    except ValueError as exc:
        return Outcome(400, f"step {waiting.step} asks {asked.question!r}: {exc}")
    workflow_id = workflow_of(run.record)
    if not workflow_id:
        return Outcome(409, f"run {run_id} was not started by the service; answer it where it "
                            "runs, with `runbook answer` and `runbook resume`")  # fmt: skip
    verdict = Verdict(str(waiting.step_id or waiting.step), "answered", who.user, role, None,
                      who.auth, value)  # fmt: skip
    return workflow_id, verdict, f"step {waiting.step} answered by {who.user}"
