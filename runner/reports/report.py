"""The post-incident record of one run, as Markdown or a self-contained HTML page.

The record comes from :func:`runner.reports.source.load_run` (the journal, folded); the runbook
as it was run (same SHA-256) fills in what the journal leaves out. :func:`write_report` writes md,
html, or the notebook of :mod:`runner.reports.notebook`, plus a plot of the runbook's run durations.
The slow-step rule is in :mod:`runner.reports.source`.

Long on purpose: the Markdown and HTML reports are drawn from the same sections in the same
order, side by side so they cannot drift apart.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable
from pathlib import Path

from runner.errors import UsageError
from runner.private_files import write_private
from runner.reports.source import fill_from_runbook, runbook_at_run
from runner.reports.stats import plot_durations
from runner.runs import events as ev
from runner.runs.state import BlockRun, Event, ReportError, RunRecord, StepRecord
from runner.runs.store import list_runs, load_run
from runner.text.record import (
    fmt_duration,
    fmt_status,
    fmt_time,
    merge_streams,
    output_images,
    output_text,
    strip_ansi,
    time_limit_verdict,
    truncate,
)

FORMATS = ("md", "html", "ipynb")
MAX_INLINE_IMAGE = 2_000_000  # bytes; bigger images are linked, not inlined, in HTML


# --- Markdown --------------------------------------------------------------------------------

ImageLink = Callable[[Path], str]


def _md_escape(text: object) -> str:
    """Text safe inside a Markdown paragraph or table cell."""
    s = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return re.sub(r"([`*_\[\]<>#])", r"\\\1", s)


def _fence(text: str, lang: str = "text") -> str:
    """A fenced block longer than any run of backticks inside it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text.rstrip(chr(10))}\n{ticks}"


def render_markdown(record: RunRecord, *, image: ImageLink, plot: Path | None = None) -> str:
    """The post-incident record as Markdown. ``image`` turns an image file into a link."""
    parts = [_md_header(record), _md_timeline(record)]
    if plot is not None:
        parts.append(f"![Run durations against the time limit]({image(plot)})")
    if record.drill:
        parts.append(_md_drill(record))
    parts.append(_md_failures(record))
    parts.append("## Steps")
    parts += [_md_step(record, s, image) for s in record.steps]
    if record.off_script:
        parts.append(_md_off_script(record))
    parts.append(
        f"---\n\nRun `{record.run_id}` · journal `{record.run_dir / 'journal.jsonl'}` "
        f"({record.events} events) · check it with `runbook verify {record.run_id}`."
    )
    return "\n\n".join(p for p in parts if p) + "\n"


def _md_header(r: RunRecord) -> str:
    book = r.runbook
    kind = "Drill" if r.drill else "Run"
    rows = [
        ("Runbook", f"{_md_escape(r.name)} (`{book.get('id', '')}`, `{book.get('path', '')}`)"),
        (
            "Version",
            f"SHA-256 `{str(book.get('sha256', ''))[:16]}`"
            + (f", git commit `{str(r.git_commit)[:12]}`" if r.git_commit else ""),
        ),
        ("Objective", _md_escape(book.get("objective") or "—")),
        ("Operator", f"{_md_escape(r.operator)} on {_md_escape(r.host)}"),
        ("Mode", r.mode),
        ("Started", f"{r.started} (times below are UTC)"),
        ("Status", f"**{fmt_status(r.status)}**"),
        ("Duration", time_limit_verdict(r)),
    ]
    if r.ending:
        rows.insert(-1, ("Ended", _md_escape(r.ending)))
    if r.kernels:
        kernels = ", ".join(
            f"{k.get('kernel')} ({k.get('implementation', '')} {k.get('version', '')}, "
            f"{k.get('language', '')} {k.get('language_version', '')})"
            for k in r.kernels
        )
        rows.append(("Kernels", _md_escape(kernels)))
    table = "| | |\n|---|---|\n" + "\n".join(f"| **{k}** | {v} |" for k, v in rows)
    out = [f"# {kind} report: {_md_escape(r.name)}", table]
    if r.inputs:
        lines = ["### Inputs", "", "| input | value |", "|---|---|"]
        lines += [
            f"| `{k}` | {_md_escape(json.dumps(v) if not isinstance(v, str) else v)} |"
            for k, v in r.inputs.items()
        ]
        out.append("\n".join(lines))
    return "\n\n".join(out)


