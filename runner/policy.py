"""The run's policies as small pure functions: selection, retries, approvals, final status, resume.

They take plain values and return plain values, so the engine, `runbook approve` and
`runbook resume` apply exactly the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .journal import Event
from .model import RunStatus, Step, StepStatus


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """Where one step ended, for the summary table."""

    number: int
    step_id: str
    title: str
    procedure: str | None
    status: StepStatus
    duration: float  # seconds, all attempts
    attempts: int = 0
    reason: str | None = None  # why it was skipped, handled...
    error: str | None = None  # why it failed
    earlier: bool = False  # finished in an earlier attempt of the run (resume)


#: A step that ended in one of these did not do its job.
FAILED_STATUSES = frozenset(
    {StepStatus.FAILED, StepStatus.TIMED_OUT, StepStatus.CANCELLED, StepStatus.DENIED}
)
#: A step in one of these is not run again by `runbook resume`.
DONE_STATUSES = frozenset({StepStatus.SUCCEEDED, StepStatus.SKIPPED, StepStatus.HANDLED})


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


# --- resume ------------------------------------------------------------------------------------


def _sealed(event: Event, keyed_from: int | None) -> bool:
    seq = event.get("seq")
    return keyed_from is not None and isinstance(seq, int) and seq >= keyed_from


@dataclass
class ResumeState:
    """What a new attempt of a run takes over from the journal."""

    attempt: int  # the number of the attempt about to start (2, 3, ...)
    started: Event  # the run_started event
    sha256: str  # of the runbook the run was last (re)started with
    inputs: dict[str, Any]  # recorded inputs; secrets are "***" and must be supplied again
    outputs: dict[str, Any]  # every recorded output, later values winning
    done: dict[tuple[str | None, str], StepOutcome]  # steps not to run again
    approvals: dict[tuple[str | None, str], Event]  # approvals/denials not yet acted on
    elapsed: float  # seconds spent in earlier attempts
    last_status: str  # paused | failed | cancelled | crashed | succeeded ...
    allow_changed: bool = False
    statuses: dict[tuple[str | None, str], str] = field(default_factory=dict)
    # The code each gated step showed its approver (as journaled, secrets redacted): an
    # approval covers that code only, not an edit made before the resume.
    approved_code: dict[tuple[str | None, str], str] = field(default_factory=dict)
    # Outputs that held a secret, as templates the secret inputs rebuild (redact.template):
    # the journal shows them as "***", and a resumed step must not run with that.
    secret_templates: dict[str, list[Any]] = field(default_factory=dict)
    cwd: dict[str, str] = field(default_factory=dict)  # kernel -> its last working directory

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.started.get("options") or {})

    @property
    def operator(self) -> str:
        return str(self.started.get("operator", ""))


def load_resume(events: Sequence[Event], *, keyed_from: int | None = None) -> ResumeState:
    """The state of a run as its journal tells it.

    Approvals gate what a resumed run does, so only those in lines sealed with the journal key
    count (``keyed_from``: the first such line, from `verify`): those were written by `runbook
    approve` or the runner after they checked the approver. An approval in an unkeyed journal
    could have been typed in by anyone; it is ignored, and the step asks again.
    """
    started = next((e for e in events if e.get("event") == "run_started"), None)
    if started is None:
        raise ValueError("the journal has no run_started event")
    sha = str((started.get("runbook") or {}).get("sha256", ""))
    attempt, elapsed, last_status = 1, 0.0, "crashed"
    outputs: dict[str, Any] = {}
    finished: dict[tuple[str | None, str], Event] = {}
    approvals: dict[tuple[str | None, str], Event] = {}
    shown: dict[tuple[str | None, str], str] = {}
    templates: dict[str, list[Any]] = {}
    cwd: dict[str, str] = {}
    inputs = dict(started.get("inputs") or {})
    for event in events:
        kind = event.get("event")
        key = (event.get("procedure"), str(event.get("step_id", "")))
        if kind == "run_resumed":
            attempt = max(attempt, int(event.get("attempt", attempt)))
            sha = str(event.get("sha256") or sha)
            last_status = "crashed"
        elif kind in ("run_finished", "run_paused"):
            elapsed += float(event.get("duration") or 0.0)
            last_status = str(event.get("status", ""))
        elif kind == "outputs":
            values = event.get("values") or {}
            outputs.update(values)
            for name in values:
                templates.pop(name, None)
            templates.update(event.get("secret_templates") or {})
        elif kind == "block_finished" and event.get("cwd") and event.get("kernel"):
            cwd[str(event["kernel"])] = str(event["cwd"])
        elif kind == "step_finished":
            finished[key] = event
            approvals.pop(key, None)  # an approval is used up by the step it let run
        elif kind == "approval" and _sealed(event, keyed_from):
            approvals[key] = event
        elif kind == "approval_requested":
            shown[key] = str(event.get("code", ""))
        elif kind == "inputs_changed":  # `resume --set` corrected an input for later attempts
            inputs.update(event.get("inputs") or {})
    done = {}
    for key, event in finished.items():
        status = StepStatus(event["status"])
        if status in DONE_STATUSES:
            done[key] = StepOutcome(
                int(event.get("step", 0)),
                key[1],
                str(event.get("title", "")),
                key[0],
                status,
                float(event.get("duration") or 0.0),
                int(event.get("attempts") or 0),
                event.get("reason"),
                event.get("error"),
                earlier=True,
            )
    return ResumeState(
        attempt=attempt + 1,
        started=started,
        sha256=sha,
        inputs=inputs,
        outputs=outputs,
        done=done,
        approvals=approvals,
        elapsed=elapsed,
        last_status=last_status,
        statuses={k: str(e.get("status")) for k, e in finished.items()},
        approved_code=shown,
        secret_templates=templates,
        cwd=cwd,
    )
