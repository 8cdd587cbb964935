"""A run rebuilt from its journal: :class:`RunRecord`, one :class:`StepRecord` per step.

:func:`load_run` folds the journal's events (see the schema in docs) into a record: the run's
header, then one step record per step in the order the steps were first touched, with
everything that happened to it. Reports, notebooks and ``runbook log`` read only that record,
so what they say is exactly what the journal says; secrets were redacted before the journal
was written, and nothing here reads a secret from anywhere else.

Which blocks ran: journals that have ``block_started`` events say it exactly (block id, the
code as run, its kernel, and ``block_finished`` its verdict). Older journals only name the
block of each output; :func:`block_runs` then infers the silent ones from the runbook.

Slow steps: a step is *slow* when it took more than its share of the time limit, its share
being ``time_limit / n`` where ``n`` counts the steps that ran or were performed by a person
(skipped steps take no time, so they get no share). Without a time limit the share is twice the
mean duration of those steps, so a step that took more than double the average stands out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RunbookError
from .journal import Event, read_events, summarise
from .model import Runbook, Step

OFF_SCRIPT = "off-script"  # the block id the runner gives an operator's ad-hoc command
_RAN = frozenset({"succeeded", "failed", "timed_out", "cancelled", "handled", "denied"})


class ReportError(RunbookError):
    """A report cannot be written."""

    exit_code = 2


# --- the record ------------------------------------------------------------------------------


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
    attempts: int = 0
    exit_status: int | None = None
    error: str | None = None
    reason: str | None = None  # why it was skipped, or other context
    code: str | None = None  # the step's code, when the runner journaled it
    total: int | None = None  # steps in its list, from step_started
    is_manual: bool | None = None  # from the runbook or step_started's kernel; None: unknown
    outputs: list[Event] = field(default_factory=list)  # output events, each with "attempt"
    blocks: list[BlockRun] = field(default_factory=list)  # from block_started, in order
    values: dict[str, Any] = field(default_factory=dict)  # named outputs
    decisions: list[Event] = field(default_factory=list)
    approvals: list[Event] = field(default_factory=list)  # requested, refused and decided
    notes: list[Event] = field(default_factory=list)
    faults: list[Event] = field(default_factory=list)

    @property
    def label(self) -> str:
        """`3` for a main step, `fallback/2` for a step of an alternative procedure."""
        return f"{self.procedure}/{self.number}" if self.procedure else str(self.number)

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
        done = any(d.get("decision") == "done" for d in self.decisions)
        return self.status == "succeeded" or done

    @property
    def took_time(self) -> bool:
        """Whether the step ran or was performed (and so deserves a share of the time limit)."""
        return self.status in _RAN and self.duration is not None

    @property
    def waited(self) -> float | None:
        """For a manual step: seconds from the prompt to the person's answer."""
        return next((d.get("waited") for d in self.decisions if d.get("waited") is not None), None)


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
    status: str = "running"
    finished: str | None = None
    duration: float | None = None
    within_time_limit: bool | None = None
    counts: dict[str, int] = field(default_factory=dict)
    ended_by: dict[str, Any] | None = None  # the branch that ended the run (run_finished)
    kernels: list[Event] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    off_script: list[Event] = field(default_factory=list)
    pauses: list[Event] = field(default_factory=list)  # run_paused and run_resumed
    notes: list[Event] = field(default_factory=list)  # notes and faults not tied to a step
    owners: dict[int, StepRecord] = field(default_factory=dict)  # event seq -> its step

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
    def faults(self) -> list[tuple[StepRecord | None, Event]]:
        out: list[tuple[StepRecord | None, Event]] = []
        out += [(s, f) for s in self.steps for f in s.faults]
        out += [(None, n) for n in self.notes if n.get("event") == "fault"]
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


