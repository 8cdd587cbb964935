"""The runbook format's vocabulary: block attributes, languages, durations.

This module holds facts about the format and nothing that reads a file, so the parser, the
linter, the runner and the site all agree on one definition. The front matter's schema is in
:mod:`runner.format.schema`.
"""

from __future__ import annotations

import re

# --- languages ------------------------------------------------------------------------------

PYTHON_KERNEL = "python3"
SHELL_KERNEL = "runbook-shell"  # the project's own shell kernel (runner/shell_kernel)
#: Not a kernelspec: a ```runbook block is run by the engine itself, as a sub-runbook.
CALL_KERNEL = "runbook"

#: Fence languages that run, and the kernelspec each runs in by default.
DEFAULT_KERNELS: dict[str, str] = {
    "python": PYTHON_KERNEL,
    "py": PYTHON_KERNEL,
    "python3": PYTHON_KERNEL,
    "bash": SHELL_KERNEL,
    "sh": SHELL_KERNEL,
    "shell": SHELL_KERNEL,
}

#: Languages that are programs but have no default kernel: a runbook must map them under
#: `kernels:` to run them; otherwise `check` warns and they stay documentation.
KNOWN_PROGRAM_LANGS = frozenset(
    [
        "zsh",
        "fish",
        "powershell",
        "pwsh",
        "ps1",
        "ruby",
        "rb",
        "sql",
        "psql",
        "javascript",
        "js",
        "node",
        "typescript",
        "ts",
        "go",
        "golang",
        "rust",
        "perl",
        "php",
        "r",
        "julia",
        "lua",
        "kotlin",
        "java",
        "csharp",
        "cs",
        "scala",
        "groovy",
        "promql",
        "kql",
        "spl",
    ]
)

#: Documentation-only languages: never run, never warned about.
DOC_LANGS = frozenset(
    [
        "text",
        "txt",
        "plain",
        "plaintext",
        "console",
        "output",
        "out",
        "log",
        "json",
        "yaml",
        "yml",
        "toml",
        "ini",
        "xml",
        "html",
        "css",
        "csv",
        "markdown",
        "md",
        "diff",
        "patch",
        "mermaid",
        "plantuml",
        "dot",
        "math",
        "hcl",
        "terraform",
        "jsonnet",
        "cron",
        "http",
        "ascii",
        "sample",
        "example",
    ]
)


#: The fence language of a decision step's question (docs/format.md, "Decision steps").
DECISION_LANG = "decision"
#: The types a decision's answer may have.
ANSWER_TYPES = ("yesno", "choice", "number", "text")
#: Attributes only a decision block takes.
DECISION_ATTRIBUTES = frozenset({"type", "choices", "ask"})
#: Policies that make sense on a step a person does (manual or decision): the others
#: (retries, errexit, ...) are about running code and `check` says they cannot apply (RB049).
MANUAL_POLICIES = frozenset(
    {"id", "name", "role", "approve", "timeout", "on_failure", "when", "end", "exec", "outputs"}
    | DECISION_ATTRIBUTES
)

#: The types an output may be read as (`outputs=count:int`); shell output is text otherwise.
OUTPUT_TYPES = ("str", "int", "float", "bool")


def normalise_lang(info: str) -> str:
    """The language of a fence: the first word of its info string, cut at `{`, lower-cased."""
    head = info.split("{", 1)[0].strip()
    word = head.split(None, 1)[0] if head else ""
    return word.lower()


# --- block attributes ------------------------------------------------------------------------

