"""The step state machine: runs a runbook's steps through kernels, applying its policies.

The engine does no terminal I/O. It asks an :class:`~runner.exec.operator.Operator` for every
decision and hands every journal event, as written (secrets already redacted), to a
:class:`Reporter` for live display. Policies (approval gates, conditions, retries, failure
handling, resume) are applied here, in one place, so no entry point can go around them.

A step moves through ``pending -> running -> succeeded | failed | timed_out | cancelled``, or is
``skipped`` (always with a reason), ``waiting_approval`` (the run pauses), ``denied`` or
``handled`` (failed, then recovered by an alternative procedure).

Long on purpose, for now: the state machine over steps, gates, retries, conditions and
procedures is one class whose methods share the run's state; splitting event writing and block
execution out of it is planned (issue 11).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from runner.errors import ExitCode, ExpressionError, RunbookError
from runner.exec import calls, loops, needs
from runner.exec.loops import LoopError, items_line, loop_items
from runner.exec.operator import Answer, Approval, ApprovalRequest, Decision, Operator
from runner.exec.policy import (
    FAILED_STATUSES,
    GateRule,
    Person,
    approval_problem,
    expiry_event,
    gate_deadline,
    retry_delay,
    run_status,
    selection_reason,
)
from runner.format.model import (
    Block,
    InputValue,
    Procedure,
    Runbook,
    RunEnd,
    RunStatus,
    Step,
    StepStatus,
    step_label,
)
from runner.format.syntax import DEFAULT_KERNELS, SHELL_KERNEL
from runner.kernels.backend import Kernel, KernelBackend
from runner.kernels.cancel import CancelToken, Terminated
from runner.kernels.pool import (
    ExecResult,
    ExecStatus,
    Interrupted,
    KernelError,
    Output,
    ShellRestart,
    assignment_code,
    chdir_code,
    expression_for,
    is_shell,
    kernel_prelude,
    shell_text,
    typed_output,
)
from runner.private_files import private_folder, write_private
from runner.runs import events as ev
from runner.runs.journal import Event
from runner.runs.redact import REDACTED, rebuild
from runner.runs.state import ResumeState, StepRecord, epoch
from runner.runs.store import RunWriter, keep_runbook

StepKey = tuple[str | None, str]  # (procedure id or None, step id)


@dataclass(frozen=True, slots=True)
class Shown:
    """What the live display is shown and the journal does not keep: ``step_prompt`` (the step
    about to be asked about, with the values its code uses) or ``notice`` (a kernel problem)."""

    event: str
    fields: Mapping[str, Any]

    def record(self) -> Event:
        return {"event": self.event, **self.fields}


class Reporter(Protocol):
    """Receives every journal event as it is written (typed, as redacted on disk), and what is
    only shown, for live display."""

    def on_event(self, event: ev.JournalEvent | Shown) -> None: ...


class NullReporter:
    def on_event(self, event: ev.JournalEvent | Shown) -> None:
        return None


class Flow(Enum):
    """What the run does after a step."""

    NEXT = "next"  # go on
    FAIL = "fail"  # stop: the run failed
    QUIT = "quit"  # stop: the operator chose to quit
    ABORT = "abort"  # stop: Ctrl-C or SIGTERM
    PAUSE = "pause"  # stop: waiting for an approval
    END = "end"  # stop: a branch ended the run (`end=`, "Ends the run: ...")


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How the run was asked for (journaled in ``run_started.options``)."""

    mode: str = "run"  # run | drill | procedure
    yes: bool = False
    only: tuple[str, ...] = ()  # step numbers or ids
    from_step: str | None = None
    approve: tuple[str, ...] = ()  # pre-approved gated steps
    require_distinct_approver: bool = False
    procedure: str | None = None  # run this alternative procedure on its own
    # `--answer STEP=VALUE`: decision steps answered on the command line, values checked
    answers: tuple[tuple[str, str | int | float], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "yes": self.yes,
            "only": list(self.only),
            "from": self.from_step,
            "approve": list(self.approve),
            "answers": {ref: value for ref, value in self.answers},
            "require_distinct_approver": self.require_distinct_approver,
            "procedure": self.procedure,
        }


@dataclass(frozen=True, slots=True)
class RunContext:
    """Facts about where and by whom the run happens."""

    runbook_path: str  # as the operator named it
    operator: str
    host: str
    git_commit: str | None
    interactive: bool
    trigger: Mapping[str, Any] | None = None  # the alert that started the run, when one did
    os_user: str | None = None  # the OS account the run runs as (beside `operator`, a name)


