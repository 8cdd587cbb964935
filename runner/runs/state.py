"""The one fold: a run's events, in order, become its state (:class:`RunRecord`).

Everything that needs to know where a run stands asks this module: `resume` (what a new
attempt takes over, :meth:`RunRecord.resume`), `approve`/`deny` (which step waits,
:meth:`RunRecord.waiting`), `runs` and the site (a run's summary from its first and last
events, :func:`summary`), `log`, reports, notebooks and stats (the whole record). No other module
interprets event kinds, so a new writer (a worker, a web approval) adds an event class and a
handler here, and every view agrees.

Steps: one :class:`StepRecord` per step, in the order the steps were first touched, with
everything that happened to it. Events that say which list a step is in (``procedure``) find
its record by list, number and id; the others (output, outputs) belong to the latest mention of
that number and id.

Slow steps: a step is *slow* when it took more than its share of the time limit, its share
being ``time_limit / n`` where ``n`` counts the steps that ran or were performed by a person
(skipped steps take no time, so they get no share). Without a time limit the share is twice the
mean duration of those steps, so a step that took more than double the average stands out.

The step lists hold each event's record form (the dict the journal has), which is what the
views print; the fold itself reads only typed events.

Long on purpose: it is the one fold; everything that asks where a run stands reads it here, so
it must not be split into folds that could disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import ExitCode, RunbookError
from runner.format.model import StepStatus, step_label
from runner.runs import events as ev

Event = dict[str, Any]  # an event's record form
StepKey = tuple[str | None, str]  # (procedure id or None, step id)


@dataclass
class GateState:
    """A gate as the journal tells it since its code was first shown: the quorum's approvals so
    far, and its clock (``requested_at``, reset once by an escalation)."""

    request: ev.ApprovalRequested  # the first request of this code (a resume asks again)
    approvals: list[ev.Approval] = field(default_factory=list)  # approvals of the quorum so far
    escalated: ev.ApprovalEscalated | None = None
    expired: ev.ApprovalExpired | None = None

    @property
    def code(self) -> str:
        return self.request.code

    @property
    def requested_at(self) -> float:
        return epoch(self.request.ts)

    @property
    def escalated_at(self) -> float | None:
        return epoch(self.escalated.ts) if self.escalated else None

    @property
    def role(self) -> str | None:
        return self.escalated.role if self.escalated else self.request.approver_role

    @property
    def needed(self) -> int:
        return int(self.escalated.needed if self.escalated else self.request.needed or 1)


def epoch(iso: str) -> float:
    """Seconds since the epoch of a journal time (`2026-01-02T03:04:05.678Z`); 0 if unreadable,
    which makes a gate's clock run out rather than never (fails closed)."""
    try:
        return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


OFF_SCRIPT = "off-script"  # the block id the runner gives an operator's ad-hoc command
_RAN = frozenset({"succeeded", "failed", "timed_out", "cancelled", "handled", "denied"})
#: A step in one of these is not run again by `runbook resume`.
DONE_STATUSES = frozenset({StepStatus.SUCCEEDED, StepStatus.SKIPPED, StepStatus.HANDLED})


class ReportError(RunbookError):
    """A run cannot be read into a record (no run_started: not a run)."""

    exit_code = ExitCode.USAGE


@dataclass(slots=True)
class BlockRun:
    """One execution of one block: from block_started/block_finished, or inferred."""

    block_id: str
    attempt: int  # the step's attempt this execution belongs to (1-based)
    code: str | None = None  # as run (inputs in, secrets redacted); None when not journaled
    lang: str | None = None  # the block's language, when journaled
    kernel: str | None = None  # kernelspec name, when journaled
    status: str | None = None  # block_finished's verdict; None if it never finished or inferred
    exit_status: int | None = None  # shell exit status, from block_finished
    duration: float | None = None  # seconds, from block_finished
    outputs: list[Event] = field(default_factory=list)  # its output events, in order
    journaled: bool = True  # False when inferred from outputs and the runbook


@dataclass(slots=True)
class ItemRecord:
    """One item of a `foreach` step: its latest attempt (item_started/item_finished)."""

    index: int  # 1-based
    item: Any
    status: str = "running"
    attempts: int = 0
    duration: float = 0.0  # seconds, all its attempts
    exit_status: int | None = None
    error: str | None = None
    reason: str | None = None


