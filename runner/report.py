"""The post-incident record of one run, rebuilt from its journal: Markdown, HTML and a notebook.

:func:`load_run` folds the journal's events (see the schema in docs) into a :class:`RunRecord`:
the run's header, then one :class:`StepRecord` per step in the order the steps were first
touched, with everything that happened to it. The renderers read only that record, so what a
report says is exactly what the journal says; secrets were redacted before the journal was
written, and nothing here reads a secret from anywhere else.

Slow steps: a step is *slow* when it took more than its share of the time limit, its share
being ``time_limit / n`` where ``n`` counts the steps that ran or were performed by a person
(skipped steps take no time, so they get no share). Without a time limit the share is twice the
mean duration of those steps, so a step that took more than double the average stands out.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import re
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RunbookError, UsageError
from .format import format_duration
from .journal import Event, list_runs, read_events, summarise
from .model import Block, Runbook
from .stats import plot_durations

FORMATS = ("md", "html", "ipynb")
OFF_SCRIPT = "off-script"  # the block id the runner gives an operator's ad-hoc command
MAX_OUTPUT_LINES = 40  # per output in md/html; the notebook keeps everything
MAX_OUTPUT_CHARS = 6000
MAX_INLINE_IMAGE = 2_000_000  # bytes; bigger images are linked, not inlined, in HTML
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
_RAN = frozenset({"succeeded", "failed", "timed_out", "cancelled", "handled", "denied"})
_SYMBOL = {
    "succeeded": "✓",
    "succeeded_with_handled_failures": "✓",
    "handled": "↻",
    "failed": "✗",
    "timed_out": "⏱",
    "cancelled": "■",
    "denied": "⊘",
    "skipped": "–",
    "waiting_approval": "…",
    "paused": "…",
    "running": "…",
    "crashed": "✗",
}


class ReportError(RunbookError):
    """A report cannot be written."""

    exit_code = 2


# --- the record ------------------------------------------------------------------------------


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
    outputs: list[Event] = field(default_factory=list)  # output events, each with "attempt"
    values: dict[str, Any] = field(default_factory=dict)  # named outputs
    decisions: list[Event] = field(default_factory=list)
    approvals: list[Event] = field(default_factory=list)  # approval_requested and approval
    notes: list[Event] = field(default_factory=list)
    faults: list[Event] = field(default_factory=list)

    @property
    def label(self) -> str:
        """`3` for a main step, `fallback/2` for a step of an alternative procedure."""
        return f"{self.procedure}/{self.number}" if self.procedure else str(self.number)

    @property
    def manual(self) -> bool:
        """A step for a person: no kernel ran it, yet it was done, answered or left for one."""
        if self.kernel is not None or self.outputs:
            return False
        answered = any(d.get("decision") in ("done", "skip") for d in self.decisions)
        # An executable step always has a kernel; one that succeeded without was done by hand.
        return self.status == "succeeded" or answered or "manual" in (self.reason or "")

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

    def _on_output(self, e: Event) -> None:
        rec = self.step(e)
        if e.get("block_id") == OFF_SCRIPT:
            # An ad-hoc command's output comes before the off_script event that names it.
            self.off_script_outputs.append(e)
        elif rec is not None:
            rec.outputs.append({**e, "attempt": self.attempt.get(id(rec), 1)})

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
    """Titles and roles the journal left out (a manual step has no step_started) come from the
    runbook as it was run."""
    for s in record.steps:
        step = _runbook_step(runbook, s)
        if step is not None:
            s.title = s.title or step.title
            s.role = s.role or step.role


# --- shared formatting -----------------------------------------------------------------------


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def fmt_duration(seconds: float | None) -> str:
    return "—" if seconds is None else format_duration(float(seconds))


def fmt_time(iso: str | None) -> str:
    """`19:51:44` (UTC) from an ISO timestamp."""
    if not iso:
        return "—"
    try:
        return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%H:%M:%S")
    except ValueError:
        return iso


def fmt_status(status: str) -> str:
    symbol = _SYMBOL.get(status, "")
    return f"{symbol} {status}".strip()


def time_limit_verdict(record: RunRecord) -> str:
    """One sentence: the total against the time limit and whether it was met."""
    total = fmt_duration(record.duration)
    limit = record.time_limit
    if limit is None:
        return f"Total {total}; the runbook sets no time limit."
    met = record.met_time_limit
    if met is None:
        return (
            f"Time limit {fmt_duration(limit)}; the run has not finished, so it is not judged yet."
        )
    if met:
        return f"Total {total} against a time limit of {fmt_duration(limit)}: **met**."
    over = (record.duration or 0.0) - limit
    return (
        f"Total {total} against a time limit of {fmt_duration(limit)}: "
        f"**not met** (over by {fmt_duration(over)})."
    )


def truncate(text: str) -> str:
    """Keep the head and tail of a long output, saying how much was left out."""
    lines = text.splitlines()
    if len(lines) > MAX_OUTPUT_LINES:
        head, tail = lines[: MAX_OUTPUT_LINES - 10], lines[-10:]
        left = len(lines) - len(head) - len(tail)
        lines = [*head, f"… {left} lines omitted (the journal has them all) …", *tail]
    text = "\n".join(lines)
    if len(text) > MAX_OUTPUT_CHARS:
        left = len(text) - MAX_OUTPUT_CHARS
        text = (
            text[: MAX_OUTPUT_CHARS // 2]
            + f"\n… {left} characters omitted …\n"
            + text[-MAX_OUTPUT_CHARS // 2 :]
        )
    return text


def output_text(out: Event) -> str:
    """The text a person would read for one output event (images are shown separately)."""
    kind = out.get("kind")
    if kind == "stream":
        return str(out.get("text") or "")
    if kind == "error":
        tb = out.get("traceback") or []
        body = "\n".join(strip_ansi(str(t)) for t in tb) if tb else ""
        head = f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"
        return body if head in body else (f"{body}\n{head}" if body else head)
    data = out.get("data") or {}
    if "text/plain" in data:
        return _joined(data["text/plain"])
    if out.get("text"):
        return str(out["text"])
    return ""


def _joined(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def output_images(out: Event) -> list[str]:
    """Paths (relative to the run folder) of the images an output refers to."""
    data = out.get("data") or {}
    return [
        str(v)
        for k, v in data.items()
        if k.startswith("image/") and isinstance(v, str) and k != "image/svg+xml"
    ]


# --- Markdown --------------------------------------------------------------------------------

ImageLink = Callable[[Path], str]


def _md_escape(text: object) -> str:
    """Text safe inside a Markdown paragraph or table cell."""
    s = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return re.sub(r"([`*_\[\]<>#])", r"\\\1", s)


def _fence(text: str, lang: str = "text") -> str:
    """A fenced block longer than any run of backticks inside it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text.rstrip(chr(10))}\n{ticks}"


