"""What a responder reads about a step before pressing Enter: its card, and a manual step's text.

The step's Markdown source (``Step.text``) repeats what the step header already shows (the
``### 3.`` heading or the ``1. Title`` list line, the ``Role:`` line) and keeps the source's
line breaks, written for an 80-column editor. Here the source is walked as markdown-it tokens
(never regex over Markdown): the heading, the title and the role line are dropped, and the rest
is rendered by rich's Markdown, which reflows paragraphs to the terminal and keeps lists.

Everything shown comes from the runbook or the run's inputs: control characters are escaped
(:func:`visible`) before rendering, and links are shown as text, never as hidden OSC 8 links.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

from markdown_it import MarkdownIt
from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

from runner.format.model import Step
from runner.parse.markdown import _role_line
from runner.text.plan import step_facts
from runner.text.terminal import visible

_MD = MarkdownIt("commonmark")


def _dropped_lines(step: Step) -> set[int]:
    """0-based lines of ``step.text`` that only repeat the header: heading, title, role."""
    tokens = _MD.parse(step.text)
    dropped: set[int] = set()
    titled = step.text.lstrip().startswith("#")
    for i, token in enumerate(tokens):
        if token.map is None:
            continue
        if token.type == "heading_open":
            dropped.update(range(*token.map))
            titled = True
        elif token.type == "paragraph_open":
            content = tokens[i + 1].content if i + 1 < len(tokens) else ""
            # A step written as a list item (`1. Title`): its first paragraph is the title.
            if not titled or _role_line(content.strip()) is not None:
                dropped.update(range(*token.map))
                titled = True
    # A decision's block: the prompt asks its question, in words, right after the text.
    for block in step.blocks:
        if block.question is not None:
            dropped.update(range(block.line - step.line, block.end_line - step.line))
    return dropped


def body_markdown(step: Step) -> str:
    """The step's Markdown without the lines the header already shows, dedented."""
    dropped = _dropped_lines(step)
    lines = [line for n, line in enumerate(step.text.split("\n")) if n not in dropped]
    return textwrap.dedent("\n".join(lines)).strip("\n")


def first_paragraph(step: Step) -> str:
    """The step's first paragraph of prose (Markdown source), or ``""``."""
    tokens = _MD.parse(body_markdown(step))
    for i, token in enumerate(tokens):
        if token.type == "paragraph_open" and token.level == 0:
            return tokens[i + 1].content
    return ""


def markdown(source: str) -> RenderableType:
    """Markdown as reflowing terminal text; its control characters escaped, links as text."""
    return Markdown(visible(source), hyperlinks=False, code_theme="ansi_dark")


def manual_view(step: Step) -> RenderableType:
    """A manual step's instructions: reflowing text, lists kept, no repeated heading or role;
    then what the header does not show (informed roles, the gate, the condition, the answer
    a decision takes)."""
    facts = step_facts(step, role=False, runs_in=False)
    shown = markdown(body_markdown(step))
    if not facts:
        return shown
    return Group(shown, Text(visible(" · ".join(facts)), style="yellow"))


def shown_value(value: object) -> str:
    """An input value as a person reads it on a card (secrets arrive as ``***`` already)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return " ".join(shown_value(v) for v in value)
    return str(value)


def step_card(step: Step, values: Mapping[str, object]) -> RenderableType:
    """The card: the first paragraph of prose, the step's policies (gate, condition, timeout,
    retries, on failure) and the current values of the inputs and outputs its code uses."""
    parts: list[RenderableType] = []
    prose = first_paragraph(step)
    if prose:
        parts.append(markdown(prose))
    facts = step_facts(step, role=False, runs_in=False)
    if facts:
        parts.append(Text(visible(" · ".join(facts)), style="yellow"))
    if values:
        parts.append(values_table(values))
    return Group(*parts)


def values_table(values: Mapping[str, object], names: Sequence[str] = ()) -> Table:
    """``name = value`` rows; ``names`` are marked as changed since the run started."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in values.items():
        mark = "  (changed off-script)" if name in names else ""
        table.add_row(Text(visible(name)), "=", Text(visible(shown_value(value)) + mark))
    return table
