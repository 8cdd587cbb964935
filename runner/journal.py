"""The append-only, hash-chained journal of a run: `<runs_dir>/<run_id>/journal.jsonl`.

Every line is one JSON event. Each carries ``prev``, the SHA-256 of the previous line's bytes, so
an edit, insertion or deletion anywhere breaks the chain from that line on, and ends with
``hash``, the SHA-256 of the line without that field, so `verify` names the very line that was
edited. Deleting lines at the end leaves a valid chain, so the writer also keeps
``journal.head`` (the sequence number and hash of the last line made durable); `verify` compares
the two.

Durability: each event is written with one ``os.write`` on an ``O_APPEND`` descriptor, so once
``append`` returns the line is in the kernel's page cache and survives a SIGKILL of the runner.
:meth:`Journal.sync` fsyncs the file and the head; the runner calls it before each step starts,
so a crash of the machine loses at most the step under way.

Secrets: every string written passes through :class:`~runner.redact.Redactor`, which replaces
each secret value, in each of the forms it takes in output, with ``***``. The journal never sees a
secret.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import secrets as _secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RunbookError
from .redact import Redactor

JOURNAL = "journal.jsonl"
HEAD = "journal.head"
GENESIS = "0" * 64
SCHEMA_VERSION = 1

Event = dict[str, Any]


class JournalError(RunbookError):
    """A journal cannot be found, opened or written."""

    exit_code = 2


def default_runs_dir() -> Path:
    """`RUNBOOK_RUNS_DIR`, or `.runbook/runs` under the current folder."""
    return Path(os.environ.get("RUNBOOK_RUNS_DIR") or ".runbook/runs")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id(runbook_id: str) -> str:
    """Sortable by start time, readable, unique: `20261122T195144Z-compromised-endpoint-3fa2`."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{runbook_id[:40]}-{_secrets.token_hex(2)}"


def _line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


# Each line ends with its own hash, `,"hash":"<64 hex>"}`, taken over the line as it would be
# without that field. `prev` alone finds a change only at the line after it; the line's own hash
# names the line that was edited.
_HASH_KEY = b',"hash":"'
_SEAL_LEN = len(_HASH_KEY) + 64 + 2


def _seal(body: bytes, digest: str) -> bytes:
    return body[:-1] + _HASH_KEY + digest.encode("ascii") + b'"}'


def _unsealed(line: bytes) -> tuple[bytes, str] | None:
    """The line without its own hash, and that hash; None when the line carries none."""
    if len(line) <= _SEAL_LEN or not line.endswith(b'"}'):
        return None
    if line[-_SEAL_LEN : -_SEAL_LEN + len(_HASH_KEY)] != _HASH_KEY:
        return None
    return line[:-_SEAL_LEN] + b"}", line[-66:-2].decode("ascii", "replace")


class Journal:
    """The writer of one run's journal. Holds an exclusive lock while open."""

    def __init__(self, run_dir: Path, redactor: Redactor, fd: int, seq: int, prev: str) -> None:
        self.run_dir = run_dir
        self.path = run_dir / JOURNAL
        self.redactor = redactor
        self._fd = fd
        self._seq = seq
        self._prev = prev
        self._synced_seq = seq

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @classmethod
    def create(cls, runs_dir: Path, run_id: str, redactor: Redactor | None = None) -> Journal:
        run_dir = runs_dir / run_id
        try:
            run_dir.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise JournalError(f"run {run_id} already exists", path=str(run_dir)) from None
        except OSError as exc:
            raise JournalError(
                f"cannot create the run folder: {exc.strerror}; choose another with --runs-dir",
                path=str(run_dir),
            ) from None
        fd = cls._open_locked(run_dir / JOURNAL)
        return cls(run_dir, redactor or Redactor(), fd, 0, GENESIS)

    @classmethod
    def reopen(cls, run_dir: Path, redactor: Redactor | None = None) -> Journal:
        """Continue an existing journal (resume, approve, deny), after checking its chain."""
        result = verify(run_dir)
        if not result.ok:
            raise JournalError(
                f"the journal is not intact ({result.message}); it cannot be continued",
                path=str(run_dir / JOURNAL),
                line=result.line,
            )
        fd = cls._open_locked(run_dir / JOURNAL)
        return cls(run_dir, redactor or Redactor(), fd, result.lines, result.last_hash)

    @staticmethod
    def _open_locked(path: Path) -> int:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalError(
                "another runbook process is writing this run right now; wait for it to finish",
                path=str(path),
            ) from None
        return fd

    def append(self, event: str, **fields: Any) -> Event:
        """Write one event (secrets redacted) and return it as written."""
        record: Event = {"seq": self._seq + 1, "ts": now_iso(), "event": event}
        record.update(self.redactor.value(fields))
        record["prev"] = self._prev
        body = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
        digest = _line_hash(body.encode("utf-8"))
        data = _seal(body.encode("utf-8"), digest)
        os.write(self._fd, data + b"\n")
        self._seq += 1
        self._prev = _line_hash(data)
        record["hash"] = digest
        return record

    def sync(self) -> None:
        """Make every event so far durable, and record the head for tail-deletion checks."""
        if self._synced_seq == self._seq:
            return
        os.fsync(self._fd)
        head = self.run_dir / HEAD
        tmp = head.with_suffix(".tmp")
        tmp.write_text(json.dumps({"seq": self._seq, "sha256": self._prev}) + "\n")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, head)
        self._synced_seq = self._seq

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of checking a journal's chain."""

    ok: bool
    lines: int  # complete lines read
    message: str  # "intact" or what is wrong
    line: int | None = None  # 1-based line of the first problem
    last_hash: str = GENESIS  # hash of the last good line


