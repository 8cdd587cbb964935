"""A runbook's body: the steps with their badges and checkboxes, the sections around them,
alternative procedures, and plain Markdown read in compatibility mode.

Prose and code come from the file's own lines at the positions the parser recorded (including
the line of a step's `Role:`, which its badge replaces); fence info strings are cut down to the
language, so highlighting works and the `{...}` attributes never leak onto the page. The output
uses Material's admonitions, `attr_list` and raw HTML.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence
from html import escape

from plugins.runbooks.markup import anchor, attach, heading, hold, indent, locate, slice_lines
from runner.format.answers import accepted
from runner.format.expr import describe
from runner.format.model import Block, Procedure, Question, Runbook, Section, Step
from runner.format.syntax import format_duration

_PROCEDURE_SECTIONS = ("alternative procedures", "alternate procedures", "alternatives")
_CRITERIA = {"success criteria": "success", "failure criteria": "failure"}
_LIST_MARKER = re.compile(r"^\s*\d+[.)]\s+")
_DROPPED = "\x00rb-role-line"  # stands in for a step's role line until it is filtered out


# --- the body, for runbooks with a `## Steps` section ----------------------------------------


def structured_body(
    rb: Runbook, original: Sequence[str], lines: Sequence[str], slots: list[str]
) -> list[str]:
    about = _description(rb, original, lines)
    # Wrapped after Markdown (the markers are comments), so its Markdown stays Markdown; on a
    # phone runbooks.js folds its paragraphs to a few lines (its admonitions stay in full).
    parts = []
    if about:
        opening, closing = hold(slots, '<div class="rb-about">'), hold(slots, "</div>")
        parts.append(f"{opening}\n\n{about}\n\n{closing}")
    steps_at = rb.steps[0].line if rb.steps else 0
    before = [s for s in rb.sections if steps_at and s.line < steps_at]
    after = [s for s in rb.sections if s not in before]
    # Sections before the steps fold away under their titles: step 1 stays on the first screen.
    parts += [_section(s, rb, lines, slots, folded=True) for s in before]
    parts.append(steps_section(rb, lines, slots))
    parts += [_section(s, rb, lines, slots) for s in after]
    return parts


def _description(rb: Runbook, original: Sequence[str], lines: Sequence[str]) -> str:
    """The text between the title and the first section, located in the file by its content."""
    if not rb.description:
        return ""
    start = locate(original, rb.description)
    if not start:
        return rb.description
    return "\n".join(lines[start - 1 : start - 1 + rb.description.count("\n") + 1])


def steps_section(rb: Runbook, lines: Sequence[str], slots: list[str]) -> str:
    if not rb.steps:
        return "## Steps\n\nThis runbook has no steps yet."
    parts = [f"## Steps {{ {attach(slots, follow_bar(rb))} }}"]
    parts += [step_block(step, rb, lines, slots) for step in rb.steps]
    return "\n\n".join(parts)


def follow_bar(rb: Runbook) -> str:
    """Follow along: ticks kept in this browser, keyed by an incident (or session) id, so last
    week's drill never shows in tonight's incident; runbooks.js fills it in."""
    total = len(rb.steps)
    name = escape(rb.metadata.name)
    return (
        f'<div class="rb-follow" data-runbook="{escape(rb.metadata.id)}" data-total="{total}" '
        f'data-name="{name}">'
        '<span class="rb-follow-label">Follow along</span> '
        '<label class="rb-incident">Incident <input type="text" class="rb-incident-id" '
        'placeholder="e.g. INC-1234" size="12" spellcheck="false"></label> '
        '<span class="rb-started"></span> '
        f'<span class="rb-progress" aria-live="polite">0 of {total} done</span> '
        '<span class="rb-follow-actions">'
        '<button type="button" class="rb-copy md-button" title="Copy the checklist as Markdown">'
        "Copy checklist</button> "
        '<button type="button" class="rb-reset md-button">New incident</button></span></div>'
    )


def step_block(step: Step, rb: Runbook, lines: Sequence[str], slots: list[str]) -> str:
    # No wrapping `<div markdown>`: md_in_html would double the Markdown time of the page.
    kind = "manual" if step.manual else "automated"
    meta = attach(slots, step_meta(step, rb, kind))
    parts = (
        f"### {step.number}. {heading(step.title)} {{ #step-{anchor(step.id)} .rb-step {meta} }}",
        _step_body(step, lines, slots),
    )
    return "\n\n".join(p for p in parts if p)


def step_meta(step: Step, rb: Runbook, kind: str = "") -> str:
    box = (
        f'<label class="rb-check"><input type="checkbox" class="rb-check-box" '
        f'data-step="{escape(step.id)}" data-title="{step.number}. {escape(step.title)}" '
        f'aria-label="Step {step.number} done" disabled> done <time class="rb-tick"></time></label>'
    )
    cls = f"rb-step-meta rb-step-meta--{kind}" if kind else "rb-step-meta"
    return f'<div class="{cls}">{box} {" ".join(badges(step, rb))}</div>'


def badges(step: Step, rb: Runbook) -> list[str]:
    """The step's role and policies, each a small labelled badge."""
    out = []
    if step.role:
        who = rb.metadata.roles.get(step.role, "")
        out.append(_badge("role", f"role: {step.role}", who))
    for kind, names in (("informed", step.informed), ("consulted", step.consulted)):
        if names:
            who = "; ".join(f"{n}: {rb.metadata.roles.get(n, '')}" for n in names)
            out.append(_badge(kind, f"{kind}: {', '.join(names)}", who))
    blocks = step.executable_blocks
    if not blocks:
        question = step.question
        if question is not None:
            out.append(_badge("decision", f"decision: {accepted(question)}", question.text))
        else:
            out.append(_MANUAL_BADGE)
        # A manual step's policies come from its blocks (see `Step.policy_blocks`); most have
        # none, and asking for each of them would only walk its blocks again.
        if any(b.attributes for b in step.blocks):
            out += _policy_badges(step, rb, step.blocks)
        return out
    call, loop = step.call, step.loop
    if call is not None:
        given = ", ".join(f"{k}={v}" for k, v in call.inputs.items()) or "no inputs"
        out.append(_badge("auto", f"runs runbook {call.runbook}", f"with {given}"))
    else:
        langs = sorted({b.lang for b in blocks})
        out.append(_badge("auto", f"runs {', '.join(langs)}", "the runner executes this step"))
    if loop is not None:
        listed = loop.source if loop.items is None else ", ".join(str(i) for i in loop.items)
        tip = f"each item is its own attempt; on a failed item: {loop.on_item_failure}"
        out.append(_badge("loop", f"for each {loop.var} in {listed}", tip))
    return out + _policy_badges(step, rb, blocks)


