"""The journal's events: one frozen dataclass per kind, and their one encoding.

Every line of a journal is one of these. The runner builds them, the run store writes them
(:class:`runner.runs.store.RunStore`, the only writer) and :func:`decode` reads them back for
the one fold (:mod:`runner.runs.state`). Field names are the journal's keys, so the format on
disk is the one documented in docs/journal.md; ``seq`` and ``ts`` are the writer's to set.

Compatibility: ``run_started`` carries :data:`SCHEMA_VERSION`. A journal without it was
written before typed events and reads the same way: every field has a default, a key this
version does not know is kept in ``extra`` (and so survives a rewrite of the record form), and
an event kind it does not know decodes as :class:`UnknownEvent`, which the fold ignores.

Long on purpose: one frozen dataclass per journal event, the whole schema in one place to read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: Written in ``run_started``; raise it when a field changes meaning, not when one is added.
SCHEMA_VERSION = 2

Record = dict[str, Any]  # an event as one JSON object: the form on disk and in reports


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalEvent:
    """What every line has. ``seq`` and ``ts`` are 0 and "" until the store writes the event."""

    KIND: ClassVar[str] = ""
    #: Fields left out of the line when they are None, as the runner has always written them.
    OPTIONAL: ClassVar[frozenset[str]] = frozenset()

    seq: int = 0
    ts: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def event(self) -> str:
        """The kind, as the journal's ``event`` key names it."""
        return self.KIND

    def record(self) -> Record:
        """The event as written: ``seq``, ``ts``, ``event``, then its fields in order."""
        out: Record = {"seq": self.seq, "ts": self.ts, "event": self.event}
        for f in dataclasses.fields(self):
            if f.name in _ENVELOPE:
                continue
            value = getattr(self, f.name)
            if value is None and f.name in self.OPTIONAL:
                continue
            out[f.name] = value
        out.update(self.extra)
        return out


_ENVELOPE = frozenset({"seq", "ts", "extra"})
# The chain's own keys: the writer adds them, the verifier checks them, an event never has them.
_LINE_KEYS = frozenset({"seq", "ts", "event", "prev", "hmac", "hash"})


@dataclass(frozen=True, slots=True, kw_only=True)
class StepEvent(JournalEvent):
    """An event about one step, named by number and id."""

    step: int | None = None
    step_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedStepEvent(StepEvent):
    """An event that also says which list the step is in: None for the main steps, else the
    alternative procedure's id. Events without it (output, outputs, ...) belong to the step's
    latest mention."""

    procedure: str | None = None


# --- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(JournalEvent):
    KIND = "run_started"
    OPTIONAL = frozenset({"trigger", "os_user"})
    schema: int = 1  # journals from before typed events have none: version 1
    run_id: str = ""
    runbook: Mapping[str, Any] = field(default_factory=dict)  # path, id, name, sha256, ...
    git_commit: str | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)  # secrets already "***"
    operator: str = ""
    host: str = ""
    mode: str = "run"
    attempt: int = 1
    interactive: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    total_steps: int | None = None
    trigger: Mapping[str, Any] | None = None  # the alert that started it (source, id, title...)
    os_user: str | None = None  # the account that started it, beside `operator` (a name given)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResumed(JournalEvent):
    KIND = "run_resumed"
    attempt: int = 2
    operator: str = ""
    allow_changed: bool = False
    sha256: str | None = None
    interactive: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPaused(ListedStepEvent):
    KIND = "run_paused"
    status: str = "paused"
    reason: str | None = None
    duration: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished(JournalEvent):
    KIND = "run_finished"
    OPTIONAL = frozenset({"ended_by"})
    status: str = "unknown"
    duration: float | None = None
    time_limit: float | None = None
    within_time_limit: bool | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    aborted: bool = False
    ended_by: Mapping[str, Any] | None = None  # the branch that ended the run


