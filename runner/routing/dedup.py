"""What a routed alert does to the runs already open: start one, attach, link, or resolve.

:func:`decide` is a pure function of the alert's route, the open runs and the time; a store
(:class:`RunIndex`, in memory here, a database behind the intake) only remembers runs. The
rules, in order:

1. an alert whose dedup key matches an open run *attaches* to it (no second run);
2. a `resolved` alert is *recorded* on the run its key names, and starts nothing, even when no
   run is open (it is then ignored, and says so);
3. otherwise a run *starts*, *linked* to the open runs of the same runbook that share one of
   the entities its trigger correlates by (`correlate: {by: [hosts], window: 1h}`), when they
   started within the window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from runner.routing.envelope import Alert, AlertStatus
from runner.routing.route import Route


class Action(StrEnum):
    START = "start"
    ATTACH = "attach"
    RESOLVE = "resolve"
    IGNORE = "ignore"  # unrouted, or resolved with no run to record it on


@dataclass(frozen=True, slots=True)
class OpenRun:
    """A run an alert started and that has not ended."""

    run_id: str
    runbook_id: str
    dedup_key: str
    started: dt.datetime  # timezone-aware
    entities: frozenset[tuple[str, str]]  # (kind, value) of the alert that started it
    alerts: tuple[str, ...] = ()  # ids of the alerts attached to it, the first included
    resolved: tuple[str, ...] = ()  # ids of the resolved alerts recorded on it
    linked: tuple[str, ...] = ()  # run ids of related runs


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one routed alert."""

    action: Action
    reason: str
    run_id: str = ""  # the run to attach to or resolve
    linked: tuple[str, ...] = field(default=())  # for START: related open runs


def entity_set(alert: Alert, kinds: Sequence[str]) -> frozenset[tuple[str, str]]:
    """The (kind, value) pairs of `alert` for the entity kinds in `kinds`."""
    return frozenset((kind, value) for kind in kinds for value in getattr(alert.entities, kind))


def decide(route: Route, open_runs: Sequence[OpenRun], now: dt.datetime) -> Decision:
    """The rule above, for one route, given the runs open now."""
    if not route.routed or route.runbook is None:
        return Decision(Action.IGNORE, f"unrouted: {route.reason}")
    same = next((r for r in open_runs if r.dedup_key == route.dedup_key), None)
    if route.alert.status is AlertStatus.RESOLVED:
        if same is None:
            return Decision(Action.IGNORE, f"resolved, and no open run has key {route.dedup_key}")
        return Decision(Action.RESOLVE, "resolved: recorded on its run", same.run_id)
    if same is not None:
        return Decision(Action.ATTACH, f"a run with key {route.dedup_key} is open", same.run_id)
    trigger = route.runbook.metadata.trigger
    if not trigger.correlate_by or trigger.correlate_window is None:
        return Decision(Action.START, "no open run has this dedup key")
    mine = entity_set(route.alert, trigger.correlate_by)
    since = now - dt.timedelta(seconds=trigger.correlate_window)
    related = tuple(
        r.run_id
        for r in open_runs
        if r.runbook_id == route.runbook.metadata.id and r.started >= since and mine & r.entities
    )
    reason = f"linked to {len(related)} related run(s)" if related else "no related open run"
    return Decision(Action.START, reason, linked=related)


class RunIndex(Protocol):
    """The open runs, as the intake keeps them (the next issue gives it a database)."""

    def open_runs(self) -> Sequence[OpenRun]: ...
    def add(self, run: OpenRun) -> None: ...
    def update(self, run: OpenRun) -> None: ...


class MemoryRunIndex:
    """A RunIndex in a dictionary: for tests, drills and `runbook route`."""

    def __init__(self) -> None:
        self._runs: dict[str, OpenRun] = {}

    def open_runs(self) -> Sequence[OpenRun]:
        return tuple(self._runs.values())

    def add(self, run: OpenRun) -> None:
        self._runs[run.run_id] = run

    def update(self, run: OpenRun) -> None:
        self._runs[run.run_id] = run

    def get(self, run_id: str) -> OpenRun | None:
        return self._runs.get(run_id)


def apply(index: RunIndex, route: Route, now: dt.datetime, new_run_id: str) -> Decision:
    """Decide, then record the decision in `index` (a started run under `new_run_id`)."""
    runs = index.open_runs()
    decision = decide(route, runs, now)
    by_id = {r.run_id: r for r in runs}
    alert_id = route.alert.id or route.alert.dedup_key
    if decision.action is Action.START and route.runbook is not None:
        kinds = route.runbook.metadata.trigger.correlate_by or ("hosts", "users")
        index.add(OpenRun(new_run_id, route.runbook.metadata.id, route.dedup_key, now,
                          entity_set(route.alert, kinds), (alert_id,),
                          linked=decision.linked))  # fmt: skip
    elif decision.action is Action.ATTACH:
        run = by_id[decision.run_id]
        index.update(replace(run, alerts=(*run.alerts, alert_id)))
    elif decision.action is Action.RESOLVE:
        run = by_id[decision.run_id]
        index.update(replace(run, resolved=(*run.resolved, alert_id)))
    return decision
