"""Elastic Common Schema alerts: documents with ``event.kind: alert`` (or ``signal``, as the
Elastic Security detection engine writes them), nested or with flattened dotted keys.
https://www.elastic.co/guide/en/ecs/current/ecs-allowed-values-event-kind.html

Elastic Security's own fields win where present: ``kibana.alert.uuid`` (the alert),
``kibana.alert.rule.name``, ``kibana.alert.severity`` and ``kibana.alert.risk_score``,
``kibana.alert.workflow_status`` / ``kibana.alert.status`` (closed / recovered: resolved).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from runner.format.model import Severity
from runner.format.paths import lookup, lookup_all
from runner.routing.envelope import Alert, AlertStatus, EntityBag
from runner.routing.formats.common import digest, iso_time, mapping, text
from runner.routing.severity import from_score, from_word

NAME = "ecs"
_KINDS = ("alert", "signal")
_ENTITY_FIELDS = (
    ("host.name", "hosts"), ("host.hostname", "hosts"), ("host.id", "hosts"),
    ("host.ip", "ips"), ("user.name", "users"), ("user.target.name", "users"),
    ("source.ip", "ips"), ("destination.ip", "ips"), ("client.ip", "ips"),
    ("destination.domain", "domains"), ("dns.question.name", "domains"), ("url.domain", "domains"),
    ("url.full", "urls"), ("url.original", "urls"),
    ("file.hash.sha256", "hashes"), ("process.hash.sha256", "hashes"),
    ("file.hash.sha1", "hashes"), ("file.hash.md5", "hashes"), ("process.hash.md5", "hashes"),
)  # fmt: skip
_LABEL_FIELDS = (
    "event.category", "event.type", "event.action", "event.module", "event.dataset",
    "event.provider", "rule.name", "rule.category", "kibana.alert.rule.name",
    "threat.tactic.name", "threat.technique.name", "observer.vendor", "observer.product",
    "agent.type",
)  # fmt: skip


def detect(doc: object) -> str | None:
    if isinstance(doc, Mapping) and lookup(doc, "event.kind") in _KINDS:
        return NAME
    return None


def normalise(doc: object, where: str, fmt: str = NAME) -> list[Alert]:
    alert = mapping(doc, "an ECS document", where)
    alert_id = _first(alert, "kibana.alert.uuid", "event.id", "_id")
    bag = EntityBag()
    for dotted, kind in _ENTITY_FIELDS:
        bag.add(kind, lookup_all(alert, dotted))
    labels = {}
    for dotted in _LABEL_FIELDS:
        values = [text(v) for v in lookup_all(alert, dotted) if text(v)]
        if values:
            labels[dotted] = ",".join(dict.fromkeys(values))
    given = alert.get("labels")  # ECS `labels`: custom key/value pairs
    if isinstance(given, Mapping):
        labels.update({str(k): text(v) for k, v in given.items() if text(v)})
    source = _first(alert, "observer.product", "event.module", "agent.type") or "elastic"
    return [
        Alert(
            source=source.lower(),
            format=NAME,
            id=alert_id,
            dedup_key=alert_id or digest(lookup(alert, "rule.name"), lookup(alert, "host.name")),
            status=_status(alert),
            severity=_severity(alert),
            title=_first(alert, "kibana.alert.rule.name", "rule.name", "message", "event.reason"),
            time=iso_time(lookup(alert, "@timestamp")),
            labels=MappingProxyType(labels),
            entities=bag.freeze(),
            raw=alert,
        )
    ]


def _first(alert: Mapping[str, object], *fields: str) -> str:
    return next((t for f in fields if (t := text(lookup(alert, f)))), "")


def _status(alert: Mapping[str, object]) -> AlertStatus:
    workflow = _first(alert, "kibana.alert.workflow_status", "kibana.alert.status")
    return AlertStatus.RESOLVED if workflow in ("closed", "recovered") else AlertStatus.FIRING


def _severity(alert: Mapping[str, object]) -> Severity:
    word = _first(alert, "kibana.alert.severity", "signal.rule.severity")
    if word:
        return from_word(word)
    score = lookup(alert, "kibana.alert.risk_score") or lookup(alert, "event.risk_score")
    if isinstance(score, int | float) and not isinstance(score, bool):
        return from_score(float(score))
    # ECS `event.severity` is the source's own number: only its presence is portable.
    return from_word(lookup(alert, "log.level"))
