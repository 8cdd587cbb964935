"""Runs and drills of each runbook, from the journals (`<runs_dir>/*/journal.jsonl`).

Each run is the run store's summary (:func:`runner.runs.store.summary`): its first line and the
run-level events of its last 64 KiB, folded as `runbook runs` folds them, so the site and the
command line never disagree on a status. Journals are written by a runner that may have crashed
mid-line: anything unreadable is skipped and reported, never fatal. The plugin reads runs; it
never imports the runner's execution. The page's "Latest runs and drills" section is here too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from plugins.runbooks.markup import hold, status_badge
from runner.format.model import Metadata
from runner.format.syntax import format_duration
from runner.reports.chart import Sample, duration_chart, succeeded
from runner.runs.store import summary

MAX_RUNS = 10  # runs and drills listed on a runbook page, newest first


@dataclass(frozen=True, slots=True)
class Run:
    """One run or drill of a runbook, as its journal records it."""

    run_id: str
    runbook_id: str
    started: dt.datetime | None  # None when the journal's timestamp is unreadable
    mode: str  # "run", "drill", ...
    status: str  # the run's final status, or running, paused or crashed (as `runbook runs`)
    duration: float | None  # seconds, when finished
    time_limit: float | None  # seconds, as the runbook said at the time of the run
    within_time_limit: bool | None  # as the runner judged it; None when unknown

    @property
    def started_text(self) -> str:
        if self.started is None:
            return "unknown time"
        text = self.started.strftime("%Y-%m-%d %H:%M")
        return f"{text} UTC" if self.started.utcoffset() == dt.timedelta(0) else text


@dataclass(frozen=True, slots=True)
class RunIndex:
    """Every readable run, by runbook id, newest first, and the journals that were skipped."""

    by_runbook: Mapping[str, tuple[Run, ...]]
    skipped: tuple[str, ...]  # "path: why", for the build log


def read_runs(runs_dir: Path | None) -> RunIndex:
    if runs_dir is None or not runs_dir.is_dir():
        return RunIndex({}, ())
    runs: dict[str, list[Run]] = {}
    skipped: list[str] = []
    for journal in sorted(runs_dir.glob("*/journal.jsonl")):
        try:
            run = read_journal(journal)
        except (OSError, ValueError) as exc:
            skipped.append(f"{journal}: {exc}")
            continue
        runs.setdefault(run.runbook_id, []).append(run)
    ordered = {k: tuple(sorted(v, key=_newest_first)) for k, v in runs.items()}
    return RunIndex(ordered, tuple(skipped))


def _newest_first(run: Run) -> tuple[bool, float]:
    return (run.started is None, -run.started.timestamp() if run.started else 0.0)


def read_journal(path: Path) -> Run:
    """The run a journal records. Raises ValueError when its first event is not readable."""
    info = summary(path.parent)
    if info is None:
        raise ValueError("the first line is not a run_started event")
    if not info.runbook_id:
        raise ValueError("run_started names no runbook id")
    return Run(
        run_id=info.run_id,
        runbook_id=info.runbook_id,
        started=_timestamp(info.started),
        mode=info.mode,
        status=info.status,
        duration=info.duration,
        time_limit=_number(info.time_limit),
        within_time_limit=info.within_time_limit,
    )


def _timestamp(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# --- the runs section of a runbook's page ------------------------------------------------------


def runs_section(runs: Sequence[Run], meta: Metadata, slots: list[str]) -> str:
    """The latest runs as a table, after a chart of every finished run against the time limit."""
    if not runs:
        return ""
    # The limit the runbook sets now; the latest run's when the file no longer sets one.
    limit = meta.time_limit if meta.time_limit is not None else runs[0].time_limit
    chart = duration_figure(runs, limit)
    head = "| Started | Mode | Status | Duration | Time limit |\n|---|---|---|---|---|"
    rows = [
        f"| {escape(r.started_text)} | {escape(r.mode)} | {status_badge(r.status)} | "
        f"{_duration(r)} | {_verdict(r, meta)} |"
        for r in runs[:MAX_RUNS]
    ]
    more = f"\n\n{len(runs) - MAX_RUNS} older run(s) not shown." if len(runs) > MAX_RUNS else ""
    parts = ["## Latest runs and drills { #latest-runs }", hold(slots, chart) if chart else ""]
    parts.append("\n".join([head, *rows]) + more)
    return "\n\n".join(p for p in parts if p)


def duration_figure(runs: Sequence[Run], limit: float | None) -> str:
    """The runs drawn by the runner's one duration chart, in a figure; "" with no finished run."""
    samples = [
        Sample(r.run_id, r.started, r.duration, r.status, r.mode, r.started_text) for r in runs
    ]
    svg = duration_chart(samples, limit)
    return f'<figure class="rb-chart-figure">{svg}</figure>' if svg else ""


def _duration(run: Run) -> str:
    return format_duration(run.duration) if run.duration is not None else "—"


def _verdict(run: Run, meta: Metadata) -> str:
    """The limit, and whether the run *succeeded* within it: a failed run met no objective, so
    it is never "within", only "over" when it also ran past the limit."""
    limit = run.time_limit if run.time_limit is not None else meta.time_limit
    if limit is None:
        return "none"
    text = format_duration(limit)
    if run.duration is None:
        return text
    if not succeeded(run.status):
        return f"{text}, <strong>over</strong>" if run.duration > limit else f"{text}, not met"
    within = run.within_time_limit
    if within is None:
        within = run.duration <= limit
    return f"{text}, {'within' if within else '<strong>over</strong>'}"
