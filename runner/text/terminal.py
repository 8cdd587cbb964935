"""Untrusted text made safe for a terminal: every control character shown, none obeyed.

Output from a step (a process list fetched from a compromised host), an alert field, a runbook
value or an error message may carry escape sequences that clear the screen, rewrite the line
above into a green "succeeded", set the window title, write the clipboard (OSC 52) or add a
hidden link (OSC 8). Rich's ``Text`` strips only a few control characters, so every printer
passes untrusted text through :func:`visible` first, which turns each control character into
its escaped spelling (``\\x1b``) and each bidirectional override into ``\\u202e``, so a reader
sees that something was there. Only :func:`visible_keeping_colour` lets colour (SGR) through,
for a step's own output, and Rich then turns that into styles of its own, which it writes only
to a terminal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from runner.runs.events import is_output

# C0 and C1 controls but tab and newline; DEL.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0)) if c not in (9, 10)}
# Bidirectional overrides and isolates reorder what is shown ("Trojan Source"), and the line
# and paragraph separators break a line where a terminal does not.
_FORMAT = {
    c: f"\\u{c:04x}"
    for c in (0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029)
}
_TABLE = {**_CONTROLS, **_FORMAT}
# Select Graphic Rendition only: colours, bold, underline. Bounded, so it cannot backtrack.
_SGR = re.compile(r"\x1b\[[0-9;:]{0,64}m")


def visible(text: str) -> str:
    """The text with every control character escaped; newlines and tabs kept."""
    return text.replace("\r\n", "\n").translate(_TABLE)


def visible_keeping_colour(text: str) -> str:
    """As :func:`visible`, but colour sequences (SGR) are kept, for ``Text.from_ansi``."""
    if "\x1b" not in text:
        return visible(text)
    parts: list[str] = []
    pos = 0
    for match in _SGR.finditer(text):
        parts.append(visible(text[pos : match.start()]))
        parts.append(match.group())
        pos = match.end()
    parts.append(visible(text[pos:]))
    return "".join(parts)


# In these fields of an `output` event colour is the step's own and is kept.
_COLOURED = frozenset({"text", "traceback"})


def visible_value(value: Any, *, colour: bool = False) -> Any:
    """A JSON value with :func:`visible` applied to every string in it."""
    if isinstance(value, str):
        return visible_keeping_colour(value) if colour else visible(value)
    if isinstance(value, Mapping):
        return {visible(str(k)): visible_value(v, colour=colour) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [visible_value(v, colour=colour) for v in value]
    return value


def visible_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """A journal event safe to show: every string escaped, an output's colour kept."""
    output = is_output(event)
    return {k: visible_value(v, colour=output and k in _COLOURED) for k, v in event.items()}


#: Ends each piece of a folded line: the line goes on below.
FOLD_MARK = "↩"


def fold_lines(text: str, width: int) -> str:
    """Each line wider than ``width`` cells cut into pieces that fit, each but the last ending
    in :data:`FOLD_MARK`: nothing is cropped, and a reader sees where a line was folded."""
    from rich.cells import cell_len, chop_cells

    out: list[str] = []
    for line in text.expandtabs(4).split("\n"):
        if cell_len(line) <= width:
            out.append(line)
            continue
        pieces = chop_cells(line, width - 1)
        out += [piece + FOLD_MARK for piece in pieces[:-1]]
        out.append(pieces[-1])
    return "\n".join(out)