@dataclass(slots=True)
class StepRecord:
    """One step as the journal tells it; filled event by event, then only read."""

    number: int  # within its list (the main steps or one procedure)
    step_id: str
    title: str = ""
    procedure: str | None = None  # alternative procedure id, None for a main step
    role: str | None = None
    kernel: str | None = None  # None for a manual step
    status: str = "pending"  # the last step_finished status
    started: str | None = None  # ISO time of the first step_started
    duration: float | None = None  # seconds, from step_finished
    attempts: int = 0  # attempts made (1 + retries used), not the limit
    exit_status: int | None = None
    error: str | None = None
    reason: str | None = None  # why it was skipped, or other context
    code: str | None = None  # the step's code, when the runner journaled it
    total: int | None = None  # steps in its list, from step_started
    is_manual: bool | None = None  # from the runbook or step_started's kernel; None: unknown
    outputs: list[Event] = field(default_factory=list)  # output events, each with "attempt"
    blocks: list[BlockRun] = field(default_factory=list)  # from block_started, in order
    values: dict[str, Any] = field(default_factory=dict)  # named outputs
    decisions: list[ev.DecisionEvent] = field(default_factory=list)
    approvals: list[
        ev.ApprovalRequested
        | ev.Approval
        | ev.ApprovalRefused
        | ev.ApprovalEscalated
        | ev.ApprovalExpired
    ] = field(default_factory=list)
    notes: list[ev.Note] = field(default_factory=list)
    faults: list[ev.Fault] = field(default_factory=list)
    answer: ev.Answered | None = None  # a decision step's answer
    items: list[ItemRecord] = field(default_factory=list)  # a `foreach` step's, by index
    calls: list[ev.SubrunbookStarted | ev.SubrunbookFinished] = field(default_factory=list)
    earlier: bool = False  # in a run's result: it finished in an earlier attempt (resume)

    @property
    def label(self) -> str:
        """`3` for a main step, `fallback/2` for a step of an alternative procedure."""
        return step_label(self.procedure, self.number)

    @property
    def manual(self) -> bool:
        """A step for a person, as the runbook or step_started's null kernel says.

        Never from reason text: a denied step handled by procedure `manual-isolation` is not
        manual. Old journals without either: an executable step always has a step_started, so
        one that succeeded (or was marked done) without any was done by hand.
        """
        if self.is_manual is not None:
            return self.is_manual
        if self.kernel is not None or self.attempts or self.outputs or self.blocks:
            return False
        done = any(d.decision == "done" for d in self.decisions)
        return self.status == "succeeded" or done

    @property
    def took_time(self) -> bool:
        """Whether the step ran or was performed (and so deserves a share of the time limit)."""
        return self.status in _RAN and self.duration is not None

    @property
    def waited(self) -> float | None:
        """For a manual step: seconds from the prompt to the person's answer."""
        return next((d.waited for d in self.decisions if d.waited is not None), None)


