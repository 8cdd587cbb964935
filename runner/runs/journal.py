"""The append-only, sealed, hash-chained journal of a run: `<runs_dir>/<run_id>/journal.jsonl`.

Every line is one JSON event. Each carries ``prev``, the SHA-256 of the previous line's bytes, so
an edit, insertion or deletion anywhere breaks the chain from that line on, and ends with its own
seal, taken over the line without it, so `verify` names the very line that was edited. The seal
is ``hmac``, an HMAC-SHA256 under the user's journal key (:mod:`runner.runs.key`), which is
kept outside the runs folder: whoever can write the folder but not read the key cannot re-chain
a journal, append a line or forge an approval. Journals written before keys existed carry
``hash``, a plain SHA-256; they still verify, as "unkeyed", which proves only that the file is
self-consistent. A journal may turn from unkeyed to keyed when an old run is continued, never back.

Deleting lines at the end leaves a valid chain, so the writer also keeps ``journal.head``: the
sequence number and hash of the last line, sealed with the key. It is rewritten in place after
every line; once a run has events a missing or foreign head is a failure.

Durability: each event is written with ``os.write`` on an ``O_APPEND`` descriptor, so once
``append`` returns the line is in the kernel's page cache and survives a SIGKILL of the runner. A
short write (a full disk, a file-size limit) is rolled back to the last whole line and raised as
:class:`JournalWriteError`, so the journal stays intact and the run can be resumed once there is
room. :meth:`Journal.sync` fsyncs the journal, one fsync; the runner calls it before each step
starts, so a crash of the machine loses at most the step under way. The head is fsynced on close.

Secrets: every string written passes through :class:`~runner.runs.redact.Redactor`, which replaces
each secret value, in each of the forms it takes in output, with ``***``. The journal never sees a
secret.

Long on purpose: the chain, the seal, the lock, the durable append, verify and repair all reason
about the same bytes on disk.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import secrets as _secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import ExitCode, RunbookError
from runner.private_files import UnsafeFile, read_regular
from runner.runs.events import JournalEvent, JournalRepaired, UnknownEvent
from runner.runs.key import JournalKey, load_key
from runner.runs.redact import Redactor

JOURNAL = "journal.jsonl"
HEAD = "journal.head"
GENESIS = "0" * 64
# The head is rewritten in place at a fixed size, one sector, so that it is never seen half new.
_HEAD_SIZE = 255
_HEAD_LIMIT = 4096

Event = dict[str, Any]
REPAIR_HINT = "; `runbook verify --repair RUN` mends a torn last line (journaled)"


class JournalError(RunbookError):
    """A journal cannot be found, opened or written."""

    exit_code = ExitCode.USAGE


class JournalWriteError(JournalError):
    """An event could not be written (full disk, file-size limit); the journal was rolled back
    to its last whole line, so the run stops here and can be resumed once there is room."""

    exit_code = ExitCode.FAILED


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id(runbook_id: str) -> str:
    """Sortable by start time, readable, unique: `20261122T195144Z-endpoint-3fa2c01d`."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    # 32 random bits: the service starts many runs a second, and with 16 two runs started in
    # the same second would collide about once in ten 800-run benchmarks (the second run could
    # not be created).
    return f"{stamp}-{runbook_id[:40]}-{_secrets.token_hex(4)}"


def _line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


# Each line ends with its own seal, `,"hmac":"<64 hex>"}` (keyed) or `,"hash":"<64 hex>"}`
# (unkeyed, older journals), taken over the line as it would be without that field. `prev` alone
# finds a change only at the line after it; the line's own seal names the line that was edited.
_HMAC_KEY = b',"hmac":"'
_HASH_KEY = b',"hash":"'
_SEAL_LEN = len(_HASH_KEY) + 64 + 2


def _seal(body: bytes, kind: bytes, digest: str) -> bytes:
    return body[:-1] + kind + digest.encode("ascii") + b'"}'


def _unsealed(line: bytes) -> tuple[bytes, bool, str] | None:
    """The line without its seal, whether the seal is keyed, and the seal; None without one."""
    if len(line) <= _SEAL_LEN or not line.endswith(b'"}'):
        return None
    kind = line[-_SEAL_LEN : -_SEAL_LEN + len(_HASH_KEY)]
    if kind not in (_HASH_KEY, _HMAC_KEY):
        return None
    return line[:-_SEAL_LEN] + b"}", kind == _HMAC_KEY, line[-66:-2].decode("ascii", "replace")


