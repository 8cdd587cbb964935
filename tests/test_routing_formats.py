"""Each format's fixture, normalised: the envelope fields a route reads, as the source meant them.

The fixtures (tests/fixtures/alerts/, see its README) follow each format's published schema and
examples; every one is read with its format detected, as `runbook route` reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.routing.detect import detect, read_alerts
from runner.routing.envelope import Alert
from runner.routing.formats.cloudevents import from_binary
from runner.routing.limits import AlertError, parse_json

FIXTURES = Path(__file__).parent / "fixtures" / "alerts"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _read(name: str, fmt: str | None = None) -> list[Alert]:
    path = FIXTURES / name
    return read_alerts(path.read_bytes(), str(path), fmt)


def _fields(alert: Alert) -> dict[str, Any]:
    e = alert.entities
    entities = {
        k: list(v)
        for k, v in {
            "hosts": e.hosts, "users": e.users, "ips": e.ips,
            "domains": e.domains, "hashes": e.hashes, "urls": e.urls,
        }.items()
        if v
    }  # fmt: skip
    return {
        "source": alert.source,
        "format": alert.format,
        "id": alert.id,
        "dedup_key": alert.dedup_key,
        "status": alert.status.value,
        "severity": alert.severity.value,
        "title": alert.title,
        "time": alert.time,
        "entities": entities,
    }


CASES: list[tuple[str, str | None, list[dict[str, Any]]]] = [
    ("alertmanager-group.json", None, [
        {"source": "alertmanager", "format": "alertmanager", "id": "a1b2c3d4e5f60708",
         "dedup_key": "a1b2c3d4e5f60708", "status": "firing", "severity": "critical",
         "title": "node 10.0.3.7 is down", "time": "2026-12-02T03:00:00Z",
         "entities": {"ips": ["10.0.3.7"]}},
        # No fingerprint (Alertmanager before 0.22): a digest of the labels stands in; the
        # group's severity label applies; resolved is an event too.
        {"source": "alertmanager", "format": "alertmanager", "status": "resolved",
         "severity": "medium", "title": "NodeDown", "time": "2026-12-02T02:40:00Z",
         "entities": {"hosts": ["db-02"], "users": ["postgres"]}},
    ]),
    ("grafana-webhook.json", None, [
        {"source": "grafana", "format": "grafana", "id": "57c6d9296de2ad39", "status": "firing",
         "severity": "high", "title": "CPU above 95% for 10 minutes",
         "entities": {"hosts": ["srv-app-03"]}},
    ]),
    ("cloudevents-structured.json", None, [
        {"source": "https://github.com/cloudevents/spec/pull", "format": "cloudevents",
         "id": "A234-1234-1234",
         "dedup_key": "https://github.com/cloudevents/spec/pull/A234-1234-1234",
         "status": "firing", "severity": "high", "title": "Suspicious workflow change",
         "time": "2018-04-05T17:31:00Z",
         "entities": {"users": ["octocat"], "urls": ["https://github.com/cloudevents/spec/pull/123"]}},
    ]),
    ("cloudevents-batch.json", None, [
        {"source": "/ids/sensor-7", "id": "evt-1", "dedup_key": "/ids/sensor-7/evt-1",
         "severity": "low", "title": "Port scan", "status": "firing",
         "entities": {"ips": ["198.51.100.9", "10.0.0.5"]}},
        {"source": "/ids/sensor-7", "id": "evt-2", "severity": "critical", "status": "resolved",
         "title": "Exploit attempt",
         "entities": {"ips": ["198.51.100.9"], "domains": ["evil.example"]}},
    ]),
    ("ocsf-detection-finding.json", None, [
        {"source": "Falcon", "format": "ocsf", "id": "ldt:3f2a:99812",
         "dedup_key": "ldt:3f2a:99812", "status": "resolved", "severity": "critical",
         "title": "Credential dumping via LSASS access", "time": "2025-12-02T05:00:00Z",
         "entities": {"hosts": ["wks-0107"], "users": ["kpatel"], "ips": ["10.20.4.107"],
                      "hashes": ["d41d8cd98f00b204e9800998ecf8427e"],
                      "urls": ["http://203.0.113.5/p.ps1"]}},
    ]),
    ("ecs-kibana-alert.json", None, [
        {"source": "elastic", "format": "ecs", "id": "2c4d6e8f0a1b3c5d7e9f1a3b5c7d9e1f",
         "status": "firing", "severity": "medium",
         "title": "Multiple Logon Failure Followed by Logon Success",
         "time": "2026-12-02T07:12:45.000Z",
         "entities": {"hosts": ["vpn-gw-02"], "users": ["tnguyen"], "ips": ["192.0.2.44"]}},
    ]),
    ("splunk-webhook.json", None, [
        {"source": "splunk", "format": "splunk", "id": "scheduler_admin_search_W2_at_14232356_132",
         "status": "firing", "severity": "medium", "title": "splunk search",
         "time": "2025-12-02T06:00:00Z", "entities": {"hosts": ["db-mongo-01"]}},
    ]),
    ("azure-monitor-resolved.json", None, [
        {"source": "azure-monitor", "format": "azure_monitor",
         "id": "b9569717-bc32-442f-add5-83a997729330", "status": "resolved", "severity": "low",
         "title": "WCUS-R2-Gen2", "time": "2019-03-22T13:58:24.3713213Z",
         "entities": {"hosts": ["wcus-r2-gen2"]}},
    ]),
    ("sentinel-logic-app.json", None, [
        {"source": "sentinel", "format": "sentinel", "id": "0b7a2f1c-3d4e-4f50-8a6b-7c8d9e0f1a2b",
         "status": "resolved", "severity": "medium", "title": "Mass download by a single user",
         "time": "2026-12-01T21:00:00Z",
         "entities": {"users": ["rjones", "rjones@corp.example"], "ips": ["2001:db8::7"],
                      "hosts": ["lap-2291"],
                      "hashes": [EMPTY_SHA256]}},
    ]),
    ("generic.ndjson", "generic", [
        {"source": "honeypot", "format": "generic", "id": "g-1", "dedup_key": "g-1",
         "status": "firing", "severity": "high", "title": "SSH login on decoy",
         "time": "2025-12-02T07:00:00Z", "entities": {"users": ["root"], "ips": ["203.0.113.200"]}},
        {"source": "canary", "id": "g-2", "status": "resolved", "severity": "critical",
         "title": "Canary token opened",
         "entities": {"hosts": ["fs-01"], "urls": ["http://canary.example/t/1"]}},
    ]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "fmt", "expected"), CASES, ids=[c[0] for c in CASES])
def test_fixture_normalises(name: str, fmt: str | None, expected: list[dict[str, Any]]) -> None:
    alerts = _read(name, fmt)
    assert len(alerts) == len(expected)
    for alert, want in zip(alerts, expected, strict=True):
        got = _fields(alert)
        assert {k: got[k] for k in want} == want


def test_alertmanager_without_fingerprint_keys_on_its_labels() -> None:
    # The same labels, sent again (by another Alertmanager of an HA pair), give the same key.
    first, second = _read("alertmanager-group.json")[1], _read("alertmanager-group.json")[1]
    assert first.dedup_key == second.dedup_key and len(first.dedup_key) == 16
    assert first.dedup_key != _read("alertmanager-group.json")[0].dedup_key


def test_cloudevents_binary_mode_reads_the_headers() -> None:
    headers = dict(
        line.split(": ", 1)
        for line in (FIXTURES / "cloudevents-binary.headers").read_text().splitlines()
    )
    body = parse_json((FIXTURES / "cloudevents-binary.body.json").read_text(), "body")
    event = from_binary(headers, body)
    assert detect(event) == "cloudevents"
    from runner.routing.detect import normalise

    [alert] = normalise(event, "binary")
    assert (alert.source, alert.id, alert.severity.value) == ("/dlp/gateway", "dlp-4411", "high")
    assert alert.entities.users == ("bwong",)
    assert alert.labels["type"] == "com.example.dlp.violation"


def test_generic_is_never_detected() -> None:
    with pytest.raises(AlertError, match=r"cannot tell the alert's format.*--alert-format"):
        _read("generic.ndjson")


def test_ecs_nested_and_flattened_read_alike() -> None:
    flat = _read("ecs-kibana-alert.json")[0]
    nested_doc = (
        b'{"@timestamp": "2026-12-02T07:12:45.000Z", "event": {"kind": "signal"},'
        b' "kibana": {"alert": {"uuid": "2c4d6e8f0a1b3c5d7e9f1a3b5c7d9e1f", "severity": "medium",'
        b' "rule": {"name": "Multiple Logon Failure Followed by Logon Success"}}},'
        b' "host": {"name": "vpn-gw-02"}, "user": {"name": "tnguyen"},'
        b' "source": {"ip": "192.0.2.44"}}'
    )
    nested = read_alerts(nested_doc, "nested")[0]
    assert _fields(nested) == _fields(flat)
