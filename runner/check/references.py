"""Lint rules across a runbook's parts: front matter inputs, outputs shared by steps, roles."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from runner.format.model import Problem, ProblemLevel, Runbook, Step


def problem(runbook: Runbook, line: int, level: ProblemLevel, code: str, msg: str) -> Problem:
    return Problem(str(runbook.path), line, level, code, msg)


def labelled_steps(runbook: Runbook) -> Iterator[tuple[str, Step]]:
    for step in runbook.steps:
        yield f"step {step.number} {step.title!r}", step
    for proc in runbook.procedures:
        for step in proc.steps:
            yield f"procedure {proc.id!r} step {step.number} {step.title!r}", step


def rule_required_with_default(runbook: Runbook) -> Iterator[Problem]:
    """RB017: an input is `required: true` and has a `default:`: one of the two is wrong."""
    inputs = runbook.front_matter.get("inputs")
    if not isinstance(inputs, Mapping):
        return
    for name, spec in inputs.items():
        if isinstance(spec, Mapping) and spec.get("required") is True and "default" in spec:
            yield problem(runbook, runbook.front_matter_line or 1, "error", "RB017",
                          f"input {name!r} is `required: true` and has a `default:`, so it is "
                          "never asked for; drop `required: true` if the default is safe, or "
                          "drop the default if the operator must give it")  # fmt: skip


def rule_output_set_twice(runbook: Runbook) -> Iterator[Problem]:
    """RB046: two steps set the same output: the later one silently replaces the earlier."""
    first: dict[str, tuple[str, int]] = {}
    for where, step in labelled_steps(runbook):
        for block in step.executable_blocks:
            for raw in block.outputs:
                name = raw.split(":", 1)[0]  # `outputs=count:int`: the name before the type
                if name not in first:
                    first[name] = (where, block.line)
                    continue
                earlier, line = first[name]
                if line == block.line:
                    continue
                yield problem(runbook, block.line, "warning", "RB046",
                              f"{where} sets output {name!r}, which {earlier} (line {line}) "
                              "already sets; the later value replaces the earlier one for every "
                              "step after it: give one of them another name")  # fmt: skip


def rule_block_role(runbook: Runbook) -> Iterator[Problem]:
    """RB047: a block's `role=` contradicts its step's role (the `Role:` line wins)."""
    for where, step in labelled_steps(runbook):
        for block in step.blocks:
            if block.role and step.role and block.role != step.role:
                yield problem(runbook, block.line, "warning", "RB047",
                              f"{where}: role={block.role} on this block contradicts the step's "
                              f"role {step.role!r}, which is the one that counts; remove "
                              "`role=`, or change the step's `Role:` line")  # fmt: skip


def _concurrency_line(runbook: Runbook) -> int:
    """The line of `concurrency:` in the front matter (searched only when reporting)."""
    lines = runbook.source.splitlines() if runbook.source else []
    for n, line in enumerate(lines, 1):
        if line.startswith("concurrency:"):
            return n
    return runbook.front_matter_line or 1


def rule_concurrency_target(runbook: Runbook) -> Iterator[Problem]:
    """RB018: `concurrency.target` is not a declared input (the limit would hold nothing);
    RB019: it names a secret input (its value would name the queue, shown in the service)."""
    target = runbook.metadata.concurrency.target
    if target is None:
        return
    spec = runbook.metadata.input(target)
    if spec is None:
        declared = ", ".join(s.name for s in runbook.metadata.inputs) or "none"
        yield problem(runbook, _concurrency_line(runbook), "error", "RB018",
                      f"`concurrency.target: {target}` names no input (declared: {declared}); "
                      "name the input whose value is what a run acts on, such as a host "
                      "id")  # fmt: skip
    elif spec.secret:
        yield problem(runbook, _concurrency_line(runbook), "error", "RB019",
                      f"`concurrency.target: {target}` names a secret input; its value would "
                      "name the run's queue in the service and its console; limit by an input "
                      "that is not secret")  # fmt: skip


RULES = (
    rule_required_with_default,
    rule_output_set_twice,
    rule_block_role,
    rule_concurrency_target,
)
