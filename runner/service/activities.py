"""The activities of a run's workflow: each is one attempt of the run, through the session.

An activity runs in a worker thread, with the run's kernels for the length of the attempt: a
run that pauses at a gate releases them, and the decision's activity starts them again and
resumes the run as `runbook resume` does (the journal says what is done). Failures that a retry
cannot fix (a changed runbook, unusable inputs) are non-retryable, with the reason.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from runner.check.lint import checked
from runner.errors import RunbookError
from runner.exec.engine import RunOptions, RunResult, file_sha256
from runner.exec.operator import UnattendedOperator
from runner.exec.policy import rerun_after_loss
from runner.exec.session import (
    OpenRun,
    Session,
    add_note,
    answer,
    cancel_waiting,
    context_for,
    cut_off_step,
    decide,
    expire,
    gate_deadline_of,
    kernel_pool,
    needed_kernels,
    open_run,
    resume,
    skip_cut_off,
    start,
    waiting_gate,
)
from runner.format.inputs import resolve
from runner.format.model import InputValue, Runbook
from runner.kernels.pool import KernelPool
from runner.notify.outbox import Outbox
from runner.parse.markdown import parse_file, parse_text
from runner.runs import events as ev
from runner.runs.state import epoch
from runner.runs.store import kept_runbook
from runner.runs.store import summary as summary_of
from runner.service.messages import Cancel, DecideRequest, Note, RunRequest, RunSummary
from runner.service.metrics import FirstStep, Metrics
from runner.service.notifying import notify_after

#: A secret input of a triggered run comes from the worker's environment, never the alert.
SECRET_ENV = "RUNBOOK_INPUT_"
#: Who a triggered run's journal names as its operator.
SERVICE_OPERATOR = "runbook-service"


def _secrets(book: Runbook, kept: Mapping[str, str]) -> dict[str, str]:
    """The secret inputs' values: the worker's environment first, then its secrets file."""
    found = {}
    for spec in book.metadata.inputs:
        value = os.environ.get(f"{SECRET_ENV}{spec.name.upper()}", kept.get(spec.name))
        if spec.secret and value is not None:
            found[spec.name] = value
    return found


def _env_secrets() -> dict[str, str]:
    """Secret values the worker's environment holds (`RUNBOOK_INPUT_*`), by input name: the
    notifications redact them as the journal does."""
    return {
        k[len(SECRET_ENV) :].lower(): v for k, v in os.environ.items() if k.startswith(SECRET_ENV)
    }


def _values(
    book: Runbook, given: dict[str, object], kept: Mapping[str, str]
) -> tuple[dict[str, InputValue], list[str]]:
    secrets = [s.name for s in book.metadata.inputs if s.secret]
    supplied = _secrets(book, kept)
    # A secret's default was written for the lab or a person's run, never for an alert's.
    problems = [
        f"secret input {s.name!r} is not given (RUNBOOK_INPUT_{s.name.upper()} or --secrets) "
        "and its default is not marked default_safe"
        for s in book.metadata.inputs
        if s.secret and s.name not in supplied and s.default is not None and not s.default_safe
    ]
    values, found = resolve(book.metadata, {**given, **supplied})
    problems += found
    if problems:
        raise ApplicationError(
            f"{book.path}: the inputs are not usable: " + "; ".join(problems),
            type="InvalidInputs",
            non_retryable=True,
        )
    return values, secrets


def _summary(result: RunResult, runs_dir: Path) -> RunSummary:
    """Where the run stands, with the deadline of the gate it waits on (the workflow's timer)."""
    deadline = None
    if result.paused_step is not None:
        run = open_run(runs_dir, result.run_id)
        waiting = run.record.waiting(result.paused_step)
        deadline = gate_deadline_of(run, waiting) if waiting else None
    return RunSummary(
        result.run_id,
        result.status.value,
        result.paused_step,
        int(result.exit_code),
        deadline=deadline,
    )


def _session(
    book: Runbook,
    values: dict[str, InputValue],
    secrets: list[str],
    trigger: dict[str, Any] | None = None,
    started_by: str = "",
) -> Session:
    operator = UnattendedOperator(started_by or SERVICE_OPERATOR)
    return Session(
        book,
        values,
        secrets,
        operator,
        context_for(book.path, operator.name, interactive=False, trigger=trigger),
        RunOptions(mode="run", yes=True),
    )


#: Seconds between heartbeats while an attempt runs (the workflow's timeout is several times it).
HEARTBEAT_EVERY = 1.0


@contextlib.contextmanager
def _heartbeats(pool: KernelPool) -> Iterator[None]:
    """Heartbeat from a helper thread while the attempt runs: the engine blocks on kernels for
    as long as a step takes, and Temporal must still learn that this worker is alive. When the
    worker dies the heartbeats stop, and the workflow marks the run interrupted.

    A cancellation (an `abort` mid-step) comes back on a heartbeat. It is handed to the engine
    through the pool's cancel token, as SIGTERM would be: the engine interrupts the step and
    ends the run in the journal. Temporal's own way, an exception raised into the activity's
    thread at whatever line it is on, is held back (``shield_thread_cancel_exception``) until
    the attempt has ended: it could otherwise land between a step and its journal line."""
    context = contextvars.copy_context()  # the activity's context, for activity.heartbeat
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT_EVERY):
            context.run(activity.heartbeat)
            if context.run(activity.is_cancelled) and pool.cancel is not None:
                pool.cancel.cancel(terminate=True)

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