def _md_timeline(r: RunRecord) -> str:
    lines = [
        "## Timeline",
        "",
        "| step | title | role | status | start | duration |",
        "|---|---|---|---|---|---|",
    ]
    for s in r.steps:
        dur = fmt_duration(s.duration)
        if s.attempts > 1:
            dur += f" ({s.attempts} attempts)"
        lines.append(
            f"| {_md_escape(s.label)} | {_md_escape(s.title)} | {_md_escape(s.role or '—')} | "
            f"{fmt_status(s.status)} | {fmt_time(s.started)} | {dur} |"
        )
    lines += ["", f"**{fmt_status(r.status)}** — {time_limit_verdict(r)}"]
    for p in r.pauses:
        if isinstance(p, ev.RunPaused):
            lines.append(f"\n- {fmt_time(p.ts)} paused: {_md_escape(p.reason or '')}")
        else:
            lines.append(f"\n- {fmt_time(p.ts)} resumed by {_md_escape(p.operator)}")
    return "\n".join(lines)


def _md_failures(r: RunRecord) -> str:
    bad = [
        s for s in r.steps if s.status in ("failed", "timed_out", "cancelled", "denied", "handled")
    ]
    if not bad:
        return "## Failures\n\nNone: no step failed."
    lines = ["## Failures", ""]
    for s in bad:
        why = s.error or (f"exit status {s.exit_status}" if s.exit_status else "") or s.reason or ""
        lines.append(
            f"- Step {_md_escape(s.label)} *{_md_escape(s.title)}*: {fmt_status(s.status)}"
            + (f" — {_md_escape(why)}" if why else "")
        )
    return "\n".join(lines)


def _md_step(r: RunRecord, s: StepRecord, image: ImageLink) -> str:
    where = f" (alternative procedure `{s.procedure}`)" if s.procedure else ""
    facts = [
        fmt_status(s.status),
        f"role {_md_escape(s.role)}" if s.role else "",
        f"kernel `{s.kernel}`" if s.kernel else "manual step" if s.manual else "",
        fmt_duration(s.duration),
    ]
    if s.attempts > 1:
        facts.append(f"{s.attempts} attempts")
    if s.exit_status not in (None, 0):
        facts.append(f"exit status {s.exit_status}")
    out = [
        f"### {_md_escape(s.label)}. {_md_escape(s.title)}{where}",
        " · ".join(f for f in facts if f),
    ]
    if s.reason:
        out.append(f"Reason: {_md_escape(s.reason)}")
    if s.error:
        out.append(f"**Error:** {_md_escape(s.error)}")
    out += _md_events(s)
    out += _md_items(s)
    out += _md_outputs(r, s, image)
    if s.values:
        out.append("Outputs: " + ", ".join(f"`{k}` = {_md_escape(v)}" for k, v in s.values.items()))
    return "\n\n".join(out)


def _md_items(s: StepRecord) -> list[str]:
    """A `foreach` step's items, each with its own status: a failed one is never hidden."""
    if not s.items and not s.calls:
        return []
    rows = []
    for call in s.calls:
        if isinstance(call, ev.SubrunbookStarted):
            book = call.runbook.get("id", "?")
            rows.append(f"- runs runbook {_md_escape(book)} as {_md_escape(call.prefix)}")
        else:
            back = ", ".join(f"`{k}`" for k in call.outputs) or "no outputs"
            error = f": {_md_escape(call.error)}" if call.error else ""
            prefix = _md_escape(call.prefix)
            rows.append(f"- runbook {prefix} {fmt_status(call.status)} ({back}){error}")
    for item in s.items:
        facts = [fmt_status(item.status), fmt_duration(item.duration) if item.attempts else ""]
        if item.attempts > 1:
            facts.append(f"{item.attempts} attempts")
        why = item.error or item.reason
        rows.append(
            f"- item {item.index} ({_md_escape(str(item.item))}): "
            + " · ".join(f for f in facts if f)
            + (f" — {_md_escape(why)}" if why else "")
        )
    return ["\n".join(rows)]


