"""`runbook run`, `resume`, `approve` and `deny`: running runbooks and deciding on their gates.

Start-up time matters here (an operator under pressure waits for it): a kernel takes a few
tenths of a second to boot, so `runbook run` launches the kernels as soon as it knows which
the runbook needs, and only then imports the engine, checks the runbook and resolves the
inputs, while they boot. Hence this module imports little at the top, and the rest where used.

Long on purpose, for now: the live display (RichReporter) and the run/resume/approve commands
share the reporter and the input handling; the run itself is assembled by
:mod:`runner.exec.session`. The display could be a module of its own next.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from runner.cli import EXIT_FAILED, EXIT_OK, cli, runs_dir_option
from runner.errors import ExitCode, InvalidInputs, RunbookError, UsageError
from runner.format.model import InputValue, Runbook, RunStatus, Step, step_label
from runner.text.record import STATUS_STYLE
from runner.text.terminal import visible, visible_event

if TYPE_CHECKING:
    from runner.exec.engine import RunResult, Shown
    from runner.exec.operator import Operator
    from runner.exec.session import OpenRun
    from runner.kernels.pool import KernelPool
    from runner.runs import events as ev
    from runner.runs.journal import Event
    from runner.runs.state import RunRecord, StepRecord

EXIT_HELP = """
\b
Exit statuses:
  0    the run succeeded (possibly with failures handled by a procedure)
  1    a step failed, or the operator quit the run
  2    invalid runbook, inputs or command line
  3    paused: a step waits for an approval (runbook approve, then runbook resume)
  130  aborted by Ctrl-C or SIGTERM
