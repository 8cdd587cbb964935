"""A parsed runbook -> the Markdown of its page.

The page is written from the model, not copied from the file, so the site controls what a
responder sees: the header card first, the exact command to run it, numbered steps with their
policies as badges and a checkbox each, criteria and alternative procedures styled as such.
Prose and code come from the file's own lines, located by the line numbers the parser recorded;
fence info strings are cut down to the language, so highlighting works and the `{...}` attributes
never leak onto the page. The output uses Material's admonitions, `attr_list` and raw HTML.
"""

from __future__ import annotations

import json
import re
import shlex
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from runner.expr import describe
from runner.format import format_duration
from runner.model import Block, InputSpec, Metadata, Procedure, Runbook, Section, Step

from .catalog import Entry

if TYPE_CHECKING:
    from .runs import Run  # runs.py is imported only when there are runs (see `plugin._read_runs`)

MAX_RUNS = 10  # runs and drills listed on a runbook page, newest first
_PROCEDURE_SECTIONS = ("alternative procedures", "alternate procedures", "alternatives")
_CRITERIA = {"success criteria": "success", "failure criteria": "failure"}
_LIST_MARKER = re.compile(r"^\s*\d+[.)]\s+")
_NOT_ID = re.compile(r"[^A-Za-z0-9_-]+")
_EMPHASIS_OR_SPACE = re.compile(r"[*_\s]")


def anchor(name: str) -> str:
    """An HTML id fragment for a step or procedure id (ids may hold dots or slashes)."""
    return _NOT_ID.sub("-", name).strip("-") or "x"


@dataclass(frozen=True, slots=True)
class Rendered:
    """A runbook page: Markdown for MkDocs, and HTML to put in place of its slot markers."""

    markdown: str  # with a marker (see `hold`, `attach`) where ready-made HTML goes
    slots: tuple[str, ...]  # the HTML for marker N, put in by the plugin's `on_page_context`

    def fill(self, html: str) -> str:
        if "&lt;!--rb:" in html:
            # A marker that Markdown read as code (the author's fence sits in an indented code
            # block, as in some plain-Markdown runbooks): no HTML can go inside code, so the
            # marker goes, rather than show as text.
            html = STRANDED_RE.sub("", html)
        return ATTACHED_RE.sub(self._attached, HELD_RE.sub(self._held, html))

    def _held(self, found: re.Match[str]) -> str:
        index = int(found.group(1))
        return self.slots[index] if index < len(self.slots) else found.group(0)

    def _attached(self, found: re.Match[str]) -> str:
        index = int(found.group(1))
        if index >= len(self.slots):
            return found.group(0)  # not one of ours
        return f"{found.group(2)}\n{self.slots[index]}"  # the heading without it, then the HTML


# Two patterns that each start with a literal, which the regex engine scans for quickly: one
# pattern with both as alternatives tried every position and took nine times as long.
HELD_RE = re.compile(r"<!--rb:(\d+)-->")  # see `hold`
ATTACHED_RE = re.compile(r' data-rb="(\d+)"([^>]*>.*?</h[1-6]>)', re.S)  # see `attach`
STRANDED_RE = re.compile(r"[ \t]*&lt;!--rb:\d+--&gt;\n*")  # a `hold` marker escaped as code


def hold(slots: list[str], html: str) -> str:
    """A marker for ``html``. The card, bar and badges are ready-made HTML: left in the Markdown,
    every tag would be parsed again by Markdown's raw-HTML pass and by the search indexer, which
    made the plugin's pages cost twice a plain page (see benchmarks/bench_site.py)."""
    slots.append(html)
    return f"<!--rb:{len(slots) - 1}-->"


def heading(text: str) -> str:
    """``text`` for a heading that ends in attributes (`{ #id .class }`): a brace of the text
    itself would stop Markdown's attr_list from finding them, so it is escaped."""
    return escape(text).replace("{", "\\{").replace("}", "\\}")


def attach(slots: list[str], html: str) -> str:
    """A marker for ``html`` to follow a heading: an attribute for the heading's `{ ... }`.

    Cheaper than `hold`: Markdown sets an attribute for next to nothing, while each comment
    costs it a raw-HTML block (about 50 µs: stashed, parsed, put back). The attribute is taken
    out again when the HTML goes in, so the page is the same either way."""
    slots.append(html)
    return f'data-rb="{len(slots) - 1}"'


