"""Where a run stands and how long it has taken, read from its state (never written here).

*Wall time* runs from the first line of the journal to its last, or to now while the run is
going: the incident's clock, pauses for an approval included. *Active time* is the runner's
own figure in ``run_finished``/``run_paused`` (the attempts' durations, pauses left out). A
runbook's ``time_limit`` is an objective for the incident, so it is judged on wall time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from runner.runs.state import RunRecord
from runner.runs.store import RunInfo, load_run
from runner.text.live import epoch

#: A run in one of these states has a step worth naming in a list of runs.
_UNDER_WAY = frozenset({"running", "paused", "crashed"})


@dataclass(frozen=True, slots=True)
class Progress:
    """A run's current step and its times."""

    step: str | None  # `3/9 Isolate the device`, or the step a paused run waits on; else None
    wall: float | None  # seconds, see the module docstring; None without timestamps
    active: float | None  # seconds the runner reported; None until it paused or finished

    def as_json(self) -> dict[str, Any]:
        return {"current_step": self.step, "wall": self.wall, "active": self.active}


def wall_time(
    first: str | None, last: str | None, going: bool, now: float | None = None
) -> float | None:
    """Seconds from the first event to the last one (to ``now`` while the run is going)."""
    start = epoch(first)
    end = (now or time.time()) if going else epoch(last)
    if start is None or end is None:
        return None
    return max(0.0, end - start)


def current_step(record: RunRecord) -> str | None:
    """The step under way (`3/9 Title`), or the one the run waits on; None between steps."""
    for s in reversed(record.steps):
        where = f"{s.procedure}: " if s.procedure else ""
        if s.status == "running":
            count = f"{s.number}/{s.total} " if s.total else ""
            return f"{count}{where}{s.title or s.step_id}"
        if s.status == "waiting_approval" and record.status == "paused":
            return f"{where}{s.number} waits for an approval"
        if s.status == "waiting_answer" and record.status == "paused":
            return f"{where}{s.number} waits for an answer"
    return None


def run_progress(info: RunInfo) -> Progress:
    """Progress from a listed run; only a run under way is read in full (for its step)."""
    step = current_step(load_run(info.run_dir)) if info.status in _UNDER_WAY else None
    wall = wall_time(info.started, info.last_event, info.status == "running")
    if info.duration is not None and (wall is None or wall < info.duration):
        wall = info.duration  # wall time is never less than active time (a skewed clock)
    return Progress(step, wall, info.duration)