def render_markdown(record: RunRecord, *, image: ImageLink, plot: Path | None = None) -> str:
    """The post-incident record as Markdown. ``image`` turns an image file into a link."""
    parts = [_md_header(record), _md_timeline(record)]
    if plot is not None:
        parts.append(f"![Run durations against the time limit]({image(plot)})")
    if record.drill:
        parts.append(_md_drill(record))
    parts.append(_md_failures(record))
    parts.append("## Steps")
    parts += [_md_step(record, s, image) for s in record.steps]
    if record.off_script:
        parts.append(_md_off_script(record))
    parts.append(
        f"---\n\nRun `{record.run_id}` · journal `{record.run_dir / 'journal.jsonl'}` "
        f"({record.events} events) · check it with `runbook verify {record.run_id}`."
    )
    return "\n\n".join(p for p in parts if p) + "\n"


def _md_header(r: RunRecord) -> str:
    book = r.runbook
    kind = "Drill" if r.drill else "Run"
    rows = [
        ("Runbook", f"{_md_escape(r.name)} (`{book.get('id', '')}`, `{book.get('path', '')}`)"),
        (
            "Version",
            f"SHA-256 `{str(book.get('sha256', ''))[:16]}`"
            + (f", git commit `{str(r.git_commit)[:12]}`" if r.git_commit else ""),
        ),
        ("Objective", _md_escape(book.get("objective") or "—")),
        ("Operator", f"{_md_escape(r.operator)} on {_md_escape(r.host)}"),
        ("Mode", r.mode),
        ("Started", f"{r.started} (times below are UTC)"),
        ("Status", f"**{fmt_status(r.status)}**"),
        ("Duration", time_limit_verdict(r)),
    ]
    if r.kernels:
        kernels = ", ".join(
            f"{k.get('kernel')} ({k.get('implementation', '')} {k.get('version', '')}, "
            f"{k.get('language', '')} {k.get('language_version', '')})"
            for k in r.kernels
        )
        rows.append(("Kernels", _md_escape(kernels)))
    table = "| | |\n|---|---|\n" + "\n".join(f"| **{k}** | {v} |" for k, v in rows)
    out = [f"# {kind} report: {_md_escape(r.name)}", table]
    if r.inputs:
        lines = ["### Inputs", "", "| input | value |", "|---|---|"]
        lines += [
            f"| `{k}` | {_md_escape(json.dumps(v) if not isinstance(v, str) else v)} |"
            for k, v in r.inputs.items()
        ]
        out.append("\n".join(lines))
    return "\n\n".join(out)


