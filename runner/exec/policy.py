"""The run's policies as small pure functions: selection, retries, approvals, final status.

They take plain values and return plain values, so the engine, `runbook approve` and
`runbook resume` apply exactly the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from runner.format.model import Runbook, RunStatus, Step, StepStatus, find_step, step_label
from runner.runs import events as ev
from runner.runs.state import RunRecord

#: A step that ended in one of these did not do its job.
FAILED_STATUSES = frozenset(
    {StepStatus.FAILED, StepStatus.TIMED_OUT, StepStatus.CANCELLED, StepStatus.DENIED}
)


def matches(step: Step, ref: str) -> bool:
    """A step reference from the command line: its number or its id."""
    return ref in (str(step.number), step.id)


def selection_reason(
    step: Step, only: Sequence[str], from_step: str | None, steps: Sequence[Step]
) -> str | None:
    """Why `--only`/`--from` leave this step out, or None when it is selected."""
    if only and not any(matches(step, ref) for ref in only):
        return f"not selected (--only {','.join(only)})"
    if from_step is not None:
        start = next((s.number for s in steps if matches(s, from_step)), None)
        if start is not None and step.number < start:
            return f"before the starting step (--from {from_step})"
    return None


def retry_delay(step: Step, attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): delay x backoff^(attempt-1)."""
    blocks = step.executable_blocks
    delay = next((b.retry_delay for b in blocks if b.retry_delay), 0.0)
    backoff = next((b.retry_backoff for b in blocks if b.retry_backoff != 1.0), 1.0)
    return float(delay * backoff ** (attempt - 1))


@dataclass(frozen=True, slots=True)
class Person:
    """Who gave (or asks to give) an approval: the name given, and the OS account it came from
    when a local command recorded one."""

    by: str
    os_user: str | None = None


def same_person(a: Person, b: Person) -> bool:
    """Whether two approvers may be one person, compared case-insensitively: the same name, or
    one's name is the other's OS account (`--by ROOT` from, or for a run of, `root`).

    Two equal OS accounts alone do not make one person: a shared account (a jump host where
    everyone is `soc`) does not tell people apart, so it cannot refuse them either. Local names
    are claims; the service's signed-in users are the identities that hold (docs/service.md).
    """
    fold = str.casefold
    an, bn = fold(a.by.strip()), fold(b.by.strip())
    if an == bn:
        return True
    return bool((a.os_user and fold(a.os_user) == bn) or (b.os_user and fold(b.os_user) == an))


@dataclass(frozen=True, slots=True)
class GateRule:
    """What a gate asks for (from the step, or as its `approval_requested` journaled it)."""

    role: str | None = None
    needed: int = 1
    timeout: float | None = None  # seconds
    escalate_role: str | None = None
    escalate_needed: int = 1

    @classmethod
    def of(cls, step: Step) -> GateRule:
        return cls(
            step.approver_role,
            step.approvals_needed,
            step.approval_timeout,
            step.escalate_role,
            step.escalate_needed,
        )

    def now_asks(self, escalated: bool) -> tuple[str | None, int]:
        """(role, approvals needed) as the gate stands: escalated, it asks the new role."""
        if escalated and self.escalate_role:
            return self.escalate_role, self.escalate_needed
        return self.role, self.needed


def gate_deadline(rule: GateRule, requested_at: float, escalated_at: float | None) -> float | None:
    """When the gate expires (epoch seconds), or None when it waits for ever."""
    if rule.timeout is None:
        return None
    return (escalated_at if escalated_at is not None else requested_at) + rule.timeout


def expiry_due(
    rule: GateRule, requested_at: float, escalated_at: float | None, now: float
) -> str | None:
    """ "escalate" or "expire" when the gate's time is up at ``now``, else None. Escalation
    resets the timer once, for the new role; the next expiry denies (fails closed)."""
    deadline = gate_deadline(rule, requested_at, escalated_at)
    if deadline is None or now < deadline:
        return None
    if escalated_at is None and rule.escalate_role:
        return "escalate"
    return "expire"