def _md_events(s: StepRecord) -> list[str]:
    items = []
    for f in s.faults:
        items.append(f"- ⚡ fault injected: {_md_escape(f.description)}")
    for d in s.decisions:
        waited = f", after {fmt_duration(d.waited)}" if d.waited is not None else ""
        note = f": {_md_escape(d.note)}" if d.note else ""
        by = _md_escape(d.by or "?")
        role = f" ({_md_escape(d.role)})" if d.role else ""
        items.append(f"- decision **{_md_escape(d.decision)}** by {by}{role}{waited}{note}")
    if s.answer is not None:
        given = s.answer
        waited = f", after {fmt_duration(given.waited)}" if given.waited is not None else ""
        items.append(
            f"- answered **{_md_escape(given.value)}** by {_md_escape(given.by or '?')} "
            f"({_md_escape(given.source or '?')}{waited}), recorded as `{given.output}`"
        )
    for a in s.approvals:
        if isinstance(a, ev.ApprovalRequested):
            items.append(f"- approval requested from role {_md_escape(a.approver_role or 'any')}")
            continue
        if isinstance(a, ev.ApprovalRefused):
            items.append(
                f"- approval by {_md_escape(a.by or '?')} "
                f"({_md_escape(a.role or 'no role')}) **refused**: {_md_escape(a.reason)}"
            )
            continue
        if isinstance(a, ev.ApprovalEscalated):
            items.append(
                f"- approval **escalated** from {_md_escape(a.from_role or 'any')} to "
                f"{_md_escape(a.role or 'any')}: its time ran out"
            )
            continue
        if isinstance(a, ev.ApprovalExpired):
            items.append(f"- approval **expired**: {_md_escape(a.reason)}")
            continue
        pre = " (pre-approved)" if a.preapproved else ""
        if a.needed:
            pre += f" ({a.count} of {a.needed})"
        comment = f": {_md_escape(a.comment)}" if a.comment else ""
        items.append(
            f"- **{_md_escape(a.decision)}** by {_md_escape(a.by or '?')} "
            f"({_md_escape(a.role or 'no role')}){pre}{comment}"
        )
    for n in s.notes:
        flag = " **[unclear]**" if n.unclear else ""
        who = f"{_md_escape(n.by or '?')} ({_md_escape(n.role or '—')})"
        items.append(f"- note by {who}{flag}: {_md_escape(n.text)}")
    return ["\n".join(items)] if items else []


def _md_outputs(r: RunRecord, s: StepRecord, image: ImageLink) -> list[str]:
    """Each block that ran with its code and output, when the journal says which blocks ran
    (block_started); otherwise the step's outputs in order."""
    if not s.blocks:
        return _md_output_list(r, s, s.outputs, image, attempt=s.attempts > 1)
    parts = [part for run in s.blocks for part in _md_block(r, s, run, image)]
    # Output no block_started claimed (a journal cut mid-step) is still shown, after the blocks.
    claimed = {id(o) for run in s.blocks for o in run.outputs}
    loose = [o for o in s.outputs if id(o) not in claimed]
    return parts + _md_output_list(r, s, loose, image, attempt=s.attempts > 1)


def _md_block(r: RunRecord, s: StepRecord, run: BlockRun, image: ImageLink) -> list[str]:
    facts = [
        f"in `{run.kernel}`" if run.kernel else "",
        f"attempt {run.attempt}" if s.attempts > 1 else "",
        fmt_status(run.status) if run.status else "did not finish",
        fmt_duration(run.duration) if run.duration is not None else "",
        f"exit status {run.exit_status}" if run.exit_status not in (None, 0) else "",
    ]
    head = f"Block `{run.block_id}` " + " · ".join(f for f in facts if f) + ":"
    code = _fence(truncate(run.code), run.lang or "text") if run.code is not None else ""
    return [head, *([code] if code else []), *_md_output_list(r, s, run.outputs, image)]


def _md_output_list(
    r: RunRecord, s: StepRecord, outputs: list[Event], image: ImageLink, *, attempt: bool = False
) -> list[str]:
    out: list[str] = []
    for o in merge_streams(outputs):
        text = output_text(o)
        if text.strip():
            kind = str(o.get("kind"))
            label = str(o.get("stream") or "stdout") if kind == "stream" else kind
            which = f" (attempt {o['attempt']})" if attempt else ""
            out.append(f"{label}{which}:\n\n{_fence(truncate(strip_ansi(text)))}")
        for rel in output_images(o):
            path = r.run_dir / rel
            if path.is_file():
                out.append(f"![output of step {_md_escape(s.label)}]({image(path)})")
    return out


def _md_off_script(r: RunRecord) -> str:
    lines = ["## Off-script actions", ""]
    for e in r.off_script:
        where = r.owners.get(int(e.get("seq") or 0))
        before = f" before step {where.label}" if where else ""
        code = _indent(_fence(str(e.get("code") or "")))
        lines.append(
            f"- {fmt_time(e.get('ts'))}{before}, by {_md_escape(e.get('by') or '?')} in "
            f"`{e.get('kernel')}` ({e.get('status')}):\n\n{code}"
        )
        text = "".join(output_text(o) for o in e.get("outputs") or [])
        if text.strip():
            lines.append(f"\n  output:\n\n{_indent(_fence(truncate(strip_ansi(text))))}")
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" if line else line for line in text.split("\n"))