def page_markdown(
    entry: Entry, runs: Sequence[Run], last_change: str, command_path: str | None = None
) -> Rendered:
    """The whole page for one runbook. ``command_path`` overrides the path in the Run-it box."""
    rb = entry.runbook
    lines = fenced_lines(entry)
    slots: list[str] = []
    card = header_card(rb.metadata, entry.display, last_change, runs)
    box = run_box(rb.metadata, command_path or entry.display)
    parts = [title_block(rb.metadata.name, "\n".join((card, box)), slots), problems_box(entry)]
    if rb.has_steps_section:
        parts += _structured_body(rb, entry.lines, lines, slots)
    else:
        parts.append(_compat_body(rb, lines, slots))
    parts.append(runs_section(runs, rb.metadata, slots))
    return Rendered("\n\n".join(p for p in parts if p) + "\n", tuple(slots))


def title_block(name: str, html: str, slots: list[str]) -> str:
    """The page's H1, then ``html``."""
    text = heading(name)
    if not text.strip():
        return f"# {text}\n\n{hold(slots, html)}"  # attributes need a heading text to follow
    return f"# {text} {{ {attach(slots, html)} }}"


# --- source lines --------------------------------------------------------------------------


def fenced_lines(entry: Entry) -> list[str]:
    """The file's lines with every fence's info string cut down to its language."""
    lines = list(entry.lines)
    for block in entry.runbook.all_blocks():
        if 0 < block.line <= len(lines):
            lines[block.line - 1] = bare_fence(lines[block.line - 1], block.lang)
    return lines


def bare_fence(line: str, lang: str) -> str:
    """Cut a fence opener after its language: ```` ```bash {id=x} ```` -> ```` ```bash ````."""
    found = [i for i in (line.find("```"), line.find("~~~")) if i >= 0]
    if not found:
        return line
    start = end = min(found)
    while end < len(line) and line[end] == line[start]:
        end += 1
    return line[:end] + lang


def _slice(lines: Sequence[str], first: int, end: int) -> str:
    """Lines ``first`` to ``end`` (1-based, end excluded), without surrounding blank lines."""
    return "\n".join(lines[max(first, 1) - 1 : max(end, 1) - 1]).strip("\n")


def _locate(lines: Sequence[str], text: str) -> int:
    """1-based line where ``text`` (a slice of the file) starts, or 0 when it is not found."""
    wanted = text.split("\n")
    for i, line in enumerate(lines):
        if line == wanted[0] and list(lines[i : i + len(wanted)]) == wanted:
            return i + 1
    return 0


def _indent(text: str) -> str:
    return textwrap.indent(text, "    ", lambda line: bool(line.strip()))


# --- header card and boxes -----------------------------------------------------------------


def header_card(meta: Metadata, display: str, last_change: str, runs: Sequence[Run]) -> str:
    """Key facts as one `<dl>`, then the inputs table. Few tags on purpose: every tag is parsed
    twice more (by Markdown and by the search indexer), and the benchmark counts them."""
    facts = [
        ("Service", escape(meta.service) or "—"),
        ("Severity", _severity(meta)),
        ("Objective", escape(meta.objective) or "—"),
        ("Time limit", escape(meta.time_limit_text) or "none"),
        ("Owner", escape(meta.owner) or "—"),
        ("Trigger", _trigger(meta)),
        ("Roles", _roles(meta.roles)),
        ("Tools", ", ".join(f"<code>{escape(t)}</code>" for t in meta.tools) or "—"),
        ("Source", f"<code>{escape(display)}</code>"),
        ("Last change", escape(last_change) or "—"),
        ("Last exercised", _last_exercised(runs)),
    ]
    rows = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    parts = [f'<div class="rb-card" data-runbook="{escape(meta.id)}">', f"<dl>{rows}</dl>"]
    parts += [_inputs_table(meta.inputs), "</div>"]
    return "\n".join(p for p in parts if p)


