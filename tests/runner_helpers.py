"""Shared helpers for the runner tests: tiny runbooks in tmp_path, run through real kernels."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner.check.lint import load_for_run
from runner.exec.engine import RunContext, RunOptions, RunResult
from runner.exec.operator import Operator, UnattendedOperator
from runner.exec.session import Session, execute
from runner.kernels.pool import KernelPool
from runner.runs.events import decode
from runner.runs.journal import Journal, read_events
from runner.runs.redact import Redactor
from runner.runs.state import ResumeState

RUNBOOK = str(Path(sys.executable).with_name("runbook"))

HEADER = """---
name: Test book
service: test
objective: Exercise the runner
time_limit: 5m
roles:
  lead: Incident lead
{inputs}---
# Test book

## Steps

"""


def write_book(tmp_path: Path, steps: str, inputs: str = "", name: str = "book.md") -> Path:
    """A runbook file from step Markdown (dedented) and an optional `inputs:` YAML block."""
    path = tmp_path / name
    block = (
        ("inputs:\n" + textwrap.indent(textwrap.dedent(inputs).strip("\n"), "  ") + "\n")
        if inputs
        else ""
    )
    path.write_text(HEADER.format(inputs=block) + textwrap.dedent(steps).lstrip("\n"))
    return path


def run_engine(
    path: Path,
    runs_dir: Path,
    *,
    inputs: dict[str, Any] | None = None,
    secrets: Sequence[str] = (),
    operator: Operator | None = None,
    options: RunOptions | None = None,
    resume: ResumeState | None = None,
    run_dir: Path | None = None,
    pool: KernelPool | None = None,
) -> tuple[RunResult, list[dict[str, Any]]]:
    """Run a runbook in-process through real kernels; return the result and the journal events."""
    book = load_for_run(path)
    values = dict(inputs or {})
    redactor = Redactor.for_inputs(values, secrets)
    journal = (
        Journal.reopen(run_dir, redactor)
        if run_dir is not None
        else Journal.create(
            runs_dir, f"run-{len(list(runs_dir.glob('*'))) if runs_dir.exists() else 0}", redactor
        )
    )
    operator = operator or UnattendedOperator("tester")
    # Through the session, as `runbook run` and a worker go: the same engine, the same writer.
    session = Session(
        book,
        values,
        secrets,
        operator,
        RunContext(str(path), operator.name, "testhost", None, operator.interactive),
        options or RunOptions(),
    )
    with pool or KernelPool() as pool:
        result = execute(session, pool, journal, resume=resume)
    return result, read_events(journal.run_dir)


def of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == kind]


def finished(events: list[dict[str, Any]]) -> dict[str, str]:
    """step_id -> the last status recorded for it."""
    return {e["step_id"]: e["status"] for e in of(events, "step_finished")}


def stdout_text(events: list[dict[str, Any]]) -> str:
    return "".join(e.get("text", "") for e in of(events, "output") if e["kind"] == "stream")


def cli(
    args: Sequence[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the `runbook` console script as an operator would (no TTY)."""
    full_env = {**os.environ, "TMPDIR": str(cwd), "RUNBOOK_OPERATOR": "tester", **(env or {})}
    full_env.pop("RUNBOOK_RUNS_DIR", None)
    return subprocess.run(
        [RUNBOOK, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def kernel_processes(marker: str) -> list[int]:
    """PIDs of live processes whose command line mentions ``marker`` (e.g. a tmp_path)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(
                (
                    line
                    for line in (entry / "status").read_text().splitlines()
                    if line.startswith("State:")
                ),
                "",
            )
        except OSError:
            continue
        if marker in cmdline and "Z" not in state.split()[1:2]:
            pids.append(int(entry.name))
    return pids


def append_event(journal: Journal, event: str, **fields: Any) -> dict[str, Any]:
    """Write a hand-built event, as a test journal needs: its kind and fields as the journal
    would hold them (fields this version does not know are kept, as a reader meets them)."""
    return journal.append(decode({"event": event, **fields}))
