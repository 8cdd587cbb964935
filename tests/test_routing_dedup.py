"""Dedup and correlation as pure functions over routes and open runs, and the in-memory store."""

from __future__ import annotations

import datetime as dt

from runner.parse.markdown import parse_text
from runner.routing.dedup import Action, MemoryRunIndex, OpenRun, apply, decide, entity_set
from runner.routing.detect import read_alerts
from runner.routing.route import Route, Router

BOOK = parse_text(
    "---\nname: Endpoint\nid: endpoint\nservice: edr\ntrigger:\n  match: {source: xdr}\n"
    "  correlate: {by: [hosts, users], window: 1h}\n---\n# Endpoint\n",
    "endpoint.md",
)
ROUTER = Router([BOOK])
NOW = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)


def route(**fields: str) -> Route:
    body = ",".join(f'"{k}": "{v}"' for k, v in {"source": "xdr", **fields}.items())
    return ROUTER.route(read_alerts(("{" + body + "}").encode(), "a", "generic")[0])


def run(key: str, *, host: str = "h9", user: str = "u9", age_minutes: int = 0) -> OpenRun:
    entities = frozenset({("hosts", host), ("users", user)})
    return OpenRun("run-1", "endpoint", key, NOW - dt.timedelta(minutes=age_minutes), entities)


def test_a_new_alert_starts_a_run() -> None:
    decision = decide(route(id="a1", host="h1"), [], NOW)
    assert decision.action is Action.START and decision.linked == ()


def test_the_same_dedup_key_attaches_to_the_open_run() -> None:
    r = route(id="a1", host="h1")
    decision = decide(r, [run(r.dedup_key)], NOW)
    assert (decision.action, decision.run_id) == (Action.ATTACH, "run-1")


def test_resolved_is_recorded_on_its_run_and_starts_nothing() -> None:
    r = route(id="a1", host="h1", status="resolved")
    assert decide(r, [run(r.dedup_key)], NOW).action is Action.RESOLVE
    alone = decide(r, [], NOW)
    assert alone.action is Action.IGNORE and "no open run" in alone.reason


def test_related_alerts_within_the_window_are_linked() -> None:
    r = route(id="a2", host="h1")
    same_host = run("endpoint:other", host="h1", age_minutes=30)
    assert decide(r, [same_host], NOW).linked == ("run-1",)
    too_old = run("endpoint:other", host="h1", age_minutes=90)
    assert decide(r, [too_old], NOW).linked == ()
    unrelated = run("endpoint:other", host="h7", user="u7", age_minutes=5)
    assert decide(r, [unrelated], NOW).linked == ()
    by_user = run("endpoint:other", user="asmith", age_minutes=5)
    assert decide(route(id="a3", user="asmith"), [by_user], NOW).linked == ("run-1",)


def test_an_unrouted_alert_is_ignored_with_its_reason() -> None:
    unrouted = ROUTER.route(read_alerts(b'{"source": "other"}', "a", "generic")[0])
    decision = decide(unrouted, [], NOW)
    assert decision.action is Action.IGNORE and "no runbook" in decision.reason


def test_the_store_remembers_starts_attachments_and_resolutions() -> None:
    index = MemoryRunIndex()
    first = route(id="a1", host="h1")
    assert apply(index, first, NOW, "run-A").action is Action.START
    assert apply(index, route(id="a1", host="h1"), NOW, "run-B").action is Action.ATTACH
    later = NOW + dt.timedelta(minutes=10)
    assert apply(index, route(id="a2", host="h1"), later, "run-C").linked == ("run-A",)
    assert apply(index, route(id="a1", host="h1", status="resolved"), later, "-").action is (
        Action.RESOLVE
    )
    run_a = index.get("run-A")
    assert run_a is not None
    assert (run_a.alerts, run_a.resolved) == (("a1", "a1"), ("a1",))
    assert [r.run_id for r in index.open_runs()] == ["run-A", "run-C"]
    assert entity_set(first.alert, ("hosts",)) == frozenset({("hosts", "h1")})