def _severity(meta: Metadata) -> str:
    if meta.severity is None:
        return "—"
    value = meta.severity.value
    return f'<span class="rb-sev rb-sev--{value}">{value}</span>'


def _trigger(meta: Metadata) -> str:
    text = escape(meta.trigger.when)
    # Conditions (docs/triggers.md) are nested: shown as compact JSON, scalars as written.
    match = " ".join(
        f"<code>{escape(k)}={escape(v if isinstance(v, str) else json.dumps(v))}</code>"
        for k, v in meta.trigger.match.items()
    )
    return " ".join(p for p in (text, match) if p) or "—"


def _last_exercised(runs: Sequence[Run]) -> str:
    if not runs:
        return "never (no journal found)"
    latest = runs[0]
    return (
        f'<a href="#latest-runs">{escape(latest.started_text)}</a> '
        f"({escape(latest.mode)}, {_status(latest.status)})"
    )


def _roles(roles: Mapping[str, str]) -> str:
    return "<br>".join(f"<b>{escape(r)}</b> {escape(who)}" for r, who in roles.items()) or "—"


def _inputs_table(inputs: Sequence[InputSpec]) -> str:
    if not inputs:
        return ""
    rows = "".join(_input_row(spec) for spec in inputs)
    head = (
        "<tr><th>Input</th><th>Type</th><th>Required</th><th>Default</th><th>Description</th></tr>"
    )
    return f'<table class="rb-inputs"><thead>{head}</thead><tbody>{rows}</tbody></table>'


def _input_row(spec: InputSpec) -> str:
    secret = ' <span class="rb-badge rb-badge--secret">secret</span>' if spec.secret else ""
    default = "—" if spec.default is None else f"<code>{escape(_value(spec.default))}</code>"
    if spec.secret and spec.default is not None:
        default = "<em>hidden</em>"  # a secret's default is a secret too
    choices = f"One of {', '.join(_value(v) for v in spec.enum)}." if spec.enum else ""
    about = " ".join(p for p in (_sentence(spec.description), choices) if p)
    return (
        f"<tr><td><code>{escape(spec.name)}</code>{secret}</td><td>{spec.type}</td>"
        f"<td>{'yes' if spec.required else 'no'}</td><td>{default}</td>"
        f"<td>{escape(about)}</td></tr>"
    )


def _sentence(text: str) -> str:
    text = text.strip()
    return f"{text}." if text and text[-1] not in ".!?" else text


