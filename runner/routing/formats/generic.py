"""Generic JSON: any object, read with a documented field mapping (docs/triggers.md).

Never detected, only chosen (``--alert-format generic``): guessing that an unknown payload is
"generic" would route on fields nobody mapped.

    id        id, alert_id, uuid, event_id
    title     title, name, summary, message, rule
    severity  severity, priority, level, urgency (words; a number is a 0-100 risk score)
    status    status, state (resolved, closed, ok, recovered... are resolved)
    time      time, timestamp, @timestamp, created_at
    source    source, product, vendor, tool (else "generic")
    labels    every top-level text, number or boolean, then the pairs of a `labels` object
    entities  an `entities` object of lists (hosts, users, ips, domains, hashes, urls), and
              the well-known keys host, hostname, user, src_ip, domain, sha256, url...
    dedup_key dedup_key, fingerprint, then the id, then a digest of the whole object
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from runner.format.model import Severity
from runner.routing.envelope import Alert, EntityBag, first_text, text_labels
from runner.routing.formats.common import add_flat_entities, digest, iso_time, mapping, status_of
from runner.routing.severity import from_score, from_word

NAME = "generic"


def detect(doc: object) -> str | None:
    return None


def normalise(doc: object, where: str, fmt: str = NAME) -> list[Alert]:
    record = mapping(doc, "a generic alert", where)
    given = record.get("labels")
    labels = {**text_labels(record), **text_labels(given if isinstance(given, Mapping) else {})}
    bag = EntityBag()
    add_flat_entities(bag, record)
    alert_id = first_text(record, ("id", "alert_id", "uuid", "event_id"))
    return [
        Alert(
            source=first_text(record, ("source", "product", "vendor", "tool"), NAME),
            format=NAME,
            id=alert_id,
            dedup_key=first_text(record, ("dedup_key", "fingerprint"))
            or alert_id
            or digest(record),
            status=status_of(record.get("status") or record.get("state")),
            severity=_severity(record),
            title=first_text(record, ("title", "name", "summary", "message", "rule")),
            time=iso_time(_time(record)),
            labels=MappingProxyType(labels),
            entities=bag.freeze(),
            raw=record,
        )
    ]


def _time(record: Mapping[str, object]) -> object:
    return next((record[k] for k in _TIME_KEYS if k in record), None)


_TIME_KEYS = ("time", "timestamp", "@timestamp", "created_at")


def _severity(record: Mapping[str, object]) -> Severity:
    for key in ("severity", "priority", "level", "urgency"):
        value = record.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return from_score(float(value))
        if isinstance(value, str) and value:
            return from_word(value)
    return from_word(None)
