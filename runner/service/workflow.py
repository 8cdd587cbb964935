"""One durable workflow per run: start it, and while it waits at a gate, wait for a decision.

The steps never run here: each attempt of the run is one activity (``activities``) that goes
through the session and the engine, so gates, conditions, retries and procedures have one
implementation. An activity is never retried by Temporal (``maximum_attempts=1``): a step is not
idempotent (isolating a host twice, disabling an account twice), so a lost worker leaves the
run to a person (`runbook resume`), as the journal shows it, instead of running a step again.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from runner.service.messages import DecideRequest, Decision, RunRequest, RunSummary

#: An attempt may run this long (the runbook's own time limit and step timeouts come first).
ATTEMPT_TIMEOUT = timedelta(hours=12)
_ONCE = RetryPolicy(maximum_attempts=1)


@workflow.defn(name="RunbookRun")
class RunbookRun:
    def __init__(self) -> None:
        self._decisions: list[Decision] = []
        self._summary: RunSummary | None = None

    @workflow.run
    async def run(self, request: RunRequest) -> RunSummary:
        summary: RunSummary = await workflow.execute_activity(
            "start_run",
            request,
            result_type=RunSummary,
            start_to_close_timeout=ATTEMPT_TIMEOUT,
            retry_policy=_ONCE,
        )
        self._summary = summary
        while summary.status == "paused" and summary.paused_step is not None:
            # Durable: the workflow may wait hours here; no kernel is held while it does.
            await workflow.wait_condition(lambda: bool(self._decisions))
            decision = self._decisions.pop(0)
            summary = await workflow.execute_activity(
                "decide_and_resume",
                DecideRequest(summary.run_id, request.runs_dir, decision),
                result_type=RunSummary,
                start_to_close_timeout=ATTEMPT_TIMEOUT,
                retry_policy=_ONCE,
            )
            self._summary = summary
        return summary

    @workflow.signal
    def decide(self, decision: Decision) -> None:
        self._decisions.append(decision)

    @workflow.query
    def state(self) -> RunSummary | None:
        return self._summary
