"""Commands that read what runs left behind: runs, log, verify, report, stats.

Everything here reads journals; nothing writes one. Text a run produced (titles, output, notes)
is shown as plain ``Text``, never as console markup, so a command's output cannot restyle the
terminal. Errors are raised for the handler in ``runner.cli``: an unknown run exits 2.

Long on purpose: the read-only commands share one replay of a run (headings, outputs, decisions)
and one table style; split by command they would each re-derive it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
from rich.console import Console, Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from runner.cli import EXIT_FAILED, cli, format_option, runs_dir_option
from runner.format.syntax import error_headline
from runner.reports.progress import Progress, run_progress
from runner.reports.report import FORMATS, write_report
from runner.reports.source import fill_from_runbook, runbook_at_run
from runner.reports.stats import RunbookStats, all_stats, plot_durations, runbook_stats
from runner.runs import events as ev
from runner.runs.journal import (
    JOURNAL,
    Event,
    VerifyResult,
    read_events,
    verify,
)
from runner.runs.journal import repair as repair_journal
from runner.runs.state import OFF_SCRIPT, RunRecord, StepRecord
from runner.runs.store import (
    RunInfo,
    default_runs_dir,
    find_run,
    info_of,
    list_runs,
    load_run,
    summary,
)
from runner.text.record import (
    STATUS_STYLE,
    fmt_duration,
    fmt_status,
    fmt_time,
    output_images,
    strip_ansi,
    time_limit_verdict,
)
from runner.text.terminal import visible, visible_event

OUTPUT_VERSION = 1


def _console(*, wide: bool = False) -> Console:
    console = Console(highlight=False, soft_wrap=False)
    if wide and not console.is_terminal:
        # Piped or redirected: no screen to fit, and a cut run or runbook id would be useless
        # to the program reading it. Tables are not expanded, so lines are as long as needed.
        console.width = 10_000
    return console


def _dump(data: object) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _status(status: str) -> Text:
    return Text(fmt_status(status), style=STATUS_STYLE.get(status, ""))


# --- runs ------------------------------------------------------------------------------------


@cli.command()
@runs_dir_option
@click.option("--runbook", "runbook_id", metavar="ID", help="only runs of this runbook id")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@format_option
def runs(runs_dir: Path | None, runbook_id: str | None, limit: int, output_format: str) -> None:
    """List recent runs, newest first."""
    folder = runs_dir or default_runs_dir()
    found = list_runs(folder, runbook_id)[:limit]
    progress = {r.run_id: run_progress(r) for r in found}
    if output_format == "json":
        runs_json = [{**r.as_json(), **progress[r.run_id].as_json()} for r in found]
        _dump({"version": OUTPUT_VERSION, "runs": runs_json})
        return
    console = _console()
    if not found:
        # soft_wrap: a path is never broken across lines (it is pasted back into commands)
        console.print(Text(f"no runs in {folder}" + (f" of {runbook_id}" if runbook_id else "")),
                      soft_wrap=True)  # fmt: skip
        return
    _console(wide=True).print(_runs_table(found, progress))


def _runs_table(found: list[RunInfo], progress: dict[str, Progress]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    # The id is what every other command takes: never wrap or cut it.
    table.add_column("run", no_wrap=True, min_width=max(len(r.run_id) for r in found))
    table.add_column("runbook", no_wrap=True, min_width=max(len(r.runbook_id) for r in found))
    table.add_column("mode")
    table.add_column("status", no_wrap=True)
    table.add_column("step")
    table.add_column("started", no_wrap=True)
    table.add_column("elapsed / limit", no_wrap=True)
    for r in found:
        table.add_row(
            Text(visible(r.run_id)),
            Text(visible(r.runbook_id)),
            Text(visible(r.mode)),
            _status(r.status),
            Text(visible(progress[r.run_id].step or "")),
            r.started.replace("T", " ")[:19],
            _against_limit(r, progress[r.run_id]),
        )
    return table


def _against_limit(r: RunInfo, p: Progress) -> Text:
    """Wall time (a running run's so far) against the limit: ✓ within, once it finished."""
    took = fmt_duration(p.wall) if p.wall is not None else "—"
    if not r.time_limit or p.wall is None:
        return Text(took)
    text = f"{took} / {fmt_duration(r.time_limit)}"
    over = p.wall > r.time_limit
    if over:
        return Text(text + " ✗ over", style="red")
    finished = r.status not in ("running", "paused", "crashed")
    return Text(text + (" ✓" if finished else ""))


# --- log -------------------------------------------------------------------------------------


@cli.command()
@click.argument("run")
@runs_dir_option
@format_option
@click.option(
    "-f",
    "--follow",
    is_flag=True,
    help="Keep showing what the run does until it pauses or ends (text format).",
)
def log(run: str, runs_dir: Path | None, output_format: str, follow: bool) -> None:
    """Replay a run: what ran, what it printed, who decided what.

    RUN is a run id, a unique prefix of one, a run folder, or `last`.
    """
    run_dir = find_run(runs_dir or default_runs_dir(), run)
    if follow:
        if output_format == "json":
            raise click.UsageError("--follow shows text; read journal.jsonl for the events")
        _follow(run_dir)
        return
    events = read_events(run_dir)
    if output_format == "json":
        info = info_of(load_run(run_dir, events))
        _dump(
            {
                "version": OUTPUT_VERSION,
                "run": info.as_json(),
                "events": events,
            }
        )
        return
    # Everything shown below comes from the journal or the runbook: escaped, never obeyed.
    events = [visible_event(e) for e in events]
    record = load_run(run_dir, events)
    runbook = runbook_at_run(record)
    if runbook is not None:
        fill_from_runbook(record, runbook)
    console = _console()
    # Output lines keep their length: the terminal wraps them, rich does not re-flow them.
    console.soft_wrap = True
    console.print(_log_header(record))
    for renderable in _replay(record, events):
        console.print(renderable)
    _final(console, record)


#: How often `log --follow` looks at the journal for new lines.
FOLLOW_POLL = 0.2


def _follow(run_dir: Path) -> None:
    """The log so far, then each new event as the runner journals it, until no runner holds
    the journal any more (the run paused, ended or crashed)."""
    import time

    console = _console()
    console.soft_wrap = True
    shown, size = 0, -1
    try:
        while True:
            info = summary(run_dir)
            going = info is not None and info.status == "running"
            now = (run_dir / JOURNAL).stat().st_size
            if now != size:
                size = now
                events = [visible_event(e) for e in read_events(run_dir)]
                record = load_run(run_dir, events)
                if shown == 0:
                    console.print(_log_header(record))
                for renderable in _replay(record, events, after=shown):
                    console.print(renderable)
                shown = int(events[-1].get("seq") or 0) if events else 0
            if not going:
                break
            time.sleep(FOLLOW_POLL)  # the journal is a file: polled, as `tail -f` polls
    except KeyboardInterrupt:
        return  # Ctrl-C stops following; the run goes on
    _final(console, load_run(run_dir))


def _final(console: Console, record: RunRecord) -> None:
    console.print(Rule() if console.is_terminal else Text("─" * 80))
    final = Text("run ")
    final.append_text(_status(record.status))
    final.append(f" · {time_limit_verdict(record).replace('**', '')}")
    console.print(final)


def _log_header(record: RunRecord) -> RenderableType:
    book = record.runbook
    rows = [
        ("runbook", f"{record.name} ({book.get('id', '')}) {book.get('path', '')}"),
        (
            "version",
            f"sha256 {str(book.get('sha256', ''))[:16]}"
            + (f" · git {str(record.git_commit)[:12]}" if record.git_commit else ""),
        ),
        ("objective", str(book.get("objective") or "—")),
        ("run", f"{record.run_id} · {record.mode}"),
        ("operator", f"{record.operator} on {record.host}"),
        ("started", record.started),
    ]
    trigger = record.start.get("trigger")
    if isinstance(trigger, dict):
        rows.append(
            (
                "alert",
                f"{trigger.get('source', '')} {trigger.get('id', '')}: {trigger.get('title', '')}",
            )
        )
    rows += [
        ("input " + k, v if isinstance(v, str) else json.dumps(v)) for k, v in record.inputs.items()
    ]
    # Lines, not a grid: a grid would wrap or cut a value (the run id) at the screen's edge;
    # these stay whole for the terminal to wrap and for a copy to pick up.
    width = max(len(key) for key, _ in rows) + 2
    lines = [Text(key.ljust(width), style="dim").append(visible(value)) for key, value in rows]
    return Group(Text(record.name, style="bold"), *lines)


def _replay(record: RunRecord, events: list[Event], after: int = 0) -> Iterator[RenderableType]:
    """The events in order, as a person would have watched them: a heading whenever the run
    moves to another step, then what happened there. Only events past seq ``after`` are
    shown (`--follow`); the earlier ones still tell which step is current."""
    for seq, renderable in _replayed(record, events):
        if seq > after:
            yield renderable


def _replayed(record: RunRecord, events: list[Event]) -> Iterator[tuple[int, RenderableType]]:
    main_total = record.start.get("total_steps") or len(
        [s for s in record.steps if not s.procedure]
    )
    current: StepRecord | None = None
    # An off-script command's output is journaled before the `off_script` event that names the
    # command: held back and shown under it, not under whatever was shown last.
    held: list[Event] = []
    for raw in events:
        e = ev.decode(raw)
        owner = record.owners.get(e.seq)
        if owner is not None and owner is not current:
            current = owner
            yield e.seq, _step_heading(owner, main_total)
        shown: list[RenderableType] = []
        if isinstance(e, ev.OutputEvent) and e.block_id == OFF_SCRIPT:
            held.append(raw)
        elif isinstance(e, ev.OffScript):
            shown.append(_off_script(raw))
            for out in held:
                shown += _output(out)
            held = []
        elif isinstance(e, ev.StepStarted) and (e.attempt or 1) > 1:
            shown.append(Text(f"  attempt {e.attempt} of {e.attempts or '?'}", style="bold"))
        elif isinstance(e, ev.OutputEvent):
            shown += _output(raw)
        elif isinstance(e, ev.StepFinished):
            shown.append(_step_end(raw))
        elif e.event in _LINES:
            shown.append(_LINES[e.event](raw))
        for renderable in shown:
            yield e.seq, renderable


def _step_heading(s: StepRecord, main_total: int) -> RenderableType:
    if s.procedure:
        counter = (
            f"[{s.procedure} {s.number}/{s.total}]" if s.total else f"[{s.procedure} {s.number}]"
        )
    else:
        counter = f"[{s.number}/{s.total or main_total}]"
    title = Text(visible(f"{counter} {s.title or s.step_id}"), style="bold")
    facts = [
        f"role {s.role}" if s.role else "",
        f"kernel {s.kernel}" if s.kernel else "manual step" if s.manual else "",
    ]
    if any(facts):
        title.append("  " + " · ".join(f for f in facts if f), style="dim")
    return Group(Text(""), title)


def _output(e: Event) -> Iterator[RenderableType]:
    kind = e.get("kind")
    if kind == "stream":
        text = str(e.get("text") or "").rstrip("\n")
        if e.get("stream") == "stderr":
            yield _prefixed(text, "stderr│ ", "red")
        else:
            yield _prefixed(text, "      │ ", "")
    elif kind == "error":
        tb = "\n".join(strip_ansi(str(t)) for t in e.get("traceback") or [])
        head = error_headline(e.get("ename"), e.get("evalue"))
        yield _prefixed(tb if head in tb else (f"{tb}\n{head}" if tb else head), " error│ ", "red")
    else:
        data = e.get("data") or {}
        plain = data.get("text/plain")
        if plain:
            yield _prefixed(
                "".join(plain) if isinstance(plain, list) else str(plain), "   out│ ", "cyan"
            )
        for image in output_images(e):
            yield Text(f"   out│ [image {image}]", style="cyan")


def _prefixed(text: str, prefix: str, style: str) -> Text:
    out = Text()
    for i, line in enumerate(text.split("\n")):
        if i:
            out.append("\n")
        out.append(prefix, style="dim")
        out.append(line, style=style)
    return out


def _step_end(e: Event) -> RenderableType:
    line = Text("  → ")
    line.append_text(_status(str(e.get("status") or "")))
    if e.get("duration"):  # 0 for verdicts that took no time (skipped, handled)
        line.append(f" in {fmt_duration(e['duration'])}")
    if int(e.get("attempt") or 1) > 1:
        line.append(f" (attempt {e['attempt']})")
    if e.get("retry_in") is not None:
        delay = f" in {fmt_duration(e['retry_in'])}" if e["retry_in"] else ""
        line.append(f" · retrying{delay}", style="yellow")
    exit_text = f"exit status {e['exit_status']}" if e.get("exit_status") not in (None, 0) else ""
    for problem in dict.fromkeys([exit_text, str(e.get("error") or "")]):
        if problem:
            line.append(f" · {problem}", style="red")
    if e.get("reason"):
        line.append(f" · {e['reason']}", style="dim")
    return line


def _decision(e: Event) -> Text:
    waited = f" after {fmt_duration(e['waited'])}" if e.get("waited") is not None else ""
    note = f": {e['note']}" if e.get("note") else ""
    role = f" ({e['role']})" if e.get("role") else ""
    return Text(f"  ? {e.get('decision')} — by {e.get('by')}{role}{waited}{note}", style="magenta")


def _block_started(e: Event) -> Text:
    return Text(f"  ▸ block {e.get('block_id')} in {e.get('kernel') or '?'}", style="dim")


def _approval_requested(e: Event) -> Text:
    return Text(
        f"  ⚑ approval requested from role {e.get('approver_role') or 'any'}", style="yellow"
    )


def _approval(e: Event) -> Text:
    pre = " (pre-approved)" if e.get("preapproved") else ""
    comment = f": {e['comment']}" if e.get("comment") else ""
    style = "green" if e.get("decision") == "approved" else "red"
    return Text(
        f"  ⚑ {e.get('decision')} by {e.get('by')} ({e.get('role') or 'no role'}){pre}{comment}",
        style=style,
    )


def _approval_refused(e: Event) -> Text:
    return Text(
        f"  ⚑ approval by {e.get('by')} ({e.get('role') or 'no role'}) refused: {e.get('reason')}",
        style="red",
    )


def _inputs_changed(e: Event) -> Text:
    previous = e.get("previous") or {}
    changes = ", ".join(
        f"{k}={v} (was {previous.get(k)})" for k, v in (e.get("inputs") or {}).items()
    )
    return Text(f"\n  ✎ input corrected by {e.get('by')} for the resume: {changes}", style="cyan")


def _note(e: Event) -> Text:
    flag = " [unclear]" if e.get("unclear") else ""
    return Text(
        f"  ✎ note by {e.get('by')} ({e.get('role') or '—'}){flag}: {e.get('text')}",
        style="yellow" if e.get("unclear") else "",
    )


def _fault(e: Event) -> Text:
    return Text(f"  ⚡ fault injected: {e.get('description')}", style="bold yellow")


def _off_script(e: Event) -> Text:
    return Text(
        f"\n  ⌨ off-script in {e.get('kernel')} by {e.get('by')} ({e.get('status')}): "
        f"{e.get('code')}",
        style="magenta",
    )


def _kernel(e: Event) -> Text:
    return Text(
        f"  kernel {e.get('kernel')} started: {e.get('implementation', '')} "
        f"{e.get('version', '')} ({e.get('language', '')} {e.get('language_version', '')})",
        style="dim",
    )


def _outputs(e: Event) -> Text:
    values = ", ".join(f"{k}={v}" for k, v in (e.get("values") or {}).items())
    return Text(f"  outputs: {values}", style="cyan")


def _paused(e: Event) -> Text:
    return Text(f"\n  ⏸ paused at {fmt_time(e.get('ts'))}: {e.get('reason')}", style="cyan")


def _resumed(e: Event) -> Text:
    return Text(
        f"\n  ▶ resumed at {fmt_time(e.get('ts'))} by {e.get('operator')} "
        f"(attempt {e.get('attempt')})",
        style="cyan",
    )


def _item_started(e: Event) -> Text:
    again = (
        f", attempt {e.get('attempt')} of {e.get('attempts')}"
        if (e.get("attempt") or 1) > 1
        else ""
    )
    return Text(
        visible(
            f"  ↻ item {e.get('index')}/{e.get('count')}: {e.get('var')}={e.get('item')}{again}"
        ),
        style="bold",
    )


def _item_finished(e: Event) -> Text:
    status = str(e.get("status") or "")
    why = e.get("error") or e.get("reason") or ""
    style = "green" if status == "succeeded" else "yellow" if status == "skipped" else "red"
    text = f"  ↻ item {e.get('index')}/{e.get('count')} ({e.get('item')}): {status}"
    return Text(visible(text + (f" — {why}" if why else "")), style=style)


def _subrunbook_started(e: Event) -> Text:
    book = (e.get("runbook") or {}).get("id", "?")
    return Text(visible(f"  ⇢ runs runbook {book} as {e.get('prefix')}"), style="bold cyan")


def _subrunbook_finished(e: Event) -> Text:
    back = ", ".join(e.get("outputs") or {}) or "no outputs"
    error = f": {e['error']}" if e.get("error") else ""
    text = f"  ⇠ runbook {e.get('prefix')} {e.get('status')} ({back}){error}"
    return Text(visible(text), style="cyan")


_LINES = {
    "item_started": _item_started,
    "item_finished": _item_finished,
    "subrunbook_started": _subrunbook_started,
    "subrunbook_finished": _subrunbook_finished,
    "block_started": _block_started,
    "decision": _decision,
    "approval_requested": _approval_requested,
    "approval": _approval,
    "approval_refused": _approval_refused,
    "inputs_changed": _inputs_changed,
    "note": _note,
    "fault": _fault,
    "off_script": _off_script,
    "kernel_started": _kernel,
    "outputs": _outputs,
    "run_paused": _paused,
    "run_resumed": _resumed,
}


# --- verify ----------------------------------------------------------------------------------


@cli.command(name="verify")
@click.argument("run")
@runs_dir_option
@click.option(
    "--repair",
    is_flag=True,
    help="Mend a torn last line or a lost head (after a crash), journaling what was cut.",
)
@click.option(
    "--allow-unkeyed",
    is_flag=True,
    help="Accept a journal written before journals were keyed (it proves only consistency).",
)
@format_option
@click.pass_context
def verify_command(
    ctx: click.Context,
    run: str,
    runs_dir: Path | None,
    repair: bool,
    allow_unkeyed: bool,
    output_format: str,
) -> None:
    """Check a run's journal has not been edited, cut or extended: exit 0 intact, 1 not.

    RUN is a run id, a unique prefix of one, a run folder, or `last`. What `intact` proves, and
    against whom, is in docs/running.md: with a keyed journal, that every line was written by a
    holder of your journal key, in order, and none was cut from the end.
    """
    run_dir = find_run(runs_dir or default_runs_dir(), run)
    fixed = None
    if repair:
        import getpass

        fixed = repair_journal(run_dir, getpass.getuser())
        if fixed is not None and output_format == "text":
            click.echo(f"repaired ({visible(fixed)}); the repair is journaled")
    result = verify(run_dir)
    proven = result.ok and (result.keyed_from is not None or result.lines == 0 or allow_unkeyed)
    if output_format == "json":
        _dump(_verify_json(run_dir, result, proven, fixed))
        if not proven:
            ctx.exit(EXIT_FAILED)
        return
    if proven:
        click.echo(f"intact ({result.lines} events{_keyed_note(result)})")
        return
    if result.ok:
        # Anyone can re-chain an unkeyed journal: consistent, but nothing says who wrote it.
        click.echo(
            f"{run_dir / JOURNAL}: NOT proven: the journal is unkeyed (written before journals "
            "were keyed, or rewritten without the key); `--allow-unkeyed` accepts it as "
            "self-consistent only",
            err=True,
        )
        ctx.exit(EXIT_FAILED)
    where = f"{run_dir / JOURNAL}:{result.line}" if result.line else str(run_dir / JOURNAL)
    hint = "; `runbook verify --repair` mends it (journaled)" if result.torn else ""
    click.echo(f"{where}: NOT intact: {visible(result.message)}{hint}", err=True)
    ctx.exit(EXIT_FAILED)


def _verify_json(
    run_dir: Path, result: VerifyResult, proven: bool, repaired: str | None
) -> dict[str, object]:
    """The verdict for programs: `verdict` is intact, unkeyed (consistent, writer unproven)
    or not_intact; the exit status is 0 only for a proven journal."""
    verdict = "intact" if proven else "unkeyed" if result.ok else "not_intact"
    return {
        "version": OUTPUT_VERSION,
        "run_id": run_dir.name,
        "journal": str(run_dir / JOURNAL),
        "verdict": verdict,
        "ok": proven,
        "events": result.lines,
        "keyed": result.keyed,
        "keyed_from": result.keyed_from,
        "message": result.message,
        "line": result.line,
        "torn": result.torn,
        "repairable": result.repairable,
        "repaired": repaired,
    }


def _keyed_note(result: VerifyResult) -> str:
    if result.keyed:
        return ", keyed"
    if result.keyed_from is not None:
        return (
            f", keyed from line {result.keyed_from}: lines 1-{result.keyed_from - 1} were "
            "written before journals were keyed"
        )
    return (
        ", unkeyed: written before journals were keyed, so this shows only that the file is "
        "self-consistent, not who wrote it"
    )


# --- report ----------------------------------------------------------------------------------


@cli.command()
@click.argument("run")
@runs_dir_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="md",
    show_default=True,
    help="md and html: the post-incident record; ipynb: a notebook of what ran",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="where to write it, `-` for stdout (no plot) [default: report.<format> in the run folder]",
)
def report(run: str, runs_dir: Path | None, fmt: str, output: Path | None) -> None:
    """Write the post-incident record of a run (or drill).

    RUN is a run id, a unique prefix of one, a run folder, or `last`.
    """
    run_dir = find_run(runs_dir or default_runs_dir(), run)
    if output is not None and str(output) == "-":
        _report_to_stdout(run_dir, fmt)
        return
    written = write_report(run_dir, fmt, output)
    click.echo(f"wrote {written[0]}")
    for extra in written[1:]:
        click.echo(f"  and {extra}")


