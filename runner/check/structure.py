"""Lint rules on a runbook's structure: headings, fences and info strings that change the plan.

Each of these mistakes leaves a file that parses, but into another plan than the author meant:
steps merged or gone, a gate dropped, code read as documentation. So each is an error, in the
standard format only; plain Markdown read in compatibility mode gets none of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from runner.format import syntax as fmt
from runner.format.model import Heading, Problem, Runbook
from runner.parse.markdown import split_attributes

# "2. Check", "2) Check", "Step 2: Check": the parser's own idea of a numbered step title.
_NUMBERED_RE = re.compile(r"^\s*(?:step\s+\d+\b|\d+[.):])", re.IGNORECASE)
# A line of a fence's content that opens another fence: markers and an info string.
_OPENER_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]\S*.*)$")
# Languages one edit away from a runnable one, but languages of their own.
_NOT_MISSPELLED = frozenset(
    {"ipython", "cython", "jython", "python2", "pycon", "dash", "ksh", "csh", "ssh"}
)


def problem(runbook: Runbook, line: int, code: str, message: str) -> Problem:
    return Problem(str(runbook.path), line, "error", code, message)


def _steps_range(runbook: Runbook) -> tuple[int, int]:
    """The lines [start, end) of the `## Steps` section; (0, 0) when there is none."""
    if not runbook.has_steps_section:
        return 0, 0
    start = runbook.steps_line
    end = next(
        (h.line for h in runbook.headings if h.real and h.level <= 2 and h.line > start),
        1 << 30,
    )
    return start, end


def _step_level(runbook: Runbook) -> int:
    """The heading level of the steps: 3, or 0 when they are the items of a numbered list."""
    levels = {h.level for h in runbook.headings if h.real and h.line in _step_lines(runbook)}
    return 3 if 3 in levels else 0


def _step_lines(runbook: Runbook) -> set[int]:
    return {step.line for step in runbook.steps}


def _how(heading: Heading) -> str:
    written = "#" * heading.level + ("" if not heading.real else " ")
    return f"`{written}{heading.title}`"


def rule_step_heading_level(runbook: Runbook) -> Iterator[Problem]:
    """RB023: a numbered step heading at the wrong level, or a `###2.` that is no heading."""
    start, end = _steps_range(runbook)
    if not start:
        return
    for h in runbook.headings:
        if h.line <= start or not _NUMBERED_RE.match(h.title):
            continue
        if h.real and h.level <= 2:
            # A numbered H1/H2 ends the Steps section: it and every step after it become prose.
            if h.line < _first_other_section(runbook, start):
                yield problem(runbook, h.line, "RB023",
                              f"{_how(h)} looks like a step, but a level-{h.level} heading ends "
                              "`## Steps`: this step and every one after it become documentation; "
                              f"write it `### {h.title}`")  # fmt: skip
        elif start < h.line < end and (not h.real or h.level > 3):
            if h.real:
                why = f"a level-{h.level} heading is not a step, so it merges into the step above"
            else:
                why = (
                    "without a space after the `#`s it is not a heading but prose of the step above"
                )
            yield problem(runbook, h.line, "RB023",
                          f"{_how(h)} looks like a step, but {why} and runs under its role, "
                          f"timeout and gate; write it `### {h.title}`")  # fmt: skip


def _first_other_section(runbook: Runbook, start: int) -> int:
    """The first H1/H2 after `## Steps` that is not numbered: where numbered H2s stop counting."""
    return next(
        (
            h.line
            for h in runbook.headings
            if h.real and h.level <= 2 and h.line > start and not _NUMBERED_RE.match(h.title)
        ),
        1 << 30,
    )


def rule_sub_headings(runbook: Runbook) -> Iterator[Problem]:
    """RB024: an H4 (or deeper) heading under a step: its code runs as part of that step."""
    start, end = _steps_range(runbook)
    if not start or _step_level(runbook) != 3:
        return
    for h in runbook.headings:
        if h.real and h.level >= 4 and start < h.line < end and not _NUMBERED_RE.match(h.title):
            yield problem(runbook, h.line, "RB024",
                          f"{_how(h)} is a sub-heading inside a step: sub-steps are not part of "
                          "the format, so it and its code run as part of the step above, under "
                          f"its role, timeout and gate; make it a step of its own (`### N. "
                          f"{h.title}`), or write it as bold text (`**{h.title}**`) if it belongs "
                          "to the step")  # fmt: skip


def rule_fence_in_fence(runbook: Runbook) -> Iterator[Problem]:
    """RB025: a fence opens inside another fence's content: the first was left open."""
    for block in runbook.all_blocks():
        marker = block.fence
        for k, text_line in enumerate(block.code.split("\n")):
            match = _OPENER_RE.match(text_line)
            if match is None:
                continue
            inner = match.group(1)
            # A shorter marker cannot close the outer fence: that is an intended nesting.
            if inner[0] == marker[0] and len(inner) >= len(marker):
                yield problem(runbook, block.line + 1 + k, "RB025",
                              f"{inner}{match.group(2).strip()} opens a fence inside the code "
                              f"block opened at line {block.line}, which was never closed: it "
                              "swallows what lies between; add a closing "
                              f"{marker} line before this one")  # fmt: skip
                break


