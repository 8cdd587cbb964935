"""The per-user key that seals journals (HMAC-SHA256), kept outside every runs folder.

A journal chained with plain SHA-256 can be rewritten by anyone who can write the file: they
recompute the chain. Sealed with a key they cannot read, a rewrite, a cut or an appended line is
found by `runbook verify`. The key lives in the user's configuration
(``$XDG_CONFIG_HOME/secops-runbooks/journal.key``, 0600, created on first use), or wherever
``RUNBOOK_JOURNAL_KEY`` points (a service holds its own there).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from runner.errors import ExitCode, RunbookError

KEY_ENV = "RUNBOOK_JOURNAL_KEY"
_KEY_BYTES = 32


class JournalKeyError(RunbookError):
    """The journal key cannot be read or created, or is readable by others."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True, slots=True)
class JournalKey:
    """A secret for sealing journal lines, and where it came from."""

    secret: bytes = field(repr=False)  # never printed: a repr in a traceback would leak it
    path: Path = Path()  # where it was read from, for messages

    @property
    def key_id(self) -> str:
        """A short public name for the key, so `verify` can say a journal used another one."""
        return hmac.new(self.secret, b"secops-runbooks key id", hashlib.sha256).hexdigest()[:16]

    def seal(self, data: bytes) -> str:
        return hmac.new(self.secret, data, hashlib.sha256).hexdigest()

    def check(self, data: bytes, digest: str) -> bool:
        return hmac.compare_digest(self.seal(data), digest)


def key_path() -> Path:
    """`RUNBOOK_JOURNAL_KEY`, else the key in the user's configuration folder."""
    explicit = os.environ.get(KEY_ENV)
    if explicit:
        return Path(explicit).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "secops-runbooks" / "journal.key"


def load_key(*, create: bool) -> JournalKey | None:
    """The key; created when missing and ``create`` (writers), else None (readers)."""
    path = key_path()
    secret = _read(path)
    if secret is None and create:
        secret = _create(path)
    return JournalKey(secret, path) if secret is not None else None


def _read(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalKeyError(
            f"cannot read the journal key: {exc.strerror}; fix it or point {KEY_ENV} elsewhere",
            path=str(path),
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise JournalKeyError("the journal key is not a regular file", path=str(path))
        if info.st_mode & 0o077 or info.st_uid != os.getuid():
            # As ssh does for private keys: a key others can read seals nothing.
            raise JournalKeyError(
                f"the journal key is readable by others or not yours; `chmod 600 {path}`, or "
                "remove it to make a new one (journals sealed with it then read as foreign)",
                path=str(path),
            )
        text = os.read(fd, 4096).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) < _KEY_BYTES:
        raise JournalKeyError(
            f"the journal key is damaged (expected {_KEY_BYTES * 2} hex digits)", path=str(path)
        )
    return secret


def _create(path: Path) -> bytes:
    secret = secrets.token_bytes(_KEY_BYTES)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, secret.hex().encode("ascii") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        # link, not rename: two runs creating the key at once agree on one.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    except OSError as exc:
        raise JournalKeyError(
            f"cannot create the journal key: {exc.strerror}; point {KEY_ENV} at a file you can "
            "write (outside the runs folder)",
            path=str(path),
        ) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    found = _read(path)
    assert found is not None  # just linked, or linked by the other writer
    return found
