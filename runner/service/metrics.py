"""The service's figures for Prometheus (`GET /metrics`): what a SOC lead watches.

Alerts by outcome (started, duplicate, unrouted, resolved) and refused payloads; triggered runs'
attempts by how they ended; and the figure that matters most, the time from an alert's arrival
at the intake to its run's first step starting.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram

from runner.exec.engine import Shown
from runner.runs import events as ev

#: Alert to first step, in seconds: a warm run starts in well under a second, a cold one in one
#: or two (kernels boot); a queued one waits for a slot.
FIRST_STEP_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


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
