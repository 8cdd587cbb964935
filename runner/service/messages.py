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


@dataclass(frozen=True)
class Decision:
    """A person's answer to a waiting gate."""

    step: str  # number or id
    decision: str  # approved | denied
    by: str
    role: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class DecideRequest:
    run_id: str
    runs_dir: str
    decision: Decision | None  # None: resume as the journal stands (after an interruption)
    step: str | None = None  # the gate whose time ran out (the `expire_gate` activity)


@dataclass(frozen=True)
class RunSummary:
    """Where a run stands after an activity: its id, status and the gate it waits on. The
    status is the run's, or ``interrupted`` when its worker was lost mid-attempt (the run
    waits for a person: the `resume` or `abort` signal)."""

    run_id: str
    status: str  # a run status, `interrupted`, or `not_started` (refused before its first event)
    paused_step: str | None = None
    exit_code: int = 0
    reason: str | None = None  # why it was refused or interrupted, or why a decision was not taken
    deadline: float | None = None  # when the waiting gate expires or escalates (epoch seconds)
