"""The runbook files of the site: read, parsed, checked and dated once, then cached.

Per-page work must stay constant (the benchmark holds the plugin to within 5-10 % of a plain
build), so a file is parsed and checked once per change, not once per build, and the dates of
all files come from a single `git log`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from runner.check import lint
from runner.errors import UnreadableRunbook
from runner.model import Problem, Runbook
from runner.parse import parse_text, read_text


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
        return re.sub(r"[^A-Za-z0-9_-]+", "-", self.id).strip("-") or "runbook"

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


class Catalog:
    """Parsed runbooks keyed by file, kept across `mkdocs serve` rebuilds."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[tuple[int, int], Entry]] = {}

    def load(self, folder: Path, base: Path) -> Loaded:
        """Every `*.md` file of ``folder`` (not recursive); ``base`` is the project folder."""
        paths = sorted(folder.glob("*.md")) if folder.is_dir() else []
        entries: list[Entry] = []
        problems: list[Problem] = []
        seen: dict[str, Entry] = {}
        for path in paths:
            display = display_path(path, base)
            try:
                entry = self._entry(path, display)
            except UnreadableRunbook as exc:
                problems.append(replace(exc.as_problem(), path=display))
                continue
            problems += entry.problems
            if entry.id in seen:
                problems.append(_duplicate(entry, seen[entry.id]))
                continue
            seen[entry.id] = entry
            entries.append(entry)
        entries.sort(key=lambda e: (e.runbook.metadata.service.lower(), e.runbook.metadata.name))
        self._forget(set(paths))
        dates = last_changes(folder, [e.runbook.path for e in entries])
        last = {e.id: dates.get(e.runbook.path.name, "") for e in entries}
        return Loaded(tuple(entries), tuple(problems), last)

    def _entry(self, path: Path, display: str) -> Entry:
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key and cached[1].display == display:
            return cached[1]
        text, sha = read_text(path, display)
        runbook = parse_text(text, path=path, sha256=sha)
        found = tuple(replace(p, path=display) for p in _check(runbook))
        entry = Entry(runbook, tuple(text.split("\n")), display, found)
        self._cache[path] = (key, entry)
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


def last_changes(folder: Path, paths: Iterable[Path]) -> dict[str, str]:
    """File name -> ISO date of its last change: one `git log` for all, else the file's mtime."""
    dates = _git_dates(folder)
    out: dict[str, str] = {}
    for path in paths:
        out[path.name] = dates.get(path.name) or _mtime_date(path)
    return out


def _git_dates(folder: Path) -> dict[str, str]:
    try:
        proc = subprocess.run(
            [
                "git",
                "-C",
                str(folder),
                "log",
                "--format=%x00%cs",
                "--name-only",
                "--relative",
                "--",
                ".",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if proc.returncode != 0:
        return {}  # not a git work tree: the caller falls back to file times
    dates: dict[str, str] = {}
    date = ""
    for line in proc.stdout.splitlines():
        if line.startswith("\x00"):
            date = line[1:]
        elif line and "/" not in line:
            # git lists commits newest first, so the first date seen for a file is its latest.
            dates.setdefault(line, date)
    return dates


def _mtime_date(path: Path) -> str:
    try:
        return dt.date.fromtimestamp(path.stat().st_mtime).isoformat()
    except OSError:
        return ""
