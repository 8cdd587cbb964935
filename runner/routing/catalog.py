"""The runbooks an alert is routed among: every runbook file under the folders given.

A runbook whose file has errors is left out, and said so: routing to a runbook that cannot
run would start nothing and report a start.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.errors import UnreadableRunbook, UsageError
from runner.format.model import Runbook
from runner.parse.markdown import parse_file


@dataclass(frozen=True, slots=True)
class Skipped:
    """A runbook file left out of routing, and why."""

    path: Path
    reason: str


def runbook_files(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given, folders searched for `*.md` (hidden folders and files skipped)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(_markdown(path))
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"{raw}: no such file or folder")
    return list(dict.fromkeys(found))


def _markdown(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*.md"):
        if not any(part.startswith(".") for part in path.relative_to(folder).parts):
            yield path


def load_runbooks(paths: Sequence[str | Path]) -> tuple[list[Runbook], list[Skipped]]:
    """The runbooks to route among, and the files left out."""
    books: list[Runbook] = []
    skipped: list[Skipped] = []
    for path in runbook_files(paths):
        try:
            book = parse_file(path)
        except UnreadableRunbook as exc:
            skipped.append(Skipped(path, str(exc)))
            continue
        errors = [p for p in book.problems if p.level == "error"]
        if errors:
            skipped.append(Skipped(path, f"{len(errors)} error(s), the first: {errors[0]}"))
        elif book.metadata.has_front_matter:
            books.append(book)
    return books, skipped
