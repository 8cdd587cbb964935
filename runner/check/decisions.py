"""Lint rules for steps a person does (manual and decision steps) and for attributes that
would be ignored: an attribute that does nothing is a gate or a condition the author believes
in and the run does not have."""

from __future__ import annotations

import re
from collections.abc import Iterator

from runner.check.references import labelled_steps, problem
from runner.format import syntax as fmt
from runner.format.model import Block, Problem, ProblemLevel, Runbook

#: On a block that sets no policy, these are a gate, a condition or an end the run would not
#: have: an error. The other policies ignored are a warning.
_GATES = frozenset({"approve", "when", "end"})
#: Attributes that say nothing about what runs, so a documentation block may carry them.
_HARMLESS = frozenset({"id", "name", "exec"})
#: Runme's attributes: accepted and ignored everywhere, as documented.
_RUNME = frozenset(k for k, v in fmt.BLOCK_ATTRIBUTES.items() if v.startswith("Runme"))


def _policies(block: Block) -> list[str]:
    return [k for k in block.attributes if k not in _HARMLESS and k not in _RUNME]


def _ignored(runbook: Runbook, block: Block, why: str) -> Iterator[Problem]:
    names = [k for k in _policies(block) if k not in fmt.DECISION_ATTRIBUTES]
    if not names:
        return
    level: ProblemLevel = "error" if _GATES.intersection(names) else "warning"
    shown = " ".join(f"{k}=" for k in names)
    yield problem(runbook, block.line, level, "RB048",
                  f"{shown} on this ```{block.lang or '(no language)'} block will be ignored: "
                  f"{why}")  # fmt: skip


def rule_ignored_attributes(runbook: Runbook) -> Iterator[Problem]:
    """RB048: policies on a documentation block that sets no policy (in a step that has a
    runnable block, or outside any step)."""
    for where, step in labelled_steps(runbook):
        if step.manual:
            continue
        for block in step.blocks:
            if not block.executable and block.question is None:
                yield from _ignored(
                    runbook, block,
                    f"{where} runs code, and its runnable blocks set its policies; move them "
                    "onto the runnable block",
                )  # fmt: skip
    for block in runbook.doc_blocks:
        if block.question is None:
            yield from _ignored(runbook, block, "it is in no step; move it under a step")


def rule_manual_attributes(runbook: Runbook) -> Iterator[Problem]:
    """RB049: an attribute that cannot apply to a step a person does (retries, errexit, ...);
    outputs= on a manual step's documentation block (only a decision records an answer)."""
    for where, step in labelled_steps(runbook):
        if not step.manual:
            continue
        for block in step.blocks:
            cannot = [k for k in _policies(block) if k not in fmt.MANUAL_POLICIES]
            if block.question is None and "outputs" in block.attributes:
                cannot.append("outputs")
            if cannot:
                shown = " ".join(f"{k}=" for k in cannot)
                yield problem(runbook, block.line, "warning", "RB049",
                              f"{where} is done by a person, so {shown} cannot apply to it; "
                              "remove it (a ```decision block records an answer as an "
                              "output)")  # fmt: skip


def rule_decision_place(runbook: Runbook) -> Iterator[Problem]:
    """RB071: a decision block in a step that runs code, a second decision in one step, or a
    decision in no step: it would never be asked."""
    for where, step in labelled_steps(runbook):
        questions = [b for b in step.blocks if b.question is not None]
        if questions and not step.manual:
            yield problem(runbook, questions[0].line, "error", "RB071",
                          f"{where} runs code and asks a question; put the ```decision block "
                          "in a step of its own, before or after the commands")  # fmt: skip
        for extra in questions[1:]:
            yield problem(runbook, extra.line, "error", "RB071",
                          f"{where} asks a second question; one decision per step: give it "
                          "a step of its own")  # fmt: skip
    for block in runbook.doc_blocks:
        if block.lang == fmt.DECISION_LANG:
            yield problem(runbook, block.line, "error", "RB071",
                          "this ```decision block is in no step, so it is never asked; move "
                          "it under a step's `###` heading")  # fmt: skip


# A line that opens a part of a phase: `1.1 Disable`, `**2.3** Scan`, `Part 2:`, or a numbered
# item of a list inside the step (`1. Collect`, indented or not).
_PART_RE = re.compile(
    r"^\s*(?:>\s*)*[*_]{0,2}(?:\d+(?:\.\d+)+[.):]?|\d+[.)]|part\s+\d+\b)[*_]{0,2}\s*\S", re.I
)


def rule_flattened_parts(runbook: Runbook) -> Iterator[Problem]:
    """RB029: a step written in numbered parts with a runnable block under more than one of
    them: it still runs as one step (one role, gate and timeout, the first block's policies)."""
    for where, step in labelled_steps(runbook):
        runnable = step.executable_blocks
        if len(runnable) < 2:
            continue
        fenced = {n for b in step.blocks for n in range(b.line, b.end_line)}
        lines = step.text.split("\n")
        markers = [
            step.line + k
            for k, text in enumerate(lines)
            if k and step.line + k not in fenced and _PART_RE.match(text)
        ]
        parts, previous = [], step.line
        for block in runnable:
            found = [m for m in markers if previous <= m < block.line]
            if found:
                parts.append(found[-1])
            previous = block.end_line
        if len(parts) < 2:
            continue
        shown = ", ".join(str(n) for n in parts)
        policies = sorted({k for b in runnable for k in _policies(b) if k != "role"})
        which = f" ({' '.join(k + '=' for k in policies)})" if policies else ""
        yield problem(runbook, step.line, "warning", "RB029",
                      f"{where} is written in parts (lines {shown}), each with its own command, "
                      "but it runs as one step: one role, one gate, one timeout, the first "
                      f"block's policies{which} for every part; make each part a step of its "
                      "own (`### ` heading), see \"Phases and sub-steps\" in "
                      "docs/format.md")  # fmt: skip


RULES = [rule_ignored_attributes, rule_manual_attributes, rule_decision_place, rule_flattened_parts]
