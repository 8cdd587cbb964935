"""Lint rules on the code inside blocks: cheap, offline, and never running a line of it.

Python is compiled, and pyflakes' undefined names are compared with the inputs and outputs;
shell code is read by `bash -n`, and its `$NAME` references are compared with the upper-case
variables the runner exports. A language with no syntax checker here is not checked.
"""

from __future__ import annotations

import ast
import difflib
import functools
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator

from pyflakes import checker as flakes
from pyflakes import messages as flake_messages

from runner.format import syntax as fmt
from runner.format.model import Block, Problem, Runbook
from runner.parse.markdown import did_you_mean

# `$NAME`, `${NAME}`, `${NAME:-x}`, `${#NAME}`; not `$1`, `$?`, `$$`.
_SHELL_REF_RE = re.compile(r"\$(?:\{#?)?([A-Za-z_][A-Za-z0-9_]*)")
# NAME=..., export NAME=..., local/declare/readonly NAME=..., `read [-r] A B`, `for NAME in`.
_SHELL_SET_RE = re.compile(
    r"(?:^|[\s;&|(])(?:(?:export|local|readonly|declare|typeset)\s+(?:-\w+\s+)*)?"
    r"([A-Za-z_][A-Za-z0-9_]*)(?:\[[^\]]*\])?\+?="
)
_SHELL_READ_RE = re.compile(r"\b(?:read|mapfile|readarray)\s+((?:-\w+\s+(?:\S+\s+)?)*)([\w ]+)")
_SHELL_FOR_RE = re.compile(r"\bfor\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\b")
# Single-quoted text is not expanded by the shell (`jq '$user'`): it is left out of the scan.
_SINGLE_QUOTED_RE = re.compile(r"'[^']*'")
_BASH_LINE_RE = re.compile(r"line (\d+):\s*(.*)")
# IPython's magics and shell escapes are not Python: blank them before compiling.
_MAGIC_RE = re.compile(r"^(\s*)[%!].*$", re.MULTILINE)

#: Environment variables a shell step may read without declaring them.
WELL_KNOWN_ENV = frozenset(
    {
        "HOME",
        "PATH",
        "USER",
        "LOGNAME",
        "SHELL",
        "PWD",
        "OLDPWD",
        "TMPDIR",
        "TERM",
        "LANG",
        "LC_ALL",
        "HOSTNAME",
        "UID",
        "EUID",
        "PPID",
        "RANDOM",
        "SECONDS",
        "LINENO",
        "BASH_SOURCE",
        "FUNCNAME",
        "PIPESTATUS",
        "IFS",
        "REPLY",
        "OPTARG",
        "OPTIND",
        "BASHPID",
    }
)


def problem(runbook: Runbook, line: int, code: str, message: str) -> Problem:
    return Problem(str(runbook.path), line, "error", code, message)


def _names(runbook: Runbook) -> list[str]:
    """The names a run provides: its inputs, every step's outputs (without `:type`) and the
    items of loops."""
    names = [spec.name for spec in runbook.metadata.inputs]
    names += [b.split(":", 1)[0] for blk in _blocks(runbook) for b in blk.outputs]
    names += [blk.loop.var for blk in _blocks(runbook) if blk.loop]  # `foreach ... as=NAME`
    return list(dict.fromkeys(names))


def _blocks(runbook: Runbook) -> Iterator[Block]:
    for step in runbook.steps:
        yield from step.executable_blocks
    for proc in runbook.procedures:
        for step in proc.steps:
            yield from step.executable_blocks


def _is_python(block: Block) -> bool:
    return block.kernel == fmt.PYTHON_KERNEL


def _is_shell(block: Block) -> bool:
    return block.kernel == fmt.SHELL_KERNEL


# --- Python ------------------------------------------------------------------------------------