def _head_record(key: JournalKey | None, seq: int, last: str) -> bytes:
    head: dict[str, Any] = {"seq": seq, "sha256": last}
    if key is not None:
        head["key"] = key.key_id
        head["hmac"] = key.seal(f"journal.head:{seq}:{last}".encode())
    return json.dumps(head).encode("ascii").ljust(_HEAD_SIZE) + b"\n"


class Journal:
    """The writer of one run's journal. Holds an exclusive lock while open."""

    def __init__(
        self,
        run_dir: Path,
        redactor: Redactor,
        fds: tuple[int, int],
        seq: int,
        prev: str,
        key: JournalKey,
    ) -> None:
        self.run_dir = run_dir
        self.path = run_dir / JOURNAL
        self.redactor = redactor
        self._fd, self._head_fd = fds
        self._seq = seq
        self._prev = prev
        self._synced_seq = seq
        self._key = key
        self._size = os.fstat(self._fd).st_size

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @property
    def key(self) -> JournalKey:
        return self._key

    @classmethod
    def create(cls, runs_dir: Path, run_id: str, redactor: Redactor | None = None) -> Journal:
        key = load_key(create=True)
        assert key is not None
        run_dir = runs_dir / run_id
        try:
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            run_dir.mkdir(mode=0o700)
        except FileExistsError:
            raise JournalError(f"run {run_id} already exists", path=str(run_dir)) from None
        except OSError as exc:
            raise JournalError(
                f"cannot create the run folder: {exc.strerror}; choose another with --runs-dir",
                path=str(run_dir),
            ) from None
        fds = cls._open_locked(run_dir, create=True)
        journal = cls(run_dir, redactor or Redactor(), fds, 0, GENESIS, key)
        journal._write_head()
        return journal

    @classmethod
    def reopen(cls, run_dir: Path, redactor: Redactor | None = None) -> Journal:
        """Continue an existing journal (resume, approve, deny), after checking its chain."""
        key = load_key(create=True)
        assert key is not None
        result = verify(run_dir, key)
        if not result.ok:
            hint = REPAIR_HINT if result.torn else ""
            raise JournalError(
                f"the journal is not intact ({result.message}); it cannot be continued{hint}",
                path=str(run_dir / JOURNAL),
                line=result.line,
            )
        fds = cls._open_locked(run_dir, create=False)
        return cls(run_dir, redactor or Redactor(), fds, result.lines, result.last_hash, key)

    @staticmethod
    def _open_locked(run_dir: Path, *, create: bool) -> tuple[int, int]:
        flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        path = run_dir / JOURNAL
        try:
            fd = os.open(path, flags | (os.O_CREAT | os.O_EXCL if create else 0), 0o600)
        except OSError as exc:
            raise JournalError(
                f"cannot open the journal for writing: {exc.strerror} (a symbolic link or a "
                "file planted there is never written through)",
                path=str(path),
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalError(
                "another runbook process is writing this run right now; wait for it to finish",
                path=str(path),
            ) from None
        try:
            head_fd = os.open(
                run_dir / HEAD, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
        except OSError as exc:
            os.close(fd)
            raise JournalError(
                f"cannot open journal.head for writing: {exc.strerror}", path=str(run_dir / HEAD)
            ) from None
        return fd, head_fd

    def append(self, event: JournalEvent) -> Event:
        """Write one event (secrets redacted) and return its record as written."""
        if not isinstance(event, JournalEvent) or isinstance(event, UnknownEvent):
            raise TypeError(f"a journal takes typed events, not {event!r}")
        fields = event.record()
        record: Event = {"seq": self._seq + 1, "ts": now_iso(), "event": fields.pop("event")}
        del fields["seq"], fields["ts"]
        record.update(self.redactor.value(fields))
        record["prev"] = self._prev
        body = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
        raw = body.encode("utf-8", "backslashreplace")
        digest = self._key.seal(raw)
        data = _seal(raw, _HMAC_KEY, digest)
        self._write_line(data + b"\n")
        self._seq += 1
        self._prev = _line_hash(data)
        self._write_head()
        record["hmac"] = digest
        return record

    def _write_line(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            # A short write left part of a line: cut it off, so the journal ends on a whole line
            # and stays intact for `verify` and `resume`.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise JournalWriteError(
                f"the journal could not be written ({exc.strerror}), so the run stops here; "
                f"the journal is intact: make room, then `runbook resume {self.run_id}`",
                path=str(self.path),
            ) from None
        self._size += len(data)

    def _write_head(self) -> None:
        # In place, without fsync: the head follows the page cache like the journal does, and
        # close() makes it durable. Rewriting a file of the same size allocates nothing, so it
        # works on a full disk too.
        os.pwrite(self._head_fd, _head_record(self._key, self._seq, self._prev), 0)

    def sync(self) -> None:
        """Make every event so far durable: one fsync."""
        if self._synced_seq == self._seq:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise JournalWriteError(
                f"the journal could not be made durable ({exc.strerror}); the run stops here",
                path=str(self.path),
            ) from None
        self._synced_seq = self._seq

    def close(self) -> None:
        if self._fd >= 0:
            try:
                self.sync()
                with contextlib.suppress(OSError):
                    os.fsync(self._head_fd)
            finally:
                os.close(self._fd)
                os.close(self._head_fd)
                self._fd = self._head_fd = -1

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
    keyed_from: int | None = None  # first line sealed with the key; None when none is
    torn: bool = False  # the last line is incomplete (a crash mid-write)
    repairable: bool = False  # only a torn last line or a lost head: `verify --repair`

    @property
    def keyed(self) -> bool:
        """Every line is sealed with the key."""
        return self.keyed_from == 1 or (self.keyed_from is None and self.lines == 0)


def _read_journal(run_dir: Path) -> bytes:
    try:
        return read_regular(run_dir / JOURNAL)
    except FileNotFoundError:
        raise JournalError("no journal in this folder", path=str(run_dir)) from None
    except UnsafeFile as exc:
        raise JournalError(exc.message, path=exc.path) from None


def verify(run_dir: Path, key: JournalKey | None = None) -> VerifyResult:
    """Check the seals, the chain and the head; name the first bad line."""
    return verify_bytes(run_dir, _read_journal(run_dir), key or load_key(create=False))


def verify_bytes(
    run_dir: Path, data: bytes, key: JournalKey | None, *, head: bool = True
) -> VerifyResult:
    prev, n, keyed_from = GENESIS, 0, None
    raw_lines = data.split(b"\n")
    trailing = raw_lines.pop()  # b"" when the file ends with a newline
    for n, raw in enumerate(raw_lines, 1):
        problem, keyed = _check_line(raw, n, prev, key, keyed_from is not None)
        if problem:
            problem = (_foreign_key(run_dir, key) if keyed and key else None) or problem
            return VerifyResult(False, n - 1, problem, n, prev, keyed_from)
        if keyed and keyed_from is None:
            keyed_from = n
        prev = _line_hash(raw)
    if trailing:
        message = "the last line is incomplete (the writer stopped mid-line)"
        return VerifyResult(False, n, message, n + 1, prev, keyed_from, True, True)
    if not head:
        return VerifyResult(True, n, "intact", None, prev, keyed_from)
    return _check_head(run_dir, n, prev, raw_lines, key, keyed_from)


def _check_line(
    raw: bytes, n: int, prev: str, key: JournalKey | None, keyed_before: bool
) -> tuple[str | None, bool]:
    try:
        record = json.loads(raw)
    except ValueError:
        return f"line {n} is not valid JSON", False
    if not isinstance(record, dict):
        return f"line {n} is not a JSON object", False
    sealed = _unsealed(raw)
    if sealed is None:
        return f"line {n} was edited: it does not match its own hash", False
    body, keyed, digest = sealed
    if keyed:
        if key is None:
            return (
                f"line {n} is sealed with a journal key and there is none here; verify where "
                "the run was written, or point RUNBOOK_JOURNAL_KEY at its key"
            ), True
        if not key.check(body, digest):
            return f"line {n} was edited: it does not match its own hash", True
    elif keyed_before:
        return f"line {n} is unkeyed after keyed lines: it was written without the key", False
    elif _line_hash(body) != digest:
        return f"line {n} was edited: it does not match its own hash", False
    if record.get("prev") != prev:
        return (
            f"line {n} does not follow line {n - 1}: a line was inserted here or removed before it"
        ), keyed
    if record.get("seq") != n:
        return f"line {n} has sequence number {record.get('seq')}, expected {n}", keyed
    return None, keyed


def _foreign_key(run_dir: Path, key: JournalKey) -> str | None:
    """Why a keyed line fails when the head names another key than the one at hand."""
    with contextlib.suppress(ValueError, UnsafeFile, OSError):
        head = _read_head(run_dir) or {}
        if head.get("key") and head.get("key") != key.key_id:
            return (
                f"the journal was sealed with another journal key (id {head['key']}) than the "
                f"one at {key.path} (id {key.key_id}); verify with that key (RUNBOOK_JOURNAL_KEY)"
            )
    return None


def _read_head(run_dir: Path) -> dict[str, Any] | None:
    try:
        head = json.loads(read_regular(run_dir / HEAD, _HEAD_LIMIT))
    except FileNotFoundError:
        return None
    if not isinstance(head, dict):
        raise ValueError("not an object")
    return head


def _check_head(
    run_dir: Path,
    n: int,
    prev: str,
    raw_lines: list[bytes],
    key: JournalKey | None,
    keyed_from: int | None,
) -> VerifyResult:
    def bad(message: str, line: int | None = None, *, lost: bool = False) -> VerifyResult:
        # `lost`: the head is gone or ahead of the lines, as after a power cut between the
        # head's and the journal's writeback; repairable, with the loss journaled.
        return VerifyResult(False, n, message, line, prev, keyed_from, repairable=lost)

    try:
        head = _read_head(run_dir)
        if head is not None:
            head_seq, head_hash = int(head["seq"]), str(head["sha256"])
    except UnsafeFile as exc:
        return bad(exc.message)
    except (ValueError, KeyError, TypeError):
        return bad("journal.head is damaged", lost=True)
    if head is None:
        if n == 0:
            return VerifyResult(True, 0, "intact", None, prev, keyed_from)
        return bad(f"journal.head is missing: lines may have been cut after line {n}", lost=True)
    if keyed_from is not None:
        seal = f"journal.head:{head_seq}:{head_hash}".encode()
        mac = head.get("hmac")
        if not isinstance(mac, str) or key is None or not key.check(seal, mac):
            return bad("journal.head is not sealed with this journal's key: it was replaced")
    if head_seq > n:
        return bad(f"lines after {n} were removed (the head records {head_seq})", n + 1, lost=True)
    if head_seq and _line_hash(raw_lines[head_seq - 1]) != head_hash:
        return bad(f"line {head_seq} differs from the recorded head", head_seq)
    return VerifyResult(True, n, "intact", None, prev, keyed_from)


def repair(run_dir: Path, by: str) -> str | None:
    """Mend a journal whose only fault is a torn last line or a lost head: cut the partial line,
    then journal a `journal_repaired` event (what was wrong, what was cut) that reseals the head.
    Returns what was wrong, or None when the journal is intact. Anything else is refused."""
    key = load_key(create=False)
    if key is None:
        raise JournalError(
            "a journal is repaired with its journal key and there is none here; repair where "
            "the run was written, or point RUNBOOK_JOURNAL_KEY at its key",
            path=str(run_dir),
        )
    fds = Journal._open_locked(run_dir, create=False)  # no writer may be at work meanwhile
    try:
        data = _read_journal(run_dir)
        result = verify_bytes(run_dir, data, key)
        if result.ok:
            return None
        whole = data[: data.rfind(b"\n") + 1]
        chain = verify_bytes(run_dir, whole, key, head=False)
        if not result.repairable or not chain.ok:
            raise JournalError(
                f"the journal is not intact ({result.message}); only a torn last line or a lost "
                "head can be repaired, not an edited journal",
                path=str(run_dir / JOURNAL),
                line=result.line,
            )
        os.ftruncate(fds[0], len(whole))
    except BaseException:
        os.close(fds[0])
        os.close(fds[1])
        raise
    cut = data[len(whole) :]
    with Journal(run_dir, Redactor(), fds, chain.lines, chain.last_hash, key) as journal:
        journal.append(
            JournalRepaired(
                problem=result.message,
                removed_bytes=len(cut),
                removed_sha256=_line_hash(cut) if cut else None,
                by=by,
            )
        )
    return result.message


def verified_events(run_dir: Path) -> tuple[VerifyResult, list[Event]]:
    """The chain's verdict and the events of the very bytes that were verified."""
    data = _read_journal(run_dir)
    result = verify_bytes(run_dir, data, load_key(create=False))
    return result, _parse_events(data.decode("utf-8", "replace"))


def read_events(run_dir: Path) -> list[Event]:
    """Every complete event of a run; a torn last line (crash mid-write) is left out."""
    return _parse_events(_read_journal(run_dir).decode("utf-8", "replace"))


def _parse_events(data: str) -> list[Event]:
    events = []
    for line in data.split("\n"):
        with contextlib.suppress(ValueError):
            if line.strip():
                events.append(json.loads(line))
    return events