class _Fold:
    """Folds events into a RunRecord. Steps are matched by number and id, procedures apart."""

    def __init__(self, record: RunRecord) -> None:
        self.record = record
        self.by_key: dict[tuple[str | None, int, str], StepRecord] = {}
        self.latest: dict[tuple[int, str], StepRecord] = {}
        self.attempt: dict[int, int] = {}  # id(StepRecord) -> current attempt
        self.running: dict[str, tuple[StepRecord, BlockRun]] = {}  # block id -> open execution
        self.off_script_outputs: list[Event] = []

    def step(self, event: Event) -> StepRecord | None:
        """The record an event is about, made on first mention.

        Events that carry ``procedure`` say which list the step is in. The others (output,
        decision, note...) belong to the latest record of that step number and id.
        """
        if event.get("step") is None and event.get("step_id") is None:
            return None
        number, sid = int(event.get("step") or 0), str(event.get("step_id") or "")
        if "procedure" not in event:
            return self._own(
                event, self.latest.get((number, sid)) or self._new((None, number, sid))
            )
        key = (event.get("procedure"), number, sid)
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
        return self._own(event, rec)

    def _own(self, event: Event, rec: StepRecord) -> StepRecord:
        self.record.owners[int(event.get("seq") or 0)] = rec
        return rec

    def _new(self, key: tuple[str | None, int, str]) -> StepRecord:
        rec = StepRecord(number=key[1], step_id=key[2], procedure=key[0])
        self.by_key[key] = rec
        self.latest[(key[1], key[2])] = rec
        self.record.steps.append(rec)
        return rec

    def apply(self, e: Event) -> None:
        kind = e.get("event")
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(e)

    def _on_kernel_started(self, e: Event) -> None:
        self.record.kernels.append(e)

    def _on_step_started(self, e: Event) -> None:
        rec = self.step(e)
        assert rec is not None
        rec.started = rec.started or e.get("ts")
        rec.title = str(e.get("title") or rec.title)
        rec.role = e.get("role") or rec.role
        rec.kernel = e.get("kernel") or rec.kernel
        if "kernel" in e:  # the runner journals a manual step's start with a null kernel
            rec.is_manual = e["kernel"] is None
        rec.code = e.get("code") or rec.code
        rec.attempts = max(rec.attempts, int(e.get("attempt") or 1))
        rec.total = e.get("total") or rec.total
        self.attempt[id(rec)] = int(e.get("attempt") or 1)
        rec.status = "running"

    def _on_step_finished(self, e: Event) -> None:
        rec = self.step(e)
        assert rec is not None
        status = str(e.get("status") or rec.status)
        duration = float(e.get("duration") or 0.0)
        # Manual and skipped steps have no step_started: they began `duration` before this.
        rec.started = rec.started or _earlier(str(e.get("ts") or ""), duration)
        rec.title = str(e.get("title") or rec.title)
        rec.status = status
        # One step_finished per attempt, and one more when a procedure handled the failure:
        # the step took the sum of them.
        rec.duration = (rec.duration or 0.0) + duration
        if status != "handled":  # "handled" is a verdict on the failure before it; keep its why
            rec.exit_status = e.get("exit_status")
            rec.error = e.get("error")
        rec.reason = e.get("reason") or (rec.reason if status == "handled" else None)
        # A block cut short (timeout, interrupt) has no block_finished: the step's end closes it.
        self.running = {k: v for k, v in self.running.items() if v[0] is not rec}

    def _on_block_started(self, e: Event) -> None:
        rec = self.step(e)
        assert rec is not None
        run = BlockRun(
            block_id=str(e.get("block_id") or ""),
            attempt=int(e.get("attempt") or self.attempt.get(id(rec), 1)),
            code=e.get("code"),
            lang=e.get("lang"),
            kernel=e.get("kernel"),
        )
        rec.blocks.append(run)
        self.running[run.block_id] = (rec, run)

    def _on_block_finished(self, e: Event) -> None:
        # block_finished names only the block; it belongs to the execution block_started opened.
        found = self.running.pop(str(e.get("block_id") or ""), None)
        if found is None:
            return
        self._own(e, found[0])
        run = found[1]
        run.status = str(e.get("status") or "") or None
        run.exit_status = e.get("exit_status")
        run.duration = e.get("duration")

    def _on_output(self, e: Event) -> None:
        rec = self.step(e)
        if e.get("block_id") == OFF_SCRIPT:
            # An ad-hoc command's output comes before the off_script event that names it.
            self.off_script_outputs.append(e)
        elif rec is not None:
            out = {**e, "attempt": self.attempt.get(id(rec), 1)}
            rec.outputs.append(out)
            running = self.running.get(str(e.get("block_id") or ""))
            if running is not None and running[0] is rec:
                running[1].outputs.append(out)

    def _on_outputs(self, e: Event) -> None:
        rec = self.step(e)
        if rec is not None:
            rec.values.update(e.get("values") or {})

    def _on_decision(self, e: Event) -> None:
        if (rec := self.step(e)) is not None:
            rec.decisions.append(e)

    def _on_approval_requested(self, e: Event) -> None:
        if (rec := self.step(e)) is not None:
            rec.approvals.append(e)
            rec.code = rec.code or e.get("code")

    def _on_approval(self, e: Event) -> None:
        if (rec := self.step(e)) is not None:
            rec.approvals.append(e)

    # A refused approver is part of the gate's story: the report lists it with the others.
    _on_approval_refused = _on_approval

    def _on_note(self, e: Event) -> None:
        rec = self.step(e)
        (rec.notes if rec else self.record.notes).append(e)

    def _on_fault(self, e: Event) -> None:
        rec = self.step(e)
        (rec.faults if rec else self.record.notes).append(e)

    def _on_off_script(self, e: Event) -> None:
        self.step(e)
        self.record.off_script.append({**e, "outputs": self.off_script_outputs})
        self.off_script_outputs = []

    def _on_run_paused(self, e: Event) -> None:
        self.record.pauses.append(e)
        self.record.status = "paused"
        self.record.duration = e.get("duration", self.record.duration)

    def _on_run_resumed(self, e: Event) -> None:
        self.record.pauses.append(e)
        self.record.status = "running"

    def _on_run_finished(self, e: Event) -> None:
        r = self.record
        r.status = str(e.get("status") or "unknown")
        r.finished = e.get("ts")
        r.duration = e.get("duration")
        r.within_time_limit = e.get("within_time_limit")
        r.counts = dict(e.get("counts") or {})
        r.ended_by = e.get("ended_by")