def _md_timeline(r: RunRecord) -> str:
    lines = [
        "## Timeline",
        "",
        "| step | title | role | status | start | duration |",
        "|---|---|---|---|---|---|",
    ]
    for s in r.steps:
        dur = fmt_duration(s.duration)
        if s.attempts > 1:
            dur += f" ({s.attempts} attempts)"
        lines.append(
            f"| {_md_escape(s.label)} | {_md_escape(s.title)} | {_md_escape(s.role or '—')} | "
            f"{fmt_status(s.status)} | {fmt_time(s.started)} | {dur} |"
        )
    lines += ["", f"**{fmt_status(r.status)}** — {time_limit_verdict(r)}"]
    for p in r.pauses:
        if p.get("event") == "run_paused":
            lines.append(f"\n- {fmt_time(p.get('ts'))} paused: {_md_escape(p.get('reason') or '')}")
        else:
            lines.append(
                f"\n- {fmt_time(p.get('ts'))} resumed by {_md_escape(p.get('operator') or '')}"
            )
    return "\n".join(lines)


def _md_failures(r: RunRecord) -> str:
    bad = [
        s for s in r.steps if s.status in ("failed", "timed_out", "cancelled", "denied", "handled")
    ]
    if not bad:
        return "## Failures\n\nNone: no step failed."
    lines = ["## Failures", ""]
    for s in bad:
        why = s.error or (f"exit status {s.exit_status}" if s.exit_status else "") or s.reason or ""
        lines.append(
            f"- Step {_md_escape(s.label)} *{_md_escape(s.title)}*: {fmt_status(s.status)}"
            + (f" — {_md_escape(why)}" if why else "")
        )
    return "\n".join(lines)


def _md_step(r: RunRecord, s: StepRecord, image: ImageLink) -> str:
    where = f" (alternative procedure `{s.procedure}`)" if s.procedure else ""
    facts = [
        fmt_status(s.status),
        f"role {_md_escape(s.role)}" if s.role else "",
        f"kernel `{s.kernel}`" if s.kernel else "manual step",
        fmt_duration(s.duration),
    ]
    if s.attempts > 1:
        facts.append(f"{s.attempts} attempts")
    if s.exit_status not in (None, 0):
        facts.append(f"exit status {s.exit_status}")
    out = [
        f"### {_md_escape(s.label)}. {_md_escape(s.title)}{where}",
        " · ".join(f for f in facts if f),
    ]
    if s.reason:
        out.append(f"Reason: {_md_escape(s.reason)}")
    if s.error:
        out.append(f"**Error:** {_md_escape(s.error)}")
    out += _md_events(s)
    out += _md_outputs(r, s, image)
    if s.values:
        out.append("Outputs: " + ", ".join(f"`{k}` = {_md_escape(v)}" for k, v in s.values.items()))
    return "\n\n".join(out)