def verify(run_dir: Path) -> VerifyResult:
    """Check the hash chain line by line and against the head; name the first bad line."""
    path = run_dir / JOURNAL
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise JournalError("no journal in this folder", path=str(run_dir)) from None
    prev, n = GENESIS, 0
    raw_lines = data.split(b"\n")
    trailing = raw_lines.pop()  # b"" when the file ends with a newline
    for n, raw in enumerate(raw_lines, 1):
        problem = _check_line(raw, n, prev)
        if problem:
            return VerifyResult(False, n - 1, problem, n, prev)
        prev = _line_hash(raw)
    if trailing:
        return VerifyResult(
            False, n, "the last line is incomplete (the writer stopped mid-line)", n + 1, prev
        )
    return _check_head(run_dir, n, prev, raw_lines)


def _check_line(raw: bytes, n: int, prev: str) -> str | None:
    try:
        record = json.loads(raw)
    except ValueError:
        return f"line {n} is not valid JSON"
    if not isinstance(record, dict):
        return f"line {n} is not a JSON object"
    sealed = _unsealed(raw)
    if sealed is None or _line_hash(sealed[0]) != sealed[1]:
        return f"line {n} was edited: it does not match its own hash"
    if record.get("prev") != prev:
        return (
            f"line {n} does not follow line {n - 1}: a line was inserted here or removed before it"
        )
    if record.get("seq") != n:
        return f"line {n} has sequence number {record.get('seq')}, expected {n}"
    return None


def _check_head(run_dir: Path, n: int, prev: str, raw_lines: list[bytes]) -> VerifyResult:
    try:
        head = json.loads((run_dir / HEAD).read_text())
        head_seq, head_hash = int(head["seq"]), str(head["sha256"])
    except FileNotFoundError:
        return VerifyResult(True, n, "intact", None, prev)
    except (ValueError, KeyError, TypeError):
        return VerifyResult(False, n, "journal.head is damaged", None, prev)
    if head_seq > n:
        return VerifyResult(
            False, n, f"lines after {n} were removed (the head records {head_seq})", n + 1, prev
        )
    if head_seq and _line_hash(raw_lines[head_seq - 1]) != head_hash:
        return VerifyResult(
            False, n, f"line {head_seq} differs from the recorded head", head_seq, prev
        )
    return VerifyResult(True, n, "intact", None, prev)


def read_events(run_dir: Path) -> list[Event]:
    """Every complete event of a run; a torn last line (crash mid-write) is left out."""
    try:
        data = (run_dir / JOURNAL).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JournalError("no journal in this folder", path=str(run_dir)) from None
    events = []
    for line in data.split("\n"):
        with contextlib.suppress(ValueError):
            if line.strip():
                events.append(json.loads(line))
    return events


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


_END_EVENTS = ("run_finished", "run_paused", "run_started")


def summarise(run_dir: Path, events: list[Event] | None = None) -> RunInfo | None:
    events = read_events(run_dir) if events is None else events
    start = next((e for e in events if e.get("event") == "run_started"), None)
    if start is None:
        return None
    book = start.get("runbook") or {}
    end = next(
        (e for e in reversed(events) if e.get("event") in _END_EVENTS),
        start,
    )
    if end.get("event") == "run_started":
        status = "running" if _writer_alive(run_dir) else "crashed"
    else:
        status = str(end.get("status", "unknown"))
    return RunInfo(
        run_id=str(start.get("run_id") or run_dir.name),
        run_dir=run_dir,
        runbook_id=str(book.get("id", "")),
        runbook_name=str(book.get("name", "")),
        runbook_path=str(book.get("path", "")),
        mode=str(start.get("mode", "run")),
        status=status,
        started=str(start.get("ts", "")),
        duration=end.get("duration") if end is not start else None,
        time_limit=book.get("time_limit"),
        within_time_limit=end.get("within_time_limit") if end is not start else None,
        operator=str(start.get("operator", "")),
    )


def _writer_alive(run_dir: Path) -> bool:
    """True when some process holds the journal's lock (the run is still going)."""
    try:
        fd = os.open(run_dir / JOURNAL, os.O_RDONLY)
    except OSError:
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
        info = summarise(run_dir)
        if info is not None and (runbook_id is None or info.runbook_id == runbook_id):
            out.append(info)
    return out


def find_run(runs_dir: Path, ref: str) -> Path:
    """A run folder from an id, a unique id prefix, a path, or `last`."""
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