def rule_block_language(runbook: Runbook) -> Iterator[Problem]:
    """RB026: a runnable language misspelled; RB027: attributes on a block with no language."""
    for block in runbook.all_blocks():
        if block.executable:
            continue
        if not block.lang and "{" in block.info:
            yield problem(runbook, block.line, "RB027",
                          f"block `{block.info}` has attributes but no language, so it is "
                          "documentation and its step is manual; name the language first, e.g. "
                          f"```bash {block.info.strip()}")  # fmt: skip
            continue
        near = _misspelled(block.lang)
        if near and block.attributes.get("exec", "").lower() not in fmt.FALSE_WORDS:
            yield problem(runbook, block.line, "RB026",
                          f"```{block.lang} is not a language any kernel runs, so the block "
                          "is documentation and its step is manual; "
                          f"did you mean ```{near}?")  # fmt: skip


def _misspelled(lang: str) -> str | None:
    """The runnable language `lang` is one edit (or one swap) away from, if it is no language of
    its own."""
    known = fmt.KNOWN_PROGRAM_LANGS | fmt.DOC_LANGS | _NOT_MISSPELLED
    if not lang or lang in fmt.DEFAULT_KERNELS or lang in known:
        return None
    return next((name for name in fmt.DEFAULT_KERNELS if _one_edit(lang, name)), None)


def _one_edit(a: str, b: str) -> bool:
    """Whether one deletion, insertion, substitution or swap of neighbours turns `a` into `b`."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        diff = [k for k in range(len(a)) if a[k] != b[k]]
        swap = (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
        return len(diff) == 1 or swap
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:k] + long[k + 1 :] == short for k in range(len(long)))


def rule_unbraced_attributes(runbook: Runbook) -> Iterator[Problem]:
    """RB028: attributes written after the language without braces: they are ignored."""
    for block in runbook.all_blocks():
        if "{" in block.info:
            continue
        rest = block.info.split(None, 1)[1] if len(block.info.split(None, 1)) > 1 else ""
        try:
            words = split_attributes(rest.rstrip("}")) if "=" in rest else {}
        except ValueError:
            continue
        named = [k for k in words if k in fmt.BLOCK_ATTRIBUTES and "=" in rest]
        if named:
            yield problem(runbook, block.line, "RB028",
                          f"attributes {rest.strip()!r} are not in braces, so none of them "
                          f"applies ({', '.join(named)} ignored); write "
                          f"```{block.lang} {{{rest.strip().strip('{}')}}}")  # fmt: skip


RULES = (
    rule_step_heading_level,
    rule_sub_headings,
    rule_fence_in_fence,
    rule_block_language,
    rule_unbraced_attributes,
)
