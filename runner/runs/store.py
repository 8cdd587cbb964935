"""The run store: where runs live, and the only way in or out of them.

Everything that writes a run goes through it (:meth:`RunStore.create`, :meth:`RunStore.reopen`
give the writer, which takes only typed events), and everything that reads one gets typed events
or the one fold's :class:`~runner.runs.state.RunRecord` from it. Today's backend is the
hash-chained file journal (:mod:`runner.runs.journal`), one folder per run under the runs folder;
the methods here are what a second backend (a database for the service) must provide.

Listing many runs must not read every journal in full: :func:`summary` folds only a run's
first line and the run-level events near its end (the last 64 KiB), which is all a list shows.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from runner.private_files import UnsafeFile, open_regular, read_regular, write_private
from runner.runs import events as ev
from runner.runs.journal import (
    JOURNAL,
    Journal,
    JournalError,
    VerifyResult,
    read_events,
    verified_events,
)
from runner.runs.redact import Redactor
from runner.runs.state import ResumeState, RunRecord, fold

_TAIL_BYTES = 64 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RUN_LEVEL = (ev.RunStarted, ev.RunResumed, ev.RunPaused, ev.RunFinished)


def default_runs_dir() -> Path:
    """`RUNBOOK_RUNS_DIR`, or `.runbook/runs` under the current folder."""
    return Path(os.environ.get("RUNBOOK_RUNS_DIR") or ".runbook/runs")


class RunWriter(Protocol):
    """What writes one run: the engine, a drill's operator, `approve`/`deny`. It takes only
    typed events and redacts every secret before anything reaches the backend."""

    @property
    def run_id(self) -> str: ...

    @property
    def run_dir(self) -> Path: ...

    @property
    def redactor(self) -> Redactor: ...

    def append(self, event: ev.JournalEvent) -> dict[str, Any]: ...

    def sync(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> RunWriter: ...

    def __exit__(self, *exc: object) -> None: ...


class RunStore:
    """The runs of one runs folder."""

    def __init__(self, runs_dir: Path | None = None) -> None:
        self.runs_dir = runs_dir or default_runs_dir()

    def create(self, run_id: str, redactor: Redactor | None = None) -> RunWriter:
        return Journal.create(self.runs_dir, run_id, redactor)

    def reopen(self, run_dir: Path, redactor: Redactor | None = None) -> RunWriter:
        """Continue a run (resume, approve, deny) after checking its chain."""
        return Journal.reopen(run_dir, redactor)

    def find(self, ref: str) -> Path:
        return find_run(self.runs_dir, ref)

    def runs(self, runbook_id: str | None = None) -> list[RunInfo]:
        return list_runs(self.runs_dir, runbook_id)

    def events(self, run_dir: Path) -> list[ev.JournalEvent]:
        return [ev.decode(e) for e in read_events(run_dir)]

    def verified(self, run_dir: Path) -> tuple[VerifyResult, RunRecord]:
        """The chain's verdict and the state folded from the very bytes that were verified."""
        result, events = verified_events(run_dir)
        return result, load_run(run_dir, events)

    def resume(self, run_dir: Path) -> tuple[VerifyResult, ResumeState]:
        result, record = self.verified(run_dir)
        return result, record.resume(keyed_from=result.keyed_from)


def keep_runbook(run_dir: Path, sha256: str, text: str) -> None:
    """Keep the text of the runbook a run (or an attempt of it) ran, beside its journal."""
    path = run_dir / f"runbook-{sha256}.md"
    if text and not path.exists():
        write_private(path, text.encode("utf-8"))


def kept_runbook(run_dir: Path, sha256: str) -> str | None:
    """The text `keep_runbook` kept for this SHA-256, or None (runs from before it did)."""
    if not _SHA256.fullmatch(sha256):
        return None
    try:
        return read_regular(run_dir / f"runbook-{sha256}.md").decode("utf-8")
    except (OSError, UnsafeFile, UnicodeDecodeError):
        return None


