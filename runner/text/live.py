"""Pieces of the live display of a run: the run header, the clock against the time limit, and
the commands printed at the end that a person can paste as they are.

No I/O: each function returns text or a rich renderable for the reporter in ``runner.cli``.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from runner.format.syntax import format_duration
from runner.text.step_card import shown_value
from runner.text.terminal import visible

#: Shares of the time limit at which the step header warns, once each.
WARN_AT = (0.8, 1.0)


def epoch(iso: str | None) -> float | None:
    """Seconds since the epoch of a journal timestamp, or None."""
    if not iso:
        return None
    try:
        return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def run_header(
    name: str,
    run_id: str,
    inputs: Mapping[str, object],
    time_limit: float | None,
    *,
    resumed: int | None = None,
) -> RenderableType:
    """What the run works on, before step 1: every resolved input (secrets arrive as ``***``)."""
    title = Text(visible(name), style="bold")
    title.append(f"  run {visible(run_id)}", style="dim")
    if resumed:
        title.append(f" · resumed (attempt {resumed})", style="cyan")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    if time_limit:
        grid.add_row("time limit", "", format_duration(time_limit))
    for key, value in inputs.items():
        grid.add_row("input", Text(visible(key)), Text("= " + visible(shown_value(value))))
    return Group(Text(""), title, grid)


def clock(elapsed: float, limit: float | None) -> Text:
    """``4m12s of 1h``: the run's wall time against its limit, coloured as it nears it."""
    if not limit:
        return Text(format_duration(elapsed), style="dim")
    share = elapsed / limit
    style = "bold red" if share >= 1 else "bold yellow" if share >= WARN_AT[0] else "dim"
    return Text(f"{format_duration(elapsed)} of {format_duration(limit)}", style=style)


def crossed(elapsed: float, limit: float | None, warned: set[float]) -> str | None:
    """The warning for the highest mark of :data:`WARN_AT` newly passed, or None; ``warned``
    keeps the marks already warned about, so each is said once."""
    if not limit:
        return None
    passed = [mark for mark in WARN_AT if elapsed >= limit * mark and mark not in warned]
    if not passed:
        return None
    warned.update(passed)
    if passed[-1] >= 1:
        over = format_duration(elapsed - limit)
        return f"over the {format_duration(limit)} time limit (by {over})"
    return f"{passed[-1]:.0%} of the {format_duration(limit)} time limit used"


@dataclass(frozen=True, slots=True)
class Where:
    """What every pasted command must name to find the run again."""

    run_id: str
    runs_dir: Path  # the folder holding the run's folder

    def options(self) -> str:
        """`` --runs-dir DIR`` when the run is not in the default folder, else ``""``."""
        from runner.runs.store import default_runs_dir

        if _same(self.runs_dir, default_runs_dir()) and "RUNBOOK_RUNS_DIR" not in os.environ:
            return ""
        # Absolute: the command still works pasted in another folder or another shell.
        return f" --runs-dir {shlex.quote(str(self.runs_dir.absolute()))}"

    def command(self, verb: str, *args: str) -> str:
        tail = "".join(f" {shlex.quote(a)}" for a in args)
        return f"runbook {verb} {shlex.quote(self.run_id)}{tail}{self.options()}"


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def paused_hints(where: Where, step: str, role: str | None) -> list[tuple[str, str]]:
    """(label, command) to see the waiting gate, decide on it, and go on."""
    held = ["--role", role] if role else []
    approve = where.command("approve", step, "--by", "NAME", *held)
    deny = where.command("deny", step, "--by", "NAME", "--comment", "WHY")
    return [
        ("see it", where.command("pending")),
        ("approve", approve),
        ("or deny", deny),
        ("then", where.command("resume")),
    ]


def answer_hints(where: Where, step: str, accepts: str) -> list[tuple[str, str]]:
    """(label, command) to see the waiting question, answer it, and go on."""
    return [
        ("see it", where.command("pending")),
        ("answer", where.command("answer", step, accepts, "--by", "NAME")),
        ("then", where.command("resume")),
    ]


def next_hints(where: Where, status: str) -> list[tuple[str, str]]:
    """(label, command) after a run that failed or was cancelled."""
    return (
        [
            ("what happened", where.command("log")),
            ("continue", where.command("resume")),
            ("the record", where.command("report")),
        ]
        if status in ("failed", "cancelled")
        else [("the record", where.command("report"))]
    )


def hint_lines(hints: Sequence[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in hints) + 1
    return "\n".join(f"  {label + ':':<{width}} {command}" for label, command in hints)


def whole(seconds: float) -> str:
    """``3s``, ``1m30s``: a duration as a person would give a timeout."""
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 1 else format_duration(seconds)
    return format_duration(seconds)


def plain_error(error: str, exit_status: object = None) -> str:
    """An error as a person reads it: `exit status 3`, not `exit(3)` or a bare `3`."""
    import re

    match = re.fullmatch(r"(?:exit\(?\s*(-?\d+)\s*\)?|(-?\d+)|exit status (-?\d+))", error.strip())
    if match:
        return f"exit status {next(g for g in match.groups() if g is not None)}"
    if not error and exit_status not in (None, 0):
        return f"exit status {exit_status}"
    return error


def verdict_detail(event: Mapping[str, object], timeout: float | None) -> str:
    """What follows a step's status: why it ended so, in words and not exception names."""
    status = event.get("status")
    error = str(event.get("error") or "")
    if status == "timed_out":
        took = whole(float(str(event.get("duration") or 0)))
        return f"timed out after {took}" + (f" (timeout={whole(timeout)})" if timeout else "")
    if status == "cancelled" and error.startswith("interrupted"):
        return "interrupted" + error.removeprefix("interrupted by the operator").removeprefix(
            "interrupted"
        )
    if status == "failed":
        return plain_error(error, event.get("exit_status"))
    return error or str(event.get("reason") or "")


def ctrl_c_message(presses: int, grace: float) -> str:
    """What a Ctrl-C during a step does, said as it is pressed: the levels made explicit."""
    if presses <= 1:
        return (
            "Ctrl-C: interrupting the step (if it ignores this, the kernel is restarted in "
            f"{whole(grace)}). Ctrl-C again: restart the kernel now and cancel the step; "
            "a third time: end the run."
        )
    if presses == 2:
        return (
            "Ctrl-C again: restarting the kernel and cancelling the step (once more: end the run)."
        )
    return "Ctrl-C a third time: ending the run."
