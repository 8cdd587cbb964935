"""Every file of the shared corpus (real runbooks by others, mostly not in our format) parses,
and every fenced block of each appears exactly once in the plan."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from mdit_py_plugins.front_matter import front_matter_plugin

from runner.errors import UnreadableRunbook
from runner.parse.markdown import parse_file

REPO = Path(__file__).resolve().parents[1]


def _corpus() -> Path | None:
    """The shared corpus: $RUNBOOK_CORPUS, or `shared/corpus` beside the repository, or beside
    the repository a clone was made from (CI tests a fresh clone of the working copy)."""
    given = os.environ.get("RUNBOOK_CORPUS")
    if given:
        return Path(given)
    homes = [REPO]
    origin = subprocess.run(
        ["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if origin and "://" not in origin and ":" not in origin.split("/")[0]:
        homes.append((REPO / origin).resolve())  # a local path, absolute or relative
    for home in homes:
        for folder in (home, *home.parents):
            if (folder / "shared" / "corpus").is_dir():
                return folder / "shared" / "corpus"
    return None


CORPUS = _corpus()

# An independent reading: inline rules on, the parser's own markdown-it instance not used.
_MD = MarkdownIt("commonmark").use(front_matter_plugin).enable("table")


def _files() -> list[Path]:
    if CORPUS is None or not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix.lower() == ".md")


FILES = _files()


def test_corpus_is_found_and_not_trivial() -> None:
    # Not a skip: a corpus that silently went missing would make the parser's widest test pass
    # by testing nothing.
    assert CORPUS is not None, (
        "no shared/corpus beside the repository or its origin; set RUNBOOK_CORPUS=DIR"
    )
    assert len(FILES) > 100, f"{CORPUS} holds {len(FILES)} Markdown files"


@pytest.mark.parametrize("chunk", range(8))
def test_every_corpus_file_parses_and_keeps_every_fence(chunk: int) -> None:
    # Eight chunks rather than one test per file: 1,600 ids would drown the report.
    assert FILES, "no corpus to read (see test_corpus_is_found_and_not_trivial)"
    mismatches = []
    for path in FILES[chunk::8]:
        try:
            runbook = parse_file(path)
        except UnreadableRunbook:
            continue  # a binary or oversized file is reported, which is the right outcome
        text = path.read_bytes().decode("utf-8-sig")
        fences = sum(1 for tok in _MD.parse(text) if tok.type == "fence")
        if len(runbook.all_blocks()) != fences:
            mismatches.append(f"{path}: {len(runbook.all_blocks())} blocks, {fences} fences")
        lines = {b.line for b in runbook.all_blocks()}
        if len(lines) != len(runbook.all_blocks()):
            mismatches.append(f"{path}: a fence appears twice")
    assert mismatches == []