def _value(value: object) -> str:
    if isinstance(value, tuple | list):
        return ", ".join(_value(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def run_command(meta: Metadata, path: str) -> str:
    """`runbook run runbooks/x.md -i name=...` with every input the run cannot start without.

    Secret inputs are left out on purpose: a secret typed on a command line ends up in the
    shell's history and the process list.
    """
    words = ["runbook", "run", shlex.quote(path)]
    for spec in meta.inputs:
        if spec.required and spec.default is None and not spec.secret:
            words += ["-i", f"{spec.name}=..."]
    return " ".join(words)


def run_box(meta: Metadata, path: str) -> str:
    """The "Run it" box, as the admonition Markdown would make, written as HTML: it holds no
    author's text, and each Markdown construct saved (admonition, inline code, raw HTML) is
    time saved on every page. Material still adds its copy button to every `pre > code`."""
    command = escape(run_command(meta, path))
    described = [_input_words(spec) for spec in meta.inputs]
    inputs = f"Inputs: {'; '.join(described)}." if described else "It takes no inputs."
    parts = [
        '<div class="admonition example rb-run">',
        '<p class="admonition-title">Run it</p>',
        f'<div class="language-bash highlight"><pre><code>{command}</code></pre></div>',
        f"<p>{inputs}</p>",
    ]
    secrets = [f"<code>{escape(spec.name)}</code>" for spec in meta.inputs if spec.secret]
    if secrets:
        parts.append(
            f"<p>Secret: {', '.join(secrets)}. Never put a secret on the command line; "
            "the Running runbooks page says how to supply it.</p>"
        )
    return "\n".join([*parts, "</div>"])


def _input_words(spec: InputSpec) -> str:
    words = f"<code>{escape(spec.name)}</code> ({spec.type}"
    if spec.required and spec.default is None:
        words += ", required"
    elif spec.default is not None and not spec.secret:
        words += f", default <code>{escape(_value(spec.default))}</code>"
    if spec.secret:
        words += ", secret"
    return words + ")"


def problems_box(entry: Entry) -> str:
    if not entry.problems:
        return ""
    # Errors stay open (the runbook will not run); warnings fold away under their count.
    marker = "???+ danger" if entry.has_errors else "??? warning"
    head = f'{marker} "`runbook check` finds {len(entry.problems)} problem(s) in this runbook"'
    items = [
        f"    - {f'line {p.line}' if p.line else 'whole file'}: {p.level} `{p.code}` "
        f"{escape(p.message)}"
        for p in entry.problems
    ]
    return "\n".join([head, "", *items])


# --- the body, for runbooks with a `## Steps` section ----------------------------------------


def _structured_body(
    rb: Runbook, original: Sequence[str], lines: Sequence[str], slots: list[str]
) -> list[str]:
    parts = [_description(rb, original, lines)]
    steps_at = rb.steps[0].line if rb.steps else 0
    before = [s for s in rb.sections if steps_at and s.line < steps_at]
    after = [s for s in rb.sections if s not in before]
    parts += [_section(s, rb, lines, slots) for s in before]
    parts.append(steps_section(rb, lines, slots))
    parts += [_section(s, rb, lines, slots) for s in after]
    return parts


def _description(rb: Runbook, original: Sequence[str], lines: Sequence[str]) -> str:
    """The text between the title and the first section, located in the file by its content."""
    if not rb.description:
        return ""
    start = _locate(original, rb.description)
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
    total = len(rb.steps)
    return (
        f'<div class="rb-follow" data-runbook="{escape(rb.metadata.id)}" data-total="{total}">'
        f'<span class="rb-follow-label">Follow along</span> '
        f'<span class="rb-progress" aria-live="polite">0 of {total} done</span> '
        '<button type="button" class="rb-reset md-button">Reset</button></div>'
    )


def step_block(step: Step, rb: Runbook, lines: Sequence[str], slots: list[str]) -> str:
    # No wrapping `<div markdown>`: md_in_html would double the Markdown time of the page.
    kind = "manual" if step.manual else "automated"
    meta = attach(slots, step_meta(step, rb, kind))
    parts = (
        f"### {step.number}. {heading(step.title)} {{ #step-{anchor(step.id)} .rb-step {meta} }}",
        _step_body(step, lines),
    )
    return "\n\n".join(p for p in parts if p)


def step_meta(step: Step, rb: Runbook, kind: str = "") -> str:
    box = (
        f'<label class="rb-check"><input type="checkbox" class="rb-check-box" '
        f'data-step="{escape(step.id)}" aria-label="Step {step.number} done" disabled> done</label>'
    )
    cls = f"rb-step-meta rb-step-meta--{kind}" if kind else "rb-step-meta"
    return f'<div class="{cls}">{box} {" ".join(badges(step, rb))}</div>'


def badges(step: Step, rb: Runbook) -> list[str]:
    """The step's role and policies, each a small labelled badge."""
    out = []
    if step.role:
        who = rb.metadata.roles.get(step.role, "")
        out.append(_badge("role", f"role: {step.role}", who))
    blocks = step.executable_blocks
    if not blocks:
        # A step's policies are those of its executable blocks (see `Step`): a manual step has
        # none, and asking for each of them would only walk its blocks again.
        out.append(_MANUAL_BADGE)
        return out
    langs = sorted({b.lang for b in blocks})
    out.append(_badge("auto", f"runs {', '.join(langs)}", "the runner executes this step"))
    if step.approve:
        who = f" by {step.approver_role}" if step.approver_role else ""
        out.append(_badge("approve", f"needs approval{who}", "the run pauses for a person"))
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


def _step_body(step: Step, lines: Sequence[str]) -> str:
    first = lines[step.line - 1] if 0 < step.line <= len(lines) else ""
    if first.lstrip().startswith("#"):
        body = lines[step.line : step.end_line - 1]
    else:
        body = _list_item_body(step, lines)
    return "\n".join(_without_role_line(body, step.role)).strip("\n")


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


def _without_role_line(body: Iterable[str], role: str | None) -> list[str]:
    """Drop the `Role: x` line: the badge shows it. Only before the first fence, as the parser."""
    if not role:
        return list(body)
    target = _squash(f"role:{role}")
    out: list[str] = []
    fenced = False
    for line in body:
        fenced = fenced or line.lstrip().startswith(("```", "~~~"))
        # Only a line with a colon can be the role line: the others need no squashing.
        if not fenced and ":" in line and _squash(line) == target:
            continue
        out.append(line)
    return out


def _squash(text: str) -> str:
    return _EMPHASIS_OR_SPACE.sub("", text).lower()


# --- other sections ----------------------------------------------------------------------------


def _section(section: Section, rb: Runbook, lines: Sequence[str], slots: list[str]) -> str:
    low = section.title.lower()
    body = _slice(lines, section.line + 1, section.end_line)
    if low in _CRITERIA:
        kind = _CRITERIA[low]
        return f'!!! {kind} rb-criteria "{escape(section.title)}"\n\n{_indent(body)}'
    if low in _PROCEDURE_SECTIONS:
        return procedures_section(section, rb, lines, slots)
    return f"## {escape(section.title)}\n\n{body}"


def procedures_section(
    section: Section, rb: Runbook, lines: Sequence[str], slots: list[str]
) -> str:
    inside = [p for p in rb.procedures if section.line < p.line < section.end_line]
    intro_end = inside[0].line if inside else section.end_line
    parts = [f"## {escape(section.title)}", _slice(lines, section.line + 1, intro_end)]
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
    intro = _slice(lines, proc.line + 1, first)
    if proc.steps and proc.steps[0].line <= proc.line + 1:
        intro = ""  # a procedure written as prose is its own single step
    steps = _procedure_steps(proc, rb, lines, slots)
    body = "\n\n".join([intro, *steps] if intro else steps)
    return "\n\n".join(
        (
            f"### {heading(proc.title)} {{ #procedure-{anchor(proc.id)} .rb-procedure-title }}",
            f'!!! failure rb-procedure "{note}"',
            _indent(body),
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
        body = _step_body(step, lines)
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


def _compat_body(rb: Runbook, lines: Sequence[str], slots: list[str]) -> str:
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


# --- runs -------------------------------------------------------------------------------------


def runs_section(runs: Sequence[Run], meta: Metadata, slots: list[str]) -> str:
    """The latest runs as a table, after a chart of every finished run against the time limit."""
    if not runs:
        return ""
    # The limit the runbook sets now; the latest run's when the file no longer sets one.
    limit = meta.time_limit if meta.time_limit is not None else runs[0].time_limit
    from .chart import duration_chart  # here: only a page with runs needs it

    chart = duration_chart(runs, limit)
    head = "| Started | Mode | Status | Duration | Time limit |\n|---|---|---|---|---|"
    rows = [
        f"| {escape(r.started_text)} | {escape(r.mode)} | {_status(r.status)} | "
        f"{_duration(r)} | {_verdict(r, meta)} |"
        for r in runs[:MAX_RUNS]
    ]
    more = f"\n\n{len(runs) - MAX_RUNS} older run(s) not shown." if len(runs) > MAX_RUNS else ""
    parts = ["## Latest runs and drills { #latest-runs }", hold(slots, chart) if chart else ""]
    parts.append("\n".join([head, *rows]) + more)
    return "\n\n".join(p for p in parts if p)


def _status(status: str) -> str:
    kind = escape(status.split("_", 1)[0])
    return f'<span class="rb-status rb-status--{kind}">{escape(status.replace("_", " "))}</span>'


def _duration(run: Run) -> str:
    return format_duration(run.duration) if run.duration is not None else "—"


def _verdict(run: Run, meta: Metadata) -> str:
    limit = run.time_limit if run.time_limit is not None else meta.time_limit
    if limit is None:
        return "none"
    within = run.within_time_limit
    if within is None and run.duration is not None:
        within = run.duration <= limit
    text = format_duration(limit)
    if within is None:
        return text
    return f"{text}, {'within' if within else '<strong>over</strong>'}"
