"""The runbook's `concurrency:` limits as durable queues: one workflow per limit.

A run of a limited runbook asks each of its queues for a place before its first attempt, and
gives the places back when it ends (whatever the end: finished, refused, cancelled). A queue is
a workflow of its own, keyed by the limit (`limit:<runbook>` for the runbook's `runs:`,
`limit:<runbook>:<input>=<value>` for `per_target:`), so that its holders and its waiting runs
survive a restart of every process, and two alerts for the same host delivered to two intakes at
once still queue behind each other: Temporal runs one workflow per id. This is the mutex of
Temporal's samples, with a count and an order: places go by the alert's severity, then by the
time the alert came in.

The queue signals a run its place (`granted`); a run asks through an activity, because a
workflow cannot signal-with-start another workflow itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from runner.format.model import Runbook
    from runner.service.messages import Acquire, Limit, QueueState, Waiter

#: Severity names as ranks: a critical alert's run gets the next free place before a low one's.
SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}


def severity_rank(name: object) -> int:
    return SEVERITY_RANK.get(str(name).lower(), 0)


def limits_of(book: Runbook, values: Mapping[str, object]) -> list[Limit]:
    """The queues a run of ``book`` with these inputs waits in (its `concurrency:`)."""
    rule, rid = book.metadata.concurrency, book.metadata.id
    limits = []
    if rule.runs is not None:
        limits.append(Limit(f"limit:{rid}", rule.runs, f"{rule.runs} run(s) of {rid} at once"))
    if rule.target is not None:
        value = values.get(rule.target)
        if value is None:  # no value to hold: the run could act on anything, so it waits alone
            value = ""
        what = f"{rule.per_target} run(s) of {rid} at once for {rule.target}={value}"
        limits.append(Limit(f"limit:{rid}:{rule.target}={value}", rule.per_target, what))
    return limits


@workflow.defn(name="RunQueue")
class RunQueue:
    def __init__(self) -> None:
        self._key = ""
        self._limit = 1
        self._holders: list[Waiter] = []
        self._waiting: list[Waiter] = []
        self._regrant: list[Waiter] = []  # holders that asked again (a retried activity)
        self._changed = False

    @workflow.run
    async def run(self, state: QueueState) -> None:
        self._key, self._limit = state.key, state.limit
        self._holders = [*state.holders, *self._holders]
        self._waiting = sorted([*state.waiting, *self._waiting], key=_order)
        self._changed = True
        while True:
            await workflow.wait_condition(lambda: self._changed)
            self._changed = False
            await self._grant()
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.queue())

    async def _grant(self) -> None:
        again, self._regrant = self._regrant, []
        for waiter in again:
            await self._tell(waiter)
        while len(self._holders) < self._limit and self._waiting:
            waiter = self._waiting.pop(0)
            if await self._tell(waiter):
                self._holders.append(waiter)

    async def _tell(self, waiter: Waiter) -> bool:
        try:
            await workflow.get_external_workflow_handle(waiter.workflow_id).signal(
                "granted", self._key
            )
        except Exception:  # the run is gone (terminated by hand): its place goes to the next
            workflow.logger.warning("queue %s: run %s is gone", self._key, waiter.workflow_id)
            return False
        return True

    @workflow.signal
    def acquire(self, waiter: Waiter) -> None:
        self._limit = max(1, waiter.limit)  # the runbook as the latest run saw it
        if any(h.workflow_id == waiter.workflow_id for h in self._holders):
            self._regrant.append(waiter)
        elif not any(w.workflow_id == waiter.workflow_id for w in self._waiting):
            self._waiting = sorted([*self._waiting, waiter], key=_order)
        self._changed = True

    @workflow.signal
    def release(self, workflow_id: str) -> None:
        self._holders = [h for h in self._holders if h.workflow_id != workflow_id]
        self._waiting = [w for w in self._waiting if w.workflow_id != workflow_id]
        self._changed = True

    @workflow.query
    def queue(self) -> QueueState:
        return QueueState(self._key, self._limit, list(self._holders), list(self._waiting))


def _order(waiter: Waiter) -> tuple[int, float]:
    return (-waiter.severity, waiter.since)


class QueueActivities:
    """Asking a queue for a place and giving it back: signal-with-start, so the first run of a
    limit starts its queue, atomically, and every later one joins it."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    def all(self) -> list[Callable[..., Any]]:
        return [self.acquire_place, self.release_place]

    @activity.defn(name="acquire_place")
    async def acquire_place(self, ask: Acquire) -> None:
        await self._client.start_workflow(
            RunQueue.run,
            QueueState(ask.limit.key, ask.limit.limit),
            id=ask.limit.key,
            task_queue=self._task_queue,
            start_signal="acquire",
            start_signal_args=[ask.waiter],
        )

    @activity.defn(name="release_place")
    async def release_place(self, ask: Acquire) -> None:
        try:
            await self._client.get_workflow_handle(ask.limit.key).signal(
                RunQueue.release, ask.waiter.workflow_id
            )
        except Exception as exc:  # no such queue: nothing is held
            raise ApplicationError(str(exc), non_retryable=True) from None