def load_run(run_dir: Path, events: list[dict[str, Any]] | None = None) -> RunRecord:
    """A run's whole state; a run without an end is `running` while its writer holds the
    lock, `crashed` once none does."""
    record = fold(run_dir, read_events(run_dir) if events is None else events)
    if record.status == "running":
        record.status = "running" if writer_alive(run_dir) else "crashed"
    return record


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One run as `runbook runs` lists it, summarised from its journal."""

    run_id: str
    run_dir: Path
    runbook_id: str
    runbook_name: str
    runbook_path: str
    mode: str  # run | drill | procedure
    status: str  # the last run_finished/run_paused status, or "running"/"crashed"
    started: str  # ISO 8601
    duration: float | None  # seconds, when finished
    time_limit: float | None
    within_time_limit: bool | None
    operator: str
    last_event: str | None = None  # ISO time of the journal's last line

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "runbook": {
                "id": self.runbook_id,
                "name": self.runbook_name,
                "path": self.runbook_path,
            },
            "mode": self.mode,
            "status": self.status,
            "started": self.started,
            "duration": self.duration,
            "time_limit": self.time_limit,
            "within_time_limit": self.within_time_limit,
            "operator": self.operator,
            "run_dir": str(self.run_dir),
        }


def summary(run_dir: Path) -> RunInfo | None:
    """A run as a list shows it, from its first line and the run-level events of its tail."""
    events, last = _head_and_tail(run_dir)
    if not events or not isinstance(events[0], ev.RunStarted):
        return None
    return dataclasses.replace(
        info_of(load_run(run_dir, [e.record() for e in events])), last_event=last
    )


def info_of(record: RunRecord) -> RunInfo:
    book = record.runbook
    ended = record.status not in ("running", "crashed")
    return RunInfo(
        run_id=record.run_id,
        run_dir=record.run_dir,
        runbook_id=str(book.get("id", "")),
        runbook_name=str(book.get("name", "")),
        runbook_path=str(book.get("path", "")),
        mode=record.mode,
        status=record.status,
        started=record.started,
        duration=record.duration if ended else None,
        time_limit=book.get("time_limit"),
        within_time_limit=record.within_time_limit if ended else None,
        operator=record.operator,
        last_event=record.last_event,
    )


def _head_and_tail(run_dir: Path) -> tuple[list[ev.JournalEvent], str | None]:
    """The first event and the run-level events in the last 64 KiB, and the time of the last
    line: two reads of a journal, however long it grew."""
    try:
        fd = open_regular(run_dir / JOURNAL)
    except (OSError, UnsafeFile):
        return [], None
    try:
        size = os.fstat(fd).st_size
        head = os.pread(fd, min(size, _TAIL_BYTES), 0)
        if b"\n" not in head and size > len(head):
            head = os.pread(fd, size, 0)  # a first line over 64 KiB (many inputs): read it whole
        start = max(0, size - _TAIL_BYTES)
        tail = head if start == 0 else os.pread(fd, _TAIL_BYTES, start)
    finally:
        os.close(fd)
    first, _, rest = head.partition(b"\n")
    lines = rest.split(b"\n") if start == 0 else tail.split(b"\n")[1:]  # the first is cut
    out: list[ev.JournalEvent] = []
    last: str | None = None
    for raw in [first, *lines]:
        record = _json_line(raw)
        if record is not None:
            event = ev.decode(record)
            last = event.ts or last
            if isinstance(event, _RUN_LEVEL):
                out.append(event)
    return out, last


def _json_line(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def writer_alive(run_dir: Path) -> bool:
    """True when some process holds the journal's lock (the run is still going)."""
    try:
        fd = open_regular(run_dir / JOURNAL)
    except (OSError, UnsafeFile):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def iter_run_dirs(runs_dir: Path) -> Iterator[Path]:
    if not runs_dir.is_dir():
        return
    for child in sorted(runs_dir.iterdir(), reverse=True):
        if (child / JOURNAL).is_file():
            yield child


def list_runs(runs_dir: Path, runbook_id: str | None = None) -> list[RunInfo]:
    """Runs newest first, optionally only those of one runbook."""
    out = []
    for run_dir in iter_run_dirs(runs_dir):
        info = summary(run_dir)
        if info is not None and (runbook_id is None or info.runbook_id == runbook_id):
            out.append(info)
    return out


def find_run(runs_dir: Path, ref: str) -> Path:
    """A run folder from an id, a unique id prefix, a path, or `last`."""
    if not ref.strip():
        # An empty prefix would match any run, and Path("") is the current folder.
        raise JournalError(
            "no run given; pass a run id (or a unique prefix of one), a run folder, or `last`",
            path=str(runs_dir),
        )
    candidate = Path(ref)
    if (candidate / JOURNAL).is_file():
        return candidate
    runs = list(iter_run_dirs(runs_dir))
    if ref == "last":
        if not runs:
            raise JournalError(f"no runs yet in {runs_dir}", path=str(runs_dir))
        return runs[0]
    matches = [r for r in runs if r.name == ref] or [r for r in runs if r.name.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise JournalError(
            f"no run {ref!r} in {runs_dir}; `runbook runs` lists them (or pass --runs-dir)",
            path=str(runs_dir),
        )
    raise JournalError(
        f"{ref!r} matches {len(matches)} runs; give more of the id", path=str(runs_dir)
    )
