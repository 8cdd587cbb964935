"""The service's figures for Prometheus (`GET /metrics`): what a SOC lead watches.

Alerts by outcome (started, duplicate, unrouted, resolved) and refused payloads; triggered runs'
attempts by how they ended; and the figure that matters most, the time from an alert's arrival
at the intake to its run's first step starting; how long gates wait for a person; and how
long finished runs took, against their runbook's `time_limit`.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram

from runner.exec.engine import Shown
from runner.runs import events as ev

#: Alert to first step, in seconds: a warm run starts in well under a second, a cold one in one
#: or two (kernels boot); a queued one waits for a slot.
FIRST_STEP_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
#: A gate waits seconds (a lead at the console) to hours (overnight).
APPROVAL_BUCKETS = (10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
#: A run's share of its time limit: 1.0 is the limit.
LIMIT_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.alerts = Counter(
            "runbook_alerts", "Alerts the intake took, by outcome", ["outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.refused = Counter(
            "runbook_payloads_refused", "Payloads the intake refused, by HTTP status", ["status"],
            registry=self.registry,
        )  # fmt: skip
        self.attempts = Counter(
            "runbook_run_attempts", "Attempts of triggered runs, by how they ended", ["status"],
            registry=self.registry,
        )  # fmt: skip
        self.first_step = Histogram(
            "runbook_alert_to_first_step_seconds",
            "From an alert's arrival at the intake to its run's first step starting",
            buckets=FIRST_STEP_BUCKETS,
            registry=self.registry,
        )
        self.approval_wait = Histogram(
            "runbook_approval_wait_seconds",
            "From a gate's request to the decision that came through the service",
            buckets=APPROVAL_BUCKETS,
            registry=self.registry,
        )
        self.finished = Counter(
            "runbook_runs_finished", "Triggered runs that ended, by status and time limit",
            ["status", "within_time_limit"], registry=self.registry,
        )  # fmt: skip
        self.of_limit = Histogram(
            "runbook_run_duration_of_time_limit",
            "A finished run's active time as a share of its runbook's time_limit (1 = the limit)",
            buckets=LIMIT_BUCKETS,
            registry=self.registry,
        )


class FirstStep:
    """A reporter that times the first step of a triggered run against the alert's arrival."""

    def __init__(self, received: float, metrics: Metrics) -> None:
        self._received = received
        self._metrics = metrics
        self._seen = received <= 0  # a run started without an arrival time is not timed

    def on_event(self, event: ev.JournalEvent | Shown) -> None:
        if not self._seen and isinstance(event, ev.StepStarted):
            self._seen = True
            self._metrics.first_step.observe(max(0.0, time.time() - self._received))
