"""One durable workflow per run: start it, and while it waits at a gate, wait for a decision.

The steps never run here: each attempt of the run is one activity (``activities``) that goes
through the session and the engine, so gates, conditions, retries and procedures have one
implementation. An activity is never retried by Temporal (``maximum_attempts=1``): a step is not
idempotent (isolating a host twice, disabling an account twice). A worker lost mid-attempt is
noticed when its heartbeats stop; the run is then ``interrupted`` and waits for a person: the
`resume` signal continues it from its journal (as `runbook resume` does), `abort` leaves it so.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from runner.service.messages import DecideRequest, Decision, RunRequest, RunSummary

#: An attempt may run this long (the runbook's own time limit and step timeouts come first).
ATTEMPT_TIMEOUT = timedelta(hours=12)
_ONCE = RetryPolicy(maximum_attempts=1)


@workflow.defn(name="RunbookRun")
class RunbookRun:
    def __init__(self) -> None:
        self._decisions: list[Decision] = []
        self._resume = False
        self._abort = False
        self._summary: RunSummary | None = None

    @workflow.run
    async def run(self, request: RunRequest) -> RunSummary:
        summary = await self._attempt("start_run", request, request)
        while True:
            self._summary = summary
            if summary.status == "paused" and summary.paused_step is not None:
                # Durable: the workflow may wait hours here; no kernel is held while it does.
                # A gate with `approval_timeout=` waits on a durable timer too; when it fires,
                # the session journals the escalation or the expiry (the rule is the policy's,
                # not this code's) and an expired gate's run resumes to deny the step.
                if not await self._wait_for_decision(summary.deadline):
                    expiry = DecideRequest(
                        request.run_id, request.runs_dir, None, step=summary.paused_step
                    )
                    summary = await self._attempt("expire_gate", expiry, request)
                    continue
                if self._abort:
                    return summary
                decision: Decision | None = self._decisions.pop(0)
            elif summary.status == "interrupted":
                await self._tell(summary, request)
                await workflow.wait_condition(lambda: self._resume or self._abort)
                if self._abort:
                    return summary
                self._resume, decision = False, None
            else:
                return summary
            ask = DecideRequest(request.run_id, request.runs_dir, decision)
            before = summary
            summary = await self._attempt("decide_and_resume", ask, request)
            if summary.status == "not_started":
                # The decision was refused (a role the gate does not accept, a missing input):
                # nothing ran, and the run waits as it did, with the reason.
                summary = dataclasses.replace(before, reason=summary.reason)

    async def _tell(self, summary: RunSummary, request: RunRequest) -> None:
        """Enqueue the run's notifications (an activity: only a worker knows the outbox)."""
        await workflow.execute_activity(
            "notify_run",
            args=[summary, request.runs_dir],
            start_to_close_timeout=timedelta(minutes=1),
        )

    async def _wait_for_decision(self, deadline: float | None) -> bool:
        """True when a decision (or an abort) came; False when the gate's time ran out."""
        timeout = None
        if deadline is not None:
            timeout = timedelta(seconds=max(0.0, deadline - workflow.now().timestamp()))
        try:
            await workflow.wait_condition(
                lambda: bool(self._decisions) or self._abort, timeout=timeout
            )
        except TimeoutError:
            return False
        return True

    async def _attempt(
        self, name: str, argument: RunRequest | DecideRequest, request: RunRequest
    ) -> RunSummary:
        try:
            result: RunSummary = await workflow.execute_activity(
                name,
                argument,
                result_type=RunSummary,
                start_to_close_timeout=ATTEMPT_TIMEOUT,
                heartbeat_timeout=timedelta(seconds=request.heartbeat_timeout),
                retry_policy=_ONCE,
            )
        except ActivityError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                # Refused before anything ran: a changed runbook, unusable inputs, a decision
                # the rules do not accept. Said, never retried.
                return RunSummary(request.run_id, "not_started", None, 2, cause.message)
            # The worker was lost (its heartbeats stopped), or the attempt failed before the
            # run could say how it ended: never tried again on its own.
            workflow.logger.warning("run %s interrupted: %s", request.run_id, cause or exc)
            return RunSummary(request.run_id, "interrupted", None, 1, str(cause or exc))
        return result

    @workflow.signal
    def decide(self, decision: Decision) -> None:
        self._decisions.append(decision)

    @workflow.signal
    def resume(self) -> None:
        self._resume = True

    @workflow.signal
    def abort(self) -> None:
        self._abort = True

    @workflow.query
    def state(self) -> RunSummary | None:
        return self._summary