@dataclass(slots=True)
class RunRecord:
    """A whole run as the journal tells it."""

    run_id: str
    run_dir: Path
    runbook: dict[str, Any]  # path, id, name, sha256, time_limit, objective
    git_commit: str | None
    operator: str
    host: str
    mode: str  # run | drill | procedure | dry_run
    inputs: dict[str, Any]  # secrets already "***"
    options: dict[str, Any]
    started: str
    events: int  # number of events read
    last_event: str | None = None  # ISO time of the last event read
    status: str = "running"
    finished: str | None = None
    duration: float | None = None
    within_time_limit: bool | None = None
    counts: dict[str, int] = field(default_factory=dict)
    ended_by: dict[str, Any] | None = None  # the branch that ended the run (run_finished)
    kernels: list[Event] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    off_script: list[Event] = field(default_factory=list)
    pauses: list[ev.RunPaused | ev.RunResumed] = field(default_factory=list)
    notes: list[ev.Note] = field(default_factory=list)  # notes not tied to a step
    input_changes: list[ev.InputsChanged] = field(default_factory=list)  # `resume --set`
    loose_faults: list[ev.Fault] = field(default_factory=list)  # faults not tied to a step
    owners: dict[int, StepRecord] = field(default_factory=dict)  # event seq -> its step
    schema: int = 1  # the journal schema run_started names
    start: Event = field(default_factory=dict)  # run_started as written
    # What a new attempt takes over (see `resume`) and what `approve` asks about (`waiting`).
    attempt: int = 1  # the latest attempt (run_resumed counts them)
    sha256: str = ""  # of the runbook the run was last (re)started with
    elapsed: float = 0.0  # seconds spent in attempts that ended (paused or finished)
    last_status: str = "crashed"  # how the latest attempt ended; "crashed" while none did
    values: dict[str, Any] = field(default_factory=dict)  # every output, later values winning
    secret_templates: dict[str, list[Any]] = field(default_factory=dict)
    cwd: dict[str, str] = field(default_factory=dict)  # kernel -> its last working directory
    finished_steps: dict[StepKey, ev.StepFinished] = field(default_factory=dict)
    # Decisive answers not yet used: a denial, the approval completing a quorum, an expiry.
    open_approvals: dict[StepKey, ev.Approval | ev.ApprovalExpired] = field(default_factory=dict)
    gates: dict[StepKey, GateState] = field(default_factory=dict)  # gates still open
    shown_code: dict[StepKey, str] = field(default_factory=dict)  # what each approver saw
    requests: dict[StepKey, ev.ApprovalRequested] = field(default_factory=dict)
    questions: dict[StepKey, ev.QuestionAsked] = field(default_factory=dict)  # latest asked
    open_answers: dict[StepKey, ev.Answered] = field(default_factory=dict)  # not yet used
    last_word: dict[StepKey, ev.ListedStepEvent] = field(default_factory=dict)
    # A `foreach` step's items that succeeded, by index (value as text): resume skips them.
    items_done: dict[StepKey, dict[int, str]] = field(default_factory=dict)
    # Called runbooks, by prefix (`4/contain-host`): the SHA-256 each ran with, and their
    # outputs that held a secret (as `secret_templates`, per prefix).
    called_sha: dict[str, str] = field(default_factory=dict)
    scoped_templates: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.runbook.get("name") or self.runbook.get("id") or "runbook")

    @property
    def ending(self) -> str | None:
        """Which branch ended the run, in words; None when it ran to its end."""
        return ending_text(self.ended_by)

    @property
    def time_limit(self) -> float | None:
        limit = self.runbook.get("time_limit")
        return float(limit) if limit else None

    @property
    def drill(self) -> bool:
        return self.mode == "drill"

    @property
    def met_time_limit(self) -> bool | None:
        """The journal's verdict, or one computed from the duration; None until it finished."""
        if self.within_time_limit is not None:
            return self.within_time_limit
        if self.finished is None or self.time_limit is None or self.duration is None:
            return None
        return self.duration <= self.time_limit

    @property
    def faults(self) -> list[tuple[StepRecord | None, ev.Fault]]:
        out: list[tuple[StepRecord | None, ev.Fault]] = []
        out += [(s, f) for s in self.steps for f in s.faults]
        out += [(None, f) for f in self.loose_faults]
        return out

    @property
    def paused(self) -> bool:
        return self.status == "paused"

    def waiting_steps(self) -> list[ev.StepFinished]:
        """The steps waiting for an approval nobody gave yet, in the order they paused."""
        return [
            word
            for word in self.last_word.values()
            if isinstance(word, ev.StepFinished) and word.status == StepStatus.WAITING_APPROVAL
        ]

    def waiting_answers(self) -> list[ev.StepFinished]:
        """The decision steps waiting for an answer nobody gave yet, in the order they paused."""
        return [
            word
            for word in self.last_word.values()
            if isinstance(word, ev.StepFinished) and word.status == StepStatus.WAITING_ANSWER
        ]

    def waiting_answer(self, ref: str) -> ev.StepFinished | None:
        """The decision step `ref` (number or id) when it waits for an answer."""
        return next(
            (w for w in self.waiting_answers() if ref in (str(w.step), str(w.step_id))), None
        )

    def question_for(self, step: ev.ListedStepEvent) -> ev.QuestionAsked | None:
        """The question a waiting decision step asked."""
        return self.questions.get((step.procedure, str(step.step_id or "")))

    def waiting(self, ref: str) -> ev.StepFinished | None:
        """The step `ref` (number, id, or label such as `4/contain-host/2`) when it waits for an
        approval nobody gave yet."""
        return next(
            (
                w
                for w in self.waiting_steps()
                if ref in (str(w.step), str(w.step_id), step_label(w.procedure, int(w.step or 0)))
            ),
            None,
        )

    def gate_for(self, step: ev.ListedStepEvent) -> GateState | None:
        """The open gate of a waiting step: its quorum so far and its clock."""
        return self.gates.get((step.procedure, str(step.step_id or "")))

    def request_for(self, step: ev.ListedStepEvent) -> ev.ApprovalRequested | None:
        """The approval request a waiting step made (its approver role, the code shown)."""
        return self.requests.get((step.procedure, str(step.step_id or "")))

    def resume(self, *, keyed_from: int | None) -> ResumeState:
        """What a new attempt of the run takes over.

        Approvals gate what a resumed run does, so only those in lines sealed with the journal
        key count (``keyed_from``: the first such line, from `verify`): those were written by
        `runbook approve` or the runner after they checked the approver. An approval in an
        unkeyed journal could have been typed in by anyone; it is ignored, and the step asks
        again.
        """
        done: dict[StepKey, StepRecord] = {}
        for key, e in self.finished_steps.items():
            status = StepStatus(e.status)
            if status in DONE_STATUSES:
                done[key] = StepRecord(
                    number=int(e.step or 0),
                    step_id=key[1],
                    title=e.title,
                    procedure=key[0],
                    status=status.value,
                    duration=float(e.duration or 0.0),
                    attempts=int(e.attempt or 1),
                    reason=e.reason,
                    error=e.error,
                    earlier=True,
                )
        sealed = {
            key: a.record()
            for key, a in self.open_approvals.items()
            if keyed_from is not None and a.seq >= keyed_from
        }
        # An answer chooses a branch, as an approval opens a gate: the same seal applies.
        answers = {
            key: a.record()
            for key, a in self.open_answers.items()
            if keyed_from is not None and a.seq >= keyed_from
        }
        gates = {
            key: GateState(
                g.request,
                [a for a in g.approvals if keyed_from is not None and a.seq >= keyed_from],
                g.escalated,
                g.expired,
            )
            for key, g in self.gates.items()
        }
        return ResumeState(
            gates=gates,
            expired={
                key for key, a in self.open_approvals.items() if isinstance(a, ev.ApprovalExpired)
            },
            attempt=self.attempt + 1,
            started=self.start,
            sha256=self.sha256,
            inputs=dict(self.inputs),
            outputs=dict(self.values),
            done=done,
            approvals=sealed,
            answers=answers,
            elapsed=self.elapsed,
            last_status=self.last_status,
            statuses={k: e.status for k, e in self.finished_steps.items()},
            approved_code=dict(self.shown_code),
            secret_templates=dict(self.secret_templates),
            cwd=dict(self.cwd),
            items_done={k: dict(v) for k, v in self.items_done.items()},
            scoped_outputs=self.scoped_outputs(),
            called_sha=dict(self.called_sha),
            scoped_templates={k: dict(v) for k, v in self.scoped_templates.items()},
        )

    def scoped_outputs(self) -> dict[str, dict[str, Any]]:
        """The outputs of the steps of called runbooks, by their list (`4/contain-host`):
        a resumed sub-runbook takes back its own, never the caller's."""
        out: dict[str, dict[str, Any]] = {}
        for s in self.steps:
            if s.procedure and is_nested(s.procedure):
                out.setdefault(s.procedure, {}).update(s.values)
        return out

    def share(self) -> float | None:
        """Each step's share of the time limit (see the module docstring)."""
        timed = [s for s in self.steps if s.took_time]
        if not timed:
            return None
        if self.time_limit:
            return self.time_limit / len(timed)
        return 2 * sum(s.duration or 0.0 for s in timed) / len(timed)

    def slow_steps(self) -> list[StepRecord]:
        share = self.share()
        if share is None:
            return []
        return [s for s in self.steps if s.took_time and (s.duration or 0.0) > share]


