"""Sub-runbooks: a step that runs another runbook inside this run.

A mixin of the engine. The called runbook's steps are journaled in this run's journal, under
a prefix that names the calling step and the runbook (`4/contain-host`), carried where a
procedure's id goes: so `runbook log` reads `4/contain-host/2`, `resume` skips the called
steps that are done, and a gate inside the called runbook pauses the whole run and is
approved like any other (`runbook approve RUN 2`). One journal, not a linked child run: one
chain to verify, one lock, one resume, and a gate in the child is a gate of the run.

The called runbook runs in the same kernels with its own inputs (mapped by `with=`) and
outputs; afterwards the caller's values are given back to the kernels, and only the outputs the
calling block names (`outputs=`) come back to the caller.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from runner.exec.policy import FAILED_STATUSES
from runner.format.inputs import InputValueError, coerce
from runner.format.model import Call, InputValue, Runbook, Step, StepStatus, step_label
from runner.format.syntax import CALL_KERNEL, is_literal, literal_text
from runner.runs import events as ev
from runner.runs.redact import REDACTED
from runner.runs.store import keep_runbook

if TYPE_CHECKING:
    from runner.exec.engine import Engine, Flow


class CallError(Exception):
    """The call cannot start: the message says why and how to fix it."""


def mapped_inputs(call: Call, child: Runbook, values: Mapping[str, Any]) -> dict[str, InputValue]:
    """The called runbook's inputs: `with=` mapped from this run's values, then its defaults;
    coerced through its declarations. A required input nobody gives is an error, never a
    blank."""
    out: dict[str, InputValue] = {}
    for name, source in call.inputs.items():
        spec = child.metadata.input(name)
        if spec is None:
            raise CallError(
                f"with= gives {name!r}, which runbook {child.metadata.id} does not "
                "declare as an input"
            )
        if is_literal(source):
            raw: Any = literal_text(source)
        elif source in values:
            raw = values[source]
        else:
            raise CallError(
                f"with= maps {name}={source}, and this run has no input or earlier "
                f"output {source!r}"
            )
        try:
            out[name] = coerce(spec, list(raw) if isinstance(raw, tuple) else raw)
        except InputValueError as exc:
            raise CallError(f"input {name} of runbook {child.metadata.id}: {exc}") from None
    for spec in child.metadata.inputs:
        if spec.name in out:
            continue
        if spec.default is not None:
            out[spec.name] = spec.default
        elif spec.required:
            raise CallError(
                f"runbook {child.metadata.id} requires input {spec.name!r}; map it: "
                f'with="{spec.name}=NAME"'
            )
    return out


def call(self: Engine, step: Step, index: int, total: int, procedure: str | None) -> Flow:
    from runner.exec.engine import Engine, RunOptions

    call = step.call
    assert call is not None
    prefix = f"{step_label(procedure, step.number)}/{call.runbook}"
    started = time.monotonic()
    self.journal.sync()
    self._step_started(step, procedure, index, total, attempt=1, attempts=1, kernel=CALL_KERNEL)
    child = self.runbook.called.get(call.runbook)
    try:
        if child is None:
            raise CallError(
                f"runbook {call.runbook!r} was not found beside this one "
                "(`runbook check` reports RB111)"
            )
        inputs = mapped_inputs(call, child, {**self.inputs, **self.outputs})
        before = self.resume.called_sha.get(prefix) if self.resume else None
        if before and before != child.sha256 and not (self.resume and self.resume.allow_changed):
            # Its done steps and approvals were for the text that ran: never mix the two.
            raise CallError(
                f"runbook {call.runbook} changed since this run started it ({child.path}); "
                "resume with --allow-changed to go on with the new text"
            )
    except CallError as exc:
        return call_failed(self, step, procedure, prefix, started, str(exc))
    secret = {s.name for s in child.metadata.inputs if s.secret}
    secret |= {n for n, src in call.inputs.items() if src in self.secret_inputs}
    keep_runbook(self.journal.run_dir, child.sha256, child.source)
    meta = child.metadata
    self._event(
        ev.SubrunbookStarted(
            step=step.number,
            step_id=step.id,
            procedure=procedure,
            runbook={
                "id": meta.id,
                "name": meta.name,
                "path": str(child.path),
                "sha256": child.sha256,
            },
            prefix=prefix,
            inputs={k: (REDACTED if k in secret else v) for k, v in inputs.items()},
        )
    )
    options = RunOptions(
        mode=self.options.mode,
        yes=self.options.yes,
        require_distinct_approver=self.options.require_distinct_approver,
    )
    on_start = self.pool.on_start
    engine = Engine(
        child,
        inputs=inputs,
        secret_inputs=sorted(secret),
        journal=self.journal,
        pool=self.pool,
        operator=self.operator,
        context=self.context,
        options=options,
        reporter=self.reporter,
    )
    engine._prefix = prefix
    engine.resume = self.resume
    engine._image_count = self._image_count
    if self.resume is not None:
        for name, values in self.resume.scoped_outputs.items():
            if name == prefix or name.startswith(prefix + "/"):
                engine.outputs.update(values)
        for name, kept in self.resume.scoped_templates.items():
            if name == prefix or name.startswith(prefix + "/"):
                engine._rebuild_secret_outputs(kept)
    theirs = set(engine._run_values()) | {spec.name for spec in meta.inputs}
    try:
        # The called runbook sees its own values only: the caller's are taken out of the
        # kernels (and a name it declares but was not given is not the caller's either).
        swap_values(self, engine, [n for n in self._run_values() if n not in engine.outputs])
        flow = engine._sequence(child.steps, prefix)
    except BaseException:
        engine._close_current()
        raise
    finally:
        self.pool.on_start = on_start
        self._image_count = engine._image_count
        self._background.update(engine._background)
        self._outcomes.update(engine._outcomes)
        # Ours again for the steps after the call; the called runbook's own are taken out.
        gone = set(engine._run_values()) | theirs
        swap_values(engine, self, [n for n in gone if n not in self._run_values()])
    return call_ended(self, step, procedure, prefix, started, engine, flow)


def swap_values(old: Engine, new: Engine, withdraw: list[str]) -> None:
    """The kernels stop holding ``withdraw`` (old's names) and get new's run values."""
    values = new._run_values()
    for session in old.pool.running():
        if withdraw:
            old._withdraw(session, withdraw)
        if values:
            new._inject(session, values)


def call_ended(
    self: Engine,
    step: Step,
    procedure: str | None,
    prefix: str,
    started: float,
    engine: Engine,
    flow: Flow,
) -> Flow:
    from runner.exec.engine import Flow

    if flow is Flow.PAUSE:
        # The run pauses at the called step's gate; this step has not ended. A resume runs
        # it again, and the called runbook goes on from its steps not done.
        call_event(self, step, procedure, prefix, "paused")
        return flow
    if flow in (Flow.QUIT, Flow.ABORT):
        call_event(self, step, procedure, prefix, "cancelled")
        self._record(
            step,
            procedure,
            StepStatus.CANCELLED,
            time.monotonic() - started,
            attempt=1,
            attempts=1,
            error=f"runbook {prefix} was stopped",
        )
        return flow
    ended = engine._ended
    failed = [o for o in engine._outcomes.values() if o.status in FAILED_STATUSES]
    if flow is Flow.FAIL or failed or (ended and ended["status"] != "succeeded"):
        why = (
            f"step {failed[-1].label} failed"
            if failed
            else f"it ended: {ended['reason']}"
            if ended
            else "it failed"
        )
        return call_failed(self, step, procedure, prefix, started, f"runbook {prefix}: {why}")
    values: dict[str, Any] = {}
    for name in step.outputs:
        if name not in engine.outputs:
            return call_failed(
                self,
                step,
                procedure,
                prefix,
                started,
                f"output {name!r}: runbook {prefix} never set it (outputs= names what the "
                "called runbook's steps set)",
            )
        values[name] = engine.outputs[name]
    call_event(self, step, procedure, prefix, "succeeded", values)
    if values:
        self.outputs.update(values)
        self._event(ev.Outputs(step=step.number, step_id=step.id, values=values))
        for session in self.pool.running():
            self._inject(session, values)
    reason = f"runbook {prefix} succeeded" + (f" ({ended['reason']})" if ended else "")
    self._record(
        step,
        procedure,
        StepStatus.SUCCEEDED,
        time.monotonic() - started,
        attempt=1,
        attempts=1,
        reason=reason,
    )
    return Flow.NEXT


def call_failed(
    self: Engine, step: Step, procedure: str | None, prefix: str, started: float, error: str
) -> Flow:
    error = self.journal.redactor.text(error)
    call_event(self, step, procedure, prefix, "failed", error=error)
    self._record(
        step,
        procedure,
        StepStatus.FAILED,
        time.monotonic() - started,
        attempt=1,
        attempts=1,
        error=error,
    )
    return self._on_failure(step, procedure, StepStatus.FAILED)


def call_event(
    self: Engine,
    step: Step,
    procedure: str | None,
    prefix: str,
    status: str,
    outputs: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> None:
    self._event(
        ev.SubrunbookFinished(
            step=step.number,
            step_id=step.id,
            procedure=procedure,
            prefix=prefix,
            status=status,
            outputs=dict(outputs or {}),
            error=error,
        )
    )
