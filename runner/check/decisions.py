"""Lint rules for steps a person does (manual and decision steps) and for attributes that
would be ignored: an attribute that does nothing is a gate or a condition the author believes
in and the run does not have."""

from __future__ import annotations

from collections.abc import Iterator

from runner.format import syntax as fmt
from runner.format.model import Block, Problem, ProblemLevel, Runbook, Step

#: On a block that sets no policy, these are a gate, a condition or an end the run would not
#: have: an error. The other policies ignored are a warning.
_GATES = frozenset({"approve", "when", "end"})
#: Attributes that say nothing about what runs, so a documentation block may carry them.
_HARMLESS = frozenset({"id", "name", "exec"})
#: Runme's attributes: accepted and ignored everywhere, as documented.
_RUNME = frozenset(k for k, v in fmt.BLOCK_ATTRIBUTES.items() if v.startswith("Runme"))


def problem(runbook: Runbook, line: int, level: ProblemLevel, code: str, msg: str) -> Problem:
    return Problem(str(runbook.path), line, level, code, msg)


def _steps(runbook: Runbook) -> Iterator[tuple[str, Step]]:
    for step in runbook.steps:
        yield f"step {step.number} {step.title!r}", step
    for proc in runbook.procedures:
        for step in proc.steps:
            yield f"procedure {proc.id!r} step {step.number} {step.title!r}", step


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
    for where, step in _steps(runbook):
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
    for where, step in _steps(runbook):
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
    for where, step in _steps(runbook):
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


RULES = [rule_ignored_attributes, rule_manual_attributes, rule_decision_place]