def _md_events(s: StepRecord) -> list[str]:
    items = []
    for f in s.faults:
        items.append(f"- ⚡ fault injected: {_md_escape(f.get('description') or '')}")
    for d in s.decisions:
        waited = f", after {fmt_duration(d['waited'])}" if d.get("waited") is not None else ""
        note = f": {_md_escape(d['note'])}" if d.get("note") else ""
        by = _md_escape(d.get("by") or "?")
        items.append(f"- decision **{_md_escape(d.get('decision'))}** by {by}{waited}{note}")
    for a in s.approvals:
        if a.get("event") == "approval_requested":
            items.append(
                f"- approval requested from role {_md_escape(a.get('approver_role') or 'any')}"
            )
            continue
        pre = " (pre-approved)" if a.get("preapproved") else ""
        comment = f": {_md_escape(a['comment'])}" if a.get("comment") else ""
        items.append(
            f"- **{_md_escape(a.get('decision'))}** by {_md_escape(a.get('by') or '?')} "
            f"({_md_escape(a.get('role') or 'no role')}){pre}{comment}"
        )
    for n in s.notes:
        flag = " **[unclear]**" if n.get("unclear") else ""
        who = f"{_md_escape(n.get('by') or '?')} ({_md_escape(n.get('role') or '—')})"
        items.append(f"- note by {who}{flag}: {_md_escape(n.get('text') or '')}")
    return ["\n".join(items)] if items else []


def _md_outputs(r: RunRecord, s: StepRecord, image: ImageLink) -> list[str]:
    out: list[str] = []
    for o in _merge_streams(s.outputs):
        text = output_text(o)
        if text.strip():
            kind = str(o.get("kind"))
            label = str(o.get("stream") or "stdout") if kind == "stream" else kind
            attempt = f" (attempt {o['attempt']})" if s.attempts > 1 else ""
            out.append(f"{label}{attempt}:\n\n{_fence(truncate(strip_ansi(text)))}")
        for rel in output_images(o):
            path = r.run_dir / rel
            if path.is_file():
                out.append(f"![output of step {_md_escape(s.label)}]({image(path)})")
    return out


def _merge_streams(outputs: Sequence[Event]) -> list[Event]:
    """Consecutive chunks of one stream read as one block, as a terminal shows them."""
    merged: list[Event] = []
    for o in outputs:
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and o.get("kind") == "stream" == prev.get("kind")
            and o.get("stream") == prev.get("stream")
            and o.get("block_id") == prev.get("block_id")
            and o.get("attempt") == prev.get("attempt")
        ):
            merged[-1] = {**prev, "text": str(prev.get("text") or "") + str(o.get("text") or "")}
        else:
            merged.append(o)
    return merged


def _md_off_script(r: RunRecord) -> str:
    lines = ["## Off-script actions", ""]
    for e in r.off_script:
        where = r.owners.get(int(e.get("seq") or 0))
        before = f" before step {where.label}" if where else ""
        code = _indent(_fence(str(e.get("code") or "")))
        lines.append(
            f"- {fmt_time(e.get('ts'))}{before}, by {_md_escape(e.get('by') or '?')} in "
            f"`{e.get('kernel')}` ({e.get('status')}):\n\n{code}"
        )
        text = "".join(output_text(o) for o in e.get("outputs") or [])
        if text.strip():
            lines.append(f"\n  output:\n\n{_indent(_fence(truncate(strip_ansi(text))))}")
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" if line else line for line in text.split("\n"))


