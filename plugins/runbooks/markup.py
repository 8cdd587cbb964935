"""The plumbing every generated page shares: markers for ready-made HTML, headings, anchors, and
the runbook file's own lines with every fence's info string cut down to its language.

Prose and code come from the file's own lines, located by the line numbers the parser recorded;
the site never parses Markdown itself.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from plugins.runbooks.catalog import Entry

_NOT_ID = re.compile(r"[^A-Za-z0-9_-]+")


def anchor(name: str) -> str:
    """An HTML id fragment for a step or procedure id (ids may hold dots or slashes)."""
    return _NOT_ID.sub("-", name).strip("-") or "x"


@dataclass(frozen=True, slots=True)
class Rendered:
    """A runbook page: Markdown for MkDocs, and HTML to put in place of its slot markers."""

    markdown: str  # with a marker (see `hold`, `attach`) where ready-made HTML goes
    slots: tuple[str, ...]  # the HTML for marker N, put in by the plugin's `on_page_context`
    # Slots put in earlier, by `on_page_content`, so the search plugin indexes their text (the
    # header band: "critical" must find the critical runbook); the rest it never reads.
    early: frozenset[int] = frozenset()

    def fill_early(self, html: str) -> str:
        """``html`` with the `early` slots filled; the other markers stay for `fill`."""
        if not self.early:
            return html
        return ATTACHED_RE.sub(self._early_attached, HELD_RE.sub(self._early_held, html))

    def _early_held(self, found: re.Match[str]) -> str:
        return self._held(found) if int(found.group(1)) in self.early else found.group(0)

    def _early_attached(self, found: re.Match[str]) -> str:
        return self._attached(found) if int(found.group(1)) in self.early else found.group(0)

    def fill(self, html: str) -> str:
        if "&lt;!--rb:" in html:
            # A marker that Markdown read as code (the author's fence sits in an indented code
            # block, as in some plain-Markdown runbooks): no HTML can go inside code, so the
            # marker goes, rather than show as text.
            html = STRANDED_RE.sub("", html)
        return ATTACHED_RE.sub(self._attached, HELD_RE.sub(self._held, html))

    def _held(self, found: re.Match[str]) -> str:
        index = int(found.group(1))
        return self.slots[index] if index < len(self.slots) else found.group(0)

    def _attached(self, found: re.Match[str]) -> str:
        index = int(found.group(1))
        if index >= len(self.slots):
            return found.group(0)  # not one of ours
        return f"{found.group(2)}\n{self.slots[index]}"  # the heading without it, then the HTML


# Two patterns that each start with a literal, which the regex engine scans for quickly: one
# pattern with both as alternatives tried every position and took nine times as long.
HELD_RE = re.compile(r"<!--rb:(\d+)-->")  # see `hold`
ATTACHED_RE = re.compile(r' data-rb="(\d+)"([^>]*>.*?</h[1-6]>)', re.S)  # see `attach`
STRANDED_RE = re.compile(r"[ \t]*&lt;!--rb:\d+--&gt;\n*")  # a `hold` marker escaped as code


def hold(slots: list[str], html: str) -> str:
    """A marker for ``html``. The card, bar and badges are ready-made HTML: left in the Markdown,
    every tag would be parsed again by Markdown's raw-HTML pass and by the search indexer, which
    made the plugin's pages cost twice a plain page (see benchmarks/bench_site.py)."""
    slots.append(html)
    return f"<!--rb:{len(slots) - 1}-->"


def attach(slots: list[str], html: str) -> str:
    """A marker for ``html`` to follow a heading: an attribute for the heading's `{ ... }`.

    Cheaper than `hold`: Markdown sets an attribute for next to nothing, while each comment
    costs it a raw-HTML block (about 50 µs: stashed, parsed, put back). The attribute is taken
    out again when the HTML goes in, so the page is the same either way."""
    slots.append(html)
    return f'data-rb="{len(slots) - 1}"'


def heading(text: str) -> str:
    """``text`` for a heading that ends in attributes (`{ #id .class }`): a brace of the text
    itself would stop Markdown's attr_list from finding them, so it is escaped."""
    return escape(text).replace("{", "\\{").replace("}", "\\}")


def status_badge(status: str) -> str:
    """A run's status as a coloured word (`succeeded`, `failed`, ...)."""
    kind = escape(status.split("_", 1)[0])
    return f'<span class="rb-status rb-status--{kind}">{escape(status.replace("_", " "))}</span>'


# --- source lines --------------------------------------------------------------------------


def fenced_lines(entry: Entry) -> list[str]:
    """The file's lines with every fence's info string cut down to its language."""
    lines = list(entry.lines)
    for block in entry.runbook.all_blocks():
        if 0 < block.line <= len(lines):
            lines[block.line - 1] = bare_fence(lines[block.line - 1], block.lang)
    return lines


def bare_fence(line: str, lang: str) -> str:
    """Cut a fence opener after its language: ```` ```bash {id=x} ```` -> ```` ```bash ````."""
    found = [i for i in (line.find("```"), line.find("~~~")) if i >= 0]
    if not found:
        return line
    start = end = min(found)
    while end < len(line) and line[end] == line[start]:
        end += 1
    return line[:end] + lang


def slice_lines(lines: Sequence[str], first: int, end: int) -> str:
    """Lines ``first`` to ``end`` (1-based, end excluded), without surrounding blank lines."""
    return "\n".join(lines[max(first, 1) - 1 : max(end, 1) - 1]).strip("\n")


def locate(lines: Sequence[str], text: str) -> int:
    """1-based line where ``text`` (a slice of the file) starts, or 0 when it is not found."""
    wanted = text.split("\n")
    for i, line in enumerate(lines):
        if line == wanted[0] and list(lines[i : i + len(wanted)]) == wanted:
            return i + 1
    return 0


def indent(text: str) -> str:
    return textwrap.indent(text, "    ", lambda line: bool(line.strip()))