def rule_python(runbook: Runbook) -> Iterator[Problem]:
    """RB060: a Python block does not compile; RB063: it names a near miss of an input/output."""
    trees: list[tuple[Block, ast.Module]] = []
    for block in _blocks(runbook):
        if not _is_python(block):
            continue
        source = _MAGIC_RE.sub(r"\1pass", block.code)
        try:
            trees.append((block, ast.parse(source)))
        except SyntaxError as exc:
            line = block.line + (exc.lineno or 1)
            yield problem(runbook, line, "RB060",
                          f"Python block at line {block.line} does not compile: {exc.msg}; "
                          "fix the code (it would fail when the step runs)")  # fmt: skip
    # The kernel keeps its variables from block to block: a name set in any block is known.
    defined = {n for _, tree in trees for n in _assigned(tree)}
    names = _names(runbook)
    for block, tree in trees:
        for message in flakes.Checker(tree, filename=str(runbook.path)).messages:
            if not isinstance(message, flake_messages.UndefinedName):
                continue
            name = str(message.message_args[0])
            near = _near(name, names, str)
            if near and name not in defined:
                yield problem(runbook, block.line + message.lineno, "RB063",
                              f"Python block uses {name!r}, which is not defined; the run "
                              f"provides {near!r} (did you mean {near!r}?)")  # fmt: skip


def _assigned(tree: ast.Module) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            yield node.id
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.name
        elif isinstance(node, ast.Import | ast.ImportFrom):
            yield from ((a.asname or a.name).split(".")[0] for a in node.names)


def _near(name: str, names: list[str], spell: Callable[[str], str]) -> str | None:
    """The provided name (as spelt by ``spell``) that ``name`` misses by case, `_` or a typo."""
    spelt = {str(spell(n)): n for n in names}
    if name in spelt:
        return None
    squashed = name.replace("_", "").lower()
    for wanted in spelt:
        if wanted.replace("_", "").lower() == squashed:
            return wanted
    hint = did_you_mean(name, spelt)
    close = re.search(r"'(.*)'", hint)
    if close and _ratio(name, close.group(1)) >= 0.8:
        return close.group(1)
    return None


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio()


# --- shell -------------------------------------------------------------------------------------


def rule_shell(runbook: Runbook) -> Iterator[Problem]:
    """RB061: `bash -n` rejects a shell block; RB062: `$NAME` misses an exported variable."""
    blocks = [b for b in _blocks(runbook) if _is_shell(b)]
    if not blocks:
        return
    bash = shutil.which("bash")
    for block in blocks if bash else []:
        yield from _bash_syntax(runbook, block, bash or "bash")
    # The kernel is one bash for the whole run: a variable set in any block is known.
    assigned = {n for b in blocks for n in _shell_assigned(b.code)}
    names = _names(runbook)
    for block in blocks:
        seen: set[str] = set()
        for k, text_line in enumerate(block.code.split("\n")):
            for ref in _SHELL_REF_RE.findall(_SINGLE_QUOTED_RE.sub("", text_line)):
                if ref in seen or ref in assigned or ref in WELL_KNOWN_ENV:
                    continue
                near = _near(ref, names, str.upper)
                if near:
                    seen.add(ref)
                    yield problem(runbook, block.line + 1 + k, "RB062",
                                  f"shell block reads ${ref}, which nothing sets: inputs and "
                                  f"outputs reach shell steps as upper-case variables; use "
                                  f"${near}")  # fmt: skip


def _shell_assigned(code: str) -> Iterator[str]:
    yield from _SHELL_SET_RE.findall(code)
    yield from _SHELL_FOR_RE.findall(code)
    for _, names in _SHELL_READ_RE.findall(code):
        yield from names.split()


@functools.lru_cache(maxsize=512)
def _bash_verdict(bash: str, code: str) -> str | None:
    """`bash -n`'s first complaint about ``code``, or None. Cached: the site and `check` of a
    folder see the same blocks again and again, and a process costs a millisecond or two."""
    try:
        done = subprocess.run([bash, "-n"], input=code, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None  # no verdict from the checker is no finding; the run itself will tell
    if done.returncode == 0:
        return None
    return done.stderr.strip().splitlines()[0] if done.stderr.strip() else "syntax error"


def _bash_syntax(runbook: Runbook, block: Block, bash: str) -> Iterator[Problem]:
    first = _bash_verdict(bash, block.code)
    if first is None:
        return
    match = _BASH_LINE_RE.search(first)
    offset = int(match.group(1)) if match else 1
    what = match.group(2) if match else first
    line = (
        min(block.line + offset, block.end_line - 2)
        if block.end_line > block.line + 1
        else block.line
    )
    yield problem(runbook, line, "RB061",
                  f"shell block at line {block.line} does not parse (`bash -n`: {what}); "
                  "fix the code, e.g. close every `if` with `fi`, `do` with `done`, "
                  "`case` with `esac` and every quote")  # fmt: skip


RULES = (rule_python, rule_shell)
