"""What crosses Temporal's boundary: plain, frozen dataclasses of JSON values.

Kept free of the rest of the runner on purpose: the workflow sandbox re-imports what a workflow
imports, and these are all a workflow needs. Step output never travels here (it stays in the
run's journal; Temporal's history has size limits); only ids, statuses and decisions do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The task queue the service's workers poll.
TASK_QUEUE = "runbook-runs"


@dataclass(frozen=True)
class Limit:
    """One queue a run must get a place in before it starts (the runbook's `concurrency:`)."""

    key: str  # the queue's workflow id: `limit:<runbook>` or `limit:<runbook>:<input>=<value>`
    limit: int  # runs holding a place at once
    what: str  # in words, for the waiting run's state: "runs of X for host_id=wks-0042"


@dataclass(frozen=True)
class Waiter:
    """A run asking a queue for a place. Places go by severity, then by arrival."""

    workflow_id: str
    run_id: str
    severity: int  # rank: critical 4, high 3, medium 2, low 1, otherwise 0
    since: float  # when the intake took its alert
    limit: int = 1  # the runbook's limit as this run saw it (the latest one counts)


@dataclass(frozen=True)
class Acquire:
    limit: Limit
    waiter: Waiter


@dataclass(frozen=True)
class QueueState:
    """A queue as its workflow holds it: carried over when it continues as new, and answered
    to the `queue` query."""

    key: str
    limit: int
    holders: list[Waiter] = field(default_factory=list)
    waiting: list[Waiter] = field(default_factory=list)


@dataclass(frozen=True)
class RunRequest:
    """A run an alert starts: the routed runbook (pinned by its SHA-256) and its inputs."""

    run_id: str  # named by the intake, so the workflow knows its run even if the worker dies
    runbook_path: str
    sha256: str  # the runbook as routed; a changed file is refused, never run silently
    inputs: dict[str, Any]  # mapped from the alert and given by the intake; never secrets
    runs_dir: str
    alert: dict[str, Any] = field(default_factory=dict)  # source, id, title, dedup key
    received: float = 0.0  # when the intake took the alert (epoch seconds), for the metrics
    heartbeat_timeout: float = 30.0  # seconds without a worker's heartbeat: the worker is lost
    limits: list[Limit] = field(default_factory=list)  # queues it waits in before it starts
    started_by: str = ""  # a run started by hand: who; empty for one an alert started


@dataclass(frozen=True)
class Decision:
    """A person's answer to a waiting gate."""

    step: str  # number or id
    decision: str  # approved | denied, or answered (a decision step: see `answer`)
    by: str
    role: str | None = None
    comment: str | None = None
    auth: str | None = None  # password | token: how the service authenticated `by`
    answer: str | None = None  # a decision step's answer, as the person gave it


@dataclass(frozen=True)
class Actor:
    """Who did something to a run through the service: an authenticated user (the console, a
    user's API token) with the role they acted under, or the service's own token
    (``service-api``, no role)."""

    user: str
    role: str | None = None
    auth: str | None = None  # password | token; None for the service's token


@dataclass(frozen=True)
class Resume:
    """A person's word on an interrupted run: run the cut-off step again (``skip`` false) or
    record it skipped and go on from the next one (they checked it by hand)."""

    by: Actor
    skip: bool = False
    comment: str | None = None


@dataclass(frozen=True)
class DecideRequest:
    run_id: str
    runs_dir: str
    decision: Decision | None  # None: resume as the journal stands (after an interruption)
    step: str | None = None  # the gate whose time ran out (the `expire_gate` activity)
    resumed: Resume | None = None  # a person resumed an interrupted run: who, and how


@dataclass(frozen=True)
class Note:
    run_id: str
    runs_dir: str
    by: str
    text: str
    role: str | None = None
    auth: str | None = None


@dataclass(frozen=True)
class Cancel:
    run_id: str
    runs_dir: str
    by: str
    role: str | None = None
    auth: str | None = None


@dataclass(frozen=True)
class RunSummary:
    """Where a run stands after an activity: its id, status and the gate it waits on. The
    status is the run's, or ``interrupted`` when its worker was lost mid-attempt (the run
    waits for a person: the `resume` or `abort` signal)."""

    run_id: str
    # A run status; `queued` (waiting for a place, see `limits`), `interrupted` (its worker was
    # lost mid-attempt) or `not_started` (refused or cancelled before its first event).
    status: str
    paused_step: str | None = None
    exit_code: int = 0
    reason: str | None = None  # why it was refused or interrupted, or why a decision was not taken
    deadline: float | None = None  # when the waiting gate expires or escalates (epoch seconds)