def _policy_badges(step: Step, rb: Runbook, blocks: Sequence[Block]) -> list[str]:
    out = []
    if step.approve:
        each = " for each item" if step.loop is not None and step.loop.approve_each else ""
        words = step.approval_words + each
        out.append(_badge("approve", words, "the run pauses for a person"))
    timeout = step.timeout
    if timeout is not None:
        out.append(_badge("timeout", f"timeout {_as_written(blocks, 'timeout', timeout)}"))
    if step.retries:
        out.append(_badge("retries", f"retries {step.retries}×"))
    if step.when:
        out.append(_badge("when", describe(step.when), f"when={step.when}"))
    out += _on_failure(step, rb)
    if step.outputs:
        out.append(_badge("outputs", f"sets {', '.join(step.outputs)}"))
    return out


def _as_written(blocks: Iterable[Block], key: str, seconds: float) -> str:
    """A duration as the author wrote it (`5m`) on the first block that sets it, else formatted
    from seconds."""
    text = next((b.attributes[key] for b in blocks if key in b.attributes), "")
    return text or format_duration(seconds)


def _badge(kind: str, text: str, title: str = "") -> str:
    tip = f' title="{escape(title)}"' if title else ""
    return f'<span class="rb-badge rb-badge--{kind}"{tip}>{escape(text)}</span>'


_MANUAL_BADGE = _badge("manual", "manual", "a person does this step; nothing runs")