def _report_to_stdout(run_dir: Path, fmt: str) -> None:
    """`-o -`: the report on stdout, for a pipe. No durations plot (a PNG has no place in a
    stream); HTML embeds its images, Markdown names them by their path in the run folder."""
    from runner.reports.report import data_uri, render_html, render_markdown

    record = load_run(run_dir)
    runbook = runbook_at_run(record)
    if runbook is not None:
        fill_from_runbook(record, runbook)
    if fmt == "md":
        text = render_markdown(record, image=lambda p: str(p.resolve()), plot=None)
    elif fmt == "html":
        text = render_html(record, image=data_uri, plot=None)
    else:
        import tempfile

        from runner.reports.notebook import write_notebook

        with tempfile.TemporaryDirectory(prefix="runbook-report-") as tmp:
            out = Path(tmp) / "report.ipynb"
            write_notebook(record, runbook, str(out))
            text = out.read_text(encoding="utf-8")
    click.echo(text, nl=not text.endswith("\n"))


# --- stats -----------------------------------------------------------------------------------


@cli.command()
@click.argument("runbook", required=False)
@runs_dir_option
@format_option
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="also draw RUNBOOK's durations against its time limit into this SVG file",
)
def stats(
    runbook: str | None, runs_dir: Path | None, output_format: str, plot: Path | None
) -> None:
    """Readiness figures per runbook: runs, drills, success rate, durations, last exercised.

    RUNBOOK is a runbook id or file; without it, every runbook that has runs.
    Median is the usual median; p90 is nearest-rank (an observed duration).
    """
    folder = runs_dir or default_runs_dir()
    found = list_runs(folder)
    if runbook is None:
        if plot is not None:
            raise click.UsageError("--plot needs a RUNBOOK: one plot per runbook")
        rows = all_stats(found)
    else:
        rows = [runbook_stats(_runbook_id(runbook, found), found)]
    if plot is not None:
        mine = [r for r in found if r.runbook_id == rows[0].runbook_id]
        if plot_durations(mine, rows[0].time_limit, plot) is None:
            click.echo(f"no finished runs of {rows[0].runbook_id} to plot", err=True)
    if output_format == "json":
        _dump(
            {
                "version": OUTPUT_VERSION,
                "runs_dir": str(folder),
                "runbooks": [s.as_json() for s in rows],
            }
        )
        return
    if not rows:
        _console().print(Text(f"no runs in {folder}"), soft_wrap=True)
        return
    _console(wide=True).print(_stats_table(rows))