def _md_drill(r: RunRecord) -> str:
    parts = ["## Drill findings", _md_faults(r), _md_unclear(r), _md_slow(r), _md_manual(r)]
    who = _participants(r)
    if who:
        parts.insert(1, "Participants: " + ", ".join(_md_escape(w) for w in who))
    return "\n\n".join(parts)


def _participants(r: RunRecord) -> list[str]:
    """Everyone who decided, approved or wrote a note, with the role they acted in.

    A decision without a role (older journals) was made in the step's role; an approver's
    role is their own, never the step's.
    """
    roles: dict[str, str] = {}
    for s in r.steps:
        acted: list[tuple[str, str | None]] = [(d.by, d.role or s.role) for d in s.decisions]
        acted += [(a.by, a.role) for a in s.approvals if isinstance(a, ev.Approval)]
        acted += [(n.by, n.role) for n in s.notes]
        for who, role in acted:
            if who:
                roles[who] = roles.get(who) or str(role or "")
    return [f"{name} ({role})" if role else name for name, role in roles.items()]


def coped(r: RunRecord, step: StepRecord | None) -> str:
    """How the runbook coped with a fault injected at ``step``."""
    if step is None:
        return f"not tied to a step; the run ended {r.status}"
    if step.status == "handled":
        after = r.steps[r.steps.index(step) + 1 :]
        procs = [s for s in after if s.procedure]
        names = sorted({str(s.procedure) for s in procs})
        ok = all(s.status in ("succeeded", "skipped") for s in procs)
        return (
            f"handled: alternative procedure {', '.join(names) or '?'} ran "
            f"({len(procs)} steps, {'all succeeded' if ok else 'not all succeeded'})"
        )
    if step.status == "succeeded":
        extra = f" after {step.attempts} attempts" if step.attempts > 1 else ""
        return f"the step still succeeded{extra}"
    if step.status == "denied":
        return f"approval denied; the step did not run and the run ended {r.status}"
    return f"not handled: the step {step.status} and the run ended {r.status}"


def _md_faults(r: RunRecord) -> str:
    faults = r.faults
    if not faults:
        return "### Faults injected\n\nNone."
    lines = [
        "### Faults injected",
        "",
        "| step | fault | step status | how the runbook coped |",
        "|---|---|---|---|",
    ]
    for step, f in faults:
        label = f"{step.label}. {step.title}" if step else "—"
        lines.append(
            f"| {_md_escape(label)} | {_md_escape(f.description)} | "
            f"{fmt_status(step.status) if step else '—'} | {_md_escape(coped(r, step))} |"
        )
    return "\n".join(lines)


def _md_unclear(r: RunRecord) -> str:
    unclear: list[tuple[StepRecord | None, ev.Note]] = []
    unclear += [(s, n) for s in r.steps for n in s.notes if n.unclear]
    unclear += [(None, n) for n in r.notes if n.unclear]
    if not unclear:
        return "### Steps marked unclear\n\nNone."
    lines = ["### Steps marked unclear", ""]
    for s, n in unclear:
        where = f"Step {s.label} *{_md_escape(s.title)}*" if s else "The runbook"
        lines.append(
            f"- {where}: {_md_escape(n.text)} — {_md_escape(n.by or '?')}"
            + (f" ({_md_escape(n.role)})" if n.role else "")
        )
    return "\n".join(lines)


def _md_slow(r: RunRecord) -> str:
    share = r.share()
    rule = (
        "a step is slow when it took more than its share of the time limit "
        f"(time limit / steps that took time = {fmt_duration(share)})"
        if r.time_limit
        else f"no time limit, so a step is slow when it took more than twice the mean step time "
        f"({fmt_duration(share)})"
    )
    slow = r.slow_steps()
    head = f"### Slow steps\n\n*Rule:* {rule}."
    if not slow:
        return f"{head}\n\nNone."
    rows = [
        f"- Step {_md_escape(s.label)} *{_md_escape(s.title)}*: {fmt_duration(s.duration)}"
        for s in slow
    ]
    return head + "\n\n" + "\n".join(rows)