class RunActivities:
    """The activities, bound to the service's metrics (a worker registers its methods)."""

    def __init__(
        self,
        metrics: Metrics | None = None,
        secrets: Mapping[str, str] | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self._secrets = dict(secrets or {})  # from `--secrets FILE`; never shown
        self.outbox = outbox  # `--notify FILE`: where a run's notifications wait to be sent

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.start_run,
            self.decide_and_resume,
            self.resume_after_loss,
            self.note_run,
            self.cancel_run,
            self.expire_gate,
            self.notify_run,
        ]

    def _told(
        self,
        summary: RunSummary,
        runs_dir: str,
        expired: ev.ApprovalEscalated | ev.ApprovalExpired | None = None,
    ) -> RunSummary:
        """The summary, after enqueueing what it is worth telling (runbook's `notify:`)."""
        secrets = {**self._secrets, **_env_secrets()}
        notify_after(self.outbox, Path(runs_dir), summary, secrets, expired)
        return summary

    @activity.defn(name="notify_run")
    def notify_run(self, summary: RunSummary, runs_dir: str) -> None:
        """The workflow learned how the run stands (its worker was lost): tell people."""
        self._told(summary, runs_dir)

    def _done(self, summary: RunSummary, runs_dir: Path | None = None) -> RunSummary:
        self.metrics.attempts.labels(summary.status).inc()
        if runs_dir is not None and summary.status not in ("paused", "running"):
            info = summary_of(runs_dir / summary.run_id)
            if info is not None:
                within = (
                    "unknown" if info.within_time_limit is None else str(info.within_time_limit)
                )
                self.metrics.finished.labels(summary.status, within.lower()).inc()
                if info.time_limit and info.duration is not None:
                    self.metrics.of_limit.observe(info.duration / info.time_limit)
        return summary

    @activity.defn(name="start_run")
    def start_run(self, request: RunRequest) -> RunSummary:
        """The run's first attempt, up to its end or its first gate."""
        path = Path(request.runbook_path)
        try:
            if file_sha256(path) != request.sha256:
                raise ApplicationError(
                    f"{path}: the runbook changed between routing and the run (its SHA-256 "
                    "differs); the alert is not run against a version nobody routed",
                    type="RunbookChanged",
                    non_retryable=True,
                )
            book = checked(parse_file(path))
            values, secrets = _values(book, dict(request.inputs), self._secrets)
            session = dataclasses.replace(
                _session(book, values, secrets, dict(request.alert) or None, request.started_by),
                reporter=FirstStep(request.received, self.metrics),
            )
            with kernel_pool(needed_kernels(book.steps)) as pool, _heartbeats(pool):
                with activity.shield_thread_cancel_exception():
                    result = start(session, pool, Path(request.runs_dir), request.run_id)
                summary = self._done(
                    _summary(result, Path(request.runs_dir)), Path(request.runs_dir)
                )
            return self._told(summary, request.runs_dir)
        except RunbookError as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None

    @activity.defn(name="decide_and_resume")
    def decide_and_resume(self, request: DecideRequest) -> RunSummary:
        """Record the decision on the waiting gate, then resume the run from the runbook it
        kept. A decision that came after the gate's deadline is refused (the expiry is
        journaled) and the run resumes to deny the step."""
        d = request.decision
        try:
            run = open_run(Path(request.runs_dir), request.run_id)
            if (how := request.resumed) is not None:
                # A person's word on an interrupted run, journaled with who they are before
                # the attempt it starts: the cut-off step skipped, or run again.
                if how.skip:
                    skip_cut_off(run, by=how.by.user, role=how.by.role, auth=how.by.auth,
                                 comment=how.comment)  # fmt: skip
                else:
                    cut = cut_off_step(run)
                    said = (
                        f"resumed by {how.by.user}"
                        + (f"; step {cut.step_id} was cut off and runs again" if cut else "")
                        + (f": {how.comment}" if how.comment else "")
                    )
                    add_note(run, by=how.by.user, role=how.by.role, auth=how.by.auth, text=said)
                run = open_run(Path(request.runs_dir), request.run_id)
            if d is not None and d.decision == "answered":
                # Checked against the question's type by the same function as `runbook answer`.
                answer(run, d.step, d.answer or "", by=d.by, role=d.role, auth=d.auth)
                run = open_run(Path(request.runs_dir), request.run_id)  # with the answer
            elif d is not None:
                waiting = waiting_gate(run, d.step)
                asked = run.record.request_for(waiting)
                if asked is not None and (at := epoch(asked.ts)):  # 0: unreadable, not timed
                    self.metrics.approval_wait.observe(max(0.0, time.time() - at))
                late = expire(run, waiting)
                if not isinstance(late, ev.ApprovalExpired):
                    run = open_run(Path(request.runs_dir), request.run_id)  # escalated, maybe
                    waiting = waiting_gate(run, d.step)
                    decide(run, waiting, decision=d.decision, by=d.by, role=d.role,
                           comment=d.comment, auth=d.auth)  # fmt: skip
                run = open_run(Path(request.runs_dir), request.run_id)  # with the decision
                if late is not None:
                    notify_after(self.outbox, Path(request.runs_dir),
                                 RunSummary(request.run_id, "paused"), {}, late)  # fmt: skip
            return self._resume(run, request)
        except RunbookError as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None

    @activity.defn(name="resume_after_loss")
    def resume_after_loss(self, request: DecideRequest) -> RunSummary:
        """After a lost worker: go on by itself when that is safe (nothing was cut off, or the
        step that was is idempotent), else refuse with why, and the run waits for a person."""
        try:
            run = open_run(Path(request.runs_dir), request.run_id)
            book = self._kept(run, request)
            if why := rerun_after_loss(book, run.record):
                raise ApplicationError(why, type="NeedsPerson", non_retryable=True)
            add_note(run, by=SERVICE_OPERATOR, text="worker lost; resumed by itself: no step "
                     "was cut off, or the one that was is marked idempotent")  # fmt: skip
            return self._resume(open_run(Path(request.runs_dir), request.run_id), request)
        except RunbookError as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None

    @activity.defn(name="expire_gate")
    def expire_gate(self, request: DecideRequest) -> RunSummary:
        """The workflow's timer fired: journal the gate's escalation (it waits again, with its
        new deadline) or its expiry (the run resumes, and the step is denied)."""
        try:
            run = open_run(Path(request.runs_dir), request.run_id)
            waiting = run.record.waiting(request.step or "")
            event = expire(run, waiting) if waiting is not None else None
            if waiting is not None and not isinstance(event, ev.ApprovalExpired):
                run = open_run(Path(request.runs_dir), request.run_id)
                status = run.record.status
                escalated = RunSummary(
                    request.run_id,
                    status,
                    str(waiting.step_id),
                    3,
                    reason="escalated" if event is not None else None,
                    deadline=gate_deadline_of(run, waiting),
                )
                return self._told(escalated, request.runs_dir, event)
            if event is not None:
                notify_after(self.outbox, Path(request.runs_dir),
                             RunSummary(request.run_id, "paused"), {}, event)  # fmt: skip
            return self._resume(open_run(Path(request.runs_dir), request.run_id), request)
        except RunbookError as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None

    def _kept(self, run: OpenRun, request: DecideRequest) -> Runbook:
        """The runbook the run started with, from the copy kept beside its journal."""
        text = kept_runbook(run.run_dir, run.state.sha256)
        if text is None:
            raise ApplicationError(
                f"run {request.run_id} keeps no copy of its runbook; resume it with "
                "`runbook resume`",
                type="RunbookMissing",
                non_retryable=True,
            )
        where = str((run.state.started.get("runbook") or {}).get("abs_path") or "")
        return checked(parse_text(text, where or run.run_dir / "runbook.md"))

    def _resume(self, run: OpenRun, request: DecideRequest) -> RunSummary:
        """Resume the run from the runbook it kept, as `runbook resume` does."""
        book = self._kept(run, request)
        given = {k: v for k, v in run.state.inputs.items() if v != "***"}
        values, secrets = _values(book, given, self._secrets)
        with kernel_pool(needed_kernels(book.steps)) as pool, _heartbeats(pool):
            with activity.shield_thread_cancel_exception():
                result = resume(_session(book, values, secrets), pool, run)
            summary = self._done(_summary(result, Path(request.runs_dir)), Path(request.runs_dir))
        return self._told(summary, request.runs_dir)

    @activity.defn(name="note_run")
    def note_run(self, request: Note) -> None:
        """A note in the run's journal between attempts (an alert that resolved)."""
        try:
            run = open_run(Path(request.runs_dir), request.run_id)
        except RunbookError:
            return  # no journal yet (refused before its first step): nothing to note on
        add_note(run, by=request.by, text=request.text, role=request.role, auth=request.auth)

    @activity.defn(name="cancel_run")
    def cancel_run(self, request: Cancel) -> RunSummary:
        """End a run that waits (at a gate, or interrupted) as cancelled, in its journal."""
        try:
            run = open_run(Path(request.runs_dir), request.run_id)
            cancel_waiting(run, by=request.by, reason="aborted through the service",
                           role=request.role, auth=request.auth)  # fmt: skip
        except RunbookError as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None
        return self._done(
            RunSummary(request.run_id, "cancelled", None, 1, f"cancelled by {request.by}")
        )
