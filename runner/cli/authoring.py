"""Commands for authors: check, list, show, schema.

`check` exits 0 when no file has an error (warnings alone exit 0 unless --strict), 1 when there
are problems, and 2 for unusable command lines (a path that does not exist). Errors are raised,
never printed here: the single handler in ``runner.cli`` maps them to a message and a status.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from runner.check.lint import check_path, count_levels, iter_runbook_files, lint, resolve_runbook
from runner.cli import EXIT_FAILED, EXIT_OK, cli, format_option, runs_dir_option
from runner.errors import InvalidRunbook, UnreadableRunbook, UsageError
from runner.format.model import Problem
from runner.format.schema import front_matter_schema
from runner.parse.markdown import parse_file
from runner.reports.plan import plan_json
from runner.text.plan import plan_view
from runner.text.terminal import visible

DEFAULT_FOLDER = "runbooks"
OUTPUT_VERSION = 1


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def _dump(data: object) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _paths(paths: Sequence[str]) -> list[Path]:
    files = iter_runbook_files(list(paths) or [DEFAULT_FOLDER])
    if not files:
        where = ", ".join(paths) or DEFAULT_FOLDER
        raise UsageError(f"no runbook files (*.md) under {where}")
    return files


def problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "path": problem.path,
        "line": problem.line,
        "level": problem.level,
        "code": problem.code,
        "message": problem.message,
    }


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@format_option
@click.option("--strict", is_flag=True, help="exit 1 on warnings too, not only on errors")
@click.option(
    "--stale",
    "stale_days",
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="also warn (RB050) for runbooks not drilled within DAYS, from the journals in --runs-dir",
)
@runs_dir_option
def check(
    paths: tuple[str, ...],
    output_format: str,
    strict: bool,
    stale_days: float | None,
    runs_dir: Path | None,
) -> int:
    """Lint runbooks: files or folders (searched for *.md), runbooks/ by default.

    Prints one line per problem, `path:line: error|warning CODE message`; the codes are listed
    in docs/format.md. Exit status: 0 clean (warnings allowed unless --strict), 1 problems,
    2 unusable command line.
    """
    files = _paths(paths)
    problems = [p for f in files for p in check_path(f)]
    from runner.check.routing import sample_problems  # sample alerts, routed among their folder's

    problems += sample_problems(files)
    if stale_days is not None:
        from runner.drills.drill import stale_problems
        from runner.runs.store import default_runs_dir

        problems += stale_problems(files, stale_days, Path(runs_dir or default_runs_dir()))
    errors, warnings = count_levels(problems)
    if output_format == "json":
        _dump(
            {
                "version": OUTPUT_VERSION,
                "files": len(files),
                "errors": errors,
                "warnings": warnings,
                "problems": [problem_json(p) for p in problems],
            }
        )
    else:
        for problem in problems:
            click.echo(visible(str(problem)))
        click.echo(
            f"checked {len(files)} file(s): {errors} error(s), {warnings} warning(s)",
            err=True,
        )
    return EXIT_FAILED if errors or (strict and warnings) else EXIT_OK


@cli.command(name="list")
@click.argument("paths", nargs=-1, type=click.Path())
@format_option
def list_runbooks(paths: tuple[str, ...], output_format: str) -> int:
    """List runbooks: id, name, service, severity, steps and roles (runbooks/ by default)."""
    rows: list[dict[str, Any]] = []
    for path in _paths(paths):
        try:
            runbook = parse_file(path)
        except UnreadableRunbook as exc:
            click.echo(f"skipped {exc}", err=True)
            continue
        meta = runbook.metadata
        rows.append(
            {
                "path": str(path),
                "id": meta.id,
                "name": meta.name,
                "service": meta.service,
                "severity": meta.severity.value if meta.severity else None,
                "steps": len(runbook.steps),
                "roles": list(meta.roles),
            }
        )
    if output_format == "json":
        _dump({"version": OUTPUT_VERSION, "runbooks": rows})
        return EXIT_OK
    table = Table()
    for column in ("id", "name", "service", "severity", "steps", "roles"):
        table.add_column(column, justify="right" if column == "steps" else "left")
    for row in rows:
        table.add_row(
            Text(visible(row["id"])),
            Text(visible(row["name"])),
            Text(visible(row["service"])),
            row["severity"] or "",
            str(row["steps"]),
            Text(visible(", ".join(row["roles"]))),
        )
    _console().print(table)
    return EXIT_OK


@cli.command()
@click.argument("runbook")
@format_option
def show(runbook: str, output_format: str) -> int:
    """Show the plan of RUNBOOK (a path, or an id under runbooks/) as a person reads it."""
    path = resolve_runbook(runbook)
    parsed = parse_file(path)
    problems = lint(parsed)
    errors = [p for p in problems if p.level == "error"]
    if errors:
        raise InvalidRunbook(str(path), errors)
    if output_format == "json":
        _dump(plan_json(parsed))
    else:
        _console().print(plan_view(parsed, problems))
    return EXIT_OK


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the front matter, for editors (see docs/format.md)."""
    click.echo(json.dumps(front_matter_schema(), indent=2))