def _earlier(iso: str, seconds: float) -> str | None:
    try:
        when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00")) - dt.timedelta(seconds=seconds)
    except ValueError:
        return None
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def load_run(run_dir: Path, events: list[Event] | None = None) -> RunRecord:
    """Rebuild a run from its journal."""
    events = read_events(run_dir) if events is None else events
    start = next((e for e in events if e.get("event") == "run_started"), None)
    if start is None:
        raise ReportError(
            "the journal has no run_started event; it is not a run", path=str(run_dir)
        )
    record = RunRecord(
        run_id=str(start.get("run_id") or run_dir.name),
        run_dir=run_dir,
        runbook=dict(start.get("runbook") or {}),
        git_commit=start.get("git_commit"),
        operator=str(start.get("operator") or ""),
        host=str(start.get("host") or ""),
        mode=str(start.get("mode") or "run"),
        inputs=dict(start.get("inputs") or {}),
        options=dict(start.get("options") or {}),
        started=str(start.get("ts") or ""),
        events=len(events),
    )
    fold = _Fold(record)
    for event in events:
        fold.apply(event)
    if record.status == "running":
        # No run_finished: still going, or the runner died (the lock tells which).
        info = summarise(run_dir, events)
        record.status = info.status if info else "crashed"
    return record


# --- the runbook as it was -------------------------------------------------------------------


def runbook_at_run(record: RunRecord) -> Runbook | None:
    """The runbook exactly as it was run (same SHA-256), from the file or from git; else None."""
    from .parse import parse_text  # the parser is only needed for notebooks

    path, sha = str(record.runbook.get("path") or ""), str(record.runbook.get("sha256") or "")
    if not path or not sha:
        return None
    for data in _candidate_sources(Path(path), record):
        if hashlib.sha256(data).hexdigest() == sha:
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                return None
            return parse_text(text, path=path, sha256=sha)
    return None


