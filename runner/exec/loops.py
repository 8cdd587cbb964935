"""`foreach=` steps: the step's blocks run once per item, each item an attempt of its own.

A mixin of the engine (its methods share the run's state): the loop writes `item_started` and
`item_finished` around each attempt at an item, between the step's one `step_started` and its
`step_finished`; each item gets the step's timeout and retries to itself. A failed item is
never hidden: it stays failed in the journal, and the items it kept from running are journaled
as skipped with the reason. A resumed run skips the items that succeeded before.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runner.exec.policy import retry_delay
from runner.format.model import Loop, Scalar, Step, StepStatus
from runner.format.syntax import SHELL_KERNEL
from runner.kernels.pool import KernelError, shell_text
from runner.runs import events as ev
from runner.runs.state import item_text

if TYPE_CHECKING:
    from runner.exec.engine import Engine, Flow


class LoopError(Exception):
    """The list a `foreach` step goes over cannot be had; the message says why and the fix."""


def loop_items(loop: Loop, values: dict[str, Any]) -> tuple[Scalar, ...]:
    """The items: the literal list, or the input's or output's value.

    A text output (what a shell block sets) is split at spaces, commas and line ends, as a
    shell `for` splits words. An empty list is an error: a step over nothing has done nothing,
    and reporting it as a success would be the quiet kind of wrong.
    """
    if loop.items is not None:
        return loop.items
    if loop.source not in values:
        raise LoopError(
            f"foreach={loop.source}: no input or earlier output has that name (yet); "
            "set it in an earlier step's outputs= or declare it as an input"
        )
    value = values[loop.source]
    if isinstance(value, list | tuple):
        items = tuple(value)
    elif isinstance(value, str):
        items = tuple(w for w in value.replace(",", " ").split() if w)
    else:
        raise LoopError(f"foreach={loop.source}: {value!r} is not a list")
    if not items:
        raise LoopError(
            f"foreach={loop.source}: the list is empty, so the step would do nothing; "
            "guard the step with when= if an empty list is expected"
        )
    for bad in items:
        if isinstance(bad, list | tuple | dict) or bad is None:
            raise LoopError(f"foreach={loop.source}: each item is a word or a number, not {bad!r}")
    return items


def items_line(loop: Loop, items: Sequence[Scalar]) -> str:
    """What the approver of a whole loop reads above the code: every item it will run for."""
    return f"# foreach {loop.var} in: " + ", ".join(shell_text(i) for i in items)


def loop(self: Engine, step: Step, index: int, total: int, procedure: str | None) -> Flow:
    """The step once per item, between one `step_started` and one `step_finished`."""
    loop = step.loop
    assert loop is not None
    try:
        items = loop_items(loop, {**self.inputs, **self.outputs})
    except LoopError as exc:
        self._record(step, procedure, StepStatus.FAILED, error=str(exc))
        return self._on_failure(step, procedure, StepStatus.FAILED)
    key = (procedure, step.id)
    done = dict(self.resume.items_done.get(key, {})) if self.resume else {}
    self.journal.sync()
    started = time.monotonic()
    first_kernel = step.executable_blocks[0].kernel
    self._step_started(step, procedure, index, total, attempt=1, attempts=1, kernel=first_kernel)
    try:
        return run_items(self, step, procedure, items, done, started)
    except KeyboardInterrupt:
        # Between items or at an item's gate: the step ends in the journal as cancelled (an
        # item under way is closed by the engine's abort, with the step).
        if self._current is None:
            self._record(step, procedure, StepStatus.CANCELLED, time.monotonic() - started,
                         attempt=1, attempts=1, error="run aborted")  # fmt: skip
        raise


def run_items(
    self: Engine,
    step: Step,
    procedure: str | None,
    items: tuple[Scalar, ...],
    done: dict[int, str],
    started: float,
) -> Flow:
    from runner.exec.engine import Flow

    loop = step.loop
    assert loop is not None
    failed: list[tuple[int, Scalar, str]] = []  # index, item, why
    earlier = 0
    stopped_by: tuple[int, Scalar] | None = None
    count = len(items)
    for i, item in enumerate(items, 1):
        if done.get(i) == item_text(item):
            earlier += 1
            continue
        if stopped_by is not None:
            item_event(
                self,
                step,
                procedure,
                i,
                count,
                item,
                StepStatus.SKIPPED,
                reason=f"not run: item {stopped_by[0]} ({shell_text(stopped_by[1])})"
                " failed and on_item_failure is stop",
            )
            continue
        if step.approve and loop.approve_each:
            gate = self._gate(step, procedure, item=(i, item))
            if gate == "paused":
                why = f"item {i} of {count} ({shell_text(item)}) waits for an approval"
                item_event(
                    self, step, procedure, i, count, item, StepStatus.WAITING_APPROVAL, reason=why
                )
                self._record(
                    step,
                    procedure,
                    StepStatus.WAITING_APPROVAL,
                    time.monotonic() - started,
                    attempt=1,
                    attempts=1,
                    reason=why,
                )
                return Flow.PAUSE
            if gate != "approved":  # denied, or expired: never run on anything else
                why = "approval expired" if gate == "expired" else "approval denied"
                item_event(self, step, procedure, i, count, item, StepStatus.DENIED, reason=why)
                failed.append((i, item, why))
                if loop.on_item_failure == "stop":
                    stopped_by = (i, item)
                continue
        status, error = item_attempts(self, step, procedure, i, count, item, loop)
        if status is StepStatus.CANCELLED and not self.operator.interactive:
            withdraw_item(self, step, loop)
            self._record(
                step,
                procedure,
                StepStatus.CANCELLED,
                time.monotonic() - started,
                attempt=1,
                attempts=1,
                error=error,
            )
            return Flow.ABORT
        if status is StepStatus.CANCELLED and error == "quit":
            withdraw_item(self, step, loop)
            self._record(
                step,
                procedure,
                StepStatus.CANCELLED,
                time.monotonic() - started,
                attempt=1,
                attempts=1,
                reason="the operator quit the run",
            )
            return Flow.QUIT
        if status is not StepStatus.SUCCEEDED:
            failed.append((i, item, error or status.value))
            if loop.on_item_failure == "stop":
                stopped_by = (i, item)
    withdraw_item(self, step, loop)
    took = time.monotonic() - started
    ran = f" ({earlier} in an earlier attempt)" if earlier else ""
    if failed and loop.on_item_failure != "continue":
        first = failed[0]
        error = (
            f"{len(failed)} of {count} items failed; item {first[0]} "
            f"({shell_text(first[1])}): {first[2]}"
        )
        self._record(
            step,
            procedure,
            StepStatus.FAILED,
            took,
            attempt=1,
            attempts=1,
            error=self.journal.redactor.text(error),
        )
        return self._on_failure(step, procedure, StepStatus.FAILED)
    if failed:
        names = ", ".join(f"{i} ({shell_text(v)})" for i, v, _ in failed)
        reason = (
            f"{count - len(failed)} of {count} items succeeded{ran}; failed, and let "
            f"through by on_item_failure=continue: {names}"
        )
    else:
        reason = f"{count} of {count} items succeeded{ran}"
    self._record(
        step,
        procedure,
        StepStatus.SUCCEEDED,
        took,
        attempt=1,
        attempts=1,
        reason=self.journal.redactor.text(reason),
    )
    return Flow.NEXT


def item_attempts(
    self: Engine,
    step: Step,
    procedure: str | None,
    index: int,
    count: int,
    item: Scalar,
    loop: Loop,
) -> tuple[StepStatus, str | None]:
    """Attempts at one item, with the step's timeout and retries each: (status, error);
    error "quit" with CANCELLED when the operator quit."""
    from runner.exec.engine import _Current

    attempts = step.retries + 1
    attempt = 0
    while True:
        attempt += 1
        self.journal.sync()
        started = time.monotonic()
        current = self._current = _Current(step, procedure, started, attempt, attempts)
        current.item = (index, count, item)
        self._event(
            ev.ItemStarted(
                step=step.number,
                step_id=step.id,
                procedure=procedure,
                index=index,
                count=count,
                item=item,
                var=loop.var,
                attempt=attempt,
                attempts=attempts,
            )
        )
        deadline = started + step.timeout if step.timeout else None
        status, error, exit_status = StepStatus.SUCCEEDED, None, None
        try:
            give_item(self, step, loop, item)
        except KernelError as exc:
            status, error = StepStatus.FAILED, exc.message
        if status is StepStatus.SUCCEEDED:
            for block in step.executable_blocks:
                status, error, code = self._block(current, block, deadline)
                exit_status = code if code is not None else exit_status
                if status is not StepStatus.SUCCEEDED:
                    break
        self._current = None
        error = self.journal.redactor.text(error) if error else error
        retry = attempt < attempts and status not in (
            StepStatus.SUCCEEDED,
            StepStatus.CANCELLED,
        )
        item_event(
            self,
            step,
            procedure,
            index,
            count,
            item,
            status,
            duration=time.monotonic() - started,
            attempt=attempt,
            attempts=attempts,
            exit_status=exit_status,
            error=error,
            retry_in=retry_delay(step, attempt) if retry else None,
        )
        if status is StepStatus.SUCCEEDED or status is StepStatus.CANCELLED:
            return status, error
        if retry:
            time.sleep(retry_delay(step, attempt))
            continue
        if self.operator.interactive:
            decision = self._ask_after_failure(step, procedure, status, error)
            if decision.action == "retry":
                attempts = max(attempts, attempt + 1)
                continue
            if decision.action == "quit":
                return StepStatus.CANCELLED, "quit"
        return status, error


def item_event(
    self: Engine,
    step: Step,
    procedure: str | None,
    index: int,
    count: int,
    item: Scalar,
    status: StepStatus,
    *,
    duration: float = 0.0,
    attempt: int = 0,
    attempts: int = 0,
    exit_status: int | None = None,
    error: str | None = None,
    reason: str | None = None,
    retry_in: float | None = None,
) -> None:
    self._event(
        ev.ItemFinished(
            step=step.number,
            step_id=step.id,
            procedure=procedure,
            index=index,
            count=count,
            item=item,
            status=status.value,
            duration=duration,
            attempt=attempt,
            attempts=attempts,
            exit_status=exit_status,
            error=error,
            reason=reason,
            retry_in=retry_in,
        )
    )


def give_item(self: Engine, step: Step, loop: Loop, item: Scalar) -> None:
    """The item goes to the step's kernels as an input does (`$MEMBER`, `member`)."""
    for kernel in dict.fromkeys(b.kernel or SHELL_KERNEL for b in step.executable_blocks):
        self._inject(self.pool.get(kernel), {loop.var: item})


def withdraw_item(self: Engine, step: Step, loop: Loop) -> None:
    """The last item is taken out again: a later step never sees a stale `$MEMBER`."""
    names = dict.fromkeys(b.kernel or SHELL_KERNEL for b in step.executable_blocks)
    for session in self.pool.running():
        if session.name in names:
            self._withdraw(session, [loop.var])