#: Every attribute a block may carry, with a one-line description (shown by docs and `check`).
BLOCK_ATTRIBUTES: dict[str, str] = {
    "id": "unique name of the block; also names the step",
    "name": "Runme's spelling of `id`",
    "role": "the role responsible for the step",
    "approve": "`true` or a role: a person must approve before it runs; `ROLE*N`: N distinct "
    "people holding ROLE must (a quorum), e.g. `approve=IR-lead*2`",
    "approval_timeout": "duration a gate waits for its approvals (e.g. 30m); then it is denied, "
    "or passed to `escalate=`",
    "escalate": "`ROLE` or `ROLE*N`: who an expired gate passes to, with one more "
    "`approval_timeout` before it is denied",
    "timeout": "duration after which the step is interrupted (e.g. 5m)",
    "retries": "how many more attempts after a failure",
    "retry_delay": "duration to wait between attempts",
    "retry_backoff": "multiplier applied to the delay after each attempt",
    "on_failure": "abort (default), continue, or procedure:NAME",
    "when": "condition over inputs and outputs; the step is skipped when false",
    "outputs": "comma-separated names read back after the block, each typed with `:int`, "
    "`:float`, `:bool` or `:str` (the default), e.g. `outputs=count:int,verdict`",
    "end": '`end="REASON"` or `end="failed: REASON"`: once the step succeeds the run ends '
    '(succeeded unless a status is given), e.g. `end="closed as false positive"`',
    "foreach": "a list input, an earlier output, or a literal list (`[a, b]`): the step's "
    "blocks run once per item, each item journaled as its own attempt",
    "as": "the name the item has in the blocks of a `foreach` step (default `item`: `$ITEM`)",
    "approve_each": "`true`: a `foreach` step's gate is asked once per item (default: once)",
    "on_item_failure": "`stop` (default): the first item that fails stops the loop; `finish`: "
    "the other items still run, then the step fails; `continue`: they run and the step succeeds, "
    "naming the failed items",
    "runbook": "on a ```runbook block: the id of the runbook the step runs",
    "with": "on a ```runbook block: its inputs, `with=\"host_id=hostname,reason='text'\"` "
    "(each a name of this run, or a quoted literal)",
    "errexit": "`false`: a shell block runs every line and only its last command's status "
    "counts (by default it stops at the first failing command)",
    "exec": "false marks a block in a runnable language as documentation",
    "idempotent": "`true`: running it twice does no harm, so the service runs it again by "
    "itself when its worker was lost mid-step (otherwise the run waits for a person)",
    # A ```decision block (docs/format.md, "Decision steps"): a question for a person.
    "type": "for a decision: the answer's type, yesno (default), choice, number or text",
    "choices": 'for a decision of type choice: the answers allowed, e.g. choices="a,b,c"',
    "ask": "for a decision: the question, when the block's body does not say it",
    # Runme's attributes, accepted so Runme documents read; they have no effect here.
    "interactive": "Runme attribute (ignored)",
    "interpreter": "Runme attribute (ignored)",
    "background": "Runme attribute (ignored)",
    "closeTerminalOnSuccess": "Runme attribute (ignored)",
    "excludeFromRunAll": "Runme attribute (ignored)",
    "terminalRows": "Runme attribute (ignored)",
    "cwd": "Runme attribute (ignored)",
    "promptEnv": "Runme attribute (ignored)",
    "mimeType": "Runme attribute (ignored)",
    "category": "Runme attribute (ignored)",
    "tag": "Runme attribute (ignored)",
}


def is_literal(value: str) -> bool:
    """Whether a `with=` value is a quoted literal (`'text'`) rather than a name of the run."""
    return len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""


def literal_text(value: str) -> str:
    """A quoted `with=` literal's text, its backslash escapes undone."""
    return re.sub(r"\\(.)", r"\1", value[1:-1])


#: `on_item_failure=` values: what a `foreach` step does when one item fails for good.
ITEM_FAILURE_POLICIES = ("stop", "finish", "continue")

ON_FAILURE_RE = re.compile(r"^(abort|continue|procedure:[A-Za-z0-9_.-]+)$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


# --- durations ------------------------------------------------------------------------------

_DURATION_RE = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*)+$")
_PART_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_SECONDS_RE = re.compile(r"\d+(\.\d+)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Seconds from `90s`, `5m`, `1h30m`, `2d` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return float(value)
    text = str(value).strip().lower()
    if _SECONDS_RE.fullmatch(text):
        return float(text)
    if not _DURATION_RE.match(text):
        raise ValueError(f"expected a duration such as 30s, 5m, 1h or 1h30m, got {value!r}")
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _PART_RE.findall(text))


def format_duration(seconds: float) -> str:
    """`1h05m`, `4m12s`, `3.2s`, `45ms`: short and readable in a summary table."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


#: Errors whose value says it all ("line 2: `false` exited 1", "exit 3"): no class name.
PLAIN_ERRORS = frozenset({"ExitStatus", "ShellExited", "SystemExit"})


def error_headline(ename: object, evalue: object) -> str:
    """How an error reads to a person: `ValueError: bad`, but `line 2: `false` exited 1`."""
    name, value = str(ename or ""), str(evalue or "")
    if name in PLAIN_ERRORS:
        return value or name
    return f"{name or 'Error'}: {value}"


#: The final statuses a branch may end a run with (`end=`, "Ends the run as ...:").
END_STATUSES = ("succeeded", "failed", "cancelled")


def parse_end(text: str) -> tuple[str, str]:
    """`closed as false positive` -> (succeeded, ...); `failed: vendor down` -> (failed, ...)."""
    head, sep, rest = text.partition(":")
    if sep and head.strip().lower() in END_STATUSES:
        status, reason = head.strip().lower(), rest.strip()
    else:
        status, reason = "succeeded", text.strip()
    if not reason:
        raise ValueError('say why the run ends, e.g. end="closed as false positive"')
    return status, reason


def ends_the_run_line(line: str) -> tuple[str, str] | None:
    """`Ends the run: REASON` or `**Ends the run as failed:** REASON` in prose, or None.

    Plain string tests, no pattern: prose is untrusted input and this runs on every line.
    """
    plain = line.replace("*", "").replace("_", " ").strip()
    low = plain.lower()
    if not low.startswith("ends the run"):
        return None
    head, sep, reason = plain.partition(":")
    if not sep or not reason.strip():
        return None
    words = head.lower().split()
    status = "succeeded"
    if words[3:4] == ["as"] and len(words) == 5 and words[4] in END_STATUSES:
        status = words[4]
    elif len(words) != 3:
        return None
    return status, reason.strip()


def page_slug(runbook_id: str) -> str:
    """A runbook's page on the docs site, `runbooks/<slug>/`: its id made safe as a file name
    (`check` reports a bad id; the page still builds, and the console links to it)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", runbook_id).strip("-") or "runbook"
