"""Prometheus Alertmanager webhook (version 4) and Grafana alerting, which sends the same shape.

One payload is a group: ``alerts`` holds one item per alert, each with its own ``status``,
``labels``, ``annotations``, ``startsAt`` and (Alertmanager 0.22+, Grafana) ``fingerprint``.
Grafana adds ``orgId``, ``title``, ``state`` at the top and ``valueString``, ``silenceURL`` per
alert. https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from runner.routing.envelope import Alert, EntityBag, text_labels
from runner.routing.formats.common import add_flat_entities, digest, items, mapping, status_of, text
from runner.routing.severity import from_word

NAME = "alertmanager"
GRAFANA = "grafana"


def detect(doc: object) -> str | None:
    """`alertmanager`, `grafana`, or None."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("alerts"), list):
        return None
    if "groupKey" not in doc or "version" not in doc:
        return None
    alerts = doc["alerts"]
    grafana = "orgId" in doc or any(
        isinstance(a, Mapping) and ("valueString" in a or "silenceURL" in a) for a in alerts
    )
    return GRAFANA if grafana else NAME


def normalise(doc: object, where: str, fmt: str = NAME) -> list[Alert]:
    group = mapping(doc, f"an {fmt} payload", where)
    common = group.get("commonLabels")
    common_labels = common if isinstance(common, Mapping) else {}
    return [
        _alert(item, common_labels, fmt) for item in items(group.get("alerts"), "`alerts`", where)
    ]


def _alert(item: Mapping[str, object], common: Mapping[str, object], fmt: str) -> Alert:
    raw_labels = item.get("labels")
    labels = text_labels({**common, **(raw_labels if isinstance(raw_labels, Mapping) else {})})
    notes = item.get("annotations")
    annotations = notes if isinstance(notes, Mapping) else {}
    fingerprint = text(item.get("fingerprint")) or digest(sorted(labels.items()))
    bag = EntityBag()
    add_flat_entities(bag, labels)
    return Alert(
        source=fmt,
        format=fmt,
        id=fingerprint,
        # The fingerprint is a hash of the labels: the same alert, firing again or resolved,
        # keeps it, which is what a dedup key must do.
        dedup_key=fingerprint,
        status=status_of(item.get("status")),
        severity=from_word(labels.get("severity")),
        title=text(annotations.get("summary")) or labels.get("alertname", ""),
        time=text(item.get("startsAt")),
        labels=MappingProxyType(dict(labels)),
        entities=bag.freeze(),
        raw=item,
    )