@dataclass(frozen=True, slots=True, kw_only=True)
class InputsChanged(JournalEvent):
    """`runbook resume --set NAME=VALUE`: inputs corrected before the attempt that uses them."""

    KIND = "inputs_changed"
    inputs: Mapping[str, Any] = field(default_factory=dict)  # name -> new value (secrets ***)
    previous: Mapping[str, Any] = field(default_factory=dict)  # name -> the value it replaced
    by: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalRepaired(JournalEvent):
    KIND = "journal_repaired"
    problem: str = ""
    removed_bytes: int = 0
    removed_sha256: str | None = None
    by: str = ""


# --- kernels and background processes ------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelStarted(JournalEvent):
    KIND = "kernel_started"
    kernel: str = ""
    language: str = ""
    implementation: str = ""
    version: str = ""
    language_version: str = ""
    generation: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelRestored(JournalEvent):
    KIND = "kernel_restored"
    kernel: str = ""
    reason: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    cwd: str | None = None
    cwd_lost: str | None = None
    lost: list[str] | None = None  # None: unknown, the kernel process was replaced


@dataclass(frozen=True, slots=True, kw_only=True)
class BackgroundProcesses(StepEvent):
    KIND = "background_processes"
    kernel: str = ""
    processes: list[Mapping[str, Any]] = field(default_factory=list)  # pid, command


@dataclass(frozen=True, slots=True, kw_only=True)
class BackgroundStopped(JournalEvent):
    KIND = "background_stopped"
    processes: list[Mapping[str, Any]] = field(default_factory=list)