def _md_drill(r: RunRecord) -> str:
    parts = ["## Drill findings", _md_faults(r), _md_unclear(r), _md_slow(r), _md_manual(r)]
    who = _participants(r)
    if who:
        parts.insert(1, "Participants: " + ", ".join(_md_escape(w) for w in who))
    return "\n\n".join(parts)


def _participants(r: RunRecord) -> list[str]:
    """Everyone who decided, approved or wrote a note, with the role they acted in."""
    roles: dict[str, str] = {}
    for s in r.steps:
        for e in [*s.decisions, *s.approvals, *s.notes]:
            if e.get("by"):
                who = str(e["by"])
                roles[who] = roles.get(who) or str(e.get("role") or "")
    return [f"{name} ({role})" if role else name for name, role in roles.items()]


def coped(r: RunRecord, step: StepRecord | None) -> str:
    """How the runbook coped with a fault injected at ``step``."""
    if step is None:
        return f"not tied to a step; the run ended {r.status}"
    if step.status == "handled":
        after = r.steps[r.steps.index(step) + 1 :]
        procs = [s for s in after if s.procedure]
        names = sorted({str(s.procedure) for s in procs})
        ok = all(s.status in ("succeeded", "skipped") for s in procs)
        return (
            f"handled: alternative procedure {', '.join(names) or '?'} ran "
            f"({len(procs)} steps, {'all succeeded' if ok else 'not all succeeded'})"
        )
    if step.status == "succeeded":
        extra = f" after {step.attempts} attempts" if step.attempts > 1 else ""
        return f"the step still succeeded{extra}"
    if step.status == "denied":
        return f"approval denied; the step did not run and the run ended {r.status}"
    return f"not handled: the step {step.status} and the run ended {r.status}"


def _md_faults(r: RunRecord) -> str:
    faults = r.faults
    if not faults:
        return "### Faults injected\n\nNone."
    lines = [
        "### Faults injected",
        "",
        "| step | fault | step status | how the runbook coped |",
        "|---|---|---|---|",
    ]
    for step, f in faults:
        label = f"{step.label}. {step.title}" if step else "—"
        lines.append(
            f"| {_md_escape(label)} | {_md_escape(f.get('description') or '')} | "
            f"{fmt_status(step.status) if step else '—'} | {_md_escape(coped(r, step))} |"
        )
    return "\n".join(lines)


def _md_unclear(r: RunRecord) -> str:
    unclear: list[tuple[StepRecord | None, Event]] = []
    unclear += [(s, n) for s in r.steps for n in s.notes if n.get("unclear")]
    unclear += [(None, n) for n in r.notes if n.get("event") == "note" and n.get("unclear")]
    if not unclear:
        return "### Steps marked unclear\n\nNone."
    lines = ["### Steps marked unclear", ""]
    for s, n in unclear:
        where = f"Step {s.label} *{_md_escape(s.title)}*" if s else "The runbook"
        lines.append(
            f"- {where}: {_md_escape(n.get('text') or '')} — {_md_escape(n.get('by') or '?')}"
            + (f" ({_md_escape(n['role'])})" if n.get("role") else "")
        )
    return "\n".join(lines)


def _md_slow(r: RunRecord) -> str:
    share = r.share()
    rule = (
        "a step is slow when it took more than its share of the time limit "
        f"(time limit / steps that took time = {fmt_duration(share)})"
        if r.time_limit
        else f"no time limit, so a step is slow when it took more than twice the mean step time "
        f"({fmt_duration(share)})"
    )
    slow = r.slow_steps()
    head = f"### Slow steps\n\n*Rule:* {rule}."
    if not slow:
        return f"{head}\n\nNone."
    rows = [
        f"- Step {_md_escape(s.label)} *{_md_escape(s.title)}*: {fmt_duration(s.duration)}"
        for s in slow
    ]
    return head + "\n\n" + "\n".join(rows)


