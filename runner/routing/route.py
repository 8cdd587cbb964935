"""Which runbook an alert starts, with which inputs; or why none does.

Routing is total and loud: an alert is routed to exactly one runbook, or it is unrouted with a
reason. Two runbooks that match at the same priority do not pick one silently: the alert is
unrouted as ambiguous, and `runbook check` finds such pairs among the sample alerts.

Runbooks are indexed by an equality every alert they match must satisfy (`source: splunk`,
`labels.alertname: HttpDown`), so an alert is tested against the few runbooks it can match,
not all of them; `explain` tests every runbook, to say why each one did not match.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from runner.format.match import Miss, equalities, normal
from runner.format.model import Runbook
from runner.format.paths import FieldPath
from runner.routing.envelope import Alert, AlertStatus
from runner.routing.mapping import InputMapping, map_inputs


class Verdict(StrEnum):
    ROUTED = "routed"
    UNROUTED = "unrouted"


@dataclass(frozen=True, slots=True)
class Check:
    """One runbook tested against the alert, for --explain."""

    runbook: Runbook
    matched: bool
    miss: Miss | None  # the first failing condition, when it did not match
    note: str = ""  # when it could not be tested: no conditions, or conditions with errors


@dataclass(frozen=True, slots=True)
class Route:
    """The outcome for one alert."""

    alert: Alert
    verdict: Verdict
    runbook: Runbook | None  # the runbook it starts (or the one that matched, when unrouted)
    mapping: InputMapping | None
    reason: str  # why, in words
    dedup_key: str  # the runbook's dedup key for this alert ("" when unrouted)
    checks: tuple[Check, ...] = ()  # with explain: every runbook, in the order tested

    @property
    def routed(self) -> bool:
        return self.verdict is Verdict.ROUTED


class Router:
    """Routes alerts among a fixed set of runbooks (build one per set, reuse it)."""

    def __init__(self, runbooks: Sequence[Runbook]) -> None:
        self.runbooks = tuple(runbooks)
        self._always: list[Runbook] = []
        self._index: dict[FieldPath, dict[str, list[Runbook]]] = {}
        self._order = {id(b): n for n, b in enumerate(self.runbooks)}
        self._build_index()

    def _build_index(self) -> None:
        routable = [b for b in self.runbooks if b.metadata.trigger.condition is not None]
        distinct: dict[tuple[object, ...], set[str]] = defaultdict(set)
        for book in routable:
            for path, values in equalities(book.metadata.trigger.condition):
                distinct[path.parts] |= values
        for book in routable:
            options = list(equalities(book.metadata.trigger.condition))
            if not options:
                self._always.append(book)
                continue
            # The path with the most distinct values across runbooks makes the smallest buckets.
            path, values = max(options, key=lambda o: (len(distinct[o[0].parts]), -len(o[1])))
            bucket = self._index.setdefault(path, {})
            for value in values:
                bucket.setdefault(value, []).append(book)

    def candidates(self, view: Mapping[str, object]) -> list[Runbook]:
        """The runbooks `view` may match: the index's, then those it cannot narrow."""
        found: dict[int, Runbook] = {}
        for path, bucket in self._index.items():
            for value in path.values(view):
                for book in bucket.get(normal(value), ()):
                    found[id(book)] = book
        for book in self._always:
            found[id(book)] = book
        if len(found) < 2:
            return list(found.values())
        order = self._order
        return sorted(found.values(), key=lambda b: order[id(b)])

    def route(
        self, alert: Alert, given: Mapping[str, object] | None = None, explain: bool = False
    ) -> Route:
        view = alert.view()
        shown: tuple[Check, ...] = ()
        if explain:
            shown = tuple(_check(book, view) for book in self.runbooks)
            matched = [c.runbook for c in shown if c.matched]
        else:  # the intake's path: candidates from the index, no explanation built
            matched = [
                b
                for b in self.candidates(view)
                if b.metadata.trigger.condition is not None
                and b.metadata.trigger.condition.holds(view)
            ]
        if not matched:
            return Route(alert, Verdict.UNROUTED, None, None,
                         "no runbook's trigger matches this alert", "", shown)  # fmt: skip
        top = max(b.metadata.trigger.priority for b in matched)
        best = [b for b in matched if b.metadata.trigger.priority == top]
        if len(best) > 1:
            names = ", ".join(b.metadata.id for b in best)
            return Route(alert, Verdict.UNROUTED, None, None,
                         f"ambiguous: {names} all match at priority {top}; give one a higher "
                         "trigger.priority, or narrow their conditions", "", shown)  # fmt: skip
        book = best[0]
        mapping = map_inputs(book.metadata, view, given)
        if mapping.problems:
            return Route(alert, Verdict.UNROUTED, book, mapping,
                         f"{book.metadata.id} matches, but " + "; ".join(mapping.problems),
                         "", shown)  # fmt: skip
        verb = "resolves its run" if alert.status is AlertStatus.RESOLVED else "starts"
        return Route(alert, Verdict.ROUTED, book, mapping,
                     f"{book.metadata.id} {verb} (priority {top})",
                     dedup_key(book, alert, view), shown)  # fmt: skip


def _check(book: Runbook, view: Mapping[str, object]) -> Check:
    trigger = book.metadata.trigger
    if trigger.condition is None:
        note = (
            "its trigger.match has errors (see `runbook check`)"
            if trigger.match
            else ("it has no trigger.match conditions")
        )
        return Check(book, False, None, note)
    miss = trigger.condition.miss(view)
    return Check(book, miss is None, miss)


def dedup_key(book: Runbook, alert: Alert, view: Mapping[str, object]) -> str:
    """The key that makes a repeat of this alert attach to the run it started: the runbook's
    `trigger.dedup_key` paths when it has them and they reach a value, else the source's key."""
    parts = [normal(v) for path in book.metadata.trigger.dedup_key for v in path.values(view)]
    return f"{book.metadata.id}:{'|'.join(parts) if parts else alert.dedup_key}"
