"""The typed plan of a runbook: what the parser produces and the runner, linter and site consume.

Every object is a frozen, slotted dataclass: a parsed runbook is a value, safe to share between
the runner, the linter and the MkDocs plugin, and nothing downstream can change what the file said.
Every object that came from the file carries its 1-based source ``line``.

Long on purpose: the whole plan in one place to read, from a block's attributes to a runbook
and the runbooks it calls; four consumers read it as one vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # the model names the parsed types of conditions; they import the model
    from runner.format.expr import Expression
    from runner.format.match import Condition
    from runner.format.paths import FieldPath

Scalar = str | int | float | bool | None
InputValue = Scalar | tuple[Scalar, ...]

_EMPTY: Mapping[str, str] = MappingProxyType({})


class StepStatus(StrEnum):
    """The state of one step, shared by the journal, the summary, reports and the site."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    WAITING_APPROVAL = "waiting_approval"
    WAITING_ANSWER = "waiting_answer"  # a decision step waits for its answer (the run pauses)
    DENIED = "denied"
    HANDLED = "handled"


class RunStatus(StrEnum):
    """The state of a whole run."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    SUCCEEDED_WITH_HANDLED_FAILURES = "succeeded_with_handled_failures"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PAUSED = "paused"  # waiting for an approval or an answer; `runbook resume` continues it


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


ProblemLevel = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding about a runbook file, as `runbook check` prints it."""

    path: str  # the file as the user named it
    line: int  # 1-based; 0 when the problem concerns the whole file
    level: ProblemLevel
    code: str  # stable identifier, documented in docs/format.md (e.g. RB101)
    message: str  # what is wrong and how to fix it

    @property
    def where(self) -> str:
        """`path:line`, or the path alone for a whole-file problem, as compilers print them."""
        return f"{self.path}:{self.line}" if self.line else self.path

    def __str__(self) -> str:
        return f"{self.where}: {self.level} {self.code} {self.message}"


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One declared input of a runbook (`inputs:` in the front matter)."""

    name: str
    type: Literal["string", "integer", "number", "boolean", "list"] = "string"
    description: str = ""
    required: bool = False
    default: InputValue = None
    enum: tuple[Scalar, ...] = ()
    pattern: str | None = None
    secret: bool = False  # never written to the journal, reports or the terminal
    expose: str = "run"  # "block": in a kernel only while a block that names it runs
    # Routing (docs/triggers.md): where an alert gives the value, first path that has one wins,
    # and whether the default may serve a run an alert started (defaults are written for people).
    alert_paths: tuple[FieldPath, ...] = ()
    default_safe: bool = False


@dataclass(frozen=True, slots=True)
class Trigger:
    """When the runbook is activated."""

    when: str = ""  # free text for people
    match: Mapping[str, object] = field(default_factory=lambda: _EMPTY)  # as written
    # Routing (docs/triggers.md), parsed once with the file: None when `match` is empty or has
    # problems (a runbook never routes on part of its conditions).
    condition: Condition | None = None
    priority: int = 0  # the highest priority among the runbooks that match wins
    dedup_key: tuple[FieldPath, ...] = ()  # paths whose values identify "the same alert"
    correlate_by: tuple[str, ...] = ()  # entity kinds (hosts, users...) that link alerts
    correlate_window: float | None = None  # seconds within which they are linked


@dataclass(frozen=True, slots=True)
class Concurrency:
    """How many runs of the runbook the service runs at once (`concurrency:`); more wait.

    ``target`` names an input whose value is what a run acts on (a host, an account): at most
    ``per_target`` runs per value at once, e.g. one containment run per host."""

    runs: int | None = None  # runs of this runbook at once; None: no limit but the workers'
    target: str | None = None
    per_target: int = 1


@dataclass(frozen=True, slots=True)
class Metadata:
    """The front matter, validated and typed."""

    id: str  # slug; defaults to the file stem
    name: str
    service: str = ""
    owner: str = ""
    severity: Severity | None = None
    objective: str = ""
    time_limit: float | None = None  # seconds
    time_limit_text: str = ""  # as written, e.g. "1h"
    roles: Mapping[str, str] = field(default_factory=lambda: _EMPTY)  # role -> who that is
    tools: tuple[str, ...] = ()
    trigger: Trigger = field(default_factory=Trigger)
    inputs: tuple[InputSpec, ...] = ()
    tags: tuple[str, ...] = ()
    notify: tuple[str, ...] = ()
    kernels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)  # language -> kernelspec
    concurrency: Concurrency = field(default_factory=Concurrency)
    has_front_matter: bool = False  # False for plain Markdown read in compatibility mode

    def input(self, name: str) -> InputSpec | None:
        return next((spec for spec in self.inputs if spec.name == name), None)


OnFailure = str  # "abort" | "continue" | "procedure:NAME"


@dataclass(frozen=True, slots=True)
class RunEnd:
    """A branch that ends the run instead of returning to the main path."""

    status: str  # the run's final status: succeeded | failed | cancelled
    reason: str  # in words, for the journal and the report: "closed as false positive"


AnswerType = Literal["yesno", "choice", "number", "text"]


@dataclass(frozen=True, slots=True)
class Question:
    """What a ```` ```decision ```` block asks a person; the answer becomes an output."""

    text: str  # the question, as the block's body (or `ask=`) says it
    type: AnswerType = "yesno"
    choices: tuple[str, ...] = ()  # for `choice`: the answers allowed, in the order written
    output: str = ""  # the output the answer is recorded as, for later `when=`s


@dataclass(frozen=True, slots=True)
class Loop:
    """`foreach=SOURCE as=NAME`: the step's blocks run once per item (docs/format.md#loops)."""

    source: str  # as written: an input or output name, or a literal list
    items: tuple[Scalar, ...] | None = None  # the literal list; None when `source` is a name
    var: str = "item"  # the name the item has in the kernels (`$ITEM` in a shell block)
    approve_each: bool = False  # a gate per item rather than one for the whole loop
    on_item_failure: str = "stop"  # stop | finish | continue (ITEM_FAILURE_POLICIES)


@dataclass(frozen=True, slots=True)
class Call:
    """A ```runbook block: the step runs the runbook `runbook` with inputs mapped from this
    run's inputs and outputs (docs/format.md#sub-runbooks)."""

    runbook: str  # the called runbook's id
    # child input -> a name of this run (input or output), or a quoted literal ('text')
    inputs: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Block:
    """A fenced code block. Executable when ``kernel`` is set; otherwise documentation."""

    lang: str  # normalised language ("" when the fence has none)
    code: str
    line: int  # line of the opening fence
    end_line: int  # line after the closing fence
    info: str  # the raw info string, for diagnostics
    kernel: str | None  # kernelspec name, or None for a documentation block
    attributes: Mapping[str, str] = field(default_factory=lambda: _EMPTY)  # as written
    id: str = ""  # unique within the runbook
    role: str | None = None
    approve: bool = False
    approver_role: str | None = None  # `approve=ROLE`: the approver must hold this role
    approvals_needed: int = 1  # `approve=ROLE*N`: N distinct people holding ROLE must approve
    approval_timeout: float | None = None  # seconds a gate waits before it expires
    escalate_role: str | None = None  # `escalate=ROLE[*N]`: who an expired gate passes to
    escalate_needed: int = 1  # how many of them must approve after the escalation
    timeout: float | None = None  # seconds
    retries: int = 0
    retry_delay: float = 0.0  # seconds
    retry_backoff: float = 1.0  # multiplier applied to the delay after each attempt
    on_failure: OnFailure = "abort"
    when: str | None = None  # as written
    # The condition parsed once, by the parser: the engine, the linter and every renderer use
    # this one. None without `when=`, or when it did not parse (the parser reported RB032).
    condition: Expression | None = field(default=None, compare=False, repr=False)
    outputs: tuple[str, ...] = ()  # names, in the order written
    output_types: Mapping[str, str] = field(default_factory=lambda: _EMPTY)  # name -> type
    errexit: bool = True  # a shell block stops at its first failing command
    end: RunEnd | None = None  # `end="..."`: once the step succeeds, the run ends
    idempotent: bool = False  # `idempotent=true`: safe to run again after a lost worker
    fence: str = "```"  # the opening marker as written (``` or ~~~~, ...)
    question: Question | None = None  # a ```` ```decision ```` block: what it asks
    loop: Loop | None = None  # `foreach=`: the step runs once per item of a list
    call: Call | None = None  # a ```runbook block: the step runs another runbook

    @property
    def executable(self) -> bool:
        return self.kernel is not None


