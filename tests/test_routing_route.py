"""Routing: the example runbooks' sample alerts, priorities, ambiguity, unrouted alerts with
their reasons, input mapping through the inputs' own types, and the explain output."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.check.routing import sample_problems
from runner.parse.markdown import parse_text
from runner.routing.catalog import load_runbooks, runbook_files
from runner.routing.detect import read_alerts
from runner.routing.mapping import Origin
from runner.routing.route import Router
from runner.routing.samples import load_sample, sample_alerts

REPO = Path(__file__).resolve().parents[1]
SAMPLES = sorted((REPO / "runbooks" / "alerts").glob("*/*.json"))


@pytest.fixture(scope="module")
def router() -> Router:
    books, skipped = load_runbooks([REPO / "runbooks"])
    assert not skipped
    return Router(books)


def test_every_example_runbook_has_a_sample_alert() -> None:
    books, _ = load_runbooks([REPO / "runbooks"])
    with_samples = {p.parent.name for p in SAMPLES}
    # A shared sub-runbook (contain-host) starts from the runbooks that call it, not an alert.
    called = {s.call.runbook for b in books for s in b.steps if s.call is not None}
    assert called, "the examples call a sub-runbook"
    triggered = {b.metadata.id for b in books if b.metadata.id not in called}
    assert triggered <= with_samples
    assert all(b.metadata.trigger.condition is None for b in books if b.metadata.id in called)


@pytest.mark.parametrize("path", SAMPLES, ids=[f"{p.parent.name}/{p.name}" for p in SAMPLES])
def test_sample_routes_to_its_runbook_with_the_expected_inputs(router: Router, path: Path) -> None:
    sample = load_sample(path)
    assert sample.expected is not None
    for alert, want in zip(sample_alerts(sample), sample.expected, strict=True):
        route = router.route(alert, sample.given)
        assert route.routed, route.reason
        assert route.runbook is not None and route.runbook.metadata.id == want.runbook
        assert route.mapping is not None
        values = route.mapping.values
        assert {k: values[k] for k in want.inputs} == dict(want.inputs)
        # The secret is the intake's to give, never the alert's, and never held here.
        token = next(i for i in route.mapping.inputs if i.name == "api_token")
        assert (token.origin, token.value, token.secret) == (Origin.RUN_TIME, None, True)
        assert "api_token" not in values


def test_check_finds_nothing_wrong_with_the_examples() -> None:
    assert sample_problems(runbook_files([REPO / "runbooks"])) == []


def test_priority_decides_between_two_matching_runbooks(router: Router) -> None:
    path = REPO / "runbooks/alerts/ransomware/elastic-defend-ransomware.json"
    alert = read_alerts(path.read_bytes(), str(path))[0]
    route = router.route(alert, {"base_url": "https://soc.example"}, explain=True)
    matched = {c.runbook.metadata.id for c in route.checks if c.matched}
    assert matched == {"ransomware", "compromised-endpoint"}
    assert route.runbook is not None and route.runbook.metadata.id == "ransomware"


def test_a_lab_default_never_serves_a_triggered_run(router: Router) -> None:
    path = REPO / "runbooks/alerts/compromised-endpoint/ocsf-malware-finding.json"
    alert = read_alerts(path.read_bytes(), str(path))[0]
    route = router.route(alert)  # no base_url from the intake
    assert not route.routed
    assert route.runbook is not None and route.runbook.metadata.id == "compromised-endpoint"
    assert "'base_url'" in route.reason and "default_safe" in route.reason


BOOKS = {
    "a.md": """\
        ---
        name: A
        service: s
        trigger:
          match: {source: x, labels.kind: {in: [one, two]}}
        inputs:
          host_id:
            {type: string, required: true, pattern: "^[a-z0-9-]+$", from: "entities.hosts[0]"}
          count: {type: integer, from: labels.count}
          level: {type: string, enum: [low, high], from: labels.level}
        ---
        # A
        """,
    "b.md": """\
        ---
        name: B
        service: s
        trigger:
          match: {source: x, labels.kind: two}
        ---
        # B
        """,
    "c.md": """\
        ---
        name: C
        service: s
        ---
        # C
        """,
}


def _router(tmp_path: Path) -> Router:
    for name, text in BOOKS.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    books, _ = load_runbooks([tmp_path])
    return Router(books)


def test_two_runbooks_at_one_priority_leave_the_alert_unrouted(tmp_path: Path) -> None:
    route = _router(tmp_path).route(
        read_alerts(b'{"source": "x", "kind": "two", "host": "h1"}', "a", "generic")[0]
    )
    assert not route.routed
    assert route.reason.startswith("ambiguous: a, b all match at priority 0")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"source": "x", "kind": "one"}',
         "input 'host_id' is required and the alert has nothing at entities.hosts[0]"),
        ('{"source": "x", "kind": "one", "host": "H 1"}', "does not match the pattern"),
        ('{"source": "x", "kind": "one", "host": "h1", "count": "many"}',
         "is not a whole number"),
        ('{"source": "x", "kind": "one", "host": "h1", "level": "medium"}',
         "is not one of: low, high"),
        ('{"source": "y", "kind": "one", "host": "h1"}', "no runbook's trigger matches this alert"),
    ],
)  # fmt: skip
def test_unrouted_with_the_reason(tmp_path: Path, body: str, reason: str) -> None:
    route = _router(tmp_path).route(read_alerts(body.encode(), "a", "generic")[0])
    assert not route.routed
    assert reason in route.reason


def test_inputs_are_coerced_through_their_own_types(tmp_path: Path) -> None:
    body = b'{"source": "x", "kind": "one", "host": "h1", "count": "7", "level": "high"}'
    route = _router(tmp_path).route(read_alerts(body, "a", "generic")[0])
    assert route.routed and route.mapping is not None
    assert route.mapping.values == {"host_id": "h1", "count": 7, "level": "high"}


def test_explain_names_the_first_failing_condition(tmp_path: Path) -> None:
    body = b'{"source": "x", "kind": "three", "host": "h1"}'
    route = _router(tmp_path).route(read_alerts(body, "a", "generic")[0], explain=True)
    why = {c.runbook.metadata.id: (c.miss.test if c.miss else c.note) for c in route.checks}
    assert why == {
        "a": "labels.kind in ['one', 'two']",
        "b": "labels.kind equals 'two'",
        "c": "it has no trigger.match conditions",
    }
    assert route.checks[0].miss is not None and route.checks[0].miss.found == "'three'"


def test_the_index_never_changes_the_outcome(tmp_path: Path) -> None:
    router = _router(tmp_path)
    for body in (
        b'{"source": "x", "kind": "two", "host": "h"}',
        b'{"source": "x", "kind": "one", "host": "h"}',
        b'{"source": "x", "kind": ["one", "two"], "host": "h"}',
        b'{"source": "z", "kind": "one", "host": "h"}',
    ):
        alert = read_alerts(body, "a", "generic")[0]
        fast, full = router.route(alert), router.route(alert, explain=True)
        assert (fast.verdict, fast.reason) == (full.verdict, full.reason)


def test_dedup_key_from_the_runbooks_paths_or_the_sources() -> None:
    book = parse_text(
        "---\nname: D\nservice: s\ntrigger:\n  match: {source: x}\n"
        "  dedup_key: [labels.rule, 'entities.hosts[0]']\n---\n# D\n",
        "d.md",
    )
    router = Router([book])
    with_paths = router.route(
        read_alerts(b'{"source":"x","rule":"r1","host":"h1","id":"1"}', "a", "generic")[0]
    )
    assert with_paths.dedup_key == "d:r1|h1"
    without = router.route(read_alerts(b'{"source":"x","id":"42"}', "a", "generic")[0])
    assert without.dedup_key == "d:42"