def expiry_event(
    where: ev.ListedStepEvent,
    rule: GateRule,
    requested_at: float,
    escalated_at: float | None,
    had: int,
    now: float,
) -> ev.ApprovalEscalated | ev.ApprovalExpired | None:
    """The event to journal when the gate's time is up at ``now`` (see :func:`expiry_due`):
    the engine, `runbook approve` and the service's timer all write it from here."""
    due = expiry_due(rule, requested_at, escalated_at, now)
    if due is None:
        return None
    role, needed = rule.now_asks(escalated_at is not None)
    waited = f"waited {rule.timeout or 0:g}s for {needed} approval(s) by {role or 'anyone'}"
    if due == "escalate":
        new_role, new_needed = rule.now_asks(True)
        return ev.ApprovalEscalated(
            step=where.step,
            step_id=where.step_id,
            procedure=where.procedure,
            from_role=role,
            role=new_role,
            needed=new_needed,
            timeout=rule.timeout,
        )
    return ev.ApprovalExpired(
        step=where.step,
        step_id=where.step_id,
        procedure=where.procedure,
        role=role,
        had=had,
        needed=needed,
        reason=f"approval expired: {waited}",
    )


def approval_problem(
    step_number: int,
    approver_role: str | None,
    by: str,
    role: str | None,
    run_operator: str,
    distinct_required: bool,
    *,
    os_user: str | None = None,
    starter_os_user: str | None = None,
    triggered: bool = False,
    earlier: Sequence[Person] = (),
    needed: int = 1,
) -> str | None:
    """Why this approver may not approve this step, or None.

    The two-person rule binds the person who started the run by hand; a triggered run was
    started by its alert source, so any holder of the role may approve it. A quorum
    (``needed`` > 1) counts distinct people: one already in ``earlier`` is refused.
    """
    if not by.strip():
        return "the approver must give a name (--by NAME)"
    me = Person(by, os_user)
    starter = Person(run_operator, starter_os_user)
    if distinct_required and not triggered and same_person(me, starter):
        who = by if by.strip() == run_operator else f"{by} (as {os_user or by})"
        return (
            f"two-person rule: {who} started the run ({run_operator}) and may not approve "
            "its steps; another person must approve"
        )
    if approver_role and role != approver_role:
        return (
            f"step {step_number} must be approved by someone holding the role "
            f"{approver_role!r}; give --role {approver_role} if {by} holds it"
        )
    twice = next((p for p in earlier if same_person(me, p)), None)
    if twice is not None:
        return (
            f"{by} already approved step {step_number} (as {twice.by}); its quorum needs "
            f"{needed} distinct people holding {approver_role!r} ({len(earlier)} of {needed} "
            "so far)"
        )
    return None


def run_status(flow: str, statuses: Iterable[StepStatus]) -> RunStatus:
    """The run's final status from how it stopped and where each step ended."""
    if flow == "pause":
        return RunStatus.PAUSED
    if flow in ("quit", "abort"):
        return RunStatus.CANCELLED
    if flow == "fail":
        return RunStatus.FAILED
    final = list(statuses)
    if any(s in FAILED_STATUSES for s in final):
        return RunStatus.FAILED
    if StepStatus.HANDLED in final:
        return RunStatus.SUCCEEDED_WITH_HANDLED_FAILURES
    return RunStatus.SUCCEEDED


def rerun_after_loss(book: Runbook, record: RunRecord) -> str | None:
    """Why a run whose worker was lost must wait for a person, or None when it may go on by
    itself: nothing was cut off mid-step (the next step never started), or the step that was
    is marked `idempotent=true` in every block (running it twice does no harm)."""
    cut = [s for s in record.steps if s.status == StepStatus.RUNNING]
    if not cut:
        return None
    label = step_label(cut[-1].procedure, cut[-1].number)
    ref = find_step(book, label)
    if ref is not None and ref.step.idempotent:
        return None
    return (
        f"step {label} ({cut[-1].step_id}) was cut off mid-step when its worker was lost and "
        "is not marked idempotent: a person decides whether to run it again (resume) or not "
        "(abort)"
    )