def _short_duration(seconds: float) -> str:
    """`30m`, `2h`, `90s`: a duration as an author would write it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True, slots=True)
class Step:
    """One numbered step. Manual when it has no executable block."""

    number: int  # 1-based, in document order
    id: str
    title: str
    line: int
    end_line: int  # first line after the step
    role: str | None = None
    text: str = ""  # the step's Markdown source, blocks included
    blocks: tuple[Block, ...] = ()  # executable and documentation blocks, in order
    # 1-based line of the step's own `Role: x` line, which set `role`; 0 when the role came from
    # a block, the procedure or nowhere. The site drops that line (its badge shows the role).
    role_line: int = 0
    # Roles kept in the loop besides the responsible one: `Role: L2 (informed: IR-lead)` or
    # `Informed: IR-lead` / `Consulted: Legal` lines. They do not do the step.
    informed: tuple[str, ...] = ()
    consulted: tuple[str, ...] = ()

    @property
    def executable_blocks(self) -> tuple[Block, ...]:
        return tuple(b for b in self.blocks if b.executable)

    @property
    def question(self) -> Question | None:
        """What a decision step asks (its ```` ```decision ```` block), or None."""
        return next((b.question for b in self.blocks if b.question is not None), None)

    @property
    def policy_blocks(self) -> tuple[Block, ...]:
        """The blocks that set the step's policies: its runnable blocks; a manual step (no
        runnable block) takes them from its decision or documentation blocks, so `when=` or
        `approve=` written there gates the person's work too (docs/format.md)."""
        runnable = tuple(b for b in self.blocks if b.executable)
        return runnable or self.blocks

    def _policy(self, b: Block) -> bool:
        return b.executable or self.manual

    @property
    def manual(self) -> bool:
        return not any(b.executable for b in self.blocks)

    # A step's policies are those of its executable blocks: the first block that sets one wins,
    # so an author may put the attributes on whichever block reads best. They filter `blocks`
    # in place rather than build `executable_blocks`: the linter and the site ask for them
    # dozens of times per runbook.
    @property
    def approve(self) -> bool:
        return any(b.approve for b in self.blocks if self._policy(b))

    @property
    def approver_role(self) -> str | None:
        return next(
            (b.approver_role for b in self.blocks if self._policy(b) and b.approver_role), None
        )

    @property
    def approval_words(self) -> str:
        """The gate in words, for the site's badge and `runbook show`: `needs 2 approvals by
        IR-lead within 30m, then IR-manager, else denied`."""
        needed = self.approvals_needed
        text = f"needs {needed} approvals" if needed > 1 else "needs approval"
        text += f" by {self.approver_role}" if self.approver_role else ""
        if self.approval_timeout:
            text += f" within {_short_duration(self.approval_timeout)}"
            if self.escalate_role:
                n = self.escalate_needed
                text += f", then {n} by {self.escalate_role}" if n > 1 else ""
                text += "" if n > 1 else f", then {self.escalate_role}"
            text += ", else denied"
        return text

    @property
    def approvals_needed(self) -> int:
        return next(
            (b.approvals_needed for b in self.blocks if b.executable and b.approvals_needed > 1), 1
        )

    @property
    def approval_timeout(self) -> float | None:
        return next(
            (b.approval_timeout for b in self.blocks if b.executable and b.approval_timeout), None
        )

    @property
    def escalate_role(self) -> str | None:
        return next(
            (b.escalate_role for b in self.blocks if b.executable and b.escalate_role), None
        )

    @property
    def escalate_needed(self) -> int:
        return next((b.escalate_needed for b in self.blocks if b.executable and b.escalate_role), 1)

    @property
    def when(self) -> str | None:
        return next((b.when for b in self.blocks if self._policy(b) and b.when), None)

    @property
    def condition(self) -> Expression | None:
        """The parsed `when=` of the step (its first policy block that has one)."""
        return next((b.condition for b in self.blocks if self._policy(b) and b.when), None)

    @property
    def timeout(self) -> float | None:
        return next(
            (b.timeout for b in self.blocks if self._policy(b) and b.timeout is not None), None
        )

    @property
    def end(self) -> RunEnd | None:
        return next((b.end for b in self.blocks if self._policy(b) and b.end), None)

    @property
    def loop(self) -> Loop | None:
        return next((b.loop for b in self.blocks if b.executable and b.loop), None)

    @property
    def call(self) -> Call | None:
        return next((b.call for b in self.blocks if b.executable and b.call), None)

    @property
    def retries(self) -> int:
        return max((b.retries for b in self.blocks if b.executable), default=0)

    @property
    def on_failure(self) -> OnFailure:
        return next(
            (b.on_failure for b in self.blocks if self._policy(b) and b.on_failure != "abort"),
            "abort",
        )

    @property
    def outputs(self) -> tuple[str, ...]:
        # A decision block's one output is its answer (the parser sets `outputs` to it).
        return tuple(name for b in self.blocks if b.executable or b.question for name in b.outputs)

    @property
    def idempotent(self) -> bool:
        """Every block of the step may run twice (unlike the other policies, one block that
        says nothing makes the step unsafe to repeat)."""
        blocks = [b for b in self.blocks if b.executable]
        return bool(blocks) and all(b.idempotent for b in blocks)


@dataclass(frozen=True, slots=True)
class Procedure:
    """An alternative procedure: an H3 under `## Alternative procedures`, with its own steps."""

    id: str  # slug of the title; `on_failure=procedure:ID` names it
    title: str
    line: int
    end_line: int
    text: str = ""
    steps: tuple[Step, ...] = ()
    ends: RunEnd | None = None  # an "Ends the run: ..." line: the run ends after it


@dataclass(frozen=True, slots=True)
class Heading:
    """A top-level heading as written, or a line that looks like one but is not (`###2.`)."""

    level: int  # 1-6; for a look-alike, the number of leading `#`s
    title: str  # plain text, without the `#`s
    line: int
    real: bool = True  # False for a paragraph line that only looks like a heading


@dataclass(frozen=True, slots=True)
class Section:
    """Any other H2 section, kept as documentation."""

    title: str
    line: int
    end_line: int
    text: str  # Markdown source of the body, without the heading


@dataclass(frozen=True, slots=True)
class Runbook:
    """A parsed runbook file: the typed plan."""

    path: Path
    sha256: str  # of the file's bytes
    metadata: Metadata
    steps: tuple[Step, ...] = ()
    procedures: tuple[Procedure, ...] = ()
    success_criteria: tuple[str, ...] = ()
    failure_criteria: tuple[str, ...] = ()
    sections: tuple[Section, ...] = ()  # other H2 sections, in order
    doc_blocks: tuple[Block, ...] = ()  # fenced blocks outside any step
    description: str = ""  # Markdown between the title and the first H2
    has_steps_section: bool = False
    steps_line: int = 0  # line of the `## Steps` heading, 0 when there is none
    front_matter: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    front_matter_line: int = 0  # line of the opening `---`, 0 when there is none
    problems: tuple[Problem, ...] = ()  # found while parsing; `check` adds its own
    # The text as read: a run keeps it beside its journal, keyed by `sha256`, so a resume or a
    # report reads the runbook that ran rather than whatever the file says later.
    source: str = field(default="", compare=False, repr=False)
    # Every top-level heading and heading look-alike, in line order: `check` finds steps
    # written at the wrong level from them.
    headings: tuple[Heading, ...] = ()
    # The runbooks its ```runbook blocks call, by id, each with its own `called`: filled by
    # `check` (runner/check/flow.py), which finds them in the same folder tree; the engine
    # runs these plans and never reads a file itself.
    called: Mapping[str, Runbook] = field(
        default_factory=lambda: MappingProxyType({}), compare=False, repr=False
    )

    def procedure(self, name: str) -> Procedure | None:
        return next((p for p in self.procedures if name in (p.id, p.title)), None)

    def all_blocks(self) -> tuple[Block, ...]:
        """Every fenced block of the file, each once."""
        blocks = [b for s in self.steps for b in s.blocks]
        blocks += [b for p in self.procedures for s in p.steps for b in s.blocks]
        return tuple(blocks) + self.doc_blocks


# --- naming a step ---------------------------------------------------------------------------


def step_label(procedure: str | None, number: int) -> str:
    """How every command names a step: `3`, or `manual-isolation/2` in a procedure. The same
    form is accepted back wherever a step is given (`--at`, a scenario's `at_step`)."""
    return f"{procedure}/{number}" if procedure else str(number)


@dataclass(frozen=True, slots=True)
class StepRef:
    """A step of the runbook, main or in an alternative procedure."""

    step: Step
    procedure: str | None

    @property
    def label(self) -> str:
        return step_label(self.procedure, self.step.number)


def all_steps(book: Runbook) -> list[StepRef]:
    refs = [StepRef(s, None) for s in book.steps]
    refs += [StepRef(s, p.id) for p in book.procedures for s in p.steps]
    return refs


def find_step(book: Runbook, ref: str) -> StepRef | None:
    """`isolate`, `3`, `manual-isolation/2` or `manual-isolation/<step id>`."""
    proc, sep, rest = ref.rpartition("/")
    for r in all_steps(book):
        if sep:
            if r.procedure == proc and rest in (str(r.step.number), r.step.id):
                return r
        elif r.step.id == ref or (r.procedure is None and str(r.step.number) == ref):
            return r
    return None