def _on_failure(step: Step, rb: Runbook) -> list[str]:
    policy = step.on_failure
    if policy == "abort":
        return []
    if policy.startswith("procedure:"):
        name = policy.split(":", 1)[1]
        proc = rb.procedure(name)
        label = proc.title if proc else name
        target = anchor(proc.id if proc else name)
        return [
            f'<a class="rb-badge rb-badge--on-failure" href="#procedure-{target}">'
            f"on failure: {escape(label)}</a>"
        ]
    return [_badge("on-failure", f"on failure: {policy}")]


def _step_body(step: Step, lines: Sequence[str], slots: list[str] | None = None) -> str:
    """The step's own text under its heading, without the `Role:` line the parser took the
    role from (the badge shows it): the line is the one `step.role_line` names, never guessed.
    A decision block shows as its question and the answers it takes, not as code."""
    if slots is not None and step.question is not None:
        lines = _questions_shown(step, lines, slots)
    if 0 < step.role_line <= len(lines):
        kept = lines[step.role_line - 1]
        lines = list(lines)
        # Stands in for the line (with its indent, so a list item still dedents) until the end.
        lines[step.role_line - 1] = kept[: len(kept) - len(kept.lstrip())] + _DROPPED
    first = lines[step.line - 1] if 0 < step.line <= len(lines) else ""
    if first.lstrip().startswith("#"):
        body = list(lines[step.line : step.end_line - 1])
    else:
        body = _list_item_body(step, lines)
    return "\n".join(line for line in body if line.strip() != _DROPPED).strip("\n")


def _questions_shown(step: Step, lines: Sequence[str], slots: list[str]) -> list[str]:
    """The lines with each decision block replaced by its question box (same line count, so
    every later position the parser recorded still holds)."""
    out = list(lines)
    for block in step.blocks:
        if block.question is None or not 0 < block.line < block.end_line <= len(out) + 1:
            continue
        first = out[block.line - 1]
        pad = first[: len(first) - len(first.lstrip())]
        out[block.line - 1] = pad + hold(slots, question_box(block.question))
        for n in range(block.line, block.end_line - 1):
            out[n] = pad + _DROPPED
    return out


def question_box(question: Question) -> str:
    """A decision as a responder reads it: the question, the answers, the output it sets."""
    answers = accepted(question).replace("/", " / ")
    return (
        '<div class="rb-decision"><p class="rb-decision-q"><strong>Decision:</strong> '
        f"{escape(question.text)}</p>"
        f'<p class="rb-decision-a">Answer: {escape(answers)} · recorded as '
        f"<code>{escape(question.output)}</code></p></div>"
    )


def _list_item_body(step: Step, lines: Sequence[str]) -> list[str]:
    """A step written as a list item: its text without the marker, dedented."""
    item = list(lines[step.line - 1 : step.end_line - 1])
    if not item:
        return []
    item[0] = _LIST_MARKER.sub("", item[0], count=1)
    rest = textwrap.dedent("\n".join(item[1:])).split("\n") if len(item) > 1 else []
    whole = not rest or not rest[0].strip()
    if whole and not step.title.endswith("..."):
        return rest  # the first line was the whole first paragraph: the heading shows it
    return [item[0], *rest]


# --- other sections ----------------------------------------------------------------------------


def _section(
    section: Section, rb: Runbook, lines: Sequence[str], slots: list[str], folded: bool = False
) -> str:
    low = section.title.lower()
    body = slice_lines(lines, section.line + 1, section.end_line)
    if folded and low not in _CRITERIA and low not in _PROCEDURE_SECTIONS:
        return f'??? info rb-before "{escape(section.title)}"\n\n{indent(body)}'
    if low in _CRITERIA:
        kind = _CRITERIA[low]
        return f'!!! {kind} rb-criteria "{escape(section.title)}"\n\n{indent(body)}'
    if low in _PROCEDURE_SECTIONS:
        return procedures_section(section, rb, lines, slots)
    return f"## {escape(section.title)}\n\n{body}"


def procedures_section(
    section: Section, rb: Runbook, lines: Sequence[str], slots: list[str]
) -> str:
    inside = [p for p in rb.procedures if section.line < p.line < section.end_line]
    intro_end = inside[0].line if inside else section.end_line
    parts = [f"## {escape(section.title)}", slice_lines(lines, section.line + 1, intro_end)]
    parts += [procedure_block(p, rb, lines, slots) for p in inside]
    return "\n\n".join(p for p in parts if p)


