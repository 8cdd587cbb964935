"""A run, assembled: what `runbook run`, `resume`, `approve`/`deny` and `drill`, the tests and a
future worker share, so none of them puts a run together on its own.

The caller brings what only it can know: the plan (parsed once, checked), the input values it
resolved (a prompt, a file, an alert's mapping), the operator who answers, and a reporter for
the live display. This module does the rest the same way for all of them: a kernel pool whose
Ctrl-C and SIGTERM become a cancel token, the run created or reopened in the run store, the
engine run to its end, the journal closed whatever happens. Nothing here prints.

Long on purpose: every way a person or the service acts on a run between attempts (approve,
deny, answer, expire, cancel, note) is here, so the terminal, the CLI, the console and the
worker apply one set of rules; each is a short function.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import UsageError
from runner.exec.engine import NullReporter, Reporter, RunContext, RunOptions, RunResult
from runner.exec.operator import Operator
from runner.exec.policy import GateRule, Person, approval_problem, expiry_event, gate_deadline
from runner.format.model import InputValue, Runbook, Step, StepStatus
from runner.format.syntax import CALL_KERNEL
from runner.kernels.backend import KernelBackend
from runner.kernels.pool import KernelPool
from runner.runs import events as ev
from runner.runs.journal import JournalError, new_run_id
from runner.runs.redact import Redactor
from runner.runs.state import ResumeState, RunRecord, StepRecord
from runner.runs.store import RunStore, RunWriter


@dataclass(frozen=True, slots=True)
class Session:
    """One attempt of a run: the plan, its resolved inputs, who answers, and how it was asked."""

    book: Runbook
    values: Mapping[str, InputValue]
    secrets: Sequence[str]  # names of the secret inputs: redacted from everything written
    operator: Operator
    context: RunContext
    options: RunOptions
    reporter: Reporter = field(default_factory=NullReporter)

    @property
    def redactor(self) -> Redactor:
        return Redactor.for_inputs(self.values, self.secrets)


@dataclass(frozen=True, slots=True)
class OpenRun:
    """A run found in the store, its journal verified, and what a new attempt takes over."""

    run_dir: Path
    record: RunRecord
    state: ResumeState


def needed_kernels(steps: Sequence[Step]) -> list[str]:
    """The kernels these steps run in, in the order they first need them (a ```runbook block
    needs none: the engine runs the called runbook, whose kernels start when first used)."""
    names: list[str] = []
    for step in steps:
        for block in step.executable_blocks:
            if block.kernel and block.kernel != CALL_KERNEL and block.kernel not in names:
                names.append(block.kernel)
    return names


@contextlib.contextmanager
def kernel_pool(
    names: Sequence[str], on_press: Callable[[int], None] | None = None
) -> Iterator[KernelPool]:
    """A pool with these kernels already booting, always shut down. While it is open, Ctrl-C
    and SIGTERM set the pool's cancel token (``on_press`` is told at once, from the handler)."""
    from runner.kernels.cancel import CancelToken

    token = CancelToken()
    if on_press is not None:
        token.on_press = on_press
    with token.handling_signals():
        pool = KernelPool()
        pool.cancel = token  # the engine takes it from the pool
        try:
            pool.prestart(names)
            yield pool
        finally:
            pool.shutdown()


def context_for(
    path: Path, operator: str, interactive: bool, trigger: Mapping[str, Any] | None = None
) -> RunContext:
    """Where and by whom: the host, the runbook's git commit when it is in a repository, and the
    alert that started the run (journaled in `run_started.trigger`)."""
    host = socket.gethostname()
    return RunContext(str(path), operator, host, _git_commit(path), interactive, trigger, os_user())


def os_user() -> str | None:
    """The OS account this process acts as (its effective uid), recorded beside a name a person
    gives (`--operator`, `--by`), which is only a claim."""
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except (KeyError, OSError):
        return None


def _git_commit(path: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(path.parent or "."), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def create(
    book: Runbook, redactor: Redactor, runs_dir: Path, run_id: str | None = None
) -> RunWriter:
    """A new run of ``book`` in the store, for a caller that needs its writer before the run
    starts (a drill's operator journals faults and notes through it). ``run_id`` is for a
    caller that named the run before it started (the service's workflow)."""
    return RunStore(runs_dir).create(run_id or new_run_id(book.metadata.id), redactor)


def start(
    session: Session, pool: KernelBackend, runs_dir: Path, run_id: str | None = None
) -> RunResult:
    """Start a new run of the session's plan and run it to its end (or its first gate)."""
    return execute(session, pool, create(session.book, session.redactor, runs_dir, run_id))


def open_run(runs_dir: Path | None, ref: str) -> OpenRun:
    """The run ``ref`` names (an id, a unique prefix, a folder or `last`), verified: the state
    comes from the very bytes that were verified, because approvals in it gate steps."""
    from runner.runs.journal import REPAIR_HINT

    store = RunStore(runs_dir)
    run_dir = store.find(ref)
    result, record = store.verified(run_dir)
    if not result.ok:
        hint = REPAIR_HINT if result.torn else ""
        raise JournalError(
            f"the journal is not intact ({result.message}); it cannot be continued{hint}",
            path=str(run_dir / "journal.jsonl"),
            line=result.line,
        )
    return OpenRun(run_dir, record, record.resume(keyed_from=result.keyed_from))


def resume(
    session: Session,
    pool: KernelBackend,
    run: OpenRun,
    *,
    corrected: Mapping[str, Any] | None = None,
) -> RunResult:
    """A new attempt of a run. ``corrected`` inputs (`resume --set`) are journaled, with the
    values they replace and who changed them, before the attempt that uses them."""
    journal = RunStore().reopen(run.run_dir, session.redactor)
    if corrected:
        journal.append(
            ev.InputsChanged(
                inputs={k: session.values[k] for k in corrected},
                previous={k: run.state.inputs.get(k) for k in corrected},
                by=session.context.operator,
            )
        )
        run.state.inputs.update({k: session.values[k] for k in corrected})
    return execute(session, pool, journal, resume=run.state)


def execute(
    session: Session,
    pool: KernelBackend,
    journal: RunWriter,
    *,
    resume: ResumeState | None = None,
) -> RunResult:
    """Run the engine over an open run; the journal is closed whatever happens."""
    from runner.exec.engine import Engine

    engine = Engine(
        session.book,
        inputs=session.values,
        secret_inputs=session.secrets,
        journal=journal,
        pool=pool,
        operator=session.operator,
        context=session.context,
        options=session.options,
        reporter=session.reporter,
        resume=resume,
    )
    try:
        return engine.run()
    finally:
        journal.close()


def waiting_gate(run: OpenRun, step_ref: str) -> ev.StepFinished:
    """The gate ``step_ref`` (a number or id) when it waits for an approval; UsageError if not."""
    waiting = run.record.waiting(step_ref)
    if waiting is None:
        expired = next(
            (
                w
                for w in run.record.last_word.values()
                if isinstance(w, ev.ApprovalExpired) and step_ref in (str(w.step), str(w.step_id))
            ),
            None,
        )
        if expired is not None:
            raise UsageError(
                f"step {step_ref} of run {run.run_dir.name}: {expired.reason} at {expired.ts}; "
                "the gate is denied and nothing more is taken; `runbook resume` applies it"
            )
        raise UsageError(
            f"step {step_ref} of run {run.run_dir.name} is not waiting for an approval; "
            "`runbook log RUN` shows where the run stands"
        )
    return waiting


def answer(
    run: OpenRun,
    step_ref: str,
    value: str,
    *,
    by: str,
    role: str | None = None,
    auth: str | None = None,
    os_user: str | None = None,
) -> ev.Answered:
    """Record the answer to a waiting decision step, checked against its question's type; the
    run goes on when it is resumed. UsageError (exit 2) when nothing waits or it does not fit."""
    from runner.format.answers import read_answer
    from runner.format.model import Question

    waiting = run.record.waiting_answer(step_ref)
    asked = run.record.question_for(waiting) if waiting is not None else None
    if waiting is None or asked is None:
        raise UsageError(
            f"step {step_ref} of run {run.run_dir.name} is not waiting for an answer; "
            "`runbook pending RUN` shows what waits"
        )
    if not by.strip():
        raise UsageError("the answer needs a name: --by NAME")
    question = Question(asked.question, asked.type, tuple(asked.choices), asked.output)  # type: ignore[arg-type]  # as journaled
    try:
        typed = read_answer(question, value)
    except ValueError as exc:
        raise UsageError(f"step {waiting.step} asks {asked.question!r}: {exc}") from None
    recorded = ev.Answered(
        step=waiting.step,
        step_id=waiting.step_id,
        procedure=waiting.procedure,
        value=typed,
        output=asked.output,
        by=by,
        source="service" if auth else "runbook_answer",
        waited=round(_since(asked.ts), 3),
        role=role,
        auth=auth,
        os_user=os_user,
    )
    with RunStore().reopen(run.run_dir) as journal:
        journal.append(recorded)
    return recorded


def _since(iso: str) -> float:
    """Seconds since a journal time; 0 when it is unreadable."""
    from runner.runs.state import epoch

    then = epoch(iso)
    return max(0.0, time.time() - then) if then else 0.0


def _rule(requested: ev.ApprovalRequested | None) -> GateRule:
    if requested is None:
        return GateRule()
    return GateRule(
        requested.approver_role,
        int(requested.needed or 1),
        requested.timeout,
        requested.escalate_role,
        int(requested.escalate_needed or 1),
    )


def approver_problem(
    run: OpenRun, waiting: ev.StepFinished, by: str, role: str | None, os_user: str | None = None
) -> str | None:
    """Why ``by`` (holding ``role``, acting as OS account ``os_user``) may not approve this
    gate (its approver role, the two-person rule, a quorum's distinct people), or None."""
    gate = run.record.gate_for(waiting)
    rule = _rule(run.record.request_for(waiting))
    start = run.record.start
    return approval_problem(
        int(waiting.step or 0),
        gate.role if gate else rule.role,
        by,
        role,
        run.state.operator,
        bool(run.state.options.get("require_distinct_approver")),
        os_user=os_user,
        starter_os_user=start.get("os_user"),
        triggered=bool(start.get("trigger")),
        earlier=[Person(a.by, a.os_user) for a in gate.approvals] if gate else [],
        needed=gate.needed if gate else rule.needed,
    )


def expire(
    run: OpenRun, waiting: ev.StepFinished, now: float | None = None
) -> ev.ApprovalEscalated | ev.ApprovalExpired | None:
    """Journal the gate's escalation or expiry when its time is up (`runbook approve`, `deny`,
    `pending` and the service's timer ask here, the engine on resume); None when it is not."""
    gate = run.record.gate_for(waiting)
    if gate is None or gate.expired is not None:
        return None
    event = expiry_event(
        waiting,
        _rule(gate.request),
        gate.requested_at,
        gate.escalated_at,
        len(gate.approvals),
        time.time() if now is None else now,
    )
    if event is not None:
        with RunStore().reopen(run.run_dir) as journal:
            journal.append(event)
    return event


def gate_deadline_of(run: OpenRun, waiting: ev.StepFinished) -> float | None:
    """When the waiting gate expires or escalates (epoch seconds), or None."""
    gate = run.record.gate_for(waiting)
    if gate is None or gate.expired is not None:
        return None
    return gate_deadline(_rule(gate.request), gate.requested_at, gate.escalated_at)


def decide(
    run: OpenRun,
    waiting: ev.StepFinished,
    *,
    decision: str,
    by: str,
    role: str | None,
    comment: str | None,
    auth: str | None = None,
    os_user: str | None = None,
) -> ev.Approval:
    """Record an approval or a denial of a waiting gate, after the same rules the runner applies
    at the terminal (the approver's role, the two-person rule, a quorum's distinct people, the
    gate's expiry). A refused approval is journaled as `approval_refused` and raised; an
    approval that does not complete a quorum is journaled and the gate waits for the rest. The
    run continues when it is resumed."""
    if decision not in ("approved", "denied"):
        raise UsageError(f"a decision is approved or denied, not {decision!r}")
    late = expire(run, waiting)
    if late is not None:
        # Reopened: the escalation changed who may approve, and the expiry closed the gate.
        run = open_run(run.run_dir.parent, run.run_dir.name)
        waiting = waiting_gate(run, str(waiting.step_id))
    distinct = bool(run.state.options.get("require_distinct_approver"))
    if decision == "approved" and (problem := approver_problem(run, waiting, by, role, os_user)):
        refusal = ev.ApprovalRefused(
            step=waiting.step,
            step_id=waiting.step_id,
            procedure=waiting.procedure,
            by=by,
            role=role,
            reason=problem,
            os_user=os_user,
        )
        with RunStore().reopen(run.run_dir) as journal:
            journal.append(refusal)
        raise UsageError(problem)
    gate = run.record.gate_for(waiting)
    requested = run.record.request_for(waiting)
    needed = gate.needed if gate else 1
    count = len(gate.approvals) + 1 if gate else 1
    approval = ev.Approval(
        step=waiting.step,
        step_id=waiting.step_id,
        procedure=waiting.procedure,
        decision=decision,
        by=by,
        role=role,
        comment=comment,
        preapproved=False,
        distinct_required=distinct,
        auth=auth,
        os_user=os_user,
        needed=needed if needed > 1 else None,
        count=count if needed > 1 else None,
        code_sha256=code_digest(requested.code) if requested else None,
    )
    with RunStore().reopen(run.run_dir) as journal:
        journal.append(approval)
    return approval


def code_digest(code: str) -> str:
    """The SHA-256 of a gate's code as its approver is shown it (secrets redacted): journaled
    with the approval, and sent back by the console's approval page, which is refused when the
    gate no longer asks about what the page showed."""
    return hashlib.sha256(code.encode()).hexdigest()


def cancel_waiting(
    run: OpenRun, *, by: str, reason: str, role: str | None = None, auth: str | None = None
) -> ev.RunFinished:
    """End a run that waits (at a gate, or interrupted mid-step) as cancelled, with a note of
    who cancelled it (under which role, authenticated how) and why. A run that already ended is
    left as it is (UsageError)."""
    # "crashed": its last attempt stopped mid-step (a lost worker) and nothing ended it since.
    if run.record.status not in ("paused", "running", "crashed"):
        raise UsageError(
            f"run {run.run_dir.name} already ended ({run.record.status}); nothing to cancel"
        )
    journal = RunStore().reopen(run.run_dir)
    try:
        journal.append(ev.Note(by=by, role=role, auth=auth, text=f"cancelled: {reason}"))
        finished = ev.RunFinished(status="cancelled", counts={}, aborted=True)
        journal.append(finished)
    finally:
        journal.close()
    return finished


def add_note(
    run: OpenRun, *, by: str, text: str, role: str | None = None, auth: str | None = None
) -> ev.Note:
    """A note in a run's journal: what a person or the service did between attempts."""
    note = ev.Note(by=by, role=role, auth=auth, text=text)
    journal = RunStore().reopen(run.run_dir)
    try:
        journal.append(note)
    finally:
        journal.close()
    return note


def cut_off_step(run: OpenRun) -> StepRecord | None:
    """The step an interrupted run's last attempt was in when it stopped (its worker lost),
    or None when it stopped between steps."""
    cut = [s for s in run.record.steps if s.status == StepStatus.RUNNING]
    return cut[-1] if cut else None


def skip_cut_off(
    run: OpenRun, *, by: str, role: str | None, auth: str | None, comment: str | None = None
) -> ev.StepFinished:
    """Record the step an interrupted run was cut off in as skipped, by a person who checked
    by hand what it did, so that resuming goes on from the next step instead of running it
    again. Nothing else is assumed: its outputs stay unset, and a later step that needs them
    stops for want of them."""
    cut = cut_off_step(run)
    if cut is None:
        raise UsageError(
            f"run {run.run_dir.name} was not cut off mid-step; resume it instead of skipping"
        )
    said = f"cut off when its worker was lost; skipped by {by}" + (
        f": {comment}" if comment else ""
    )
    finished = ev.StepFinished(
        step=cut.number,
        step_id=cut.step_id,
        procedure=cut.procedure,
        title=cut.title or "",
        status=StepStatus.SKIPPED.value,
        attempt=max(1, cut.attempts),
        attempts=max(1, cut.attempts),
        reason=said,
    )
    journal = RunStore().reopen(run.run_dir)
    try:
        journal.append(ev.Note(step=cut.number, step_id=cut.step_id, procedure=cut.procedure,
                               by=by, role=role, auth=auth, text=said))  # fmt: skip
        journal.append(finished)
    finally:
        journal.close()
    return finished