def _md_manual(r: RunRecord) -> str:
    manual = [s for s in r.steps if s.manual and s.status != "pending"]
    if not manual:
        return "### Manual steps\n\nNone."
    lines = [
        "### Manual steps",
        "",
        "| step | title | role | answer | by | time to answer |",
        "|---|---|---|---|---|---|",
    ]
    for s in manual:
        d = s.decisions[-1] if s.decisions else None
        took = s.waited if s.waited is not None else s.duration
        given = s.answer
        said = str(given.value) if given is not None else (d.decision if d else "")
        who = given.by if given is not None else (d.by if d else "")
        if given is not None and given.waited is not None:
            took = given.waited
        lines.append(
            f"| {_md_escape(s.label)} | {_md_escape(s.title)} | {_md_escape(s.role or '—')} | "
            f"{_md_escape(said or s.status)} | "
            f"{_md_escape(who or '—')} | "
            f"{fmt_duration(took)} |"
        )
    return "\n".join(lines)


# --- HTML ------------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;
max-width:60rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.6rem;border-bottom:2px solid #d0d7de;padding-bottom:.3rem}
h2{font-size:1.3rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
h3{font-size:1.05rem;margin-top:1.5rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.92rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.6rem;overflow-x:auto;font-size:.85rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
img{max-width:100%}
@media print{pre{white-space:pre-wrap}}
"""


def render_html(record: RunRecord, *, image: ImageLink, plot: Path | None = None) -> str:
    """A self-contained page: the Markdown record rendered, inline CSS, no network."""
    from markdown_it import MarkdownIt

    # html=False: journal text (command output) must show as text, never as markup.
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    body = md.render(render_markdown(record, image=lambda p: _INLINE if p == plot else image(p),
                                     plot=plot))  # fmt: skip
    if plot is not None:
        # The chart goes in as SVG markup, not an <img>: Markdown refuses `data:image/svg+xml`
        # links (an SVG file may hold scripts), and ours is our own text, escaped as it is drawn.
        svg = plot.read_text(encoding="utf-8").split("?>", 1)[-1].strip()
        body = re.sub(rf'<img src="{_INLINE}"[^>]*>', lambda _: svg, body, count=1)
    title = html.escape(f"{'Drill' if record.drill else 'Run'} report: {record.name}")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>{title}</title>'
        f"<style>{_CSS}</style></head>\n<body>\n{body}</body></html>\n"
    )


_INLINE = "rb-inline-chart"  # the chart's stand-in link, replaced by the SVG itself


def data_uri(path: Path) -> str:
    """An image inlined, so the HTML page needs no other file (large ones stay linked)."""
    data = path.read_bytes()
    if len(data) > MAX_INLINE_IMAGE:
        return path.resolve().as_uri()
    kind = path.suffix.lstrip(".").lower().replace("jpg", "jpeg")
    return f"data:image/{kind};base64,{base64.b64encode(data).decode()}"


# --- writing ---------------------------------------------------------------------------------


def default_output(run_dir: Path, fmt: str) -> Path:
    return run_dir / f"report.{fmt}"


def write_report(run_dir: Path, fmt: str, out: Path | None = None) -> list[Path]:
    """Write the report (and its plot, for md and html); return the files written."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown report format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    record = load_run(run_dir)
    runbook = runbook_at_run(record)
    if runbook is not None:
        fill_from_runbook(record, runbook)
    out = out or default_output(run_dir, fmt)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "ipynb":
            from runner.reports.notebook import (
                write_notebook,  # nbformat is only imported for notebooks
            )

            write_notebook(record, runbook, str(out))
            return [out]
        plot = _plot(record, out)
        if fmt == "md":
            text = render_markdown(record, image=lambda p: _relative(p, out.parent), plot=plot)
        else:
            text = render_html(record, image=data_uri, plot=plot)
        # 0600 like the journal, and never through a link planted in the run folder.
        write_private(out, text.encode("utf-8"))
    except OSError as exc:
        raise ReportError(
            f"cannot write the report: {exc.strerror}; choose another file with -o", path=str(out)
        ) from None
    return [out] + ([plot] if plot else [])


def _plot(record: RunRecord, out: Path) -> Path | None:
    runs = list_runs(record.run_dir.parent, record.runbook.get("id"))
    svg = out.with_name(f"{out.stem}-durations.svg")
    return plot_durations(
        runs, record.time_limit, svg, highlight=record.run_id, title=f"{record.name}: run durations"
    )


def _relative(path: Path, base: Path) -> str:
    import os

    try:
        return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return path.resolve().as_uri()
