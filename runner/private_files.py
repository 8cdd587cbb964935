"""Reading and writing files in a run folder without trusting what else is in it.

A run folder may be shared, copied from another machine or written to by someone who wants the
evidence to say something else. So nothing here follows a symbolic link planted in the folder,
everything written is private to its owner (0600), and a reader refuses anything that is not a
regular file: a FIFO would block it forever and `/dev/zero` would fill its memory.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from runner.errors import ExitCode, RunbookError

PRIVATE = 0o600
# O_NOFOLLOW: a symlink as the last component fails (ELOOP) instead of being followed.
# O_NONBLOCK: opening a FIFO for reading returns at once, so fstat can refuse it.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class UnsafeFile(RunbookError):
    """A file to read or write is a symlink, a FIFO, a device or too large."""

    exit_code = ExitCode.USAGE


def _refusal(path: Path, mode: int) -> str:
    kind = (
        "a FIFO"
        if stat.S_ISFIFO(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a folder"
        if stat.S_ISDIR(mode)
        else "not a regular file"
    )
    return f"{path.name} is {kind}, not a regular file; remove it"


def open_regular(path: Path, *, follow: bool = False) -> int:
    """A read descriptor on a regular file; symlinks (unless ``follow``) and specials refused."""
    flags = _READ_FLAGS & ~os.O_NOFOLLOW if follow else _READ_FLAGS
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the last component is a symlink
            raise UnsafeFile(
                f"{path.name} is a symbolic link; a run folder's files are never followed "
                "through links: remove it",
                path=str(path),
            ) from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UnsafeFile(_refusal(path, mode), path=str(path))
    os.set_blocking(fd, True)
    return fd


def read_regular(path: Path, limit: int | None = None, *, follow: bool = False) -> bytes:
    """The bytes of a regular file, at most ``limit`` of them (more is refused, not cut)."""
    fd = open_regular(path, follow=follow)
    try:
        chunks: list[bytes] = []
        total = 0
        # Read until end of file rather than trusting st_size: the file may grow meanwhile.
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if limit is not None and total > limit:
                raise UnsafeFile(
                    f"{path.name} is over the {limit:,}-byte limit for it", path=str(path)
                )
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def private_folder(path: Path) -> Path:
    """A folder inside a run folder, created 0700; a symlink planted in its place is refused."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if path.is_symlink() or not path.is_dir():
            raise UnsafeFile(
                f"{path.name} is a symbolic link or not a folder; remove it", path=str(path)
            ) from None
    return path


def private_state(path: Path) -> Path:
    """The service's state folder (users, alerts as received, the dev server's database),
    created 0700 with its parents; an existing one of this user's is made 0700 too, since
    what it holds (alert payloads, session digests) is nobody else's to read."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.stat()
    if info.st_uid == os.geteuid() and info.st_mode & 0o077:
        path.chmod(0o700)
    return path


def append_private(path: Path, line: str) -> None:
    """Append one line to a file created 0600 (a JSON-lines record of the service's)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                 PRIVATE)  # fmt: skip
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def write_private(path: Path, data: bytes) -> None:
    """Write a file whole and private (0600): a temporary file created exclusively beside it,
    then renamed over it. Neither step follows a link planted at either name."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    # rename replaces whatever is at `path`, a symlink included, and never writes through it.
    os.replace(tmp, path)
