"""`runbook drill`: a tabletop exercise of a runbook against the lab, played from a scenario."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import click
import yaml
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from runner.cli import EXIT_FAILED, EXIT_OK, cli, runs_dir_option
from runner.cli.drill_alert import drill_alert
from runner.cli.routing import alert_format_option
from runner.cli.running import (
    RichReporter,
    _kernels,
    _operator_name,
    print_summary,
)
from runner.drills.drill import (
    Check,
    DrillOperator,
    LabClient,
    check_expectations,
    check_loopback,
    check_scenario,
    find_scenario,
)
from runner.drills.scenario import ScenarioFile, load_scenario
from runner.errors import InvalidInputs, UsageError
from runner.exec.engine import RunOptions, RunResult
from runner.exec.operator import TerminalOperator
from runner.format.inputs import resolve
from runner.format.model import InputValue, Runbook
from runner.lab.server import TOKEN_ENV, LabServer
from runner.reports.report import write_report
from runner.runs.journal import Event
from runner.runs.redact import Redactor
from runner.runs.store import default_runs_dir

DRILL_HELP = """
\b
Exit statuses:
  0    the run ended as the scenario expects and every expected lab state holds
  1    the run's status or the lab's end state differs from the scenario's expectations
  2    invalid runbook, scenario or command line; a URL input not on this machine; no lab
  130  aborted by Ctrl-C or SIGTERM
"""

LAB_TOKEN_FILE = Path(".runbook/lab/token")


class DrillReporter(RichReporter):
    """The run's live display, plus the drill's faults and participants' notes."""

    def _on_fault(self, event: Event) -> None:
        self._header(event)
        self.console.print(f"[bold magenta]fault injected:[/] {escape(str(event['description']))}")

    def _on_note(self, event: Event) -> None:
        self._header(event)
        flag = " [bold yellow](unclear)[/]" if event.get("unclear") else ""
        who = f"{event.get('by')} ({event.get('role') or 'no role'})"
        self.console.print(f"[cyan]note by {escape(who)}{flag}:[/] {escape(str(event['text']))}")


@contextlib.contextmanager
def _lab(url: str | None) -> Iterator[tuple[str, str]]:
    """The lab's URL and token: the running lab given with --lab, or a fresh one of our own."""
    if url is not None:
        check_loopback({"--lab": url})
        yield url.rstrip("/"), _lab_token()
        return
    with (
        tempfile.TemporaryDirectory(prefix="runbook-drill-") as tmp,
        LabServer(Path(tmp) / "lab.db", reset=True) as lab,
    ):
        yield lab.url, lab.token


def _lab_token() -> str:
    token = os.environ.get(TOKEN_ENV, "")
    if not token and LAB_TOKEN_FILE.is_file():
        token = LAB_TOKEN_FILE.read_text(encoding="utf-8").strip()
    if not token:
        raise UsageError(
            f"--lab needs the lab's token: set {TOKEN_ENV}, or run the drill from the folder "
            f"where `runbook lab` wrote {LAB_TOKEN_FILE}"
        )
    return token


def _inputs(
    book: Runbook,
    scenario: ScenarioFile,
    url_input: str,
    token_input: str,
    url: str,
    token: str,
    from_alert: dict[str, InputValue] | None = None,
) -> dict[str, InputValue]:
    # An alert's values win over the scenario's: the drill rehearses that alert.
    given: dict[str, object] = {
        **scenario.spec.inputs,
        **(from_alert or {}),
        url_input: url,
        token_input: token,
    }
    values, problems = resolve(book.metadata, given)
    if problems:
        raise InvalidInputs(
            "the scenario's inputs are not usable:\n" + "\n".join(f"  {p}" for p in problems),
            path=str(scenario.path),
            line=scenario.line("inputs"),
        )
    check_loopback({k: v for k, v in values.items() if k != url_input}, scenario)
    return values


def _briefing(console: Console, book: Runbook, scenario: ScenarioFile) -> None:
    spec = scenario.spec
    lines = [f"[bold]Drill:[/] {escape(book.metadata.name)} ({escape(str(scenario.path))})"]
    if spec.description:
        lines.append(escape(spec.description.strip()))
    if spec.alert:
        alert = yaml.safe_dump(spec.alert, sort_keys=False, allow_unicode=True).strip()
        lines += ["", "[bold]Alert[/]", escape(alert)]
    if spec.participants:
        people = ", ".join(f"{n} ({r})" for n, r in spec.participants.items())
        lines += ["", f"[bold]Participants:[/] {escape(people)}"]
    console.print(Panel("\n".join(lines), border_style="magenta"))


