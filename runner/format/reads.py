"""What a step's code reads of the outputs other steps declare (`outputs=host`, a decision's
answer): the engine stops a step that reads one nobody set (``runner.exec.needs``), and `check`
warns where that can happen (RB117).

Reads are found by the language's own rule: a shell block reads ``$HOST`` or ``${HOST}`` (the
runner gives outputs to shells in upper case), but not ``${HOST:-fallback}``, which says what to
do without it; a Python block reads a name it loads and never assigns. Other languages are not
read (nothing is assumed about them).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass

from runner.format.model import Block, Runbook, Step, step_label
from runner.format.syntax import DEFAULT_KERNELS, PYTHON_KERNEL, SHELL_KERNEL

#: A shell's own variables: an output named `path` or `user` is not what `$PATH` or `$USER` reads.
_SHELL_OWN = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "OLDPWD", "LANG", "TERM", "TMPDIR",
     "HOSTNAME", "UID", "RANDOM", "SECONDS", "IFS"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Source:
    """The step that declares an output."""

    label: str  # `3`, or `2` of a procedure (see step_label)
    step_id: str
    procedure: str | None


def declared_outputs(runbook: Runbook) -> dict[str, Source]:
    """Every output a step of the runbook (or of one of its procedures) declares, by name."""
    found: dict[str, Source] = {}
    lists: list[tuple[str | None, tuple[Step, ...]]] = [(None, runbook.steps)]
    lists += [(p.id, p.steps) for p in runbook.procedures]
    for procedure, steps in lists:
        for step in steps:
            names = [n for b in step.blocks for n in b.outputs]
            if step.question is not None and step.question.output:
                names.append(step.question.output)
            for name in names:
                found.setdefault(name, Source(step_label(procedure, step.number), step.id,
                                              procedure))  # fmt: skip
    return found


def reads(block: Block, names: Iterable[str]) -> list[str]:
    """The names among ``names`` that the block's code reads."""
    wanted = list(names)
    if not wanted or not block.code:
        return []
    kernel = DEFAULT_KERNELS.get((block.lang or "").lower())
    if kernel == SHELL_KERNEL:
        return [n for n in wanted if n.upper() not in _SHELL_OWN and _shell_reads(block.code, n)]
    if kernel == PYTHON_KERNEL:
        try:
            tree = ast.parse(block.code)
        except SyntaxError:
            return []  # IPython syntax, or a mistake the kernel will name
        loaded: set[str] = set()
        stored: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                (stored if isinstance(node.ctx, ast.Store | ast.Del) else loaded).add(node.id)
        return [n for n in wanted if n in loaded and n not in stored]
    return []


#: `${NAME:-default}` and its kin say what to do when NAME is unset: the author handled it.
_HANDLED = (":-", ":=", ":+", ":?", "-", "=", "+", "?")


def _shell_reads(code: str, name: str) -> bool:
    """Whether ``$NAME`` or ``${NAME...}`` reads the value (not ``${NAME:-fallback}``)."""
    for found in re.finditer(rf"\$(\{{)?{re.escape(name.upper())}\b", code):
        if not found.group(1) or not code.startswith(_HANDLED, found.end()):
            return True
    return False
