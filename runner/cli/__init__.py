"""The `runbook` command. All error handling lives here: each error maps to a message and an exit.

Exit statuses (documented in docs/cli.md and `runbook --help`):
  0  success
  1  problems found (`check`), a step failed, the run was cancelled, or an alert is unrouted
  2  unusable input: bad command line, unreadable or invalid runbook, invalid inputs
  3  a run paused, waiting for an approval
  130  aborted by the operator (Ctrl-C)
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from runner.errors import ExitCode, RunbookError
from runner.text.terminal import visible

# Short names for the commands' modules; the table itself is runner.errors.ExitCode.
EXIT_OK = ExitCode.OK
EXIT_FAILED = ExitCode.FAILED
EXIT_USAGE = ExitCode.USAGE
EXIT_PAUSED = ExitCode.PAUSED
EXIT_ABORTED = ExitCode.ABORTED

# soft_wrap: a message names a path and line; wrapping it at 80 columns would split them.
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


# Which module holds each command. Modules load on first use, so `runbook run` does not pay
# for importing the lab's web stack or the report templates.
_COMMAND_MODULES: dict[str, str] = {
    "check": "authoring",
    "list": "authoring",
    "show": "authoring",
    "schema": "authoring",
    "run": "running",
    "resume": "running",
    "approve": "running",
    "deny": "running",
    "answer": "running",
    "cancel": "running",
    "pending": "pending",
    "runs": "records",
    "log": "records",
    "verify": "records",
    "report": "records",
    "stats": "records",
    "lab": "lab",
    "drill": "drills",
    "route": "routing",
    "serve": "service",
    "worker": "service",
    "users": "users",
}


class _LazyGroup(click.Group):
    """A click group that imports a command's module only when that command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(_COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMAND_MODULES:
            # Importing the module runs its @cli.command decorators, which register it here.
            importlib.import_module(f"{__name__}.{_COMMAND_MODULES[cmd_name]}")
        return self.commands.get(cmd_name)


# Options several commands share, defined once so their names, types and help agree.
runs_dir_option = click.option(
    "--runs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Where runs are kept [default: $RUNBOOK_RUNS_DIR or .runbook/runs].",
)
format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for programs (a stable, versioned shape)",
)


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Exit statuses: 0 success; 1 problems found, a step failed or the run was cancelled; "
    "2 unusable input (command line, runbook or inputs); 3 paused for an approval; "
    "130 aborted by the operator.",
)
@click.version_option(package_name="secops-runbooks", prog_name="runbook")
def cli() -> None:
    """Runbooks for security and IT operations: read them, check them, run them."""


def register_all() -> None:
    """Load every command module (for tools that walk the whole command tree)."""
    for module in sorted(set(_COMMAND_MODULES.values())):
        importlib.import_module(f"{__name__}.{module}")


#: Modules of the optional extras (pyproject.toml) -> the extra that installs them.
_EXTRAS = {
    "starlette": "lab",
    "uvicorn": "lab",
    "httpx": "lab",
    "mkdocs": "site",
    "material": "site",
    "temporalio": "service",
    "prometheus_client": "service",
    "argon2": "service",
    "jinja2": "service",
}


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the command and map every outcome to an exit status."""
    try:
        status = cli.main(args=argv, prog_name="runbook", standalone_mode=False)
    except click.exceptions.Exit as exc:
        status = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        status = EXIT_USAGE
    except click.exceptions.Abort:
        err_console.print("aborted")
        status = EXIT_ABORTED
    except KeyboardInterrupt:
        err_console.print("aborted")
        status = EXIT_ABORTED
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        err_console.print(
            f"[bold red]error:[/] this command needs {exc.name}, which comes with the "
            f"{extra!r} extra: pip install 'secops-runbooks[{extra}]'"
        )
        status = EXIT_USAGE
    except RunbookError as exc:
        # An error quotes what it found (a path, a value, a line): shown, never obeyed.
        err_console.print(f"[bold red]error:[/] {escape(visible(str(exc)))}", markup=True)
        status = exc.exit_code
    except Exception as exc:
        if os.environ.get("RUNBOOK_DEBUG"):
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(visible(str(exc)))}\n"
            "This is a bug in runbook; run again with RUNBOOK_DEBUG=1 to see the traceback "
            "and report it."
        )
        status = EXIT_FAILED
    sys.exit(status if isinstance(status, int) else EXIT_OK)
