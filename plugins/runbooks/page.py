"""A parsed runbook -> the Markdown of its page, assembled from the cards, the steps and the
runs. The page is written from the model, not copied from the file, so the site controls what
a responder sees: the header band first, then the steps, with details and the Run-it box folded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import yaml

from plugins.runbooks.cards import details, header_band, problems_box, run_box
from plugins.runbooks.catalog import Entry
from plugins.runbooks.markup import Rendered, attach, fenced_lines, heading, hold
from plugins.runbooks.steps import compat_body, structured_body

if TYPE_CHECKING:
    from plugins.runbooks.runs import (
        Run,  # runs.py is imported only when there are runs (see `hooks._read_runs`)
    )


def page_markdown(
    entry: Entry, runs: Sequence[Run], last_change: str, command_path: str | None = None
) -> Rendered:
    """The whole page for one runbook. ``command_path`` overrides the path in the Run-it box."""
    rb = entry.runbook
    lines = fenced_lines(entry)
    slots: list[str] = []
    meta = rb.metadata
    band = header_band(meta)
    folds = (
        details(meta, entry.display, last_change, runs),
        run_box(meta, path(entry, command_path)),
    )
    folded = '<div class="rb-folds">\n' + "\n".join(folds) + "\n</div>"
    parts = [front_matter(entry), title_block(meta.name, band, slots), hold(slots, folded)]
    early = frozenset({0})  # the band: filled before the search plugin reads the page
    parts.append(problems_box(entry))
    if rb.has_steps_section:
        parts += structured_body(rb, entry.lines, lines, slots)
    else:
        parts.append(compat_body(rb, lines, slots))
    if runs:
        from plugins.runbooks.runs import runs_section  # here: only a page with runs needs it

        parts.append(runs_section(runs, meta, slots))
    return Rendered("\n\n".join(p for p in parts if p) + "\n", tuple(slots), early)


def path(entry: Entry, command_path: str | None) -> str:
    return command_path or entry.display


def front_matter(entry: Entry) -> str:
    """The page's own front matter: its tags, for Material's tags plugin."""
    tags = list(entry.runbook.metadata.tags)
    if not tags:
        return ""
    return f"---\n{yaml.safe_dump({'tags': tags}, allow_unicode=True).strip()}\n---"


def title_block(name: str, html: str, slots: list[str]) -> str:
    """The page's H1, then ``html`` (slot 0)."""
    text = heading(name)
    if not text.strip():
        return f"# {text}\n\n{hold(slots, html)}"  # attributes need a heading text to follow
    return f"# {text} {{ {attach(slots, html)} }}"
