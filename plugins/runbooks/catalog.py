"""The runbook files of the site: read, parsed, checked and dated once, then cached.

Per-page work must stay constant (the benchmark holds the plugin to within 5-10 % of a plain
build), so a file is parsed and checked once per change, not once per build, and the dates of
all files come from a single `git log`.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from stat import S_ISLNK
from typing import NamedTuple

from runner.check.lint import lint
from runner.errors import UnreadableRunbook
from runner.format.model import Problem, Runbook
from runner.format.syntax import page_slug
from runner.parse.markdown import parse_text, read_text


@dataclass(frozen=True, slots=True)
class Entry:
    """One runbook file and what the site shows about it."""

    runbook: Runbook  # the parsed plan
    lines: tuple[str, ...]  # the file's text; index 0 is line 1
    display: str  # the path as a user types it: `runbooks/x.md` (messages, the Run-it command)
    problems: tuple[Problem, ...]  # what `runbook check` reports, with `display` as the path

    @property
    def id(self) -> str:
        return self.runbook.metadata.id

    @property
    def slug(self) -> str:
        """The id made safe as a file name: `check` reports a bad id, the page still builds."""
        return page_slug(self.id)

    @property
    def src_uri(self) -> str:
        """Where the generated page pretends to live in the docs folder."""
        return f"runbooks/{self.slug}.md"

    @property
    def has_errors(self) -> bool:
        return any(p.level == "error" for p in self.problems)


@dataclass(frozen=True, slots=True)
class Loaded:
    """The result of reading a runbooks folder."""

    entries: tuple[Entry, ...]  # sorted by service, then name
    problems: tuple[Problem, ...]  # every problem of every file, unreadable files included
    last_change: Mapping[str, str]  # runbook id -> ISO date of the last change


def display_path(path: Path, base: Path) -> str:
    """`runbooks/x.md` when the file is under the project folder, else the absolute path."""
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


class _Names:
    """`display_path` and the file status of each file of one folder, resolving the folder once:
    resolving costs a system call per path component, which for a hundred files was most of the
    catalog's own time. Only a symbolic link, which may point anywhere, is resolved on its own."""

    def __init__(self, folder: Path, base: Path) -> None:
        self.base = base
        shown = display_path(folder, base)
        self.prefix = "" if shown == "." else f"{shown.rstrip('/')}/"

    def look(self, path: Path) -> tuple[str, os.stat_result | None]:
        """The file's display path and status (its target's, for a link); no status when there
        is none to get (the file went away, a dangling link): reading it then says why."""
        display = f"{self.prefix}{path.name}"
        try:
            stat = path.lstat()
            if not S_ISLNK(stat.st_mode):
                return display, stat
            display = display_path(path, self.base)
            return display, path.stat()
        except OSError:
            return display, None


# A named tuple, not a dataclass: it is private and short-lived, and a frozen dataclass costs
# close to a millisecond to define, on every build, for nothing it would add here.
class _File(NamedTuple):
    """A runbook file looked at and read, not parsed yet."""

    path: Path
    display: str  # as in `Entry`
    stat: os.stat_result | None  # None when there is none to get (see `_Names.look`)
    key: tuple[int, int] | None  # (mtime_ns, size): what the parse cache is keyed by
    got: Entry | tuple[str, str] | UnreadableRunbook  # cached; text and SHA-256; or why not