def is_nested(procedure: str | None) -> bool:
    """Whether a step list is a called runbook's (`4/contain-host`): procedure ids are slugs,
    and only a sub-runbook's prefix has a `/`."""
    return bool(procedure) and "/" in str(procedure)


def item_text(value: Any) -> str:
    """An item as resume compares it (the journal's JSON form loses tuples, not values)."""
    return str(value)


def ending_text(ended_by: Mapping[str, Any] | None) -> str | None:
    """`ended by procedure close-as-false-positive: closed as false positive`."""
    if not ended_by:
        return None
    where = (
        f"procedure {ended_by['procedure']}"
        if ended_by.get("procedure") and not ended_by.get("step")
        else f"step {ended_by.get('step')}"
        + (f" of procedure {ended_by['procedure']}" if ended_by.get("procedure") else "")
    )
    return f"ended by {where}: {ended_by.get('reason', '')}"


@dataclass
class ResumeState:
    """What a new attempt of a run takes over from the journal."""

    attempt: int  # the number of the attempt about to start (2, 3, ...)
    started: Event  # the run_started event
    sha256: str  # of the runbook the run was last (re)started with
    inputs: dict[str, Any]  # recorded inputs; secrets are "***" and must be supplied again
    outputs: dict[str, Any]  # every recorded output, later values winning
    done: dict[StepKey, StepRecord]  # steps not to run again
    approvals: dict[StepKey, Event]  # approvals/denials not yet acted on
    elapsed: float  # seconds spent in earlier attempts
    last_status: str  # paused | failed | cancelled | crashed | succeeded ...
    allow_changed: bool = False
    statuses: dict[StepKey, str] = field(default_factory=dict)
    # The code each gated step showed its approver (as journaled, secrets redacted): an
    # approval covers that code only, not an edit made before the resume.
    approved_code: dict[StepKey, str] = field(default_factory=dict)
    # Outputs that held a secret, as templates the secret inputs rebuild (redact.template):
    # the journal shows them as "***", and a resumed step must not run with that.
    secret_templates: dict[str, list[Any]] = field(default_factory=dict)
    cwd: dict[str, str] = field(default_factory=dict)  # kernel -> its last working directory
    answers: dict[StepKey, Event] = field(default_factory=dict)  # `runbook answer`, not yet used
    items_done: dict[StepKey, dict[int, str]] = field(default_factory=dict)  # index -> item
    scoped_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # sub-runbooks'
    called_sha: dict[str, str] = field(default_factory=dict)  # prefix -> the runbook's SHA-256
    scoped_templates: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    # Open gates: a quorum's sealed approvals so far, and each gate's clock.
    gates: dict[StepKey, GateState] = field(default_factory=dict)
    expired: set[StepKey] = field(default_factory=set)  # gates whose time ran out: denied

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.started.get("options") or {})

    @property
    def operator(self) -> str:
        return str(self.started.get("operator", ""))