@dataclass(slots=True)
class _GateClock:
    """A gate's clock and quorum while the engine is at it (an escalation moves both)."""

    requested_at: float
    escalated_at: float | None
    approvals: list[Person]


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended."""

    run_id: str
    run_dir: Path
    status: RunStatus
    exit_code: int
    duration: float  # seconds, all attempts of the run
    time_limit: float | None
    within_time_limit: bool | None
    outcomes: tuple[StepRecord, ...]  # each step that ended, as the fold would record it
    paused_step: str | None = None  # the step waiting for approval (or an answer)
    aborted: bool = False  # ended by Ctrl-C or SIGTERM
    ended_by: Mapping[str, Any] | None = None  # the branch that ended the run (`end=`)


@dataclass
class _Current:
    """The step (and block) under way, so an abort can close them in the journal."""

    step: Step
    procedure: str | None
    started: float
    attempt: int
    attempts: int
    block: Block | None = None  # the block executing now, if any
    block_started: float = 0.0
    item: tuple[int, int, Any] | None = None  # a `foreach` step's item: index, count, value


#: A line longer than this is journaled in pieces rather than held until its newline.
LONG_LINE = 1 << 16


@dataclass
class _Sink:
    """Turns kernel outputs into journal events.

    Streams are cut at line ends before redaction, so a secret split across two chunks is
    still replaced whole; a line with no end in sight is cut anyway past ``LONG_LINE``,
    keeping back as many characters as the longest secret form could span. Pieces are kept
    in a list and joined once: a long line costs linear time, not a copy per chunk.
    """

    engine: Engine
    step: Step
    block_id: str
    pending: dict[str, list[str]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def add(self, output: Output) -> None:
        if output.kind == "stream":
            self._add_stream(output.stream or "stdout", output.text)
            return
        self.flush()
        self.engine._output_event(self.step, self.block_id, output)

    def _add_stream(self, name: str, text: str) -> None:
        pieces = self.pending.setdefault(name, [])
        pieces.append(text)
        size = self.sizes.get(name, 0) + len(text)
        cut_in_chunk = text.rfind("\n") + 1
        if cut_in_chunk:
            whole = "".join(pieces)
            cut = len(whole) - len(text) + cut_in_chunk
        elif size > LONG_LINE:
            whole = "".join(pieces)
            cut = max(0, len(whole) - self.engine.journal.redactor.longest)
        else:
            self.sizes[name] = size
            return
        rest = whole[cut:]
        self.pending[name] = [rest] if rest else []
        self.sizes[name] = len(rest)
        if cut:
            self._stream(name, whole[:cut])

    def _stream(self, name: str, text: str) -> None:
        self.engine._event(
            ev.OutputEvent(
                step=self.step.number,
                step_id=self.step.id,
                block_id=self.block_id,
                kind="stream",
                stream=name,
                text=text,
            )
        )

    def flush(self) -> None:
        for name, pieces in list(self.pending.items()):
            text = "".join(pieces)
            if text:
                self._stream(name, text)
        self.pending.clear()
        self.sizes.clear()


class Engine:
    """Runs one runbook (or one alternative procedure) to an end: finished, paused or aborted."""

    def __init__(
        self,
        runbook: Runbook,
        *,
        inputs: Mapping[str, InputValue],
        secret_inputs: Sequence[str],
        journal: RunWriter,
        pool: KernelBackend,
        operator: Operator,
        context: RunContext,
        options: RunOptions,
        reporter: Reporter | None = None,
        resume: ResumeState | None = None,
    ) -> None:
        self.runbook = runbook
        self.inputs = dict(inputs)
        self.secret_inputs = frozenset(secret_inputs)
        self.journal = journal
        self.pool = pool
        self.operator = operator
        self.context = context
        self.options = options
        self.reporter = reporter or NullReporter()
        self.resume = resume
        self.outputs: dict[str, Any] = dict(resume.outputs) if resume else {}
        # Secret inputs by name, to rebuild outputs that held one (see redact.template).
        self._secrets = {n: str(v) for n, v in self.inputs.items() if n in self.secret_inputs}
        # Inputs declared `expose: block`: given to a kernel only around a block naming them.
        self._scoped = frozenset(
            spec.name for spec in runbook.metadata.inputs if spec.expose == "block"
        )
        self._cwd: dict[str, str] = dict(resume.cwd) if resume else {}  # kernel -> last cwd
        if resume is not None:
            self._rebuild_secret_outputs(resume.secret_templates)
        self._outcomes: dict[StepKey, StepRecord] = {}
        self._declared = needs.declared_outputs(runbook)  # output -> the step that sets it
        self._background: dict[int, str] = {}  # pid -> command line, left running by blocks
        self._ended: dict[str, Any] | None = None  # the branch that ended the run, if one did
        self._approved: set[StepKey] = set()
        self._current: _Current | None = None
        self._aborted = False
        self._image_count = 0
        self._off_script_ran = False  # an ad-hoc command may have changed a kernel's values
        # A called runbook's steps are journaled under this prefix (`4/contain-host`), its
        # procedures under `4/contain-host/ID`; None for the run's own runbook.
        self._prefix: str | None = None
        pool.on_start = self._kernel_started
        # Ctrl-C and SIGTERM are noted on this token while a kernel is waited on (see
        # runner.kernels.cancel); the CLI hands its own over through the pool.
        self.cancel = pool.cancel or CancelToken()
        pool.cancel = self.cancel
        for session in pool.sessions():
            session.cancel = self.cancel

    def _rebuild_secret_outputs(self, templates: Mapping[str, list[Any]]) -> None:
        """Outputs journaled as "***" get their real value back from the secret inputs."""
        for name, pieces in templates.items():
            value = rebuild(pieces, self._secrets)
            if value is None:
                raise RunbookError(
                    f"output {name!r} held a secret in a form the run cannot rebuild (it is "
                    "journaled as ***); run the step that sets it again with `runbook resume "
                    "RUN --from STEP`",
                    path=str(self.runbook.path),
                )
            self.outputs[name] = value

    # --- events --------------------------------------------------------------------------------

    def _event(self, event: ev.JournalEvent) -> Event:
        record = self.journal.append(event)
        if not isinstance(self.reporter, NullReporter):  # nobody watching: no second decode
            self.reporter.on_event(ev.decode(record))  # as written: redacted, with seq and ts
        return record

    def _output_event(self, step: Step, block_id: str, output: Output) -> None:
        if output.kind == "error":
            event = ev.OutputEvent(
                step=step.number,
                step_id=step.id,
                block_id=block_id,
                kind="error",
                text=output.text,
                ename=output.ename,
                evalue=output.evalue,
                traceback=list(output.traceback),
            )
        else:
            event = ev.OutputEvent(
                step=step.number,
                step_id=step.id,
                block_id=block_id,
                kind=output.kind,
                text=output.text,
                data=self._save_images(output.data),
            )
        self._event(event)

    def _save_images(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Images go to files beside the journal; the event holds their relative path."""
        kept: dict[str, Any] = {}
        for mime, value in data.items():
            if mime.startswith("image/") and mime != "image/svg+xml" and isinstance(value, str):
                self._image_count += 1
                name = f"output-{self._image_count}.{mime.split('/', 1)[1].split('+')[0]}"
                folder = private_folder(self.journal.run_dir / "outputs")
                write_private(folder / name, base64.b64decode(value))
                kept[mime] = f"outputs/{name}"
            elif isinstance(value, str):
                kept[mime] = value
        return kept

    # --- the run -------------------------------------------------------------------------------

    def run(self) -> RunResult:
        with self.cancel.handling_signals():
            return self._run()

    def _run(self) -> RunResult:
        started = time.monotonic()
        self._start_event()
        steps, procedure = self._plan()
        try:
            # Kernels launched early finish booting here, so their start-up time and their
            # `kernel_started` events come before the first step, not inside it.
            for session in self.pool.sessions():
                self.pool.get(session.name)
            flow = self._sequence(steps, procedure)
        except KernelError as exc:
            self.reporter.on_event(Shown("notice", {"text": str(exc)}))
            flow = Flow.FAIL
        except KeyboardInterrupt:  # Ctrl-C outside a step, a second Ctrl-C, or SIGTERM
            flow = Flow.ABORT
        finally:
            self.pool.on_start = None  # the pool may outlive this run; its journal closes
        if flow is Flow.ABORT:
            self._aborted = True
            self._close_current()
        return self._finish(flow, time.monotonic() - started)

    def _plan(self) -> tuple[tuple[Step, ...], str | None]:
        if self.options.procedure is None:
            return self.runbook.steps, None
        proc = self._procedure(self.options.procedure)
        return proc.steps, proc.id

    def _procedure(self, name: str) -> Procedure:
        proc = self.runbook.procedure(name)
        if proc is None:
            known = ", ".join(p.id for p in self.runbook.procedures) or "none"
            raise RunbookError(
                f"no alternative procedure {name!r} (this runbook has: {known})",
                path=str(self.runbook.path),
            )
        return proc

    def _start_event(self) -> None:
        meta = self.runbook.metadata
        keep_runbook(self.journal.run_dir, self.runbook.sha256, self.runbook.source)
        if self.resume is not None:
            self._event(
                ev.RunResumed(
                    attempt=self.resume.attempt,
                    operator=self.context.operator,
                    allow_changed=self.resume.allow_changed,
                    sha256=self.runbook.sha256,
                    interactive=self.context.interactive,
                )
            )
            return
        shown = {k: (REDACTED if k in self.secret_inputs else v) for k, v in self.inputs.items()}
        self._event(
            ev.RunStarted(
                run_id=self.journal.run_id,
                runbook={
                    "path": self.context.runbook_path,
                    "abs_path": str(Path(self.runbook.path).resolve()),
                    "id": meta.id,
                    "name": meta.name,
                    "sha256": self.runbook.sha256,
                    "time_limit": meta.time_limit,
                    "objective": meta.objective,
                },
                git_commit=self.context.git_commit,
                inputs=shown,
                operator=self.context.operator,
                os_user=self.context.os_user,
                host=self.context.host,
                mode=self.options.mode,
                attempt=1,
                interactive=self.context.interactive,
                options=self.options.as_json(),
                total_steps=len(self._plan()[0]),
                trigger=dict(self.context.trigger) if self.context.trigger else None,
            )
        )

    def _note_background(self, session: Kernel, step: Step) -> None:
        """Journal processes a block left running; they are stopped when the run ends."""
        found = [(pid, cmd) for pid, cmd in session.background() if pid not in self._background]
        if not found:
            return
        self._background.update(found)
        self._event(
            ev.BackgroundProcesses(
                step=step.number,
                step_id=step.id,
                kernel=session.name,
                processes=[{"pid": pid, "command": cmd} for pid, cmd in found],
            )
        )

    def _stop_background(self) -> None:
        """Stop what blocks left running: SIGTERM, a moment, then SIGKILL; journaled."""
        alive = [pid for pid in self._background if _running(pid)]
        for session in self.pool.running():
            alive += [pid for pid, _ in session.background() if pid not in alive]
        if not alive:
            return
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        until = time.monotonic() + BACKGROUND_GRACE
        while time.monotonic() < until and any(_running(pid) for pid in alive):
            time.sleep(0.01)
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self._event(
            ev.BackgroundStopped(
                processes=[{"pid": pid, "command": self._background.get(pid, "")} for pid in alive]
            )
        )

    def _finish(self, flow: Flow, elapsed: float) -> RunResult:
        self._stop_background()
        total = elapsed + (self.resume.elapsed if self.resume else 0.0)
        outcomes = tuple(self._outcomes.values())
        status = run_status(
            "next" if flow is Flow.END else flow.value, [StepStatus(o.status) for o in outcomes]
        )
        if flow is Flow.END and self._ended is not None and status is not RunStatus.FAILED:
            # The branch's own verdict, unless something before it failed for good.
            declared = RunStatus(self._ended["status"])
            handled = status is RunStatus.SUCCEEDED_WITH_HANDLED_FAILURES
            status = declared if declared is not RunStatus.SUCCEEDED or not handled else status
        limit = self.runbook.metadata.time_limit
        within = None if limit is None else total <= limit
        paused = next((o for o in outcomes if o.status in _WAITING), None)
        if status is RunStatus.PAUSED and paused is not None:
            needs = "an answer" if paused.status == StepStatus.WAITING_ANSWER else "an approval"
            self._event(
                ev.RunPaused(
                    status="paused",
                    reason=f"step {paused.number} needs {needs}",
                    step=paused.number,
                    step_id=paused.step_id,
                    procedure=paused.procedure,
                    duration=total,
                )
            )
        else:
            counts: dict[str, int] = {}
            for o in outcomes:
                counts[o.status] = counts.get(o.status, 0) + 1
            self._event(
                ev.RunFinished(
                    status=status.value,
                    duration=total,
                    time_limit=limit,
                    within_time_limit=within,
                    counts=counts,
                    aborted=self._aborted,
                    ended_by=self._ended or None,
                )
            )
        self.journal.sync()
        return RunResult(
            run_id=self.journal.run_id,
            run_dir=self.journal.run_dir,
            status=status,
            exit_code=_exit_code(status, self._aborted),
            duration=total,
            time_limit=limit,
            within_time_limit=within,
            outcomes=outcomes,
            paused_step=paused.step_id if paused and status is RunStatus.PAUSED else None,
            aborted=self._aborted,
            ended_by=self._ended,
        )

    def _sequence(self, steps: Sequence[Step], procedure: str | None) -> Flow:
        for index, step in enumerate(steps, 1):
            flow = self._step(step, index, len(steps), procedure)
            if flow is not Flow.NEXT:
                return flow
        return Flow.NEXT

    # --- one step ------------------------------------------------------------------------------

    def _record(
        self,
        step: Step,
        procedure: str | None,
        status: StepStatus,
        duration: float = 0.0,
        *,
        attempt: int = 0,
        attempts: int = 0,
        exit_status: int | None = None,
        error: str | None = None,
        reason: str | None = None,
        retry_in: float | None = None,
    ) -> None:
        self._event(
            ev.StepFinished(
                step=step.number,
                step_id=step.id,
                title=step.title,
                procedure=procedure,
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
        key = (procedure, step.id)
        previous = self._outcomes.get(key)
        total = duration + (
            (previous.duration or 0.0) if previous and not previous.earlier else 0.0
        )
        # The outcome feeds the summary table and the approver's evidence: an error may quote
        # a secret (`raise ValueError(token)`), so it is kept as the journal has it.
        redact = self.journal.redactor.text
        self._outcomes[key] = StepRecord(
            number=step.number,
            step_id=step.id,
            title=step.title,
            procedure=procedure,
            status=status.value,
            duration=total,
            attempts=attempt,
            reason=redact(reason) if reason else reason,
            error=redact(error) if error else error,
        )

    def _step(self, step: Step, index: int, total: int, procedure: str | None) -> Flow:
        key = (procedure, step.id)
        if self.resume is not None and key in self.resume.done:
            self._outcomes[key] = self.resume.done[key]
            return Flow.NEXT
        if procedure == self._plan()[1]:  # --only/--from name steps of the plan being run
            reason = selection_reason(
                step, self.options.only, self.options.from_step, self._plan()[0]
            )
            if reason:
                self._record(step, procedure, StepStatus.SKIPPED, reason=reason)
                return Flow.NEXT
        if step.when:
            flow = self._condition(step, procedure)
            if flow is not None:
                return flow
        if not step.manual and step.call is None:
            flow = self._needs(step, procedure)
            if flow is not None:
                return flow
        if step.manual:
            if step.approve:  # a gate on a person's work or question, as on code
                flow = self._gated(step, procedure)
                if flow is not None:
                    return flow
            if step.question is not None:
                return self._question(step, index, total, procedure)
            return self._manual(step, index, total, procedure)
        decision = self._ask_before(step, index, total, procedure)
        if decision.action == "skip":
            self._record(step, procedure, StepStatus.SKIPPED, reason=_operator_reason(decision))
            return Flow.NEXT
        if decision.action == "quit":
            return Flow.QUIT
        if step.approve and not (step.loop and step.loop.approve_each):
            flow = self._gated(step, procedure)
            if flow is not None:
                return flow
        if step.loop is not None:
            flow = loops.loop(self, step, index, total, procedure)
        elif step.call is not None:
            flow = calls.call(self, step, index, total, procedure)
        else:
            flow = self._attempts(step, index, total, procedure)
        outcome = self._outcomes.get(key)
        if flow is Flow.NEXT and step.end and outcome and outcome.status == StepStatus.SUCCEEDED:
            return self._end_run(step.end, procedure, step)
        return flow

    def _gated(self, step: Step, procedure: str | None) -> Flow | None:
        """None when the gate let the step through; else how the run goes on."""
        gate = self._gate(step, procedure)
        if gate == "paused":
            self._record(
                step, procedure, StepStatus.WAITING_APPROVAL, reason="waiting for an approval"
            )
            return Flow.PAUSE
        if gate in ("denied", "expired"):
            why = "approval expired" if gate == "expired" else "approval denied"
            self._record(step, procedure, StepStatus.DENIED, reason=why)
            return self._on_failure(step, procedure, StepStatus.DENIED)
        return None

    def _end_run(self, end: RunEnd, procedure: str | None, step: Step | None) -> Flow:
        """A branch ends the run: journaled in `run_finished.ended_by`, with its reason."""
        self._ended = {
            "status": end.status,
            "reason": end.reason,
            "procedure": procedure,
            "step": step.number if step else None,
            "step_id": step.id if step else None,
        }
        return Flow.END

    def _needs(self, step: Step, procedure: str | None) -> Flow | None:
        """Stop a step whose code reads an output that no step set (its step was skipped,
        denied or handled): it would run with an empty value. None when it has what it reads."""
        missing = needs.unset_reads(step, self._declared, [*self.inputs, *self.outputs])
        if not missing:
            return None
        said = []
        for name, source in missing:
            record = self._outcomes.get((source.procedure, source.step_id))
            why = "has not run" if record is None else f"ended {record.status}"
            if record is not None and (record.reason or record.error):
                why += f" ({record.reason or record.error})"
            said.append(f"{name}, which step {source.label} ({source.step_id}) sets but {why}")
        error = (
            f"its code reads {'; '.join(said)}: it would run with an empty value, so it did not "
            "run. Run the step that sets it, or give this step the `when=` of the step that does"
        )
        self._record(step, procedure, StepStatus.FAILED, error=error)
        return Flow.FAIL

    def _condition(self, step: Step, procedure: str | None) -> Flow | None:
        env = {**self.inputs, **self.outputs}
        try:
            if step.condition is None:
                # The linter stops a runbook whose condition does not parse (RB032); a plan
                # built some other way must not run the step as if it had none.
                raise ExpressionError("the condition was not parsed", expression=step.when or "")
            holds = step.condition.evaluate(env)
        except ExpressionError as exc:
            self._record(
                step, procedure, StepStatus.FAILED, error=f"condition error: {exc.message}"
            )
            return Flow.FAIL
        if holds:
            return None
        self._record(step, procedure, StepStatus.SKIPPED, reason=f"condition false: {step.when}")
        return Flow.NEXT

    def _decision(
        self,
        step: Step,
        procedure: str | None,
        decision: Decision,
        *,
        waited: float | None = None,
        always: bool = False,
    ) -> None:
        """Journal a person's answer; an unattended run's answers are its rules, not decisions,
        except for manual steps (``always``), whose outcome a reader must see either way."""
        if not (self.operator.interactive or always):
            return
        self._event(
            ev.DecisionEvent(
                step=step.number,
                step_id=step.id,
                procedure=procedure,
                role=step.role,
                decision=decision.action,
                by=self.operator.name,
                note=decision.note,
                waited=round(decision.waited if waited is None else waited, 3),
            )
        )

    def _ask_before(self, step: Step, index: int, total: int, procedure: str | None) -> Decision:
        if self.operator.interactive:
            self._prompt_event(step, index, total, manual=False, procedure=procedure)
        while True:
            decision = self.operator.before_step(step, index, total)
            if decision.action != "offscript":
                self._decision(step, procedure, decision)
                return decision
            self._off_script(step, procedure, decision)

    def _prompt_event(
        self, step: Step, index: int, total: int, *, manual: bool, procedure: str | None = None
    ) -> None:
        """For the display only (not journaled): the step about to be asked about, with the
        current values its code uses (secrets as ***) for the step card."""
        self.reporter.on_event(
            Shown(
                "step_prompt",
                {
                    "step": step.number,
                    "step_id": step.id,
                    "procedure": procedure,
                    "values": self._used_values(step),
                    "title": step.title,
                    "role": step.role,
                    "index": index,
                    "total": total,
                    "manual": manual,
                    "text": self.journal.redactor.text(step.text),
                },
            )
        )

    def _manual(self, step: Step, index: int, total: int, procedure: str | None) -> Flow:
        """A step for a person: journaled like any other (started, a decision, finished), so
        a reader sees who answered and how long it took, also in unattended runs and drills."""
        self.journal.sync()
        started = time.monotonic()
        self._current = _Current(step, procedure, started, 1, 1)
        self._step_started(step, procedure, index, total, attempt=1, attempts=1, kernel=None)
        self._prompt_event(step, index, total, manual=True, procedure=procedure)
        while True:
            decision = self.operator.manual(step, index, total)
            if decision.action != "offscript":
                break
            self._off_script(step, procedure, decision)
        waited = time.monotonic() - started
        self._current = None
        self._decision(step, procedure, decision, waited=waited, always=True)
        reason: str | None
        if decision.action == "quit":
            status, reason = StepStatus.CANCELLED, "the operator quit the run"
        elif decision.action == "done":
            status, reason = StepStatus.SUCCEEDED, decision.note
            if step.timeout is not None and waited > step.timeout:
                status, reason = StepStatus.TIMED_OUT, _late(waited, step.timeout)
        else:
            status, reason = StepStatus.SKIPPED, _operator_reason(decision)
        self._record(step, procedure, status, waited, attempt=1, attempts=1, reason=reason)
        return self._after_person(step, procedure, status)

    def _after_person(self, step: Step, procedure: str | None, status: StepStatus) -> Flow:
        """After a manual or decision step: its `end=`, or its on_failure when it timed out."""
        if status is StepStatus.CANCELLED:
            return Flow.QUIT
        if status is StepStatus.TIMED_OUT:
            return self._on_failure(step, procedure, status)
        if status is StepStatus.SUCCEEDED and step.end:
            return self._end_run(step.end, procedure, step)
        return Flow.NEXT

    # --- decision steps ------------------------------------------------------------------------

    def _question(self, step: Step, index: int, total: int, procedure: str | None) -> Flow:
        """Ask a decision step's question; its answer becomes the step's output. The answer
        comes from, in order: `runbook answer` (on a resume), `--answer`, the operator; with
        none, the step waits and the run pauses, as at an approval gate."""
        question = step.question
        assert question is not None
        key = (procedure, step.id)
        self.journal.sync()
        started = time.monotonic()
        self._step_started(step, procedure, index, total, attempt=1, attempts=1, kernel=None)
        recorded = self.resume.answers.pop(key, None) if self.resume else None
        answer: Answer | None = None
        if recorded is not None:
            answer = Answer(
                "answer",
                recorded.get("value"),
                str(recorded.get("by") or ""),
                "recorded",
                float(recorded.get("waited") or 0.0),
            )
        else:
            self._event(
                ev.QuestionAsked(
                    step=step.number,
                    step_id=step.id,
                    procedure=procedure,
                    question=question.text,
                    type=question.type,
                    choices=list(question.choices),
                    output=question.output,
                )
            )
            preset = self._preset_answer(step, procedure)
            if preset is not None:
                answer = Answer("answer", preset, self.context.operator, "command_line")
            else:
                self._prompt_event(step, index, total, manual=True, procedure=procedure)
                self._current = _Current(step, procedure, started, 1, 1)
                answer = self.operator.answer(step, question)
                self._current = None
                answer = Answer(
                    answer.action,
                    answer.value,
                    answer.by or self.operator.name,
                    answer.source,
                    answer.waited or time.monotonic() - started,
                )
                if answer.action != "answer":
                    return self._unanswered(step, procedure, answer, time.monotonic() - started)
            self._event(
                ev.Answered(
                    step=step.number,
                    step_id=step.id,
                    procedure=procedure,
                    value=answer.value,
                    output=question.output,
                    by=answer.by,
                    source=answer.source,
                    waited=round(answer.waited, 3),
                )
            )
        waited = answer.waited
        if step.timeout is not None and waited > step.timeout:
            status, reason = StepStatus.TIMED_OUT, _late(waited, step.timeout)
        else:
            self.outputs[question.output] = answer.value
            self._event(
                ev.Outputs(
                    step=step.number, step_id=step.id, values={question.output: answer.value}
                )
            )
            status, reason = StepStatus.SUCCEEDED, f"answered {answer.value!r} by {answer.by}"
        self._record(
            step,
            procedure,
            status,
            time.monotonic() - started,
            attempt=1,
            attempts=1,
            reason=reason,
        )
        return self._after_person(step, procedure, status)

    def _unanswered(self, step: Step, procedure: str | None, answer: Answer, waited: float) -> Flow:
        if answer.action == "quit":
            self._record(
                step, procedure, StepStatus.CANCELLED, waited, reason="the operator quit the run"
            )
            return Flow.QUIT
        self._record(
            step, procedure, StepStatus.WAITING_ANSWER, waited, reason="waiting for an answer"
        )
        return Flow.PAUSE

    def _preset_answer(self, step: Step, procedure: str | None) -> str | int | float | None:
        """`--answer` names steps of the plan being run (the CLI checked them and their values
        against it), never a step of a procedure a failure brings in, like `--approve`."""
        if procedure != self._plan()[1]:
            return None
        return next(
            (value for ref, value in self.options.answers if ref in (str(step.number), step.id)),
            None,
        )

    def _off_script(self, step: Step, procedure: str | None, decision: Decision) -> None:
        self._off_script_ran = True
        kernel = self._kernel_for(step, decision.language)
        try:
            session = self.pool.get(kernel)
            sink = _Sink(self, step, "off-script")
            try:
                result = session.execute(decision.code, on_output=sink.add)
            finally:
                sink.flush()
            status = "ok" if result.status is ExecStatus.OK else "error"
        except Interrupted:
            status = "error"
        except KernelError as exc:
            self.reporter.on_event(Shown("notice", {"text": str(exc)}))
            status = "error"
        self._event(
            ev.OffScript(
                step=step.number,
                step_id=step.id,
                procedure=procedure,
                kernel=kernel,
                code=decision.code,
                status=status,
                by=self.operator.name,
            )
        )

    def _kernel_for(self, step: Step, language: str | None) -> str:
        if language is not None:
            return self.runbook.metadata.kernels.get(language) or DEFAULT_KERNELS[language]
        blocks = step.executable_blocks
        return blocks[0].kernel or SHELL_KERNEL if blocks else SHELL_KERNEL

    # --- approvals -----------------------------------------------------------------------------

    def _gate(self, step: Step, procedure: str | None, item: tuple[int, Any] | None = None) -> str:
        """approved | denied | expired | paused. Nothing runs without a recorded approval (a
        quorum's worth of them), and a gate whose time ran out is denied. With `item` (index,
        value), the gate of one item of an `approve_each` loop: its code shows the item, and its
        approval covers that item only."""
        key = (procedure, step.id)
        once = key if item is None else (procedure, f"{step.id}#{item[0]}")
        if once in self._approved:
            return "approved"
        extra = None if item is None or step.loop is None else {step.loop.var: item[1]}
        code = self._approval_code(step, extra)
        recorded = self.resume.approvals.pop(key, None) if self.resume else None
        if recorded is not None:
            assert self.resume is not None
            if key in self.resume.expired:
                return "expired"
            if recorded.get("decision") != "approved":
                return "denied"
            assert self.resume is not None
            # An approval covers the code the approver saw; a runbook edited since (resumed
            # with --allow-changed) needs a fresh one.
            if self.resume.approved_code.get(key) == self.journal.redactor.text(code):
                self._approved.add(once)
                return "approved"
        # The code runs with what the kernels hold, which an off-script command may have
        # changed: the approver sees (and the journal records) those values, not the run's.
        changed = self._changed_in_kernels(step) if self._off_script_ran else {}
        if changed:
            code = self._approval_code(step, {**changed, **(extra or {})})
        rule = GateRule.of(step)
        gate = self.resume.gates.get(key) if self.resume else None
        if gate is not None and gate.code != self.journal.redactor.text(code):
            gate = None  # other code than the approvals so far saw: a new gate
        asked = self._event(
            ev.ApprovalRequested(
                step=step.number,
                step_id=step.id,
                procedure=procedure,
                approver_role=step.approver_role,
                code=code,
                needed=rule.needed if rule.needed > 1 else None,
                timeout=rule.timeout,
                escalate_role=rule.escalate_role,
                escalate_needed=rule.escalate_needed if rule.escalate_role else None,
            )
        )
        clock = _GateClock(
            gate.requested_at if gate else epoch(str(asked["ts"])),
            gate.escalated_at if gate else None,
            [Person(a.by, a.os_user) for a in gate.approvals] if gate else [],
        )
        if self._expired(step, procedure, rule, clock):
            return "expired"
        if self._preapproved(step, procedure) and not self.options.require_distinct_approver:
            count = len(clock.approvals) + 1
            needed = rule.now_asks(clock.escalated_at is not None)[1]
            self._approval_event(
                step, procedure, "approved", self.operator.name, None, None, True, count, needed
            )
            if count < needed:
                return "paused"  # --approve gives one approval of a quorum, never all
            self._approved.add(once)
            return "approved"
        answer = self._ask_approval(step, procedure, code, changed, rule, clock)
        if answer is None:
            return "paused"
        if self._expired(step, procedure, rule, clock):
            return "expired"  # answered after the deadline: too late, refused
        needed = rule.now_asks(clock.escalated_at is not None)[1]
        count = len(clock.approvals) + 1
        self._approval_event(
            step,
            procedure,
            answer.decision,
            answer.by,
            answer.role,
            answer.comment,
            False,
            count,
            needed,
        )
        if answer.decision != "approved":
            return "denied"  # one denial by a holder denies the whole quorum
        if count < needed:
            # One terminal is one person: the rest of the quorum comes from `runbook approve`.
            return "paused"
        self._approved.add(once)
        return "approved"

    def _expired(
        self, step: Step, procedure: str | None, rule: GateRule, clock: _GateClock
    ) -> bool:
        """Journal an escalation or expiry that is due; True when the gate is denied by it."""
        where = ev.ListedStepEvent(step=step.number, step_id=step.id, procedure=procedure)
        event = expiry_event(
            where, rule, clock.requested_at, clock.escalated_at, len(clock.approvals), time.time()
        )
        if isinstance(event, ev.ApprovalEscalated):
            written = self._event(event)
            clock.escalated_at = epoch(str(written["ts"]))
            clock.approvals = []
            return False
        if event is not None:
            self._event(event)
            return True
        return False

    def _ask_approval(
        self,
        step: Step,
        procedure: str | None,
        code: str,
        changed: Mapping[str, Any],
        rule: GateRule,
        clock: _GateClock,
    ) -> Approval | None:
        """An acceptable answer, or None (left for later). A refused approver (the two-person
        rule, a missing role, one who approved already) is journaled and the question asked
        again: someone else may be at hand; otherwise the person leaves it for later and the
        run pauses."""
        distinct = self.options.require_distinct_approver
        role, needed = rule.now_asks(clock.escalated_at is not None)
        request = ApprovalRequest(
            step=step,
            procedure=procedure,
            code=self.journal.redactor.text(code),
            approver_role=role,
            evidence=self._evidence(),
            run_operator=self.context.operator,
            distinct_required=distinct,
            changed=tuple(
                (
                    n,
                    self.journal.redactor.text(shell_text({**self.inputs, **self.outputs}[n])),
                    self.journal.redactor.text(shell_text(v)),
                )
                for n, v in changed.items()
            ),
            needed=needed,
            have=len(clock.approvals),
            deadline=gate_deadline(rule, clock.requested_at, clock.escalated_at),
        )
        refused: set[tuple[str, str | None]] = set()
        while True:
            answer = self.operator.approve(request)
            if answer is None or (answer.by, answer.role) in refused:
                return None  # an operator that repeats itself would loop: pause instead
            problem = approval_problem(
                step.number,
                role,
                answer.by,
                answer.role,
                self.context.operator,
                distinct,
                os_user=self.context.os_user,
                starter_os_user=self.context.os_user,
                triggered=self.context.trigger is not None,
                earlier=clock.approvals,
                needed=needed,
            )
            if problem is None or answer.decision == "denied":
                return answer
            refused.add((answer.by, answer.role))
            self._event(
                ev.ApprovalRefused(
                    step=step.number,
                    step_id=step.id,
                    procedure=procedure,
                    by=answer.by,
                    role=answer.role,
                    reason=problem,
                )
            )

    def _evidence(self) -> tuple[tuple[str, str, str, str], ...]:
        """(step, title, status, why) of every step so far, as the approver sees them."""
        # Outcomes hold redacted text already: `_record` redacts, and resumed ones come from
        # the journal.
        return tuple(
            (
                step_label(o.procedure, o.number),
                o.title,
                o.status,
                o.error or o.reason or "",
            )
            for o in self._outcomes.values()
        )

    def _approval_event(
        self,
        step: Step,
        procedure: str | None,
        decision: str,
        by: str,
        role: str | None,
        comment: str | None,
        preapproved: bool,
        count: int = 1,
        needed: int = 1,
    ) -> None:
        self._event(
            ev.Approval(
                step=step.number,
                step_id=step.id,
                procedure=procedure,
                decision=decision,
                by=by,
                role=role,
                comment=comment,
                preapproved=preapproved,
                distinct_required=self.options.require_distinct_approver,
                needed=needed if needed > 1 else None,
                count=count if needed > 1 else None,
            )
        )

    def _preapproved(self, step: Step, procedure: str | None) -> bool:
        """`--approve` names steps of the plan being run (the CLI checks them against it), so
        it never approves a step of an alternative procedure that a failure brings in."""
        if procedure != self._plan()[1]:  # the id, however --procedure named it
            return False
        return any(ref in (str(step.number), step.id) for ref in self.options.approve)

    def _used_values(self, step: Step) -> dict[str, Any]:
        """The inputs and outputs the step's code names, as shown to a person: secrets ***."""
        redact = self.journal.redactor.value
        code = "\n".join(block.code for block in step.executable_blocks)
        return {
            n: REDACTED if n in self.secret_inputs else redact(v)
            for n, v in {**self.inputs, **self.outputs}.items()
            if n in code or n.upper() in code
        }

    def _changed_in_kernels(self, step: Step) -> dict[str, Any]:
        """The values the step's kernels hold now for the (non-secret) names its code uses,
        where they differ from the run's inputs and outputs."""
        known = {**self.inputs, **self.outputs}
        changed: dict[str, Any] = {}
        for session in self.pool.running():
            if session.info is None:
                continue
            language = session.info.language
            code = "\n".join(
                b.code for b in step.executable_blocks if (b.kernel or SHELL_KERNEL) == session.name
            )
            names = [
                n
                for n in known
                if n not in self.secret_inputs and code and (n in code or n.upper() in code)
            ]
            if not names:
                continue
            try:
                result = session.execute(
                    "", expressions={n: expression_for(language, n) for n in names}, silent=True
                )
            except KernelError:
                continue  # the block's own run will say what is wrong with the kernel
            for name in names:
                was = shell_text(known[name]) if is_shell(language) else known[name]
                if name in result.expressions and result.expressions[name] != was:
                    changed[name] = result.expressions[name]
        return changed

    def _approval_code(self, step: Step, current: Mapping[str, Any] | None = None) -> str:
        """The step's code, preceded by the values it refers to, as the approver must see them.

        Redacted before it is quoted: a secret with a quote or a backslash would otherwise
        reach the screen and the journal in its quoted form, which no longer matches it.
        """
        if step.manual:  # a person's work is approved as the runbook words it
            what = step.question.text if step.question else step.text
            return self.journal.redactor.text(what)
        redact = self.journal.redactor.value
        values = {
            n: REDACTED if n in self.secret_inputs else redact(v)
            for n, v in {**self.inputs, **self.outputs, **(current or {})}.items()
        }
        parts = []
        if step.loop is not None and not (current and step.loop.var in current):
            # One approval for the whole loop: the approver sees every item it runs for.
            try:
                parts.append(items_line(step.loop, loop_items(step.loop, values)))
            except LoopError as exc:
                parts.append(f"# {exc}")
        for block in step.executable_blocks:
            used = {n: v for n, v in values.items() if n in block.code or n.upper() in block.code}
            lang = block.lang or "text"
            header = assignment_code(lang, used) if used else ""
            parts.append((header + "\n" if header else "") + block.code.rstrip("\n"))
        return self.journal.redactor.text("\n\n".join(parts))

    # --- executing -----------------------------------------------------------------------------

    def _attempts(self, step: Step, index: int, total: int, procedure: str | None) -> Flow:
        attempts = step.retries + 1
        attempt = 0
        while True:
            attempt += 1
            status, error = self._attempt(step, index, total, procedure, attempt, attempts)
            if status is StepStatus.SUCCEEDED:
                return Flow.NEXT
            if status is StepStatus.CANCELLED and not self.operator.interactive:
                return Flow.ABORT
            if attempt < attempts and status is not StepStatus.CANCELLED:
                time.sleep(retry_delay(step, attempt))
                continue
            if self.operator.interactive:
                decision = self._ask_after_failure(step, procedure, status, error)
                if decision.action == "retry":
                    attempts = max(attempts, attempt + 1)
                    continue
                if decision.action == "quit":
                    return Flow.QUIT
                if decision.action in ("skip", "continue"):
                    return Flow.NEXT
            # Unattended runs, and a person who chose "on_failure": the runbook's own policy.
            return self._on_failure(step, procedure, status)

    def _ask_after_failure(
        self, step: Step, procedure: str | None, status: StepStatus, error: str | None
    ) -> Decision:
        while True:
            decision = self.operator.after_failure(step, status.value, error)
            if decision.action != "offscript":
                self._decision(step, procedure, decision)
                return decision
            self._off_script(step, procedure, decision)

    def _on_failure(self, step: Step, procedure: str | None, status: StepStatus) -> Flow:
        policy = step.on_failure
        if policy == "continue":
            return Flow.NEXT
        if policy.startswith("procedure:"):
            proc = self._procedure(policy.split(":", 1)[1])
            listed = f"{self._prefix}/{proc.id}" if self._prefix else proc.id
            flow = self._sequence(proc.steps, listed)
            if flow is not Flow.NEXT:
                return flow
            failed = [
                o
                for (p, _), o in self._outcomes.items()
                if p == listed and o.status in FAILED_STATUSES
            ]
            if failed:
                return Flow.FAIL
            self._record(
                step,
                procedure,
                StepStatus.HANDLED,
                reason=f"{status.value}; handled by procedure {proc.id}",
            )
            if proc.ends is not None:
                return self._end_run(proc.ends, listed, None)
            return Flow.NEXT
        return Flow.FAIL

    def _attempt(
        self, step: Step, index: int, total: int, procedure: str | None, attempt: int, attempts: int
    ) -> tuple[StepStatus, str | None]:
        self.journal.sync()  # everything before this step is durable before it starts
        started = time.monotonic()
        current = self._current = _Current(step, procedure, started, attempt, attempts)
        first_kernel = step.executable_blocks[0].kernel
        self._step_started(
            step, procedure, index, total, attempt=attempt, attempts=attempts, kernel=first_kernel
        )
        deadline = started + step.timeout if step.timeout else None
        status, error, exit_status = StepStatus.SUCCEEDED, None, None
        for block in step.executable_blocks:
            status, error, code = self._block(current, block, deadline)
            exit_status = code if code is not None else exit_status
            if status is not StepStatus.SUCCEEDED:
                break
        self._current = None
        # Redacted here, since the error also reaches the operator's failure prompt.
        error = self.journal.redactor.text(error) if error else error
        retry = attempt < attempts and status not in (StepStatus.SUCCEEDED, StepStatus.CANCELLED)
        self._record(
            step,
            procedure,
            status,
            time.monotonic() - started,
            attempt=attempt,
            attempts=attempts,
            exit_status=exit_status,
            error=error,
            retry_in=retry_delay(step, attempt) if retry else None,
        )
        return status, error

    def _step_started(
        self,
        step: Step,
        procedure: str | None,
        index: int,
        total: int,
        *,
        attempt: int,
        attempts: int,
        kernel: str | None,
    ) -> None:
        self._event(
            ev.StepStarted(
                step=step.number,
                step_id=step.id,
                title=step.title,
                role=step.role,
                procedure=procedure,
                attempt=attempt,
                attempts=attempts,
                kernel=kernel,
                index=index,
                total=total,
            )
        )

    def _block(
        self, current: _Current, block: Block, deadline: float | None
    ) -> tuple[StepStatus, str | None, int | None]:
        """Run one block between `block_started` and `block_finished`: (status, error, exit)."""
        step = current.step
        try:
            # A kernel that has to (re)start does so before the block's clock starts.
            session = self.pool.get(block.kernel or SHELL_KERNEL)
        except KernelError as exc:
            return StepStatus.FAILED, exc.message, None
        except Terminated:
            raise
        except KeyboardInterrupt:
            return StepStatus.CANCELLED, "interrupted while the kernel was starting", None
        current.block, current.block_started = block, time.monotonic()
        self._event(
            ev.BlockStarted(
                step=step.number,
                step_id=step.id,
                procedure=current.procedure,
                block_id=block.id,
                lang=block.lang,
                kernel=session.name,
                code=block.code,
                attempt=current.attempt,
            )
        )
        exit_status: int | None = None
        try:
            result = self._run_block(session, step, block, deadline)
            exit_status = result.exit_status
            status, error = _status_of(result)
            if status is StepStatus.SUCCEEDED:
                error = self._read_outputs(step, block, result)
                status = StepStatus.FAILED if error else status
        except Interrupted as exc:
            status, error, exit_status = StepStatus.CANCELLED, exc.result.error, None
        except KernelError as exc:
            status, error = StepStatus.FAILED, exc.message
        self._block_finished(current, status, exit_status, error)
        return status, error, exit_status

    def _block_finished(
        self, current: _Current, status: StepStatus, exit_status: int | None, error: str | None
    ) -> None:
        block = current.block
        if block is None:
            return
        current.block = None
        kernel = block.kernel or SHELL_KERNEL
        self._event(
            ev.BlockFinished(
                step=current.step.number,
                step_id=current.step.id,
                procedure=current.procedure,
                block_id=block.id,
                attempt=current.attempt,
                status=status.value,
                exit_status=exit_status,
                error=error,
                duration=time.monotonic() - current.block_started,
                kernel=kernel,
                cwd=self._cwd.get(kernel),
            )
        )

    def _run_block(
        self, session: Kernel, step: Step, block: Block, deadline: float | None
    ) -> ExecResult:
        language = session.info.language if session.info else block.lang
        expressions = {name: expression_for(language, name) for name in block.outputs}
        timeout = None if deadline is None else max(0.001, deadline - time.monotonic())
        sink = _Sink(self, step, block.id)
        scoped = self._scoped_for(block)
        if scoped:
            self._inject(session, scoped)
        generation = session.generation
        try:
            result = session.execute(
                block.code,
                on_output=sink.add,
                timeout=timeout,
                expressions=expressions,
                errexit=block.errexit,
            )
        finally:
            sink.flush()
            if scoped:
                self._withdraw(session, list(scoped))
        # Read from /proc rather than asked of the kernel: no extra work in it per block. Not
        # from a kernel that replaced the block's (a timeout restarts it): that one starts
        # afresh, and the remembered directory is what it must be given back.
        cwd = session.cwd() if session.generation == generation else None
        if cwd:
            self._cwd[session.name] = cwd
        self._note_background(session, step)
        if result.restart is not None:
            self._restore(session, result.restart)
        if result.output_incomplete:
            self.reporter.on_event(
                Shown("notice", {"text": "the kernel went silent before its output ended; "
                      "the end of this block's output may be missing"})
            )  # fmt: skip
        return result

    def _read_outputs(self, step: Step, block: Block, result: ExecResult) -> str | None:
        """Record the block's outputs; an error (naming the output) when one cannot be read.

        An output that was never set is an error, not an empty string: a later `when` would
        otherwise be silently false, or a later step run with an empty value.
        """
        if not block.outputs:
            return None
        shell = is_shell(block.lang)
        values: dict[str, Any] = {}
        for name in block.outputs:
            if name not in result.expressions:
                if shell:
                    why = f"${name.upper()} was never set (assign {name.upper()}=... in the block)"
                else:
                    problem = result.expression_errors.get(name, "not set")
                    why = f"the Python variable {name} could not be read: {problem}"
                return f"output {name!r}: {why}"
            kind = block.output_types.get(name)
            try:
                values[name] = typed_output(result.expressions[name], kind)
            except ValueError as exc:
                return f"output {name!r}: {self.journal.redactor.text(str(exc))}"
        self.outputs.update(values)
        templates = {
            name: piece
            for name, value in values.items()
            if isinstance(value, str) and (piece := self.journal.redactor.template(value))
        }
        self._event(
            ev.Outputs(
                step=step.number, step_id=step.id, values=values, secret_templates=templates or None
            )
        )
        source = block.kernel
        for session in self.pool.running():
            if session.name != source and session.info is not None:
                self._inject(session, values)
        return None

    # --- kernels -------------------------------------------------------------------------------

    def _kernel_started(self, session: Kernel) -> None:
        """A new kernel process: give it the run's values before any block runs in it.

        A kernel replaced mid-run (it died, or a timeout restarted it) or started for a
        resumed run also gets its last working directory back, and the journal says what
        was restored and what was lost.
        """
        info = session.info
        assert info is not None
        self._event(
            ev.KernelStarted(
                kernel=info.kernel,
                language=info.language,
                implementation=info.implementation,
                version=info.version,
                language_version=info.language_version,
                generation=session.generation,
            )
        )
        prelude = kernel_prelude(info.language)
        if prelude:
            self._run_silently(session, prelude, "prepare")
        values = self._run_values()
        if values:
            self._inject(session, values)
        replaced = session.generation > 1 or self.resume is not None
        if replaced and (self._cwd.get(session.name) or self.outputs or self.inputs):
            # A new process starts where the runner is; `_restored` moves it back.
            self._restored(session, None, reason=self._replacement_reason(session), lost=None)

    def _run_values(self) -> dict[str, Any]:
        """What every kernel holds for the whole run: inputs (but `expose: block` ones) and
        the outputs recorded so far."""
        inputs = {n: v for n, v in self.inputs.items() if n not in self._scoped}
        return {**inputs, **self.outputs}

    def _scoped_for(self, block: Block) -> dict[str, Any]:
        return {
            n: self.inputs[n]
            for n in self._scoped
            if n in self.inputs and (n in block.code or n.upper() in block.code)
        }

    def _withdraw(self, session: Kernel, names: Sequence[str]) -> None:
        """Take `expose: block` values out of the kernel again after their block; a kernel
        that cannot be asked (it died, the block was interrupted) is restarted instead, so
        the value is gone either way."""
        if not session.alive():
            return
        language = session.info.language if session.info else ""
        if is_shell(language):
            code = "unset " + " ".join(n.upper() for n in names)
        else:
            code = "\n".join(f"globals().pop({n!r}, None)" for n in names)
        try:
            self._run_silently(session, code, "withdraw a block's secrets from")
        except (KernelError, KeyboardInterrupt):
            session.restart()

    def _replacement_reason(self, session: Kernel) -> str:
        if session.generation > 1:
            return f"kernel {session.name!r} was replaced (start {session.generation})"
        return "the run was resumed in a new kernel"

    def _restore(self, session: Kernel, restart: ShellRestart) -> None:
        """The shell kernel replaced its bash: the run's values go back before the next block."""
        values = self._run_values()
        if values:
            self._inject(session, values)
        lost = [*restart.lost_exports, *(f"{f}()" for f in restart.lost_functions)]
        restored_names = {n.upper() for n in values}
        lost = [n for n in lost if n not in restored_names]
        reason = f"the block ended the shell (status {restart.status}); a new shell was started"
        self._restored(session, restart.cwd, reason=reason, lost=lost)

    def _restored(
        self, session: Kernel, cwd: str | None, *, reason: str, lost: list[str] | None
    ) -> None:
        wanted = self._cwd.get(session.name)
        if wanted and cwd != wanted:
            cwd = wanted if self._chdir(session, wanted) else None
        self._event(
            ev.KernelRestored(
                kernel=session.name,
                reason=reason,
                inputs=sorted(self.inputs),
                outputs=sorted(self.outputs),
                cwd=cwd,
                cwd_lost=wanted if wanted and cwd is None else None,
                # None: unknown (a kernel process was replaced): everything not declared as an
                # input or output is gone.
                lost=lost,
            )
        )

    def _chdir(self, session: Kernel, cwd: str) -> bool:
        language = session.info.language if session.info else ""
        result = session.execute(chdir_code(language, cwd), silent=True)
        return result.status is ExecStatus.OK

    def _run_silently(self, session: Kernel, code: str, what: str) -> None:
        result = session.execute(code, silent=True)
        if result.status is not ExecStatus.OK:
            raise KernelError(f"could not {what} kernel {session.name!r}: {result.error}")

    def _inject(self, session: Kernel, values: Mapping[str, Any]) -> None:
        language = session.info.language if session.info else ""
        if not is_shell(language):
            values = {k: v for k, v in values.items() if k.isidentifier()}
        result = session.execute(assignment_code(language, values), silent=True)
        if result.status is not ExecStatus.OK:
            raise KernelError(
                f"could not give the run's inputs and outputs to kernel {session.name!r}: "
                f"{self.journal.redactor.text(result.error or '')}"
            )

    def _close_current(self) -> None:
        current = self._current
        if current is None:
            return
        self._current = None
        self._block_finished(current, StepStatus.CANCELLED, None, "run aborted")
        if current.item is not None:
            index, count, value = current.item
            loops.item_event(
                self,
                current.step, current.procedure, index, count, value, StepStatus.CANCELLED,
                duration=time.monotonic() - current.started, attempt=current.attempt,
                attempts=current.attempts, error="run aborted",
            )  # fmt: skip
        self._record(
            current.step,
            current.procedure,
            StepStatus.CANCELLED,
            time.monotonic() - current.started,
            attempt=current.attempt,
            attempts=current.attempts,
            error="run aborted",
        )


#: Seconds background processes get to leave after SIGTERM at the end of a run.
BACKGROUND_GRACE = 0.5


def _running(pid: int) -> bool:
    """Whether ``pid`` is alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _status_of(result: ExecResult) -> tuple[StepStatus, str | None]:
    if result.status is ExecStatus.OK:
        return StepStatus.SUCCEEDED, None
    if result.status is ExecStatus.TIMED_OUT:
        return StepStatus.TIMED_OUT, result.error
    if result.status is ExecStatus.INTERRUPTED:
        return StepStatus.CANCELLED, result.error
    return StepStatus.FAILED, result.error


_WAITING = frozenset({StepStatus.WAITING_APPROVAL, StepStatus.WAITING_ANSWER})


def _late(waited: float, timeout: float) -> str:
    return f"answered after {waited:.0f}s, past the step's timeout of {timeout:.0f}s"


def _operator_reason(decision: Decision) -> str:
    if decision.note and decision.note.startswith("manual step"):
        return decision.note
    return "skipped by the operator" + (f": {decision.note}" if decision.note else "")


def _exit_code(status: RunStatus, aborted: bool) -> int:
    if aborted:
        return ExitCode.ABORTED
    return {
        RunStatus.SUCCEEDED: ExitCode.OK,
        RunStatus.SUCCEEDED_WITH_HANDLED_FAILURES: ExitCode.OK,
        RunStatus.PAUSED: ExitCode.PAUSED,
    }.get(status, ExitCode.FAILED)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


__all__ = [
    "Engine",
    "Flow",
    "NullReporter",
    "Reporter",
    "RunContext",
    "RunOptions",
    "RunResult",
    "Terminated",
    "file_sha256",
]