# --- steps and blocks -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StepStarted(ListedStepEvent):
    KIND = "step_started"
    title: str = ""
    role: str | None = None
    attempt: int = 1
    attempts: int = 1
    kernel: str | None = None  # None for a manual step
    index: int | None = None
    total: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepFinished(ListedStepEvent):
    KIND = "step_finished"
    OPTIONAL = frozenset({"retry_in"})
    title: str = ""
    status: str = ""
    duration: float = 0.0
    attempt: int = 1
    attempts: int = 1
    exit_status: int | None = None
    error: str | None = None
    reason: str | None = None
    retry_in: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockStarted(ListedStepEvent):
    KIND = "block_started"
    block_id: str = ""
    lang: str | None = None
    kernel: str | None = None
    code: str | None = None  # as run: inputs in, secrets redacted
    attempt: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockFinished(ListedStepEvent):
    KIND = "block_finished"
    block_id: str = ""
    attempt: int = 1
    status: str = ""
    exit_status: int | None = None
    error: str | None = None
    duration: float | None = None
    kernel: str | None = None
    cwd: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputEvent(StepEvent):
    """One piece of a block's output: a stream, a result, an image (by path) or an error."""

    KIND = "output"
    OPTIONAL = frozenset({"stream", "data", "ename", "evalue", "traceback"})
    block_id: str = ""
    kind: str = "stream"  # stream | result | display | error
    stream: str | None = None  # stdout | stderr, for a stream
    text: str = ""
    data: Mapping[str, Any] | None = None
    ename: str | None = None
    evalue: str | None = None
    traceback: list[str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Outputs(StepEvent):
    KIND = "outputs"
    OPTIONAL = frozenset({"secret_templates"})
    values: Mapping[str, Any] = field(default_factory=dict)
    secret_templates: Mapping[str, list[Any]] | None = None


# --- loops and sub-runbooks -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemStarted(ListedStepEvent):
    """One attempt at one item of a `foreach` step: its blocks run with the item set."""

    KIND = "item_started"
    index: int = 1  # 1-based, in the list's order
    count: int = 1  # items in the list
    item: Any = None  # the value, as the blocks get it
    var: str = "item"  # the name the blocks see it under
    attempt: int = 1
    attempts: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemFinished(ListedStepEvent):
    """How one attempt at one item ended (or why it never ran: ``skipped``)."""

    KIND = "item_finished"
    OPTIONAL = frozenset({"retry_in"})
    index: int = 1
    count: int = 1
    item: Any = None
    status: str = ""
    duration: float = 0.0
    attempt: int = 1
    attempts: int = 1
    exit_status: int | None = None
    error: str | None = None
    reason: str | None = None
    retry_in: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubrunbookStarted(ListedStepEvent):
    """A step calls another runbook; its steps are journaled in this run under ``prefix``
    (their ``procedure``), so they read `4/contain-host/2`."""

    KIND = "subrunbook_started"
    runbook: Mapping[str, Any] = field(default_factory=dict)  # id, name, path, sha256
    prefix: str = ""
    inputs: Mapping[str, Any] = field(default_factory=dict)  # as mapped, secrets "***"


@dataclass(frozen=True, slots=True, kw_only=True)
class SubrunbookFinished(ListedStepEvent):
    KIND = "subrunbook_finished"
    prefix: str = ""
    status: str = ""  # succeeded | failed | paused | cancelled
    outputs: Mapping[str, Any] = field(default_factory=dict)  # what came back to the caller
    error: str | None = None


# --- people ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionEvent(ListedStepEvent):
    """What a person answered at a step's prompt: run, skip, done, quit..."""

    KIND = "decision"
    role: str | None = None
    decision: str = ""
    by: str = ""
    note: str | None = None
    waited: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OffScript(ListedStepEvent):
    KIND = "off_script"
    kernel: str = ""
    code: str = ""
    status: str = ""
    by: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRequested(ListedStepEvent):
    KIND = "approval_requested"
    OPTIONAL = frozenset({"needed", "timeout", "escalate_role", "escalate_needed"})
    approver_role: str | None = None
    code: str = ""  # what the approver is shown, secrets redacted
    needed: int | None = None  # `approve=ROLE*N`: distinct approvals the gate needs (None: 1)
    timeout: float | None = None  # `approval_timeout=`, seconds
    escalate_role: str | None = None  # `escalate=`: who an expired gate passes to
    escalate_needed: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Approval(ListedStepEvent):
    KIND = "approval"
    OPTIONAL = frozenset({"auth", "os_user", "needed", "count", "code_sha256"})
    decision: str = ""  # approved | denied
    by: str = ""
    role: str | None = None
    comment: str | None = None
    preapproved: bool = False
    distinct_required: bool = False
    code_sha256: str | None = None  # the SHA-256 of the code the approver was shown (and checked)
    auth: str | None = None  # how the service authenticated `by`: password | token
    os_user: str | None = None  # the account `runbook approve` ran as, beside the name it gave
    needed: int | None = None  # a quorum: approvals the gate needs ...
    count: int | None = None  # ... and how many distinct ones it has with this one


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRefused(ListedStepEvent):
    KIND = "approval_refused"
    OPTIONAL = frozenset({"os_user"})
    by: str = ""
    role: str | None = None
    reason: str = ""
    os_user: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalEscalated(ListedStepEvent):
    """A gate waited its `approval_timeout`: it passes to `escalate=`, with one more timeout."""

    KIND = "approval_escalated"
    from_role: str | None = None
    role: str | None = None  # who may approve now
    needed: int = 1
    timeout: float | None = None  # seconds the escalated gate waits before it is denied


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalExpired(ListedStepEvent):
    """A gate waited its last `approval_timeout`: it is denied (fails closed)."""

    KIND = "approval_expired"
    role: str | None = None  # who it waited for
    had: int = 0  # approvals it had of those it needed
    needed: int = 1
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QuestionAsked(ListedStepEvent):
    """A decision step asked its question (docs/format.md, "Decision steps")."""

    KIND = "question_asked"
    question: str = ""
    type: str = "yesno"  # yesno | choice | number | text
    choices: list[str] = field(default_factory=list)
    output: str = ""  # the output the answer is recorded as


@dataclass(frozen=True, slots=True, kw_only=True)
class Answered(ListedStepEvent):
    """A decision's answer: the value (never secret: a person typed it for the record), who
    gave it and how (terminal, command line, `runbook answer`, scenario)."""

    KIND = "answer"
    OPTIONAL = frozenset({"role", "auth", "os_user"})
    value: str | int | float | None = None
    output: str = ""
    by: str = ""
    source: str = ""  # terminal | command_line | runbook_answer | scenario | service
    waited: float | None = None  # seconds from the question to the answer
    role: str | None = None  # the step's role, which the service's user holds
    auth: str | None = None  # how the service authenticated `by`: password | token
    os_user: str | None = None  # the account `runbook answer` ran as, beside the name it gave


@dataclass(frozen=True, slots=True, kw_only=True)
class Note(ListedStepEvent):
    """A person's note during a drill (or a run); ``unclear`` flags the runbook's wording."""

    KIND = "note"
    OPTIONAL = frozenset({"auth"})
    by: str = ""
    role: str | None = None
    text: str = ""
    unclear: bool = False
    auth: str | None = None  # how the service authenticated `by` (password | token)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault(ListedStepEvent):
    """A drill's injected fault: the lab answers ``route`` with ``status``."""

    KIND = "fault"
    description: str = ""
    route: str = ""
    status: int = 0
    times: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(JournalEvent):
    """A kind this version does not know (a newer runner wrote it): kept, never folded."""

    name: str = ""

    @property
    def event(self) -> str:
        return self.name

    def record(self) -> Record:
        return {"seq": self.seq, "ts": self.ts, "event": self.name, **self.extra}


def is_output(record: Mapping[str, Any]) -> bool:
    """Whether a record as read from the journal is an ``output`` event (kept in colour)."""
    return record.get("event") == OutputEvent.KIND


KINDS: dict[str, type[JournalEvent]] = {
    cls.KIND: cls
    for cls in (
        RunStarted,
        RunResumed,
        RunPaused,
        RunFinished,
        InputsChanged,
        JournalRepaired,
        KernelStarted,
        KernelRestored,
        BackgroundProcesses,
        BackgroundStopped,
        StepStarted,
        StepFinished,
        BlockStarted,
        BlockFinished,
        OutputEvent,
        Outputs,
        DecisionEvent,
        OffScript,
        ApprovalRequested,
        Approval,
        ApprovalRefused,
        QuestionAsked,
        Answered,
        ApprovalEscalated,
        ApprovalExpired,
        Note,
        Fault,
        ItemStarted,
        ItemFinished,
        SubrunbookStarted,
        SubrunbookFinished,
    )
}

_FIELDS: dict[type[JournalEvent], frozenset[str]] = {
    cls: frozenset(f.name for f in dataclasses.fields(cls)) - _ENVELOPE for cls in KINDS.values()
}


def decode(record: Mapping[str, Any]) -> JournalEvent:
    """The typed event of one journal line (already parsed from JSON).

    Lenient on purpose: what was verified is read, whatever version wrote it. A field of the
    wrong JSON type is kept as it is; the fold reads defensively where old journals differ.
    """
    name = str(record.get("event") or "")
    seq = record.get("seq")
    envelope: dict[str, Any] = {
        "seq": seq if isinstance(seq, int) else 0,
        "ts": str(record.get("ts") or ""),
    }
    cls = KINDS.get(name)
    if cls is None:
        rest = {k: v for k, v in record.items() if k not in _LINE_KEYS}
        return UnknownEvent(name=name, extra=rest, **envelope)
    known = _FIELDS[cls]
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in record.items():
        if key in _LINE_KEYS:
            continue
        if key in known:
            kwargs[key] = value
        else:
            extra[key] = value
    if cls is RunStarted and "schema" not in record:
        kwargs["schema"] = 1
    return cls(extra=extra, **envelope, **kwargs)
