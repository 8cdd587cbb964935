"""Where a run stands and how long it has taken, read from its journal (never written here).

*Wall time* runs from the first line of the journal to its last, or to now while the run is
going: the incident's clock, pauses for an approval included. *Active time* is the runner's
own figure in ``run_finished``/``run_paused`` (the attempts' durations, pauses left out). A
runbook's ``time_limit`` is an objective for the incident, so it is judged on wall time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .journal import Event, RunInfo, read_events
from .live_text import epoch

_GOING = frozenset({"running"})


@dataclass(frozen=True, slots=True)
class Progress:
    """A run's current step and its times."""

    step: str | None  # `3/9 Isolate the device`, or the step a paused run waits on; else None
    wall: float | None  # seconds, see the module docstring; None without timestamps
    active: float | None  # seconds the runner reported; None until it paused or finished

    def as_json(self) -> dict[str, Any]:
        return {"current_step": self.step, "wall": self.wall, "active": self.active}


def wall_time(events: Sequence[Event], going: bool, now: float | None = None) -> float | None:
    """Seconds from the first event to the last one (to ``now`` while the run is going)."""
    if not events:
        return None
    start = epoch(str(events[0].get("ts") or ""))
    end = (now or time.time()) if going else epoch(str(events[-1].get("ts") or ""))
    if start is None or end is None:
        return None
    return max(0.0, end - start)


def current_step(events: Sequence[Event]) -> str | None:
    """The step under way (`3/9 Title`), or the one the run waits on; None between steps."""
    current: str | None = None
    for e in events:
        kind = e.get("event")
        where = f"{e['procedure']}: " if e.get("procedure") else ""
        if kind == "step_started":
            count = f"{e.get('index')}/{e.get('total')} " if e.get("index") else ""
            current = f"{count}{where}{e.get('title') or e.get('step_id')}"
        elif kind == "step_finished":
            current = None
            if e.get("status") == "waiting_approval":
                current = f"{where}{e.get('step')} waits for an approval"
        elif kind in ("run_finished", "run_resumed"):
            current = None
    return current


def run_progress(info: RunInfo, events: Sequence[Event] | None = None) -> Progress:
    events = read_events(info.run_dir) if events is None else events
    going = info.status in _GOING
    step = current_step(events) if info.status in ("running", "paused", "crashed") else None
    wall = wall_time(events, going)
    if info.duration is not None and (wall is None or wall < info.duration):
        wall = info.duration  # wall time is never less than active time (a skewed clock)
    return Progress(step, wall, info.duration)