def _print_checks(console: Console, checks: Sequence[Check]) -> None:
    console.print("\n[bold]Drill expectations[/]")
    for c in checks:
        mark = "[green]✓[/]" if c.ok else "[red]✗[/]"
        console.print(f"  {mark} {escape(c.what)} [dim]— {escape(c.detail)}[/]", soft_wrap=True)


@cli.command("drill", epilog=DRILL_HELP)
@click.argument("runbook")
@click.option(
    "--scenario",
    "scenario_file",
    metavar="FILE",
    help="The scenario (default: runbooks/drills/<runbook-id>.yaml, or one beside the runbook).",
)
@click.option("--yes", is_flag=True, help="Unattended: the scenario answers every prompt.")
@click.option(
    "--lab",
    "lab_url",
    metavar="URL",
    help=f"Use this running lab (token from ${TOKEN_ENV} or {LAB_TOKEN_FILE}); "
    "default: start a fresh one on a free port.",
)
@runs_dir_option
@click.option("--operator", "operator_name", metavar="NAME", help="Who runs the drill.")
@click.option(
    "--alert",
    "alert_file",
    metavar="FILE",
    help="Rehearse this alert (a payload as its source sent it, - for stdin): it is "
    "normalised, routed and mapped, and its inputs replace the scenario's.",
)
@alert_format_option
def drill_command(
    runbook: str,
    scenario_file: str | None,
    yes: bool,
    lab_url: str | None,
    runs_dir: Path | None,
    operator_name: str | None,
    alert_file: str | None,
    alert_format: str | None,
) -> int:
    """Rehearse RUNBOOK against the lab: the scenario's alert, answers, faults and expected end."""
    from runner.check.lint import load_for_run, resolve_runbook

    path = resolve_runbook(runbook)
    book = load_for_run(path)
    scenario = load_scenario(
        Path(scenario_file) if scenario_file else find_scenario(path, book.metadata.id)
    )
    names = check_scenario(scenario, book)
    check_loopback(scenario.spec.inputs, scenario)
    console = Console(highlight=False)
    interactive = not yes and sys.stdin.isatty() and sys.stdout.isatty()
    name = _operator_name(operator_name)
    with _lab(lab_url) as (url, token):
        mapped = (
            drill_alert(book, alert_file, alert_format, {names.url: url}, console)
            if alert_file
            else None
        )
        values = _inputs(book, scenario, names.url, names.token, url, token, mapped)
        lab = LabClient(url, token)
        try:
            lab.reset()  # every drill starts from the seeded scenario
            _briefing(console, book, scenario)
            result, injected = _play(
                book, scenario, values, [names.token], lab, name, interactive, runs_dir, console
            )
            state = lab.state()
            lab.clear_faults()
        finally:
            lab.close()
    checks = check_expectations(scenario, result.status.value, state, injected)
    print_summary(console, result, book)
    _print_checks(console, checks)
    written = write_report(result.run_dir, "md") + write_report(result.run_dir, "html")
    console.print(f"drill report: {written[0]}", soft_wrap=True)
    console.print(
        f"              {next(p for p in written if p.suffix == '.html')}", soft_wrap=True
    )
    if result.aborted:
        return result.exit_code
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAILED


def _play(
    book: Runbook,
    scenario: ScenarioFile,
    values: dict[str, InputValue],
    secrets: Sequence[str],
    lab: LabClient,
    name: str,
    interactive: bool,
    runs_dir: Path | None,
    console: Console,
) -> tuple[RunResult, list[int]]:
    """Run the runbook in drill mode; the result and the indexes of the faults injected."""
    from runner.exec.session import Session, context_for, create, execute, needed_kernels

    runs = Path(runs_dir) if runs_dir else default_runs_dir()
    with _kernels(needed_kernels(book.steps)) as pool:
        redactor = Redactor.for_inputs(values, secrets)
        # The drill's operator journals faults and notes: the run is created before it.
        journal = create(book, redactor, runs)
        reporter = DrillReporter(console, book, run_id=journal.run_id)  # step cards, the clock
        operator = DrillOperator(
            book,
            scenario,
            journal,
            lab,
            facilitator=name,
            person=TerminalOperator(name, console) if interactive else None,
            on_event=reporter.on_event,
        )
        session = Session(
            book,
            values,
            secrets,
            operator,
            context_for(book.path, name, interactive),
            RunOptions(mode="drill", yes=not interactive),
            reporter,
        )
        result = execute(session, pool, journal)
    return result, [index for index, _ in operator.injected]


__all__ = ["DrillReporter", "drill_command"]
