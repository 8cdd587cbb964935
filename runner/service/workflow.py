"""One durable workflow per run: start it, and while it waits at a gate, wait for a decision.

The steps never run here: each attempt of the run is one activity (``activities``) that goes
through the session and the engine, so gates, conditions, retries and procedures have one
implementation. An activity is never retried by Temporal (``maximum_attempts=1``): a step is not
idempotent (isolating a host twice, disabling an account twice). A worker lost mid-attempt is
noticed when its heartbeats stop; the run is then ``interrupted`` and waits for a person: the
`resume` signal continues it from its journal (as `runbook resume` does), `abort` cancels it.

A limited runbook's run first waits for a place in each of its queues (``queues``), in the
order of their keys (every run asks in the same order, so two never wait on each other), and
gives them back when it ends, however it ends.

`abort` cancels the run wherever it stands: queued, it never starts; waiting at a gate or
interrupted, its journal ends `cancelled` with who cancelled it; mid-step, the attempt is asked
to stop (the engine interrupts the step as Ctrl-C would, and the journal says so).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from runner.service.messages import (
        Acquire,
        Actor,
        Cancel,
        DecideRequest,
        Decision,
        Note,
        Resume,
        RunRequest,
        RunSummary,
        Waiter,
    )
    from runner.service.queues import severity_rank

#: An attempt may run this long (the runbook's own time limit and step timeouts come first).
ATTEMPT_TIMEOUT = timedelta(hours=12)
_ONCE = RetryPolicy(maximum_attempts=1)
#: Asking a queue for a place, or giving it back, is safe to repeat: retried until it is done.
_QUEUE_CALL = timedelta(minutes=1)
#: Who the journal names for what the alert's source said.
SOURCE = "alert source"
#: Lost workers a run goes on from by itself (where that is safe) before a person must decide:
#: a step that kills every worker it runs on must not loop.
AUTO_RESUMES = 3


@workflow.defn(name="RunbookRun")
class RunbookRun:
    def __init__(self) -> None:
        self._decisions: list[Decision] = []
        self._resume: Resume | None = None
        self._asking_person = False  # waiting, interrupted, for a person's resume or abort
        self._abort = False
        self._summary: RunSummary | None = None
        self._granted: set[str] = set()
        self._by: Actor | None = None
        self._resolved: list[str] = []  # "resolved" notes not journaled yet

    @workflow.run
    async def run(self, request: RunRequest) -> RunSummary:
        try:
            return await self._run(request)
        finally:
            await self._release(request)

    async def _run(self, request: RunRequest) -> RunSummary:
        waiter = Waiter(
            workflow.info().workflow_id,
            request.run_id,
            severity_rank(request.alert.get("severity")),
            request.received,
        )
        for limit in sorted(request.limits, key=lambda limit: limit.key):
            self._summary = RunSummary(request.run_id, "queued", reason=f"waiting: {limit.what}")
            await workflow.execute_activity(
                "acquire_place",
                Acquire(limit, dataclasses.replace(waiter, limit=limit.limit)),
                start_to_close_timeout=_QUEUE_CALL,
            )
            key = limit.key
            await workflow.wait_condition(lambda: key in self._granted or self._abort)  # noqa: B023
            if self._abort:
                said = f"cancelled by {self._who()} while queued"
                return RunSummary(request.run_id, "not_started", None, 1, said)
        if self._abort:
            return RunSummary(request.run_id, "not_started", None, 1, "cancelled before it started")
        self._summary = RunSummary(request.run_id, "running")
        summary = await self._mid_step_cancel(
            await self._attempt("start_run", request, request), request
        )
        lost = 0  # attempts lost with their worker that the run went on from by itself
        told: RunSummary | None = None  # the interruption people were told of
        while True:
            self._summary = summary
            await self._note_resolved(request)
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
                if self._resolved and not (self._decisions or self._abort):
                    continue  # journaled at the top of the loop; still waiting
                if self._abort:
                    return await self._cancel(request, summary)
                decision: Decision | None = self._decisions.pop(0)
            elif summary.status == "interrupted" and lost < AUTO_RESUMES and not self._abort:
                # Lost worker: go on by itself only where that is safe (the activity applies
                # the runbook's rule, policy.rerun_after_loss); otherwise a person decides.
                lost += 1
                ask = DecideRequest(request.run_id, request.runs_dir, None)
                tried = await self._attempt("resume_after_loss", ask, request)
                if tried.status == "not_started":
                    lost = AUTO_RESUMES
                    summary = dataclasses.replace(summary, reason=tried.reason)
                else:
                    summary = tried
                continue
            elif summary.status == "interrupted":
                self._asking_person = True  # before telling anyone: a quick answer counts
                if told is not summary:  # once per interruption, not per resolved alert
                    await self._tell(summary, request)
                    told = summary
                await workflow.wait_condition(
                    lambda: bool(self._resume or self._abort or self._resolved)
                )
                self._asking_person = False
                if self._resolved and not (self._resume or self._abort):
                    continue
                if self._abort:
                    return await self._cancel(request, summary)
                decision = None
            else:
                return summary
            ask = DecideRequest(request.run_id, request.runs_dir, decision, resumed=self._resume)
            self._resume = None
            before = summary
            summary = await self._mid_step_cancel(
                await self._attempt("decide_and_resume", ask, request), request
            )
            if summary.status == "not_started":
                # The decision was refused (a role the gate does not accept, a missing input):
                # nothing ran, and the run waits as it did, with the reason.
                summary = dataclasses.replace(before, reason=summary.reason)

    async def _note_resolved(self, request: RunRequest) -> None:
        """Journal the alerts that resolved since the last look. Only between attempts: an
        attempt holds the journal's one writer, and a second one would break its chain."""
        while self._resolved:
            said = self._resolved.pop(0)
            await workflow.execute_activity(
                "note_run", Note(request.run_id, request.runs_dir, SOURCE, said),
                start_to_close_timeout=_QUEUE_CALL,
            )  # fmt: skip

    def _who(self) -> str:
        return self._by.user if self._by is not None and self._by.user else "a person"

    async def _mid_step_cancel(self, summary: RunSummary, request: RunRequest) -> RunSummary:
        """After an attempt an abort stopped mid-step: journal who aborted it (the engine
        wrote how the step and the run ended; it does not know who asked)."""
        if summary.status == "cancelled" and self._abort and self._by is not None:
            by = self._by
            await workflow.execute_activity(
                "note_run",
                Note(request.run_id, request.runs_dir, by.user, "cancelled mid-step through "
                     "the service", by.role, by.auth),
                start_to_close_timeout=_QUEUE_CALL,
            )  # fmt: skip
        return summary

    async def _cancel(self, request: RunRequest, summary: RunSummary) -> RunSummary:
        """End a waiting run's journal as cancelled (an activity: the journal is the worker's)."""
        by = self._by or Actor("a person")
        ask = Cancel(request.run_id, request.runs_dir, by.user or "a person", by.role, by.auth)
        try:
            done: RunSummary = await workflow.execute_activity(
                "cancel_run", ask, result_type=RunSummary, start_to_close_timeout=_QUEUE_CALL
            )
            return done
        except ActivityError as exc:
            return dataclasses.replace(summary, reason=str(exc.cause or exc))

    async def _release(self, request: RunRequest) -> None:
        waiter = Waiter(workflow.info().workflow_id, request.run_id, 0, 0.0)
        for limit in request.limits:
            try:
                await workflow.execute_activity(
                    "release_place", Acquire(limit, waiter), start_to_close_timeout=_QUEUE_CALL
                )
            except ActivityError:
                workflow.logger.warning("run %s: queue %s is gone", request.run_id, limit.key)

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
                lambda: bool(self._decisions or self._resolved) or self._abort, timeout=timeout
            )
        except TimeoutError:
            return False
        return True

    async def _attempt(
        self, name: str, argument: RunRequest | DecideRequest, request: RunRequest
    ) -> RunSummary:
        handle = workflow.start_activity(
            name,
            argument,
            result_type=RunSummary,
            start_to_close_timeout=ATTEMPT_TIMEOUT,
            heartbeat_timeout=timedelta(seconds=request.heartbeat_timeout),
            retry_policy=_ONCE,
            # An abort mid-step asks the attempt to stop and waits for it: the engine ends the
            # step and the run in the journal before the workflow goes on.
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        try:
            await workflow.wait_condition(lambda: handle.done() or self._abort)
            if not handle.done():
                handle.cancel()
            result: RunSummary = await handle
        except ActivityError as exc:
            if isinstance(exc.cause, CancelledError) and self._abort:
                return RunSummary(request.run_id, "cancelled", None, 1,
                                  f"cancelled by {self._who()} mid-step")  # fmt: skip
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
    def resume(self, how: Resume | None = None) -> None:
        """A person's word on an interrupted run. Taken only while the run waits for one: a
        resume sent at another time is dropped, or it would later go on from an interruption
        no one has looked at."""
        if self._asking_person:
            self._resume = how or Resume(Actor("a person"))
        else:
            workflow.logger.warning("resume ignored: the run is not waiting for a person")

    @workflow.signal
    def abort(self, by: Actor | None = None) -> None:
        self._abort, self._by = True, by

    @workflow.signal
    def alert_resolved(self, said: str) -> None:
        """The alert that started the run (or one deduplicated into it) has resolved."""
        self._resolved.append(said)

    @workflow.signal
    def granted(self, key: str) -> None:
        self._granted.add(key)

    @workflow.query
    def state(self) -> RunSummary | None:
        return self._summary

    @workflow.query
    def waits_for_person(self) -> bool:
        """Whether the run is interrupted and waits for a person's resume or abort (not going
        on by itself after a lost worker, not mid-attempt)."""
        return self._asking_person
