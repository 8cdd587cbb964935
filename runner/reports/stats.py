"""Readiness figures: how often each runbook was exercised, how it went, and how long it took.

Everything is computed from the journals (through :func:`runner.runs.journal.list_runs`), so the
figures cannot disagree with the runs they summarise.

Definitions (the same in `runbook stats`, its JSON and the docs):

- *runs* counts real runs (mode ``run`` or ``procedure``), *drills* counts mode ``drill``;
  dry runs execute nothing and are not counted.
- A run is *completed* when it finished (``succeeded``, ``succeeded_with_handled_failures``,
  ``failed``, ``cancelled``) or crashed (its writer is gone without a ``run_finished``).
  Runs still going or paused for an approval are left out of the rates and durations.
- *success rate* = completed runs that succeeded (handled failures count as success) /
  completed runs.
- *median* is the usual median (mean of the two middle values for an even count); *p90* is the
  nearest-rank 90th percentile: the smallest duration with at least 90% of the durations at or
  below it. Both use the durations of runs that finished.
- *within time limit* = finished runs that met the runbook's time limit / finished runs whose
  runbook had one.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.private_files import write_private
from runner.reports.chart import Sample, duration_chart
from runner.runs.store import RunInfo

SUCCESS = frozenset({"succeeded", "succeeded_with_handled_failures"})
FINISHED = SUCCESS | {"failed", "cancelled"}
COMPLETED = FINISHED | {"crashed"}
DRILL = "drill"
NOT_COUNTED = frozenset({"dry_run"})


@dataclass(frozen=True, slots=True)
class RunbookStats:
    """The readiness figures of one runbook."""

    runbook_id: str
    runbook_name: str
    runs: int  # real runs (mode run or procedure)
    drills: int  # mode drill
    completed: int  # finished or crashed; the denominator of the success rate
    succeeded: int  # completed runs that succeeded, handled failures included
    success_rate: float | None  # succeeded / completed; None when nothing completed
    median_duration: float | None  # seconds, over finished runs
    p90_duration: float | None  # seconds, nearest-rank, over finished runs
    time_limit: float | None  # seconds, from the most recent run
    within_time_limit: float | None  # share of finished runs that met the time limit
    last_exercised: str | None  # ISO 8601 start of the most recent run or drill

    def as_json(self) -> dict[str, Any]:
        return {
            "runbook": {"id": self.runbook_id, "name": self.runbook_name},
            "runs": self.runs,
            "drills": self.drills,
            "completed": self.completed,
            "succeeded": self.succeeded,
            "success_rate": self.success_rate,
            "median_duration": self.median_duration,
            "p90_duration": self.p90_duration,
            "time_limit": self.time_limit,
            "within_time_limit": self.within_time_limit,
            "last_exercised": self.last_exercised,
        }


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100): an observed value, never an interpolation."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def runbook_stats(runbook_id: str, runs: Sequence[RunInfo], name: str = "") -> RunbookStats:
    """The figures of one runbook from its runs (any order); runs of other runbooks are ignored."""
    mine = [r for r in runs if r.runbook_id == runbook_id and r.mode not in NOT_COUNTED]
    completed = [r for r in mine if r.status in COMPLETED]
    finished = [r for r in mine if r.status in FINISHED and r.duration is not None]
    durations = [float(r.duration) for r in finished if r.duration is not None]
    judged = [r for r in finished if r.within_time_limit is not None]
    succeeded = sum(1 for r in completed if r.status in SUCCESS)
    newest = max(mine, key=lambda r: r.started, default=None)
    return RunbookStats(
        runbook_id=runbook_id,
        runbook_name=newest.runbook_name if newest else name,
        runs=sum(1 for r in mine if r.mode != DRILL),
        drills=sum(1 for r in mine if r.mode == DRILL),
        completed=len(completed),
        succeeded=succeeded,
        success_rate=succeeded / len(completed) if completed else None,
        median_duration=statistics.median(durations) if durations else None,
        p90_duration=percentile(durations, 90),
        time_limit=newest.time_limit if newest else None,
        within_time_limit=(
            sum(1 for r in judged if r.within_time_limit) / len(judged) if judged else None
        ),
        last_exercised=newest.started if newest else None,
    )


def all_stats(runs: Sequence[RunInfo]) -> list[RunbookStats]:
    """Figures for every runbook that has runs, by runbook id."""
    ids = sorted({r.runbook_id for r in runs if r.mode not in NOT_COUNTED})
    return [runbook_stats(i, runs) for i in ids]


def plot_durations(
    runs: Sequence[RunInfo],
    time_limit: float | None,
    out_svg: Path,
    *,
    highlight: str | None = None,
    title: str = "",
) -> Path | None:
    """Draw finished runs' durations over time against the time limit into an SVG file (the
    site's chart, :mod:`runner.reports.chart`); None when none finished.

    ``highlight`` (a run id) is ringed, so a report shows where its own run sits among the others.
    """
    samples = [_sample(r) for r in runs if r.status in FINISHED and r.duration is not None]
    named = title or (f"{runs[0].runbook_name}: run durations" if runs else "")
    svg = duration_chart(samples, time_limit, highlight=highlight, title=named, standalone=True)
    if not svg:
        return None
    out_svg.parent.mkdir(parents=True, exist_ok=True)
    # Written private and never through a link planted in the run folder.
    write_private(out_svg, svg.encode("utf-8"))
    return out_svg


def _sample(run: RunInfo) -> Sample:
    try:
        started = dt.datetime.fromisoformat(run.started.replace("Z", "+00:00"))
    except ValueError:
        started = None  # an unreadable start time has no place on the time axis
    label = started.strftime("%Y-%m-%d %H:%M") if started else run.run_id
    return Sample(run.run_id, started, run.duration, run.status, run.mode, label)