# --- the fold ----------------------------------------------------------------------------------


class _Fold:
    """Folds typed events into a RunRecord. Steps are matched by number and id, lists apart."""

    def __init__(self, record: RunRecord) -> None:
        self.record = record
        self.by_key: dict[tuple[str | None, int, str], StepRecord] = {}
        self.latest: dict[tuple[int, str], StepRecord] = {}
        self.attempt: dict[int, int] = {}  # id(StepRecord) -> current attempt
        self.running: dict[str, tuple[StepRecord, BlockRun]] = {}  # block id -> open execution
        self.off_script_outputs: list[Event] = []

    def step(self, e: ev.JournalEvent) -> StepRecord | None:
        """The record an event is about, made on first mention."""
        if not isinstance(e, ev.StepEvent) or (e.step is None and e.step_id is None):
            return None
        number, sid = int(e.step or 0), str(e.step_id or "")
        if not isinstance(e, ev.ListedStepEvent):
            return self._own(e, self.latest.get((number, sid)) or self._new((None, number, sid)))
        key = (e.procedure, number, sid)
        early = self.latest.get((number, sid))
        # A decision can come before anything names the step's list; adopt its record if that
        # step has not been run or finished yet.
        if (
            key not in self.by_key
            and early is not None
            and (early.procedure, early.started, early.status) == (None, None, "pending")
        ):
            del self.by_key[(None, number, sid)]
            early.procedure = key[0]
            self.by_key[key] = early
        rec = self.by_key.get(key) or self._new(key)
        self.latest[(number, sid)] = rec
        return self._own(e, rec)

    def _own(self, e: ev.JournalEvent, rec: StepRecord) -> StepRecord:
        self.record.owners[e.seq] = rec
        return rec

    def _new(self, key: tuple[str | None, int, str]) -> StepRecord:
        rec = StepRecord(number=key[1], step_id=key[2], procedure=key[0])
        self.by_key[key] = rec
        self.latest[(key[1], key[2])] = rec
        self.record.steps.append(rec)
        return rec

    def apply(self, e: ev.JournalEvent) -> None:
        handler = getattr(self, f"_on_{e.event}", None)
        if handler is not None and not isinstance(e, ev.UnknownEvent):
            handler(e)

    def _on_run_resumed(self, e: ev.RunResumed) -> None:
        r = self.record
        r.pauses.append(e)
        r.status = "running"
        r.attempt = max(r.attempt, int(e.attempt or r.attempt))
        r.sha256 = e.sha256 or r.sha256
        r.last_status = "crashed"

    def _on_run_paused(self, e: ev.RunPaused) -> None:
        r = self.record
        r.pauses.append(e)
        r.status = "paused"
        r.duration = e.duration if e.duration is not None else r.duration
        r.elapsed += float(e.duration or 0.0)
        r.last_status = e.status

    def _on_run_finished(self, e: ev.RunFinished) -> None:
        r = self.record
        r.status = e.status or "unknown"
        r.finished = e.ts
        r.duration = e.duration
        r.within_time_limit = e.within_time_limit
        r.counts = dict(e.counts or {})
        r.ended_by = dict(e.ended_by) if e.ended_by else None
        r.elapsed += float(e.duration or 0.0)
        r.last_status = e.status

    def _on_kernel_started(self, e: ev.KernelStarted) -> None:
        self.record.kernels.append(e.record())

    def _on_step_started(self, e: ev.StepStarted) -> None:
        rec = self.step(e)
        assert rec is not None
        rec.started = rec.started or e.ts
        rec.title = e.title or rec.title
        rec.role = e.role or rec.role
        rec.kernel = e.kernel or rec.kernel
        rec.is_manual = e.kernel is None  # the runner journals a manual step's null kernel
        code = e.extra.get("code")
        rec.code = str(code) if code else rec.code
        rec.attempts = max(rec.attempts, int(e.attempt or 1))
        rec.total = e.total or rec.total
        self.attempt[id(rec)] = int(e.attempt or 1)
        rec.status = "running"

    def _on_step_finished(self, e: ev.StepFinished) -> None:
        rec = self.step(e)
        assert rec is not None
        status = e.status or rec.status
        duration = float(e.duration or 0.0)
        # Manual and skipped steps have no step_started: they began `duration` before this.
        rec.started = rec.started or _earlier(e.ts, duration)
        rec.title = e.title or rec.title
        rec.status = status
        # One step_finished per attempt, and one more when a procedure handled the failure:
        # the step took the sum of them.
        rec.duration = (rec.duration or 0.0) + duration
        if status != "handled":  # "handled" is a verdict on the failure before it; keep its why
            rec.exit_status = e.exit_status
            rec.error = e.error
        rec.reason = e.reason or (rec.reason if status == "handled" else None)
        # A block cut short (timeout, interrupt) has no block_finished: the step's end closes it.
        self.running = {k: v for k, v in self.running.items() if v[0] is not rec}
        key = (e.procedure, str(e.step_id or ""))
        self.record.finished_steps[key] = e
        self.record.open_approvals.pop(key, None)  # an approval is used up by the step it let run
        if status != StepStatus.WAITING_ANSWER:  # nor is an answer once its step ended
            self.record.open_answers.pop(key, None)
        if status in DONE_STATUSES:  # `resume --from` runs all its items again
            self.record.items_done.pop(key, None)
        if status != StepStatus.WAITING_APPROVAL:
            self.record.gates.pop(key, None)  # the gate closed: it let the step run, or denied it
        self.record.last_word[key] = e

    def _on_block_started(self, e: ev.BlockStarted) -> None:
        rec = self.step(e)
        assert rec is not None
        run = BlockRun(
            block_id=e.block_id,
            attempt=int(e.attempt or self.attempt.get(id(rec), 1)),
            code=e.code,
            lang=e.lang,
            kernel=e.kernel,
        )
        rec.blocks.append(run)
        self.running[run.block_id] = (rec, run)

    def _on_block_finished(self, e: ev.BlockFinished) -> None:
        if e.cwd and e.kernel:
            self.record.cwd[e.kernel] = e.cwd
        # block_finished names only the block; it belongs to the execution block_started opened.
        found = self.running.pop(e.block_id, None)
        if found is None:
            return
        self._own(e, found[0])
        run = found[1]
        run.status = e.status or None
        run.exit_status = e.exit_status
        run.duration = e.duration

    def _on_output(self, e: ev.OutputEvent) -> None:
        rec = self.step(e)
        if e.block_id == OFF_SCRIPT:
            # An ad-hoc command's output comes before the off_script event that names it.
            self.off_script_outputs.append(e.record())
        elif rec is not None:
            out = {**e.record(), "attempt": self.attempt.get(id(rec), 1)}
            rec.outputs.append(out)
            running = self.running.get(e.block_id)
            if running is not None and running[0] is rec:
                running[1].outputs.append(out)

    def _on_outputs(self, e: ev.Outputs) -> None:
        rec = self.step(e)
        values = dict(e.values or {})
        if rec is not None:
            rec.values.update(values)
            if rec.procedure and is_nested(rec.procedure):
                # A called runbook's own: only what it hands back is the caller's.
                kept = self.record.scoped_templates.setdefault(rec.procedure, {})
                for name in values:
                    kept.pop(name, None)
                kept.update(e.secret_templates or {})
                return
        r = self.record
        r.values.update(values)
        for name in values:
            r.secret_templates.pop(name, None)
        r.secret_templates.update(e.secret_templates or {})

    def _on_item_started(self, e: ev.ItemStarted) -> None:
        rec = self.step(e)
        assert rec is not None
        item = self._item(rec, int(e.index or 1), e.item)
        item.status = "running"
        item.attempts = max(item.attempts, int(e.attempt or 1))
        self.attempt[id(rec)] = int(e.attempt or 1)

    def _on_item_finished(self, e: ev.ItemFinished) -> None:
        rec = self.step(e)
        assert rec is not None
        index = int(e.index or 1)
        item = self._item(rec, index, e.item)
        item.status = e.status or item.status
        item.duration += float(e.duration or 0.0)
        item.exit_status, item.error, item.reason = e.exit_status, e.error, e.reason
        # An item's last block cut short has no block_finished: the item's end closes it.
        self.running = {k: v for k, v in self.running.items() if v[0] is not rec}
        key = (e.procedure, str(e.step_id or ""))
        done = self.record.items_done.setdefault(key, {})
        if e.status == StepStatus.SUCCEEDED:
            done[index] = item_text(e.item)
        else:
            done.pop(index, None)
        if e.status not in (StepStatus.SKIPPED, StepStatus.WAITING_APPROVAL):
            self.record.open_approvals.pop(key, None)  # the approval let this item run

    def _item(self, rec: StepRecord, index: int, value: Any) -> ItemRecord:
        found = next((i for i in rec.items if i.index == index), None)
        if found is None or item_text(found.item) != item_text(value):
            if found is not None:
                rec.items.remove(found)
            found = ItemRecord(index=index, item=value)
            rec.items.append(found)
            rec.items.sort(key=lambda i: i.index)
        return found

    def _on_subrunbook_started(self, e: ev.SubrunbookStarted) -> None:
        if (rec := self.step(e)) is not None:
            rec.calls.append(e)
        sha = (e.runbook or {}).get("sha256")
        if e.prefix and sha:
            self.record.called_sha[e.prefix] = str(sha)

    def _on_subrunbook_finished(self, e: ev.SubrunbookFinished) -> None:
        if (rec := self.step(e)) is not None:
            rec.calls.append(e)

    def _on_decision(self, e: ev.DecisionEvent) -> None:
        if (rec := self.step(e)) is not None:
            rec.decisions.append(e)

    def _on_approval_requested(self, e: ev.ApprovalRequested) -> None:
        if (rec := self.step(e)) is not None:
            rec.approvals.append(e)
            rec.code = rec.code or e.code
        key = (e.procedure, str(e.step_id or ""))
        self.record.shown_code[key] = e.code
        self.record.requests[key] = e
        gate = self.record.gates.get(key)
        # A resume asks again: the same code keeps the quorum and the clock; other code (an
        # edited runbook, values changed in a kernel) is a new gate.
        if gate is None or gate.code != e.code:
            self.record.gates[key] = GateState(e)

    def _on_approval(self, e: ev.Approval) -> None:
        if (rec := self.step(e)) is not None:
            rec.approvals.append(e)
        key = (e.procedure, str(e.step_id or ""))
        gate = self.record.gates.get(key)
        if e.decision == "approved" and gate is not None:
            gate.approvals.append(e)
        if e.decision == "approved" and e.count is not None and e.count < int(e.needed or 1):
            return  # one of a quorum: the gate still waits for the others
        self.record.open_approvals[key] = e
        self.record.last_word[key] = e

    def _on_approval_escalated(self, e: ev.ApprovalEscalated) -> None:
        if (rec := self.step(e)) is not None:
            rec.approvals.append(e)
        gate = self.record.gates.get((e.procedure, str(e.step_id or "")))
        if gate is not None:
            gate.escalated = e
            gate.approvals = []  # the new role's holders decide; the old role's count no more

    def _on_approval_expired(self, e: ev.ApprovalExpired) -> None:
        if (rec := self.step(e)) is not None:
            rec.approvals.append(e)
        key = (e.procedure, str(e.step_id or ""))
        if (gate := self.record.gates.get(key)) is not None:
            gate.expired = e
        self.record.open_approvals[key] = e  # a denial: the resumed step is denied
        self.record.last_word[key] = e

    def _on_approval_refused(self, e: ev.ApprovalRefused) -> None:
        # A refused approver is part of the gate's story (the report lists it), but it is no
        # answer: the gate stays open.
        if (rec := self.step(e)) is not None:
            rec.approvals.append(e)

    def _on_question_asked(self, e: ev.QuestionAsked) -> None:
        self.step(e)
        self.record.questions[(e.procedure, str(e.step_id or ""))] = e

    def _on_answer(self, e: ev.Answered) -> None:
        if (rec := self.step(e)) is not None:
            rec.answer = e
        key = (e.procedure, str(e.step_id or ""))
        self.record.open_answers[key] = e
        self.record.last_word[key] = e

    def _on_inputs_changed(self, e: ev.InputsChanged) -> None:
        # Later attempts, and every reader, take the corrected values.
        self.record.inputs.update(e.inputs)
        self.record.input_changes.append(e)

    def _on_note(self, e: ev.Note) -> None:
        rec = self.step(e)
        (rec.notes if rec else self.record.notes).append(e)

    def _on_fault(self, e: ev.Fault) -> None:
        rec = self.step(e)
        (rec.faults if rec else self.record.loose_faults).append(e)

    def _on_off_script(self, e: ev.OffScript) -> None:
        self.step(e)
        self.record.off_script.append({**e.record(), "outputs": self.off_script_outputs})
        self.off_script_outputs = []


