"""Every file of the shared corpus (real runbooks by others, mostly not in our format) parses,
and every fenced block of each appears exactly once in the plan."""

from __future__ import annotations

from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from mdit_py_plugins.front_matter import front_matter_plugin

from runner.errors import UnreadableRunbook
from runner.parse.markdown import parse_file

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

# An independent reading: inline rules on, the parser's own markdown-it instance not used.
_MD = MarkdownIt("commonmark").use(front_matter_plugin).enable("table")


def _files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix.lower() == ".md")


FILES = _files()


@pytest.mark.skipif(not FILES, reason=f"no corpus at {CORPUS} (it lives beside the repository)")
def test_corpus_is_not_trivial() -> None:
    assert len(FILES) > 100


@pytest.mark.skipif(not FILES, reason=f"no corpus at {CORPUS} (it lives beside the repository)")
@pytest.mark.parametrize("chunk", range(8))
def test_every_corpus_file_parses_and_keeps_every_fence(chunk: int) -> None:
    # Eight chunks rather than one test per file: 1,600 ids would drown the report.
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
