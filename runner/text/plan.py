"""The plan as a person reads it in a terminal (`runbook show`): rich renderables, no I/O.

Everything that came from the file is shown as plain ``Text``, never as console markup, so a
runbook cannot style (or hide) its own output with `[...]` tags; and its control characters
are shown escaped (:func:`visible`), so it cannot do so with raw escape sequences either.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from runner.format.answers import accepted
from runner.format.expr import describe
from runner.format.model import Block, Problem, Runbook, Step
from runner.format.syntax import format_duration
from runner.text.terminal import visible

_LEXERS = {"sh": "bash", "shell": "bash", "py": "python", "python3": "python"}


# C0 and C1 control characters but tab and newline: ESC above all, which would let a runbook
# move the cursor, clear the screen, retitle the window or hide lines in the reader's terminal.
def plan_view(runbook: Runbook, problems: Sequence[Problem] = ()) -> RenderableType:
    """Header, inputs, steps, procedures, criteria, then any problems `check` found."""
    parts: list[RenderableType] = [*_header(runbook)]
    if runbook.metadata.inputs:
        parts += [Text(""), _inputs(runbook)]
    parts += [Text(""), Rule("Steps", align="left")]
    if not runbook.steps:
        parts.append(Text("  (no steps)", style="dim"))
    parts += _steps(runbook.steps)
    for proc in runbook.procedures:
        parts += [Text(""), Rule(f"Alternative procedure: {visible(proc.title)}", align="left")]
        parts.append(Text(f"  on_failure=procedure:{proc.id}  (line {proc.line})", style="dim"))
        parts += _steps(proc.steps)
    parts += _criteria("Success criteria", runbook.success_criteria)
    parts += _criteria("Failure criteria", runbook.failure_criteria)
    if problems:
        parts += [Text(""), Rule("Problems (runbook check)", align="left")]
        parts += [
            Text(visible(str(p)), style="red" if p.level == "error" else "yellow") for p in problems
        ]
    return Group(*parts)


def _header(runbook: Runbook) -> Iterator[RenderableType]:
    meta = runbook.metadata
    yield Text(visible(meta.name), style="bold")
    facts = [meta.id, meta.service, meta.severity.value if meta.severity else "", meta.owner]
    yield Text(visible(" · ".join(f for f in facts if f)), style="cyan")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    rows = [
        ("objective", meta.objective),
        ("time limit", meta.time_limit_text),
        ("trigger", meta.trigger.when),
        ("roles", "; ".join(f"{k}: {v}" if v else k for k, v in meta.roles.items())),
        ("tools", ", ".join(meta.tools)),
        ("notify", ", ".join(meta.notify)),
        ("kernels", ", ".join(f"{k} -> {v}" for k, v in meta.kernels.items())),
        ("file", f"{runbook.path}  sha256 {runbook.sha256[:12]}"),
    ]
    for label, value in rows:
        if value:
            table.add_row(label, Text(visible(value)))
    if not meta.has_front_matter:
        table.add_row("format", Text("plain Markdown (compatibility mode)"))
    yield table


def _inputs(runbook: Runbook) -> RenderableType:
    table = Table(title="Inputs", title_justify="left", show_lines=False)
    for column in ("name", "type", "required", "default", "description"):
        table.add_column(column, overflow="fold")
    for spec in runbook.metadata.inputs:
        default = "" if spec.default is None else str(spec.default)
        if spec.secret and default:
            default = "***"
        allowed = f"one of: {', '.join(str(v) for v in spec.enum)}" if spec.enum else ""
        table.add_row(
            Text(visible(spec.name + (" (secret)" if spec.secret else ""))),
            spec.type,
            "yes" if spec.required else "",
            Text(visible(default)),
            Text(
                visible(
                    " ".join(
                        part
                        for part in (spec.description, f"({allowed})" if allowed else "")
                        if part
                    )
                )
            ),
        )
    return table


def _steps(steps: Iterable[Step]) -> Iterator[RenderableType]:
    for step in steps:
        title = Text(f"{step.number}. ", style="bold")
        title.append(visible(step.title), style="bold")
        title.append(f"  [{step.id}]  line {step.line}", style="dim")
        yield title
        yield Padding(Text(visible("; ".join(step_facts(step)))), (0, 0, 0, 3))
        for block in step.blocks:
            yield Padding(_block(block), (0, 0, 0, 3))


def step_facts(step: Step, *, role: bool = True, runs_in: bool = True) -> list[str]:
    """The step's policies in words; the step card leaves out what its header shows."""
    facts = [f"role: {step.role or '(none)'}"] if role else []
    if step.informed:
        facts.append("informed: " + ", ".join(step.informed))
    if step.consulted:
        facts.append("consulted: " + ", ".join(step.consulted))
    if step.question is not None:
        facts.append(f"decision: answer {accepted(step.question)}")
    elif step.manual:
        facts.append("manual step (no command runs)")
    elif step.call is not None:
        given = ", ".join(f"{k}={v}" for k, v in step.call.inputs.items())
        facts.append(f"runs runbook {step.call.runbook}" + (f" with {given}" if given else ""))
    elif runs_in:
        kernels = sorted({f"{b.kernel} ({b.lang})" for b in step.executable_blocks})
        facts.append("runs in " + ", ".join(kernels))
    loop = step.loop
    if loop is not None:
        listed = loop.source if loop.items is None else "[" + ", ".join(map(str, loop.items)) + "]"
        facts.append(f"once for each {loop.var} in {listed} (on a failed item: "
                     f"{loop.on_item_failure})")  # fmt: skip
    if step.approve:
        each = " for each item" if loop is not None and loop.approve_each else ""
        facts.append(f"{step.approval_words}{each}")
    if step.timeout is not None:
        facts.append(f"timeout {format_duration(step.timeout)}")
    if step.retries:
        facts.append(f"retries {step.retries}")
    if step.condition is not None:
        facts.append(describe(step.condition))
    if step.on_failure != "abort":
        facts.append(f"on failure: {step.on_failure.replace('procedure:', 'procedure ')}")
    if step.outputs:
        facts.append("sets " + ", ".join(step.outputs))
    return facts


def _block(block: Block) -> RenderableType:
    label = f"{visible(block.lang) or 'text'} · line {block.line}"
    label += "" if block.executable else " · documentation, not run"
    code = Syntax(
        visible(block.code.rstrip("\n")) or " ",
        _LEXERS.get(block.lang, block.lang or "text"),
        theme="ansi_dark",
        background_color="default",
        word_wrap=True,
    )
    return Group(Text(label, style="dim"), Padding(code, (0, 0, 0, 2)))


def _criteria(title: str, items: Sequence[str]) -> Iterator[RenderableType]:
    if not items:
        return
    yield Text("")
    yield Rule(title, align="left")
    for item in items:
        yield Text(f"  • {visible(item)}")