"""


class RunbookChanged(RunbookError):
    """`resume` refuses: the runbook file is not the one the run started with."""

    exit_code = ExitCode.USAGE


# --- live display -------------------------------------------------------------------------------


class RichReporter:
    """Shows journal events live: the run header, `[3/7]` headers with the run's clock against
    its time limit, the step card, streamed output, status and duration."""

    def __init__(
        self,
        console: Console,
        runbook: Runbook | None = None,
        *,
        run_id: str = "",
        started_at: float | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> None:
        self.console = console
        self.runbook = runbook
        self._headed: tuple[Any, Any] | None = None
        self._run_id = run_id
        self._inputs = dict(inputs or {})  # a resumed run's inputs (secrets ***)
        # Wall time since the run started (epoch), across pauses: an incident's clock.
        self.started_at = started_at
        self._limit = runbook.metadata.time_limit if runbook else None
        self._warned: set[float] = set()
        # Why a gate was denied, by (procedure, step id), for the summary.
        self.denials: dict[tuple[Any, Any], str] = {}
        # The end of each step's output by its label (`3`, `proc:2`), the approver's evidence.
        self._label = ""
        self._output: dict[str, str] = {}

    def tail(self, label: str) -> tuple[str, ...]:
        """The last lines a step printed (its latest attempt)."""
        from runner.text.gate import last_lines

        return last_lines([self._output.get(label, "")])

    def remember(self, record: RunRecord) -> None:
        """Take the output of a resumed run's earlier attempts, for the evidence; no display."""
        from runner.text.record import output_text

        for s in record.steps:
            latest = [o for o in s.outputs if int(o.get("attempt") or 1) == s.attempts]
            self._output[s.label] = "".join(output_text(o) for o in latest)[-4096:]

    def _keep(self, text: str) -> None:
        if self._label:
            # Only the end is ever shown: a step that floods output costs a few KiB here.
            self._output[self._label] = (self._output.get(self._label, "") + text)[-4096:]

    def on_event(self, event: ev.JournalEvent | Shown) -> None:
        handler = getattr(self, "_on_" + event.event, None)
        if handler is not None:
            # Every string of the event is untrusted (output, errors, titles, names): shown with
            # its control characters escaped, output keeping its own colours.
            handler(visible_event(event.record()))

    def elapsed(self) -> float | None:
        import time

        return None if self.started_at is None else max(0.0, time.time() - self.started_at)

    def _on_run_started(self, event: Event) -> None:
        from runner.text.live import epoch, run_header

        book = event.get("runbook") or {}
        self.started_at = epoch(event.get("ts")) or self.started_at
        self._limit = book.get("time_limit", self._limit)
        self._run_id = str(event.get("run_id") or self._run_id)
        inputs = event.get("inputs") or {}
        self.console.print(run_header(str(book.get("name", "")), self._run_id, inputs, self._limit))

    def _on_run_resumed(self, event: Event) -> None:
        from runner.text.live import run_header

        name = self.runbook.metadata.name if self.runbook else ""
        attempt = int(event.get("attempt") or 2)
        self.console.print(
            run_header(name, self._run_id, self._inputs, self._limit, resumed=attempt)
        )

    def _header(self, event: Event) -> None:
        from runner.text.live import clock, crossed

        key = (event.get("procedure"), event.get("step_id"))
        if self._headed == key:
            return
        self._headed = key
        where = f"{event.get('procedure')}: " if event.get("procedure") else ""
        # A step that never started (skipped, waiting for an approval, handled) has no place
        # in the progress count: name it by its number instead of showing `[?/?]`.
        if "index" in event:
            counter = f"{event['index']}/{event.get('total', '?')}"
        else:
            counter = f"step {event.get('step', '?')}"
        line = Text("\n")
        line.append(f"[{counter}] ", style="bold cyan")
        line.append(where + str(event.get("title", "")), style="bold")
        if event.get("role"):
            line.append(f" ({event['role']})", style="dim")
        elapsed = self.elapsed()
        if elapsed is not None:
            line.append("  ")
            line.append_text(clock(elapsed, self._limit))
        self.console.print(line)
        warning = crossed(elapsed, self._limit, self._warned) if elapsed is not None else None
        if warning:
            self.console.print(
                Text(f"⚠ {warning}", style="bold red" if "over" in warning else "bold yellow")
            )

    def _step(self, event: Event) -> Step | None:
        if self.runbook is None:
            return None
        procedure = event.get("procedure")
        if procedure:
            proc = self.runbook.procedure(str(procedure))
            steps = proc.steps if proc else ()
        else:
            steps = self.runbook.steps
        return next((s for s in steps if s.id == event.get("step_id")), None)

    def _on_step_prompt(self, event: Event) -> None:
        from runner.text.step_card import manual_view, step_card

        self._header(event)
        step = self._step(event)
        if event.get("manual"):
            shown = manual_view(step) if step else Text(str(event.get("text", "")).strip())
            self.console.print(shown)
        elif step is not None:
            self.console.print(step_card(step, event.get("values") or {}))

    def _on_step_started(self, event: Event) -> None:
        self._header(event)
        number = event.get("step")
        self._label = step_label(event.get("procedure"), int(number or 0))
        self._output[self._label] = ""  # a new attempt: the evidence is its output
        if int(event.get("attempt", 1)) > 1:
            self.console.print(f"[yellow]attempt {event['attempt']} of {event['attempts']}[/]")

    def _on_kernel_started(self, event: Event) -> None:
        self.console.print(
            f"[dim]kernel {event['kernel']} started ({event['implementation']} "
            f"{event['version']}, {event['language']} {event['language_version']})[/]"
        )

    def _on_output(self, event: Event) -> None:
        from runner.format.syntax import PLAIN_ERRORS

        kind = event.get("kind")
        # soft_wrap: output is printed as the command wrote it. Rich would otherwise break
        # long lines at the console's width (80 columns when piped), and a hash, URL or IOC
        # copied from the screen or a `tee` log would come out broken.
        if event.get("block_id") != "off-script":
            from runner.text.record import output_text

            self._keep(output_text(event))
        if kind == "stream":
            style = "red" if event.get("stream") == "stderr" else None
            text = _coloured(str(event.get("text", "")), style or "")
            self.console.print(text, end="", soft_wrap=True)
        elif kind == "error":
            ename = event.get("ename")
            if ename in PLAIN_ERRORS or ename in ("KeyboardInterrupt", "Timeout"):
                # An exit status, an interrupt, a timeout: the step's verdict line below says
                # it in words (`exit status 3`, `interrupted`, `timed out after 3s`); a class
                # name or a traceback here would only bury it.
                return
            trace = "\n".join(event.get("traceback") or []) or str(event.get("text", ""))
            self.console.print(_coloured(trace, "red"), soft_wrap=True)
        else:
            data = event.get("data") or {}
            shown = next((f"[{m}: {v}]" for m, v in data.items() if m.startswith("image/")), None)
            self.console.print(Text(visible(shown or str(event.get("text", "")))), soft_wrap=True)

    def _on_step_finished(self, event: Event) -> None:
        from runner.format.syntax import format_duration
        from runner.text.live import verdict_detail

        self._header(event)
        status = str(event.get("status"))
        step = self._step(event)
        extra = verdict_detail(event, step.timeout if step else None)
        retry = f"; retrying in {format_duration(event['retry_in'])}" if "retry_in" in event else ""
        line = Text(status, style=STATUS_STYLE.get(status, "white"))
        line.append(f" {format_duration(float(event.get('duration') or 0))}", style="dim")
        if extra:
            line.append(f" — {extra}", style="dim")
        line.append(retry)
        self.console.print(line, soft_wrap=True)

    def _on_approval_requested(self, event: Event) -> None:
        self.console.print(f"[yellow]step {event['step']} needs an approval[/]")

    def _on_approval_refused(self, event: Event) -> None:
        self.console.print(
            f"[red]approval by {escape(str(event.get('by')))} refused:[/] "
            f"{escape(str(event.get('reason', '')))}"
        )

    def _on_approval(self, event: Event) -> None:
        how = " (pre-approved on the command line)" if event.get("preapproved") else ""
        comment = f": {event['comment']}" if event.get("comment") else ""
        decided = f"{event['decision']} by {event['by']}"
        if event.get("decision") == "denied":
            self.denials[(event.get("procedure"), event.get("step_id"))] = decided + comment
        self.console.print(Text(decided + how + comment, style="yellow"))

    def _on_answer(self, event: Event) -> None:
        how = " (given on the command line)" if event.get("source") == "command_line" else ""
        self.console.print(
            Text(f"answered {event.get('value')!r} by {event.get('by')}{how}", style="yellow")
        )

    def _on_off_script(self, event: Event) -> None:
        self.console.print(f"[dim]off-script command in {event['kernel']}: {event['status']}[/]")

    def _on_notice(self, event: Event) -> None:
        self.console.print(f"[yellow]{escape(str(event.get('text', '')))}[/]")


