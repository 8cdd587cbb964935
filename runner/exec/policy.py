"""The run's policies as small pure functions: selection, retries, approvals, final status.

They take plain values and return plain values, so the engine, `runbook approve` and
`runbook resume` apply exactly the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from runner.format.model import Runbook, RunStatus, Step, StepStatus, find_step, step_label
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


def approval_problem(
    step_number: int,
    approver_role: str | None,
    by: str,
    role: str | None,
    run_operator: str,
    distinct_required: bool,
) -> str | None:
    """Why this approver may not approve this step, or None."""
    if not by.strip():
        return "the approver must give a name (--by NAME)"
    if distinct_required and by.strip() == run_operator:
        return (
            f"two-person rule: {by} started the run and may not approve its steps; "
            "another person must approve"
        )
    needed = approver_role
    if needed and role != needed:
        return (
            f"step {step_number} must be approved by someone holding the role {needed!r}; "
            f"give --role {needed} if {by} holds it"
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