def procedure_block(proc: Procedure, rb: Runbook, lines: Sequence[str], slots: list[str]) -> str:
    """The procedure's heading, then its steps in an admonition (no `<div markdown>`: speed)."""
    targets = (f"procedure:{proc.id}", f"procedure:{proc.title}")
    users = [s for s in rb.steps if s.on_failure in targets]
    note = "Alternative procedure"
    if users:
        refs = ", ".join(f"[step {s.number}](#step-{anchor(s.id)})" for s in users)
        note += f": followed when {refs} fails"
    first = proc.steps[0].line if proc.steps else proc.end_line
    intro = slice_lines(lines, proc.line + 1, first)
    if proc.steps and proc.steps[0].line <= proc.line + 1:
        intro = ""  # a procedure written as prose is its own single step
    steps = _procedure_steps(proc, rb, lines, slots)
    body = "\n\n".join([intro, *steps] if intro else steps)
    return "\n\n".join(
        (
            f"### {heading(proc.title)} {{ #procedure-{anchor(proc.id)} .rb-procedure-title }}",
            f'!!! failure rb-procedure "{note}"',
            indent(body),
        )
    )


def _procedure_steps(
    proc: Procedure, rb: Runbook, lines: Sequence[str], slots: list[str]
) -> list[str]:
    """The procedure's steps: each head, then the step's own text. Heads with no text between
    them share one marker: Markdown spends as much on each marker as on a short paragraph."""
    parts: list[str] = []
    heads: list[str] = []
    for step in proc.steps:
        heads.append(procedure_step_head(step, rb, prose=step.line == proc.line))
        body = _step_body(step, lines, slots)
        if body:
            parts += [hold(slots, "\n".join(heads)), body]
            heads = []
    if heads:
        parts.append(hold(slots, "\n".join(heads)))
    return parts


def procedure_step_head(step: Step, rb: Runbook, prose: bool = False) -> str:
    """A step of a procedure: numbered, with its badges, but no checkbox (it is a detour).

    ``prose``: the procedure has no list of steps, so its heading already names this one.
    """
    # A cut title ("...") would only repeat the start of the text below it.
    words = "" if step.title.endswith("...") else f" {escape(step.title)}"
    title = "" if prose else f"<strong>{step.number}.{words}</strong> "
    return (
        f'<p class="rb-pstep-title" data-step="{escape(step.id)}">'
        f"{title}{' '.join(badges(step, rb))}</p>"
    )


# --- compatibility mode: plain Markdown without `## Steps` -------------------------------------


def compat_body(rb: Runbook, lines: Sequence[str], slots: list[str]) -> str:
    """The file as written, with a checkbox and badges above each runnable block."""
    start = _body_start(rb, lines)
    at_line = {step.line: step for step in rb.steps}
    out: list[str] = []
    for number, line in enumerate(lines[start - 1 :], start):
        if _is_h1(line, rb.metadata.name) and number == _first_text_line(lines, start):
            continue  # the page heading already shows it
        step = at_line.get(number)
        if step is not None:
            indent = line[: len(line) - len(line.lstrip())]
            out += [f"{indent}{hold(slots, _compat_meta(step, rb))}", indent.rstrip() or ""]
        out.append(line)
    body = "\n".join(out).strip("\n")
    bar = hold(slots, follow_bar(rb)) if rb.steps else ""
    return "\n\n".join(p for p in (bar, body) if p)


def _compat_meta(step: Step, rb: Runbook) -> str:
    return step_meta(step, rb).replace("<div", "<span", 1).replace("</div>", "</span>")


def _body_start(rb: Runbook, lines: Sequence[str]) -> int:
    if not rb.front_matter_line:
        return 1
    for n in range(rb.front_matter_line + 1, len(lines) + 1):
        if lines[n - 1].strip() in ("---", "..."):
            return n + 1
    return 1


def _first_text_line(lines: Sequence[str], start: int) -> int:
    return next((n for n in range(start, len(lines) + 1) if lines[n - 1].strip()), 0)


def _is_h1(line: str, name: str) -> bool:
    return line.startswith("# ") and line[2:].strip() == name