def _coloured(text: str, style: str) -> Text:
    """Output already made visible but for its colours, which become rich styles."""
    shown = Text.from_ansi(text, style=style) if "\x1b" in text else Text(text, style=style)
    if text.endswith("\n") and not shown.plain.endswith("\n"):
        shown.append("\n")  # from_ansi splits into lines and drops the last line end
    return shown


def print_summary(
    console: Console,
    result: RunResult,
    runbook: Runbook,
    reporter: RichReporter | None = None,
) -> None:
    """The table of every step (those never reached too), wall and active time against the
    limit, and the commands to paste next."""
    from rich.table import Table

    from runner.format.syntax import format_duration
    from runner.text.live import Where, answer_hints, hint_lines, next_hints, paused_hints

    name = escape(visible(runbook.metadata.name))
    table = Table(title=f"{name}: {result.status.value}", title_justify="left")
    for column in ("step", "title", "status", "time", "note"):
        table.add_column(column, no_wrap=column in ("step", "status", "time"))
    denials = reporter.denials if reporter else {}
    for o in result.outcomes:
        number = step_label(o.procedure, o.number)
        style = STATUS_STYLE.get(o.status, "white")
        note = denials.get((o.procedure, o.step_id)) if o.status == "denied" else None
        note = note or _outcome_note(o, runbook)
        note += " (earlier attempt)" if o.earlier else ""
        table.add_row(
            number,
            Text(visible(o.title)),
            f"[{style}]{o.status}[/]",
            format_duration(o.duration or 0.0),
            Text(visible(note)),
        )
    for step in _not_reached(result, runbook):
        table.add_row(str(step.number), Text(visible(step.title)), "[dim]not reached[/]", "", "")
    console.print()
    console.print(table)
    console.print(_times(result, reporter.elapsed() if reporter else None))
    if result.ended_by:
        from runner.runs.state import ending_text

        console.print(escape(ending_text(result.ended_by) or ""), soft_wrap=True)
    where = Where(result.run_id, result.run_dir.parent)
    asking = _find_step(runbook, result.paused_step) if result.paused_step else None
    waits_answer = any(
        o.status == "waiting_answer" and o.step_id == result.paused_step for o in result.outcomes
    )
    if result.status is RunStatus.PAUSED and asking and asking.question and waits_answer:
        from runner.format.answers import accepted

        console.print(f"[yellow]paused:[/] step {asking.number} waits for an answer.")
        accepts = accepted(asking.question).replace("/", "|")
        hints = answer_hints(where, str(result.paused_step), accepts)
        console.print(hint_lines(hints), soft_wrap=True, markup=False)
    elif result.status is RunStatus.PAUSED and result.paused_step:
        gated = _find_step(runbook, result.paused_step)
        console.print(f"[yellow]paused:[/] step {result.paused_step} waits for an approval.")
        hints = paused_hints(where, result.paused_step, gated.approver_role if gated else None)
        console.print(hint_lines(hints), soft_wrap=True, markup=False)
    elif result.status.value in ("failed", "cancelled"):
        console.print("next:", style="bold")
        console.print(
            hint_lines(next_hints(where, result.status.value)), soft_wrap=True, markup=False
        )
    console.print(f"journal: {result.run_dir / 'journal.jsonl'}", soft_wrap=True, markup=False)


def _outcome_note(o: StepRecord, runbook: Runbook) -> str:
    from runner.text.live import verdict_detail

    step = _find_step(runbook, o.step_id) if o.procedure is None else None
    event = {"status": o.status, "error": o.error, "duration": o.duration}
    return verdict_detail(event, step.timeout if step else None) or o.reason or ""


def _times(result: RunResult, wall: float | None) -> Text:
    """`wall 12m41s, active 6m41s, of the 1h time limit (within)`: the limit is the incident's
    clock, so it is judged against wall time when known (paused time counts)."""
    from runner.format.syntax import format_duration

    active = result.duration
    if wall is None or wall < active:
        wall = active
    text = Text(f"wall {format_duration(wall)}, active {format_duration(active)}")
    limit = result.time_limit
    if limit is not None:
        text.append(f", of the {format_duration(limit)} time limit (")
        if wall <= limit:
            text.append("within")
        else:
            text.append(f"over by {format_duration(wall - limit)}", style="red")
        text.append(")")
    return text


def _find_step(runbook: Runbook, ref: str) -> Step | None:
    every = [*runbook.steps, *(s for p in runbook.procedures for s in p.steps)]
    return next((s for s in every if ref in (s.id, str(s.number))), None)


def _not_reached(result: RunResult, runbook: Runbook) -> list[Step]:
    """Steps of the plan with no outcome: the run stopped before them."""
    if result.status is RunStatus.SUCCEEDED or result.ended_by:
        return []
    procedure = next((o.procedure for o in result.outcomes[:1]), None)
    proc = runbook.procedure(procedure) if procedure else None
    steps = proc.steps if proc else runbook.steps
    seen = {(o.procedure, o.step_id) for o in result.outcomes}
    return [s for s in steps if ((proc.id if proc else None), s.id) not in seen]