def _earlier(iso: str, seconds: float) -> str | None:
    try:
        when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00")) - dt.timedelta(seconds=seconds)
    except ValueError:
        return None
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fold(run_dir: Path, events: Iterable[ev.JournalEvent | Mapping[str, Any]]) -> RunRecord:
    """A run's state from its events in order (typed, or records as read from the journal).

    The status is the journal's: "running" until an attempt ends; whether a run without an end
    is still going or crashed is the store's to say (it holds the lock), not the fold's.
    """
    typed = [e if isinstance(e, ev.JournalEvent) else ev.decode(e) for e in events]
    start = next((e for e in typed if isinstance(e, ev.RunStarted)), None)
    if start is None:
        raise ReportError(
            "the journal has no run_started event; it is not a run", path=str(run_dir)
        )
    book = dict(start.runbook or {})
    record = RunRecord(
        run_id=start.run_id or run_dir.name,
        run_dir=run_dir,
        runbook=book,
        git_commit=start.git_commit,
        operator=start.operator or "",
        host=start.host or "",
        mode=start.mode or "run",
        inputs=dict(start.inputs or {}),
        options=dict(start.options or {}),
        started=start.ts,
        events=len(typed),
        schema=int(start.schema or 1),
        start=start.record(),
        sha256=str(book.get("sha256") or ""),
    )
    apply = _Fold(record).apply
    for e in typed:
        apply(e)
    record.last_event = typed[-1].ts if typed else None
    return record


def resume_state(
    events: Sequence[Mapping[str, Any]], *, keyed_from: int | None = None
) -> ResumeState:
    """What a new attempt takes over; see :meth:`RunRecord.resume`."""
    return fold(Path("."), events).resume(keyed_from=keyed_from)