class Catalog:
    """Parsed runbooks keyed by file, kept across `mkdocs serve` rebuilds."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[tuple[int, int], Entry]] = {}

    def load(self, folder: Path, base: Path) -> Loaded:
        """Every `*.md` file of ``folder`` and its folders (shared runbooks that others call
        live in one, e.g. `runbooks/shared/`; hidden folders skipped); ``base`` is the project
        folder. Pages are named by runbook id, so a nested runbook's page sits beside the
        others."""
        with git_dates(folder) as dates:
            entries, problems, mtimes = self._read(folder, base)
        last = {e.id: dates.get(e.runbook.path.name) or _date(mtimes[e.id]) for e in entries}
        return Loaded(tuple(entries), tuple(problems), last)

    def _read(
        self, folder: Path, base: Path
    ) -> tuple[list[Entry], list[Problem], dict[str, float | None]]:
        """The entries, sorted; every problem; and each entry's file time, by runbook id."""
        # By path, as the folder tree lists them.
        paths = (
            sorted(
                (p for p in folder.rglob("*.md") if not any(
                    part.startswith(".") for part in p.relative_to(folder).parts)),
                key=lambda p: p.relative_to(folder).parts,
            )
            if folder.is_dir()
            else []
        )  # fmt: skip
        names = _Names(folder, base)
        # Every file is looked at and read before any is parsed: one after the other, the system
        # calls and reads took half the time they took between parses (2 ms against 4-8 ms for
        # a hundred files), which each leave the processor's caches full of parser state.
        files = [self._fetch(path, names) for path in paths]
        entries: list[Entry] = []
        problems: list[Problem] = []
        seen: dict[str, Entry] = {}
        mtimes: dict[str, float | None] = {}
        for file in files:
            try:
                entry = self._entry(file)
            except UnreadableRunbook as exc:
                problems.append(replace(exc.as_problem(), path=file.display))
                continue
            problems += entry.problems
            if entry.id in seen:
                problems.append(_duplicate(entry, seen[entry.id]))
                continue
            seen[entry.id] = entry
            mtimes[entry.id] = file.stat.st_mtime if file.stat is not None else None
            entries.append(entry)
        entries.sort(key=lambda e: (e.runbook.metadata.service.lower(), e.runbook.metadata.name))
        self._forget(set(paths))
        return entries, problems, mtimes

    def _fetch(self, path: Path, names: _Names) -> _File:
        display, stat = names.look(path)
        key = (stat.st_mtime_ns, stat.st_size) if stat is not None else None
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key and cached[1].display == display:
            return _File(path, display, stat, key, cached[1])
        try:
            # Without a status, this says why the file is unreadable.
            return _File(path, display, stat, key, read_text(path, display))
        except UnreadableRunbook as exc:
            return _File(path, display, stat, key, exc)

    def _entry(self, file: _File) -> Entry:
        """The file's entry, parsed and checked unless cached; raises UnreadableRunbook."""
        if isinstance(file.got, Entry):
            return file.got
        if isinstance(file.got, UnreadableRunbook):
            raise file.got
        text, sha = file.got
        runbook = parse_text(text, path=file.path, sha256=sha)
        found = tuple(replace(p, path=file.display) for p in _check(runbook))
        entry = Entry(runbook, tuple(text.split("\n")), file.display, found)
        if file.key is not None:
            self._cache[file.path] = (file.key, entry)
        return entry

    def _forget(self, present: set[Path]) -> None:
        for path in set(self._cache) - present:
            del self._cache[path]


def _check(runbook: Runbook) -> tuple[Problem, ...]:
    """What `runbook check` reports for the already parsed file (so it is parsed once)."""
    return tuple(lint(runbook))


def _duplicate(entry: Entry, first: Entry) -> Problem:
    return Problem(
        entry.display,
        entry.runbook.front_matter_line or 1,
        "error",
        "RB090",
        f"runbook id {entry.id!r} is already used by {first.display}; "
        "give one of them another `id:` (or rename the file)",
    )


# `git log` of a folder: a NUL and the commit date, then the names of the files it changed.
# quotepath off: git would otherwise print a name such as `réseau.md` quoted and escaped.
_GIT_LOG = (
    "-c",
    "core.quotepath=off",
    "log",
    "--format=%x00%cs",
    "--name-only",
    "--relative",
    "--",
    ".",
)


@contextmanager
def git_dates(folder: Path) -> Iterator[dict[str, str]]:
    """File name -> ISO date of its last commit, from one `git log` over ``folder``.

    git runs while the body of the `with` runs (on two cores, its time is then free) and the
    dict is filled on leaving it; it stays empty outside a git work tree or without git. The
    log goes to a file rather than a pipe, so a long history never stalls git before it is read.
    """
    dates: dict[str, str] = {}
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(
                ["git", "-C", str(folder), *_GIT_LOG],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
            )
        except OSError:
            yield dates  # no git: the caller falls back to file times
            return
        try:
            yield dates
        except BaseException:
            proc.kill()  # the build failed: its dates are no longer wanted
            proc.wait()
            raise
        if _wait(proc) == 0:  # else not a work tree: the caller falls back to file times
            out.seek(0)
            dates.update(_dates(out.read().decode("utf-8", "replace")))


def _wait(proc: subprocess.Popen[bytes]) -> int | None:
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def _dates(log: str) -> dict[str, str]:
    dates: dict[str, str] = {}
    date = ""
    for line in log.splitlines():
        if line.startswith("\x00"):
            date = line[1:]
        elif line and "/" not in line:
            # git lists commits newest first, so the first date seen for a file is its latest.
            dates.setdefault(line, date)
    return dates


def _date(mtime: float | None) -> str:
    return dt.date.fromtimestamp(mtime).isoformat() if mtime is not None else ""