def _md_manual(r: RunRecord) -> str:
    manual = [s for s in r.steps if s.manual and s.status != "pending"]
    if not manual:
        return "### Manual steps\n\nNone."
    lines = [
        "### Manual steps",
        "",
        "| step | title | role | answer | by | time to answer |",
        "|---|---|---|---|---|---|",
    ]
    for s in manual:
        d = s.decisions[-1] if s.decisions else {}
        took = s.waited if s.waited is not None else s.duration
        lines.append(
            f"| {_md_escape(s.label)} | {_md_escape(s.title)} | {_md_escape(s.role or '—')} | "
            f"{_md_escape(d.get('decision') or s.status)} | {_md_escape(d.get('by') or '—')} | "
            f"{fmt_duration(took)} |"
        )
    return "\n".join(lines)


# --- HTML ------------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;
max-width:60rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.6rem;border-bottom:2px solid #d0d7de;padding-bottom:.3rem}
h2{font-size:1.3rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
h3{font-size:1.05rem;margin-top:1.5rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.92rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.6rem;overflow-x:auto;font-size:.85rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
img{max-width:100%}
@media print{pre{white-space:pre-wrap}}
"""


def render_html(record: RunRecord, *, image: ImageLink, plot: Path | None = None) -> str:
    """A self-contained page: the Markdown record rendered, inline CSS, no network."""
    from markdown_it import MarkdownIt

    # html=False: journal text (command output) must show as text, never as markup.
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    body = md.render(render_markdown(record, image=image, plot=plot))
    title = html.escape(f"{'Drill' if record.drill else 'Run'} report: {record.name}")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>{title}</title>'
        f"<style>{_CSS}</style></head>\n<body>\n{body}</body></html>\n"
    )


def data_uri(path: Path) -> str:
    """An image inlined, so the HTML page needs no other file (large ones stay linked)."""
    data = path.read_bytes()
    if len(data) > MAX_INLINE_IMAGE:
        return path.resolve().as_uri()
    kind = path.suffix.lstrip(".").lower().replace("jpg", "jpeg")
    return f"data:image/{kind};base64,{base64.b64encode(data).decode()}"


# --- notebook --------------------------------------------------------------------------------


def _nbformat() -> Any:
    # nbformat is untyped and takes ~0.1 s to import; only notebook reports need it.
    import nbformat

    return nbformat


def render_notebook(record: RunRecord, runbook: Runbook | None = None) -> Any:
    """An nbformat v4 notebook: one code cell per executed block, with its real outputs."""
    nbformat = _nbformat()
    v4 = nbformat.v4
    blocks: dict[str, Block] = {b.id: b for b in runbook.all_blocks()} if runbook else {}
    cells = [v4.new_markdown_cell(_nb_intro(record, runbook is not None))]
    count = 0
    for s in record.steps:
        cells.append(v4.new_markdown_cell(_nb_step_heading(s, runbook)))
        for action in record.off_script:
            if record.owners.get(int(action.get("seq") or 0)) is s:
                count += 1
                cells.append(_nb_off_script_cell(record, action, count))
        for block_id, attempt, outs in _executions(s, runbook):
            count += 1
            cells.append(
                _nb_code_cell(record, s, blocks.get(block_id), block_id, attempt, outs, count)
            )
    cells.append(
        v4.new_markdown_cell(f"**{fmt_status(record.status)}** — {time_limit_verdict(record)}")
    )
    nb = v4.new_notebook(cells=cells, metadata=_nb_metadata(record))
    nbformat.validate(nb)
    return nb


def _nb_metadata(r: RunRecord) -> dict[str, Any]:
    k = next(
        (k for k in r.kernels if k.get("language") == "python"), r.kernels[0] if r.kernels else None
    )
    meta: dict[str, Any] = {
        "runbook": {"run_id": r.run_id, "mode": r.mode, "status": r.status, **r.runbook},
    }
    if k is not None:
        meta["kernelspec"] = {
            "name": str(k.get("kernel") or ""),
            "display_name": f"{k.get('kernel')} ({k.get('implementation') or k.get('language')})",
            "language": str(k.get("language") or ""),
        }
        meta["language_info"] = {
            "name": str(k.get("language") or ""),
            "version": str(k.get("language_version") or ""),
        }
    return meta


def _nb_intro(r: RunRecord, have_source: bool) -> str:
    book = r.runbook
    lines = [
        f"# {'Drill' if r.drill else 'Run'} of {r.name}",
        "",
        f"- Runbook `{book.get('path', '')}` (SHA-256 `{str(book.get('sha256', ''))[:16]}`)",
        f"- Objective: {book.get('objective') or '—'}",
        f"- Run `{r.run_id}` by {r.operator} on {r.host}, started {r.started}",
    ]
    if r.inputs:
        lines.append("- Inputs: " + ", ".join(f"`{k}` = `{v}`" for k, v in r.inputs.items()))
    if not have_source:
        lines.append(
            "\n*The runbook file at this version was not found; the code shown is what the "
            "journal recorded.*"
        )
    return "\n".join(lines)


def _nb_step_heading(s: StepRecord, runbook: Runbook | None) -> str:
    where = f" (procedure `{s.procedure}`)" if s.procedure else ""
    head = f"## {s.label}. {s.title}{where}\n\n{fmt_status(s.status)} · {fmt_duration(s.duration)}"
    if s.role:
        head += f" · role {s.role}"
    if s.reason:
        head += f"\n\nReason: {s.reason}"
    if s.manual:
        step = _runbook_step(runbook, s)
        if step is not None and step.text:
            head += "\n\n" + step.text
        for d in s.decisions:
            head += f"\n\n> {d.get('decision')} by {d.get('by')}" + (
                f": {d['note']}" if d.get("note") else ""
            )
    for n in s.notes:
        flag = " (unclear)" if n.get("unclear") else ""
        head += f"\n\n> note by {n.get('by')}{flag}: {n.get('text')}"
    return head


def _runbook_step(runbook: Runbook | None, s: StepRecord) -> Any:
    if runbook is None:
        return None
    steps = runbook.steps
    if s.procedure:
        proc = runbook.procedure(s.procedure)
        steps = proc.steps if proc else ()
    return next((x for x in steps if x.id == s.step_id or x.number == s.number), None)


def _executions(s: StepRecord, runbook: Runbook | None) -> list[tuple[str, int, list[Event]]]:
    """(block id, attempt, outputs) for each block execution of a step, in order.

    Blocks with output are known to have run. From the runbook we also know the blocks that
    ran silently: all of them when the step succeeded, and when it failed, every block up to
    the one that failed (the one after the last block with output, unless that one errored).
    """
    step = _runbook_step(runbook, s)
    order = [b.id for b in step.executable_blocks] if step is not None else []
    by_attempt: dict[int, dict[str, list[Event]]] = {}
    for o in s.outputs:
        bid = str(o.get("block_id") or (order[0] if order else s.step_id))
        by_attempt.setdefault(int(o.get("attempt") or 1), {}).setdefault(bid, []).append(o)
    if not s.started or (s.kernel is None and not s.outputs):
        return []
    out: list[tuple[str, int, list[Event]]] = []
    for attempt in range(1, max(s.attempts, 1) + 1):
        seen = by_attempt.get(attempt, {})
        last = attempt == max(s.attempts, 1)
        ran = _blocks_run(order, seen, s.status if last else "failed")
        out += [(bid, attempt, seen.get(bid, [])) for bid in ran]
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


def _nb_code_cell(
    r: RunRecord,
    s: StepRecord,
    block: Block | None,
    block_id: str,
    attempt: int,
    outs: list[Event],
    count: int,
) -> Any:
    source = block.code if block is not None else (s.code or f"# code of {block_id} not recorded")
    outputs = [x for o in _merge_streams(outs) if (x := _nb_output(r, o, count)) is not None]
    cell = _nbformat().v4.new_code_cell(source=source, execution_count=count, outputs=outputs)
    cell.metadata["runbook"] = {
        "step": s.number,
        "step_id": s.step_id,
        "procedure": s.procedure,
        "block_id": block_id,
        "kernel": (block.kernel if block else None) or s.kernel,
        "attempt": attempt,
        "status": s.status,
    }
    if s.kernel and block is not None and block.lang:
        cell.metadata["runbook"]["language"] = block.lang
    return cell


def _nb_off_script_cell(r: RunRecord, action: Event, count: int) -> Any:
    outs = action.get("outputs") or []
    outputs = [x for o in _merge_streams(outs) if (x := _nb_output(r, o, count)) is not None]
    cell = _nbformat().v4.new_code_cell(
        source=str(action.get("code") or ""), execution_count=count, outputs=outputs
    )
    cell.metadata["runbook"] = {
        "off_script": True,
        "kernel": action.get("kernel"),
        "by": action.get("by"),
        "status": action.get("status"),
    }
    return cell


def _nb_output(r: RunRecord, o: Event, count: int) -> Any:
    new_output = _nbformat().v4.new_output
    kind = o.get("kind")
    if kind == "stream":
        return new_output(
            "stream", name=str(o.get("stream") or "stdout"), text=str(o.get("text") or "")
        )
    if kind == "error":
        return new_output(
            "error",
            ename=str(o.get("ename") or "Error"),
            evalue=str(o.get("evalue") or ""),
            traceback=[str(t) for t in o.get("traceback") or []],
        )
    data = _nb_data(r, o.get("data") or {}) or {"text/plain": str(o.get("text") or "")}
    if kind == "result":
        return new_output("execute_result", data=data, execution_count=count)
    return new_output("display_data", data=data)


def _nb_data(r: RunRecord, data: dict[str, Any]) -> dict[str, Any]:
    """Journal mime bundle -> notebook mime bundle: image files are read back and base64-encoded."""
    out: dict[str, Any] = {}
    for mime, value in data.items():
        if mime.startswith("image/") and mime != "image/svg+xml" and isinstance(value, str):
            path = r.run_dir / value
            if path.is_file():
                out[mime] = base64.b64encode(path.read_bytes()).decode()
        elif mime == "application/json" or mime.endswith("+json"):
            out[mime] = value if isinstance(value, dict | list) else {"value": value}
        else:
            out[mime] = _joined(value)
    return out


# --- writing ---------------------------------------------------------------------------------


def default_output(run_dir: Path, fmt: str) -> Path:
    return run_dir / f"report.{fmt}"


def write_report(run_dir: Path, fmt: str, out: Path | None = None) -> list[Path]:
    """Write the report (and its plot, for md and html); return the files written."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown report format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    record = load_run(run_dir)
    runbook = runbook_at_run(record)
    if runbook is not None:
        fill_from_runbook(record, runbook)
    out = out or default_output(run_dir, fmt)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "ipynb":
            _nbformat().write(render_notebook(record, runbook), str(out))
            return [out]
        plot = _plot(record, out)
        if fmt == "md":
            text = render_markdown(record, image=lambda p: _relative(p, out.parent), plot=plot)
        else:
            text = render_html(record, image=data_uri, plot=plot)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ReportError(
            f"cannot write the report: {exc.strerror}; choose another file with -o", path=str(out)
        ) from None
    return [out] + ([plot] if plot else [])


def _plot(record: RunRecord, out: Path) -> Path | None:
    runs = list_runs(record.run_dir.parent, record.runbook.get("id"))
    png = out.with_name(f"{out.stem}-durations.png")
    return plot_durations(
        runs, record.time_limit, png, highlight=record.run_id, title=f"{record.name}: run durations"
    )


def _relative(path: Path, base: Path) -> str:
    import os

    try:
        return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return path.resolve().as_uri()
