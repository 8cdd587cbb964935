"""The match language: every operator, all/any/not, paths through lists and flattened keys,
and conditions that cannot be evaluated reported by the parser with their line."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import yaml

from runner.format.match import parse_match
from runner.format.model import Severity
from runner.format.paths import PathError, parse_path
from runner.parse.markdown import parse_text
from runner.routing.envelope import Alert, AlertStatus, Entities

ALERT = Alert(
    source="alertmanager",
    format="alertmanager",
    id="fp1",
    dedup_key="fp1",
    status=AlertStatus.FIRING,
    severity=Severity.HIGH,
    title="HttpDown on web-01",
    time="2026-12-02T09:00:00Z",
    labels={
        "alertname": "HttpDown",
        "job": "portal-web",
        "count": "37",
        "app.kubernetes.io/name": "portal",
    },
    entities=Entities(hosts=("web-01",), users=("asmith",), ips=("10.1.2.3", "198.51.100.7")),
    raw={
        "risk": {"score": 82},
        "kibana.alert.rule.name": "Rule A",
        "tags": [{"k": "a"}, {"k": "b"}],
    },
)
VIEW = ALERT.view()


def holds(text: str) -> bool:
    condition, errors = parse_match(yaml.safe_load(text))
    assert not errors, errors
    assert condition is not None
    return condition.miss(VIEW) is None


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ("{source: alertmanager}", True),
        ("{source: grafana}", False),
        ("{alertname: HttpDown}", True),  # a bare name is a label: the old `field: value`
        ("{severity: {in: [high, critical]}}", True),
        ("{severity: [low, medium]}", False),  # a list is `in`
        ("{labels.job: {glob: 'portal-*'}}", True),
        ("{labels.job: {glob: 'Portal-*'}}", False),  # globs are case-sensitive
        ("{title: {regex: '^HttpDown on web-\\d+$'}}", True),
        ("{labels.count: {gte: 10}}", True),  # labels are text; numbers compare as numbers
        ("{labels.count: {lt: 10}}", False),
        ("{raw.risk.score: {gt: 80, lte: 82}}", True),
        ("{entities.ips: {cidr: 10.0.0.0/8}}", True),  # any of the alert's addresses
        ("{entities.ips: {cidr: [192.168.0.0/16, '2001:db8::/32']}}", False),
        ("{entities.users: {exists: true}}", True),
        ("{entities.hashes: {exists: true}}", False),
        ("{entities.hashes: {exists: false}}", True),
        ("{'entities.hosts[0]': web-01}", True),  # YAML flow style: quote a path with [ ]
        ("{'entities.hosts[1]': web-01}", False),
        ("{raw.kibana.alert.rule.name: Rule A}", True),  # a flattened key, read as a path
        ("{raw.tags.k: b}", True),  # through a list: any item
        ("'labels[\"app.kubernetes.io/name\"]': portal", True),
        ("{any: [{source: grafana}, {severity: high}]}", True),
        ("{any: [{source: grafana}, {severity: low}]}", False),
        ("{all: [{source: alertmanager}, {severity: low}]}", False),
        ("{not: {labels.job: db}}", True),
        ("{not: {source: alertmanager}}", False),
        ("{labels.missing: {gt: 1}}", False),
        ("{labels.job: {gt: 1}}", False),  # not a number: the test fails, it does not raise
    ],
)
def test_condition(conditions: str, expected: bool) -> None:
    assert holds(conditions) is expected


def test_miss_names_the_first_failing_test_and_what_the_alert_had() -> None:
    condition, _ = parse_match({"source": "alertmanager", "labels.job": "db", "severity": "low"})
    assert condition is not None
    miss = condition.miss(VIEW)
    assert miss is not None
    assert miss.test == "labels.job equals 'db'"
    assert miss.found == "'portal-web'"


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ({"labels.job": {"globb": "x"}}, "unknown operator 'globb' (did you mean 'glob'?)"),
        ({"title": {"regex": "(unclosed"}}, "does not compile"),
        ({"raw.score": {"gte": "high"}}, "expected a number"),
        ({"entities.ips": {"cidr": "10.0.0.300/8"}}, "is not a network"),
        ({"labels.x": {"exists": "yes"}}, "expected true or false"),
        ({"entities.machines": "x"}, "entities are hosts, users"),
        ({"labels..x": "y"}, "a name is missing"),
        ({"any": {"source": "x"}}, "takes a list"),
        ({"severity": {"in": []}}, "non-empty list"),
        ({"labels.x": {}}, "give an operator"),
    ],
)
def test_condition_that_cannot_be_evaluated(conditions: dict[str, Any], message: str) -> None:
    condition, errors = parse_match(conditions)
    assert condition is None  # never route on part of what the author wrote
    assert any(message in str(e) for e in errors), [str(e) for e in errors]


def test_path_syntax() -> None:
    assert parse_path("entities.hosts[0]").parts == ("entities", "hosts", 0)
    assert parse_path("host").parts == ("labels", "host")
    with pytest.raises(PathError):
        parse_path("[0]")


BOOK = """\
---
name: Routed
service: edr
trigger:
  when: the XDR says so
  match:
    source: xdr
    raw.score: {gte: high}
  priority: 5
  dedup_key: ['entities.hosts[0]']
  correlate: {by: [hosts], window: 2h}
inputs:
  host_id:
    type: string
    required: true
    from: ['entities.hosts[0]', labels.host]
  api_token:
    type: string
    secret: true
    from: labels.token
  retries:
    type: integer
    default: 3
    default_safe: true
---
# Routed
"""


def test_the_parser_reports_routing_problems_with_their_lines() -> None:
    book = parse_text(textwrap.dedent(BOOK), "routed.md")
    problems = {(p.code, p.line) for p in book.problems}
    assert ("RB080", 8) in problems  # raw.score: {gte: high}
    assert ("RB082", 20) in problems  # its `from:`: a secret taken from the alert
    # What parsed is typed in the model, and a trigger with a bad condition never routes.
    trigger = book.metadata.trigger
    assert trigger.condition is None
    assert (trigger.priority, trigger.correlate_by) == (5, ("hosts",))
    assert trigger.correlate_window == 7200
    host = book.metadata.input("host_id")
    assert host is not None and [p.text for p in host.alert_paths] == [
        "entities.hosts[0]",
        "labels.host",
    ]
    token = book.metadata.input("api_token")
    assert token is not None and token.alert_paths == ()
    retries = book.metadata.input("retries")
    assert retries is not None and retries.default_safe


def test_old_equality_match_still_parses_and_routes() -> None:
    text = BOOK.replace("    raw.score: {gte: high}\n", "    category: malware\n")
    book = parse_text(textwrap.dedent(text), "routed.md")
    assert not [p for p in book.problems if p.code == "RB080"]
    assert book.metadata.trigger.condition is not None
    assert dict(book.metadata.trigger.match) == {"source": "xdr", "category": "malware"}


def test_unknown_trigger_and_input_keys_are_still_caught() -> None:
    text = BOOK.replace("  priority: 5\n", "  priorty: 5\n").replace(
        "    default_safe: true\n", "    default_safe: yes-please\n"
    )
    book = parse_text(textwrap.dedent(text), "routed.md")
    messages = [str(p) for p in book.problems]
    assert any("RB013" in m and "priorty" in m and "priority" in m for m in messages), messages
    assert any("RB014" in m and "default_safe" in m for m in messages), messages
