"""A waiting gate as an approver must see it: the code, the values it uses now, what happened
off-script, and the evidence so far with each earlier step's last lines of output.

Shared by the approval screen at the terminal (``runner.exec.operator``) and ``runbook pending``,
so an approver reads the same thing whichever way the decision is made. No I/O; every string
shown is escaped (:func:`visible`), since output and values come from the systems under
investigation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.text import Text

from runner.text.record import output_text, strip_ansi
from runner.text.terminal import visible

#: Lines of each earlier step's output shown as evidence.
TAIL_LINES = 3


@dataclass(frozen=True, slots=True)
class Evidence:
    """One earlier step as the approver sees it."""

    label: str  # `3`, or `procedure:2`
    title: str
    status: str
    why: str  # the error or the reason, or ""
    tail: tuple[str, ...] = ()  # its last lines of output


def last_lines(texts: Iterable[str], count: int = TAIL_LINES) -> tuple[str, ...]:
    """The last ``count`` non-blank lines of the concatenated output, colour codes removed."""
    lines = [line for line in strip_ansi("".join(texts)).splitlines() if line.strip()]
    return tuple(lines[-count:])


def output_tail(
    outputs: Sequence[Mapping[str, object]], count: int = TAIL_LINES
) -> tuple[str, ...]:
    """The last lines of a step's journaled output events, of its latest attempt."""
    latest = max((int(str(o.get("attempt") or 1)) for o in outputs), default=1)
    texts = [output_text(dict(o)) for o in outputs if int(str(o.get("attempt") or 1)) == latest]
    return last_lines(texts, count)


def evidence_view(rows: Sequence[Evidence]) -> RenderableType:
    """`Evidence so far:` then each step, its status, and its last lines of output."""
    parts: list[RenderableType] = [Text("Evidence so far:")]
    for row in rows:
        line = Text(f"  {visible(row.label)} {visible(row.title)} ({row.status}")
        line.append(f": {visible(row.why)})" if row.why else ")")
        parts.append(line)
        for out in row.tail:
            parts.append(Text(f"      │ {visible(out)}", style="dim"))
    return Group(*parts)


def names_used(code: str, names: Iterable[str]) -> list[str]:
    """The names (inputs, outputs) that ``code`` refers to, by the runner's own rule: the name,
    or its upper-case shell spelling, appears in it."""
    return [n for n in names if n in code or n.upper() in code]


def off_script_warnings(commands: Sequence[Mapping[str, object]], used: Sequence[str]) -> list[str]:
    """One warning per off-script command that names something the gated code uses: it may
    have changed the value the code will run with."""
    warnings = []
    for command in commands:
        code = str(command.get("code") or "")
        touched = names_used(code, used)
        if touched:
            where = f" at step {command.get('step')}" if command.get("step") is not None else ""
            warnings.append(
                f"an off-script command{where} ({code.strip()!r}) names "
                f"{', '.join(touched)}, which this code uses: check the value before approving"
            )
    return warnings