def _candidate_sources(path: Path, record: RunRecord) -> Iterable[bytes]:
    # The journal stores the path as given at run time, usually relative to the folder the
    # runner started in; the runs folder is normally `<that folder>/.runbook/runs`.
    places = [path]
    if not path.is_absolute():
        places.append(record.run_dir.resolve().parent.parent.parent / path)
    if record.runbook.get("abs_path"):
        places.append(Path(str(record.runbook["abs_path"])))
    for place in places:
        try:
            yield place.read_bytes()
        except OSError:
            continue
    if record.git_commit:
        for place in places:
            if place.parent.is_dir():
                shown = subprocess.run(
                    ["git", "-C", str(place.parent), "show", f"{record.git_commit}:./{place.name}"],
                    capture_output=True,
                    check=False,
                    timeout=10,
                )
                if shown.returncode == 0:
                    yield shown.stdout


def fill_from_runbook(record: RunRecord, runbook: Runbook) -> None:
    """What the journal left out comes from the runbook as it was run: titles and roles (an
    old journal has no step_started for a manual step), and whether each step is manual."""
    for s in record.steps:
        step = runbook_step(runbook, s)
        if step is not None:
            s.title = s.title or step.title
            s.role = s.role or step.role
            s.is_manual = step.manual


def runbook_step(runbook: Runbook | None, s: StepRecord) -> Step | None:
    """The runbook's step a record is about, in the right list: by id, or by number when the
    journal named no id (a number alone could be another step of an edited runbook)."""
    if runbook is None:
        return None
    steps = runbook.steps
    if s.procedure:
        proc = runbook.procedure(s.procedure)
        steps = proc.steps if proc else ()
    if s.step_id:
        return next((x for x in steps if x.id == s.step_id), None)
    return next((x for x in steps if x.number == s.number), None)


# --- which blocks ran ------------------------------------------------------------------------


def block_runs(s: StepRecord, runbook: Runbook | None) -> list[BlockRun]:
    """Each block execution of a step, in order: exact from block_started when the journal has
    it, otherwise inferred from the outputs and the runbook (see :func:`_inferred_runs`)."""
    if s.blocks:
        return list(s.blocks)
    return _inferred_runs(s, runbook)


def _inferred_runs(s: StepRecord, runbook: Runbook | None) -> list[BlockRun]:
    """For journals without block_started. Blocks with output are known to have run. From the
    runbook we also know the blocks that ran silently: all of them when the step succeeded,
    and when it failed, every block up to the one that failed (the one after the last block
    with output, unless that one errored)."""
    step = runbook_step(runbook, s)
    order = [b.id for b in step.executable_blocks] if step is not None else []
    by_attempt: dict[int, dict[str, list[Event]]] = {}
    for o in s.outputs:
        bid = str(o.get("block_id") or (order[0] if order else s.step_id))
        by_attempt.setdefault(int(o.get("attempt") or 1), {}).setdefault(bid, []).append(o)
    if not s.started or (s.kernel is None and not s.outputs):
        return []
    out: list[BlockRun] = []
    for attempt in range(1, max(s.attempts, 1) + 1):
        seen = by_attempt.get(attempt, {})
        last = attempt == max(s.attempts, 1)
        ran = _blocks_run(order, seen, s.status if last else "failed")
        out += [BlockRun(bid, attempt, outputs=seen.get(bid, []), journaled=False) for bid in ran]
    return out


def _blocks_run(order: list[str], seen: dict[str, list[Event]], status: str) -> list[str]:
    if not order:
        return list(seen)
    extra = [b for b in seen if b not in order]
    if status in ("succeeded", "handled") and not any(
        o.get("kind") == "error" for v in seen.values() for o in v
    ):
        return order + extra
    touched = [i for i, b in enumerate(order) if b in seen]
    if not touched:
        return order[:1] + extra
    last = touched[-1]
    errored = any(o.get("kind") == "error" for o in seen[order[last]])
    end = last + 1 if errored or last + 1 >= len(order) else last + 2
    return order[:end] + extra


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