def _runbook_id(ref: str, found: list[RunInfo]) -> str:
    """A runbook id from an id seen in the journals, or from a runbook file (or id) on disk."""
    if any(r.runbook_id == ref for r in found):
        return ref
    from runner.check.lint import resolve_runbook
    from runner.parse.markdown import parse_file

    # A runbook never run still gets a row: "never exercised" is a readiness finding.
    return parse_file(resolve_runbook(ref)).metadata.id


def _pct(share: float | None) -> str:
    return "—" if share is None else f"{share:.0%}"


def _stats_table(rows: list[RunbookStats]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in (
        "runbook",
        "runs",
        "drills",
        "success",
        "median",
        "p90",
        "within limit",
        "last exercised (UTC)",  # journals are stamped in UTC; a shift spans time zones
    ):
        table.add_column(name, no_wrap=name in ("runbook", "last exercised (UTC)"))
    for s in rows:
        limit = f" (limit {fmt_duration(s.time_limit)})" if s.time_limit else ""
        table.add_row(
            Text(visible(s.runbook_id)),
            str(s.runs),
            str(s.drills),
            f"{_pct(s.success_rate)} ({s.succeeded}/{s.completed})" if s.completed else "—",
            fmt_duration(s.median_duration),
            fmt_duration(s.p90_duration),
            _pct(s.within_time_limit) + limit,
            (s.last_exercised or "never").replace("T", " ")[:19],
        )
    return table
