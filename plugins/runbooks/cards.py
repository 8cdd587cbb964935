"""The top of a runbook page: the header band, the details, the Run-it box and check's findings.

The band is what a responder needs before step 1 (severity, service, objective and time limit,
trigger, roles, notify) in a few lines, so step 1 stays on the first screen; the rest (owner,
tools, source, inputs, history) folds away under "Details". Few tags on purpose: every tag is
parsed again by the search indexer, and the benchmark counts them.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING

from plugins.runbooks.catalog import Entry
from plugins.runbooks.markup import status_badge
from runner.format.model import InputSpec, Metadata

if TYPE_CHECKING:
    from plugins.runbooks.runs import (
        Run,  # runs.py is imported only when there are runs (see `hooks._read_runs`)
    )


def header_band(meta: Metadata) -> str:
    """The facts a responder reads first, as one `<dl>`. It is filled into the page before the
    search plugin indexes it (see `hooks.on_page_content`), so "critical" finds the runbook."""
    limit = escape(meta.time_limit_text)
    objective = escape(meta.objective) or "—"
    if limit:
        objective += f' <span class="rb-limit">(limit {limit})</span>'
    facts = [
        ("Severity", _severity(meta)),
        ("Service", escape(meta.service) or "—"),
        ("Objective", objective),
        ("Trigger", _trigger(meta)),
        ("Roles", _role_names(meta.roles)),
        ("Notify", ", ".join(escape(n) for n in meta.notify) or "—"),
    ]
    # Spaces between the tags: the search indexer keeps only the text, and "Severitycritical"
    # would match no search for "critical".
    rows = " ".join(f"<div><dt>{k}</dt> <dd>{v}</dd></div>" for k, v in facts)
    return f'<dl class="rb-band" data-runbook="{escape(meta.id)}">{rows}</dl>'


def details(meta: Metadata, display: str, last_change: str, runs: Sequence[Run]) -> str:
    """Everything else about the runbook, folded: open it for the tools, source and inputs."""
    facts = [
        ("Owner", escape(meta.owner) or "—"),
        ("Roles", _roles(meta.roles)),
        ("Tools", ", ".join(f"<code>{escape(t)}</code>" for t in meta.tools) or "—"),
        ("Tags", ", ".join(f"<code>{escape(t)}</code>" for t in meta.tags) or "—"),
        ("Routing", _routing(meta)),
        ("Source", f"<code>{escape(display)}</code>"),
        ("Last change", escape(last_change) or "—"),
        ("Last exercised", _last_exercised(runs)),
    ]
    rows = "".join(
        f"<dt{_anchor(k)}>{k}</dt><dd>{v}</dd>" for k, v in facts if k != "Routing" or v != "—"
    )
    summary = "Details: tools, inputs, source"
    parts = [
        f'<details class="rb-card"><summary>{summary}</summary>',
        f"<dl>{rows}</dl>",
        _inputs_table(meta.inputs),
        "</details>",
    ]
    return "\n".join(p for p in parts if p)


def _anchor(fact: str) -> str:
    return ' id="rb-routing"' if fact == "Routing" else ""


def _severity(meta: Metadata) -> str:
    if meta.severity is None:
        return "—"
    value = meta.severity.value
    return f'<span class="rb-sev rb-sev--{value}">{value}</span>'


def _trigger(meta: Metadata) -> str:
    """What starts the runbook, in the author's words. The match conditions are for the people
    who route alerts, not for the responder before step 1: they are under Details."""
    if meta.trigger.when:
        return escape(meta.trigger.when)
    if meta.trigger.match:
        return '<a href="#rb-routing">an alert its routing matches</a>'
    return "—"


def _routing(meta: Metadata) -> str:
    """The match conditions (docs/triggers.md), nested ones as compact JSON, and the priority."""
    match = "<br>".join(
        f"<code>{escape(k)}={escape(v if isinstance(v, str) else json.dumps(v))}</code>"
        for k, v in meta.trigger.match.items()
    )
    if not match:
        return "—"
    priority = meta.trigger.priority
    return match + (f"<br>priority {priority}" if priority else "")


def _last_exercised(runs: Sequence[Run]) -> str:
    if not runs:
        return "never (no journal found)"
    latest = runs[0]
    return (
        f'<a href="#latest-runs">{escape(latest.started_text)}</a> '
        f"({escape(latest.mode)}, {status_badge(latest.status)})"
    )


def _role_names(roles: Mapping[str, str]) -> str:
    """Role names only (who each is shows on hover, and in full under Details)."""
    names = [f'<b title="{escape(who)}">{escape(r)}</b>' for r, who in roles.items()]
    return ", ".join(names) or "—"


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


# --- the Run-it box ------------------------------------------------------------------------


def secret_variable(spec: InputSpec) -> str:
    """The environment variable `runbook run` reads a secret input from."""
    return f"RUNBOOK_INPUT_{spec.name.upper()}"


def run_command(meta: Metadata, path: str) -> str:
    """`runbook run runbooks/x.md -i host_id=<host_id> ...`: every input but the secrets, each
    a placeholder. A default is the lab's value (`wks-0042`): a command that filled it in would,
    pasted during an incident, act on the lab's host; a placeholder pasted as is fails loudly
    (the shell reads `<name>` as a missing file). Secrets are left out on purpose: a secret typed
    on a command line ends up in the shell's history and the process list."""
    words = ["runbook", "run", shlex.quote(path)]
    for spec in meta.inputs:
        if not spec.secret:
            words += ["-i", f"{spec.name}=<{spec.name}>"]
    return " ".join(words)


def run_box(meta: Metadata, path: str) -> str:
    """The "Run it" box, written as the HTML an admonition makes: it holds no author's text, and
    each Markdown construct saved is time saved on every page. Material still adds its copy
    button to every `pre > code`."""
    command = escape(run_command(meta, path))
    exports = [
        f'export {secret_variable(s)}="$(cat …)"  # {escape(s.name)}: never on the command line'
        for s in meta.inputs
        if s.secret
    ]
    code = "\n".join([*(escape(e) for e in exports), command])
    described = [_input_words(spec) for spec in meta.inputs if not spec.secret]
    inputs = (
        "Replace each <code>&lt;name&gt;</code> with this incident's value: "
        f"{'; '.join(described)}."
        if described
        else "It takes no inputs."
    )
    parts = [
        '<details class="admonition example rb-run">',
        "<summary>Run it with <code>runbook run</code></summary>",
        f'<div class="language-bash highlight"><pre><code>{code}</code></pre></div>',
        f"<p>{inputs}</p>",
    ]
    secrets = [
        f"<code>{escape(s.name)}</code> from <code>{secret_variable(s)}</code>"
        for s in meta.inputs
        if s.secret
    ]
    if secrets:
        parts.append(
            f"<p>Secret: {', '.join(secrets)} (or <code>--inputs FILE</code>). Never put a "
            "secret on the command line.</p>"
        )
    return "\n".join([*parts, "</details>"])


def _input_words(spec: InputSpec) -> str:
    about = [escape(spec.description.strip())] if spec.description.strip() else []
    if spec.enum:
        about.append(f"one of {escape(', '.join(_value(v) for v in spec.enum))}")
    if spec.default is not None:
        about.append(f"the lab uses <code>{escape(_value(spec.default))}</code>")
    words = f"<code>{escape(spec.name)}</code>"
    return f"{words} ({'; '.join(about)})" if about else words


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
