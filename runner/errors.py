"""The exception hierarchy. Every error a user can fix says where, what and how to fix it.

The CLI maps each class to an exit status in one place (``runner.cli``):
``UsageError`` and ``InvalidRunbook``/``InvalidInputs`` exit 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

from runner.format.model import Problem


class ExitCode(IntEnum):
    """Every exit status of `runbook`, in one table (docs/cli.md documents it)."""

    OK = 0  # done: the run succeeded (handled failures included), the check found no error
    FAILED = 1  # the run failed or was denied; `check` found errors
    USAGE = 2  # unusable input: a bad command line, runbook, input, journal or alert
    PAUSED = 3  # the run waits for an approval: `runbook approve`, then `runbook resume`
    ABORTED = 130  # Ctrl-C or SIGTERM ended the run (128 + SIGINT, as shells report it)


class RunbookError(Exception):
    """Root of every error this project raises on purpose."""

    exit_code: int = ExitCode.FAILED

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        return f"{where}{self.message}"


class UsageError(RunbookError):
    """The command line itself is wrong."""

    exit_code = ExitCode.USAGE


class UnreadableRunbook(RunbookError):
    """The file cannot be read as a runbook at all (missing, binary, not UTF-8, too large)."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, path: str, code: str, line: int = 0) -> None:
        super().__init__(message, path=path, line=line)
        self.code = code

    def as_problem(self) -> Problem:
        return Problem(self.path or "", self.line or 0, "error", self.code, self.message)


class InvalidRunbook(RunbookError):
    """The runbook parsed but has errors that make it unsafe to run."""

    exit_code = ExitCode.USAGE

    def __init__(self, path: str, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(
            f"{len(self.problems)} error(s); fix them (see `runbook check {path}`):\n{lines}",
            path=path,
        )


class InvalidInputs(RunbookError):
    """An input value is missing or does not match its declaration."""

    exit_code = ExitCode.USAGE


class ExpressionError(RunbookError):
    """A `when=` expression does not parse, or names a value that does not exist."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, expression: str, column: int | None = None) -> None:
        where = f" at column {column + 1}" if column is not None else ""
        super().__init__(f"{message}{where} in {expression!r}")
        self.expression = expression
        self.column = column