# --- inputs ---------------------------------------------------------------------------------------


def _read_inputs_file(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except OSError as exc:
        raise UsageError(f"cannot read the inputs file: {exc.strerror}", path=path) from None
    except (ValueError, yaml.YAMLError) as exc:
        raise UsageError(f"the inputs file is not valid JSON or YAML: {exc}", path=path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError("the inputs file must hold a mapping of input names to values", path=path)
    return {str(k): v for k, v in data.items()}


def _pairs(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"-i expects NAME=VALUE, got {pair!r}")
        out[name.strip()] = value
    return out


def gather_inputs(
    runbook: Runbook,
    pairs: Sequence[str],
    inputs_file: str | None,
    *,
    prompt: bool,
    recorded: Mapping[str, Any] | None = None,
    placeholder_secrets: bool = False,
) -> tuple[dict[str, InputValue], list[str]]:
    """Resolved input values and the names of the secret ones; InvalidInputs on any problem."""
    from runner.format.inputs import resolve

    meta = runbook.metadata
    given: dict[str, Any] = dict(recorded or {})
    for spec in meta.inputs:
        env = os.environ.get(f"RUNBOOK_INPUT_{spec.name.upper()}")
        if env is not None:
            given[spec.name] = env
    given.update(_read_inputs_file(inputs_file))
    given.update(_pairs(pairs))
    secrets = [s.name for s in meta.inputs if s.secret]
    placeholders: list[str] = []
    for name in secrets:
        if given.get(name) in (None, "***"):
            given.pop(name, None)
            if placeholder_secrets:
                placeholders.append(name)
            elif prompt:
                given[name] = click.prompt(f"{name} (secret)", hide_input=True, err=True)
    # A placeholder stands for a secret not given (dry run): it is not checked against the
    # input's type or pattern, which `***` could never satisfy.
    checked = dataclasses.replace(
        meta, inputs=tuple(s for s in meta.inputs if s.name not in placeholders)
    )
    values, problems = resolve(checked, given)
    values.update(dict.fromkeys(placeholders, "***"))
    if problems:
        raise InvalidInputs(
            "the inputs are not usable:\n" + "\n".join(f"  {p}" for p in problems),
            path=str(runbook.path),
        )
    return values, secrets


# --- helpers --------------------------------------------------------------------------------------


def _operator_name(given: str | None) -> str:
    if given:
        return given
    env = os.environ.get("RUNBOOK_OPERATOR")
    if env:
        return env
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _check_refs(runbook: Runbook, steps: Sequence[Step], refs: Sequence[str], flag: str) -> None:
    from runner.exec.policy import matches

    for ref in refs:
        if not any(matches(s, ref) for s in steps):
            known = ", ".join(f"{s.number} ({s.id})" for s in steps)
            raise UsageError(f"{flag} {ref}: no such step; the steps are {known}")


def _answers(
    steps: Sequence[Step], given: Sequence[str]
) -> tuple[tuple[str, str | int | float], ...]:
    """`--answer STEP=VALUE` pairs, each naming a decision step of the plan and fitting its
    question's type; a bad one is a usage error (exit 2) before anything runs."""
    from runner.exec.policy import matches
    from runner.format.answers import read_answer

    out: list[tuple[str, str | int | float]] = []
    for pair in given:
        ref, sep, raw = pair.partition("=")
        step = next((s for s in steps if matches(s, ref.strip())), None) if sep else None
        if not sep:
            raise UsageError(f"--answer {pair}: write STEP=VALUE, e.g. --answer 2=yes")
        if step is None or step.question is None:
            asking = ", ".join(f"{s.number} ({s.id})" for s in steps if s.question) or "none"
            raise UsageError(
                f"--answer {ref}: no decision step {ref!r}; the steps that ask are {asking}"
            )
        try:
            out.append((ref.strip(), read_answer(step.question, raw)))
        except ValueError as exc:
            raise UsageError(f"--answer {ref}: {exc} ({step.question.text})") from None
    return tuple(out)


def _steps_for(runbook: Runbook, procedure: str | None) -> tuple[Step, ...]:
    if procedure is None:
        return runbook.steps
    proc = runbook.procedure(procedure)
    if proc is None:
        known = ", ".join(p.id for p in runbook.procedures) or "none"
        raise UsageError(f"--procedure {procedure}: no such alternative procedure (known: {known})")
    return proc.steps


def _kernels(names: Sequence[str]) -> contextlib.AbstractContextManager[KernelPool]:
    """The session's kernel pool, with Ctrl-C answered at once on the terminal."""
    from runner.exec.session import kernel_pool

    return kernel_pool(names, on_press=_ctrl_c_feedback)


def _ctrl_c_feedback(presses: int) -> None:
    """Said at once, from the signal handler: one os.write, which cannot re-enter a buffered
    stream that the handler may have interrupted mid-print."""
    from runner.kernels.pool import INTERRUPT_GRACE
    from runner.text.live import ctrl_c_message

    with contextlib.suppress(OSError):
        os.write(2, f"\n{ctrl_c_message(presses, INTERRUPT_GRACE)}\n".encode())


def _operator(name: str, yes: bool, console: Console) -> Operator:
    from runner.exec.operator import TerminalOperator, UnattendedOperator

    if not yes and sys.stdin.isatty() and sys.stdout.isatty():
        return TerminalOperator(name, console)
    return UnattendedOperator(name)


def _reporter(
    console: Console,
    runbook: Runbook,
    run_id: str,
    values: Mapping[str, InputValue],
    secrets: Sequence[str],
    operator: Operator,
    earlier: OpenRun | None = None,
) -> RichReporter:
    from runner.exec.operator import TerminalOperator
    from runner.text.live import epoch

    shown = {k: ("***" if k in secrets else v) for k, v in values.items()}
    started = epoch(str(earlier.state.started.get("ts") or "")) if earlier else None
    reporter = RichReporter(console, runbook, run_id=run_id, started_at=started, inputs=shown)
    if earlier is not None:
        reporter.remember(earlier.record)
    if isinstance(operator, TerminalOperator):
        operator.tail = reporter.tail  # the approval screen shows each step's last lines
    return reporter


# --- run ------------------------------------------------------------------------------------------


@cli.command("run", epilog=EXIT_HELP)
@click.argument("runbook")
@click.option(
    "-i",
    "--input",
    "pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="An input value (repeatable). Secrets given here show in `ps`: "
    "prefer --inputs or RUNBOOK_INPUT_NAME.",
)
@click.option("--inputs", "inputs_file", metavar="FILE", help="Inputs from a JSON or YAML file.")
@click.option("--yes", is_flag=True, help="Run unattended: every executable step, no prompts.")
@click.option(
    "--dry-run", is_flag=True, help="Print the plan (inputs, each step's kernel); run nothing."
)
@click.option("--from", "from_step", metavar="STEP", help="Start at this step (number or id).")
@click.option("--only", multiple=True, metavar="STEP", help="Run only this step (repeatable).")
@click.option(
    "--operator",
    "operator_name",
    metavar="NAME",
    help="Who runs it (default: $RUNBOOK_OPERATOR or your login).",
)
@runs_dir_option
@click.option(
    "--approve",
    multiple=True,
    metavar="STEP",
    help="Pre-approve a gated step (repeatable; recorded).",
)
@click.option(
    "--answer",
    "answers",
    multiple=True,
    metavar="STEP=VALUE",
    help="Answer a decision step's question (repeatable; recorded).",
)
@click.option(
    "--require-distinct-approver",
    is_flag=True,
    help="Two-person rule: the operator may not approve.",
)
@click.option("--procedure", metavar="NAME", help="Run this alternative procedure on its own.")
def run_command(
    runbook: str,
    pairs: tuple[str, ...],
    inputs_file: str | None,
    yes: bool,
    dry_run: bool,
    from_step: str | None,
    only: tuple[str, ...],
    operator_name: str | None,
    runs_dir: Path | None,
    approve: tuple[str, ...],
    answers: tuple[str, ...],
    require_distinct_approver: bool,
    procedure: str | None,
) -> int:
    """Run RUNBOOK (a path, or an id under runbooks/) step by step through Jupyter kernels."""
    from runner.check.lint import checked, load_for_run, resolve_runbook
    from runner.exec.session import needed_kernels
    from runner.parse.markdown import parse_file

    path = resolve_runbook(runbook)
    console = Console(highlight=False)
    if dry_run:
        book = load_for_run(path)
        values, secrets = gather_inputs(
            book, pairs, inputs_file, prompt=False, placeholder_secrets=True
        )
        _print_plan(console, book, _steps_for(book, procedure), values, secrets)
        return EXIT_OK
    # Start the kernels first: they boot while the engine is imported, the runbook checked
    # and the inputs resolved. Parsing is the least that tells which kernels are needed.
    # The file is parsed once, here; the same plan is checked and run.
    early = parse_file(path)
    # A kernel named under `kernels:` may not be installed: refuse with check's verdict
    # (RB039), as `check` and the site do, before trying to start it.
    ready = checked(early) if early.metadata.kernels else None
    steps = early.steps if procedure is None else _steps_for(early, procedure)
    with _kernels(needed_kernels(steps)) as pool:
        from runner.exec.engine import RunOptions
        from runner.exec.session import Session, context_for, create, execute
        from runner.runs.store import default_runs_dir

        book = ready or checked(early)
        steps = _steps_for(book, procedure)
        _check_refs(book, steps, only, "--only")
        _check_refs(book, steps, [from_step] if from_step else [], "--from")
        _check_refs(book, steps, approve, "--approve")
        answered = _answers(steps, answers)
        if approve and require_distinct_approver:
            raise UsageError(
                "--approve records the operator's own approval, which the two-person rule "
                "(--require-distinct-approver) forbids; let another person run "
                "`runbook approve RUN STEP --by NAME` when the run pauses"
            )
        name = _operator_name(operator_name)
        operator = _operator(name, yes, console)
        values, secrets = gather_inputs(book, pairs, inputs_file, prompt=operator.interactive)
        options = RunOptions(
            mode="procedure" if procedure else "run",
            yes=yes,
            only=only,
            from_step=from_step,
            approve=approve,
            require_distinct_approver=require_distinct_approver,
            procedure=procedure,
            answers=answered,
        )
        session = Session(
            book, values, secrets, operator, context_for(path, name, operator.interactive), options
        )
        journal = create(book, session.redactor, Path(runs_dir) if runs_dir else default_runs_dir())
        reporter = _reporter(console, book, journal.run_id, values, secrets, operator)
        result = execute(dataclasses.replace(session, reporter=reporter), pool, journal)
        print_summary(console, result, book, reporter)
        return result.exit_code


def _print_plan(
    console: Console,
    book: Runbook,
    steps: Sequence[Step],
    values: Mapping[str, InputValue],
    secrets: Sequence[str],
) -> None:
    from rich.table import Table

    console.print(f"[bold]{escape(book.metadata.name)}[/] — dry run, nothing is executed")
    for name, value in values.items():
        shown = "***" if name in secrets else repr(value)
        console.print(f"  input {name} = {escape(shown)}")
    table = Table()
    for column in ("step", "title", "role", "runs in", "policies"):
        table.add_column(column)
    for step in steps:
        kernels = (
            ", ".join(dict.fromkeys(b.kernel or "" for b in step.executable_blocks)) or "manual"
        )
        table.add_row(
            str(step.number), escape(step.title), step.role or "", kernels, _policies(step)
        )
    console.print(table)


def _policies(step: Step) -> str:
    from runner.format.syntax import format_duration

    parts = []
    if step.approve:
        parts.append("approve" + (f"={step.approver_role}" if step.approver_role else ""))
    if step.when:
        parts.append(f"when {step.when}")
    if step.timeout:
        parts.append(f"timeout {format_duration(step.timeout)}")
    if step.retries:
        parts.append(f"retries {step.retries}")
    if step.on_failure != "abort":
        parts.append(f"on_failure {step.on_failure}")
    return escape(", ".join(parts))


# --- resume ---------------------------------------------------------------------------------------


@cli.command("resume", epilog=EXIT_HELP)
@click.argument("run")
@click.option(
    "--allow-changed", is_flag=True, help="Resume even though the runbook file changed (journaled)."
)
@click.option(
    "--inputs", "inputs_file", metavar="FILE", help="Secret inputs again, from a JSON or YAML file."
)
@click.option(
    "-i", "--input", "pairs", multiple=True, metavar="NAME=VALUE", help="A secret input again."
)
@click.option(
    "--set",
    "corrections",
    multiple=True,
    metavar="NAME=VALUE",
    help="Correct a non-secret input the run started with (repeatable; journaled).",
)
@click.option("--yes", is_flag=True, help="Continue unattended.")
@click.option(
    "--answer",
    "answers",
    multiple=True,
    metavar="STEP=VALUE",
    help="Answer a decision step's question (repeatable; recorded).",
)
@click.option("--operator", "operator_name", metavar="NAME")
@runs_dir_option
@click.option("--server", metavar="URL",
              help="A run of a `runbook serve` whose worker was lost: resume it there, as the "
              "user whose API token is in $RUNBOOK_TOKEN.")  # fmt: skip
@click.option("--skip", "skip_cut_off", is_flag=True,
              help="With --server: record the step that was cut off as skipped (you checked "
              "what it did) and go on from the next one, instead of running it again.")  # fmt: skip
@click.option("--comment", metavar="TEXT", help="With --server: why (journaled).")
def resume_command(
    run: str,
    allow_changed: bool,
    inputs_file: str | None,
    pairs: tuple[str, ...],
    corrections: tuple[str, ...],
    yes: bool,
    answers: tuple[str, ...],
    operator_name: str | None,
    runs_dir: Path | None,
    server: str | None,
    skip_cut_off: bool,
    comment: str | None,
) -> int:
    """Continue a paused, failed, cancelled or crashed run from its first unfinished step."""
    if server:
        local = [allow_changed, inputs_file, pairs, corrections, answers, operator_name]
        if any(local):
            raise UsageError(
                "with --server the service resumes the run as it stands: leave out the options "
                "of a local resume (--skip and --comment apply)"
            )
        from runner.cli.remote import act_remote

        return act_remote(server, run, "skip" if skip_cut_off else "resume", comment)
    if skip_cut_off or comment:
        raise UsageError("--skip and --comment are for a run of the service: add --server URL")
    from runner.exec.engine import RunOptions
    from runner.exec.session import Session, context_for, needed_kernels, open_run, resume

    run_ = open_run(runs_dir, run)
    _not_the_service_s(run_, "resume it")
    state = run_.state
    if state.last_status in (
        RunStatus.SUCCEEDED.value,
        RunStatus.SUCCEEDED_WITH_HANDLED_FAILURES.value,
    ):
        raise UsageError(
            f"run {run_.run_dir.name} already {state.last_status}; there is nothing to resume"
        )
    path, book = _runbook_to_resume(run_, allow_changed)
    options = state.options
    console = Console(highlight=False)
    steps = _steps_for(book, options.get("procedure"))
    answered = _answers(steps, answers)
    with _kernels(needed_kernels(steps)) as pool:
        name = _operator_name(operator_name)
        operator = _operator(name, yes, console)
        recorded = {k: v for k, v in state.inputs.items() if v != "***"}
        for key in _pairs(pairs):
            if key in recorded:
                raise UsageError(
                    f"input {key!r} was recorded when the run started; to correct it, "
                    f"resume with --set {key}=VALUE (journaled)"
                )
        changed = _corrections(book, corrections, recorded)
        values, secrets = gather_inputs(
            book, pairs, inputs_file, prompt=operator.interactive, recorded=recorded | changed
        )
        run_options = RunOptions(
            mode=str(state.started.get("mode", "run")),
            yes=yes,
            only=tuple(options.get("only") or ()),
            from_step=options.get("from"),
            approve=(),  # pre-approvals are not carried over: every gate needs a fresh record
            require_distinct_approver=bool(options.get("require_distinct_approver")),
            procedure=options.get("procedure"),
            answers=answered,  # like pre-approvals, earlier --answer values are not carried over
        )
        reporter = _reporter(console, book, run_.run_dir.name, values, secrets, operator, run_)
        session = Session(
            book,
            values,
            secrets,
            operator,
            context_for(path, name, operator.interactive),
            run_options,
            reporter,
        )
        result = resume(session, pool, run_, corrected=changed)
        print_summary(console, result, book, reporter)
        return result.exit_code


def _runbook_to_resume(run: OpenRun, allow_changed: bool) -> tuple[Path, Runbook]:
    """The runbook a new attempt runs: the file as it is when it still matches the run's
    SHA-256 (or the operator allows the change, journaled); the copy kept beside the journal
    when the file is gone, so a run outlives a deleted or moved runbook."""
    from runner.check.lint import checked, load_for_run
    from runner.exec.engine import file_sha256
    from runner.parse.markdown import parse_text
    from runner.runs.store import kept_runbook

    state = run.state
    book_info = state.started.get("runbook") or {}
    path = Path(str(book_info.get("abs_path") or book_info.get("path", "")))
    if not path.is_file():
        kept = kept_runbook(run.run_dir, state.sha256)
        if kept is None:
            raise UsageError(
                f"the run's runbook {path} is not there any more, and the run folder keeps no "
                "copy of it (runs from before 0.3 do not)",
                path=str(run.run_dir),
            )
        return path, checked(parse_text(kept, path))
    sha = file_sha256(path)
    if sha != state.sha256 and not allow_changed:
        raise RunbookChanged(
            "the runbook changed since the run started (its SHA-256 differs), so the steps "
            "already done may not match it any more; review the change, then resume with "
            "--allow-changed (recorded in the journal)",
            path=str(path),
        )
    state.allow_changed = sha != state.sha256
    return path, load_for_run(path)


def _corrections(
    book: Runbook, corrections: Sequence[str], recorded: Mapping[str, Any]
) -> dict[str, Any]:
    """`--set NAME=VALUE` pairs, checked: a declared input, never a secret (a secret is given
    again on every resume anyway, and its value must never be journaled)."""
    changed = _pairs(corrections)
    specs = {s.name: s for s in book.metadata.inputs}
    for name in changed:
        spec = specs.get(name)
        if spec is None:
            known = ", ".join(specs) or "none"
            raise UsageError(f"--set {name}: the runbook has no such input (its inputs: {known})")
        if spec.secret:
            raise UsageError(
                f"--set {name}: a secret input is not recorded, so there is nothing to correct; "
                f"give it again with RUNBOOK_INPUT_{name.upper()} or --inputs FILE"
            )
    return {k: v for k, v in changed.items() if recorded.get(k) != v}


# --- approve / deny -------------------------------------------------------------------------------


def _decide(
    run: str,
    step_ref: str,
    by: str,
    role: str | None,
    comment: str | None,
    runs_dir: Path | None,
    decision: str,
) -> int:
    from runner.exec.session import (
        approver_problem,
        decide,
        expire,
        open_run,
        os_user,
        waiting_gate,
    )

    opened = open_run(runs_dir, run)
    _not_the_service_s(opened, "decide on it")
    waiting = waiting_gate(opened, step_ref)
    if expire(opened, waiting) is not None:  # its time ran out before this answer came
        opened = open_run(runs_dir, run)
        waiting = waiting_gate(opened, step_ref)
    account = os_user()
    if decision == "approved" and sys.stdin.isatty() and sys.stdout.isatty():
        # A person at a terminal approves what they have just seen, never blind. The rules are
        # checked first, so nobody confirms an approval that would then be refused.
        from runner.cli.pending import show_gate

        if problem := approver_problem(opened, waiting, by, role, account):
            decide(opened, waiting, decision=decision, by=by, role=role, comment=comment,
                   os_user=account)  # fmt: skip
            raise UsageError(problem)  # not reached: decide journals the refusal and raises
        show_gate(Console(highlight=False), opened.run_dir, waiting)
        if not click.confirm(f"approve step {waiting.step} as {by}?", default=False):
            click.echo("not approved; nothing was recorded", err=True)
            return EXIT_FAILED
    approval = decide(
        opened, waiting, decision=decision, by=by, role=role, comment=comment, os_user=account
    )
    from runner.text.live import Where

    run_dir = opened.run_dir
    if approval.count is not None and approval.count < int(approval.needed or 1):
        click.echo(
            f"step {waiting.step} ({waiting.step_id}) approved by {by}: "
            f"{approval.count} of {approval.needed} approvals; the gate waits for "
            f"{int(approval.needed or 1) - approval.count} more (another person: "
            f"`runbook approve {run_dir.name} {waiting.step_id} --by NAME`)"
        )
        return EXIT_OK
    click.echo(
        f"step {waiting.step} ({waiting.step_id}) {decision} by {by}; "
        f"continue with: {Where(run_dir.name, run_dir.parent).command('resume')}"
    )
    return EXIT_OK


_DECIDE_OPTIONS = [
    click.argument("run"),
    click.argument("step"),
    click.option("--by", metavar="NAME", help="Who decides (recorded); not with --server."),
    click.option("--role", metavar="ROLE", help="The role the approver holds (for approve=ROLE)."),
    click.option("--comment", metavar="TEXT", help="Why (recorded)."),
    runs_dir_option,
    click.option(
        "--server",
        metavar="URL",
        help="Decide through a `runbook serve` (its base URL) as the user whose API token is "
        "in $RUNBOOK_TOKEN.",
    ),
]


def _with_options(func: Any) -> Any:
    for option in reversed(_DECIDE_OPTIONS):
        func = option(func)
    return func


@cli.command("approve")
@_with_options
def approve_command(
    run: str, step: str, by: str | None, role: str | None, comment: str | None,
    runs_dir: Path | None, server: str | None,
) -> int:  # fmt: skip
    """Approve STEP of a paused RUN; `runbook resume RUN` then runs it (with --server, the
    service records the decision as the token's user and resumes the run itself)."""
    if server:
        from runner.cli.remote import decide_remote

        return decide_remote(server, run, step, "approved", by, role, comment)
    return _decide(run, step, _by(by), role, comment, runs_dir, "approved")


@cli.command("answer")
@click.argument("run")
@click.argument("step")
@click.argument("value")
@click.option("--by", metavar="NAME", help="Who answers (default: $RUNBOOK_OPERATOR or login).")
@runs_dir_option
@click.option("--server", metavar="URL",
              help="Answer through a `runbook serve` (its base URL) as the user whose API token "
              "is in $RUNBOOK_TOKEN.")  # fmt: skip
def answer_command(
    run: str, step: str, value: str, by: str | None, runs_dir: Path | None, server: str | None
) -> int:
    """Answer the question decision STEP of a paused RUN asks; `runbook resume RUN` goes on
    (with --server, the service records the answer as the token's user and goes on itself)."""
    if server:
        from runner.cli.remote import answer_remote

        return answer_remote(server, run, step, value, by)
    from runner.exec.session import answer, open_run, os_user
    from runner.text.live import Where

    opened = open_run(runs_dir, run)
    _not_the_service_s(opened, "answer it")
    recorded = answer(opened, step, value, by=_operator_name(by), os_user=os_user())
    run_dir = opened.run_dir
    click.echo(
        f"step {recorded.step} ({recorded.step_id}) answered {recorded.value!r} by {recorded.by}; "
        f"continue with: {Where(run_dir.name, run_dir.parent).command('resume')}"
    )
    return EXIT_OK


@cli.command("cancel")
@click.argument("run")
@click.option("--server", metavar="URL", required=True,
              help="The `runbook serve` (its base URL) that runs RUN; you act as the user whose "
              "API token is in $RUNBOOK_TOKEN.")  # fmt: skip
@click.option("--comment", metavar="TEXT", help="Why (journaled).")
def cancel_command(run: str, server: str, comment: str | None) -> int:
    """Cancel a run of the service: waiting at a gate, interrupted or mid-step (a run at this
    terminal stops with Ctrl-C)."""
    from runner.cli.remote import act_remote

    return act_remote(server, run, "cancel", comment)


@cli.command("deny")
@_with_options
def deny_command(
    run: str, step: str, by: str | None, role: str | None, comment: str | None,
    runs_dir: Path | None, server: str | None,
) -> int:  # fmt: skip
    """Deny STEP of a paused RUN; on resume the step is `denied` and its on_failure applies."""
    if server:
        from runner.cli.remote import decide_remote

        return decide_remote(server, run, step, "denied", by, role, comment)
    return _decide(run, step, _by(by), role, comment, runs_dir, "denied")


def _not_the_service_s(run: OpenRun, what: str) -> None:
    """A run the service started is decided on, answered and resumed through the service only,
    by an authenticated person: a name typed here, even on the service's own machine, would
    stand in for an identity (and a local resume would run it outside its workflow)."""
    from runner.console.decisions import workflow_of

    workflow = workflow_of(run.record)
    if workflow:
        raise UsageError(
            f"run {run.run_dir.name} was started by the service (workflow {workflow}); {what} "
            "in its console, or from here with --server URL and your API token in "
            "$RUNBOOK_TOKEN (`runbook approve/deny` have it)"
        )


def _by(by: str | None) -> str:
    if not by:
        raise UsageError("--by NAME is required (who decides), or --server URL with a token")
    return by
