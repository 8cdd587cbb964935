"""Microsoft Sentinel incidents: the ARM resource (``type: Microsoft.SecurityInsights/Incidents``)
as the API and automation rules give it, or wrapped in ``object`` as the Logic Apps "Microsoft
Sentinel incident" trigger sends it, with its ``Alerts`` and ``RelatedEntities``.
https://learn.microsoft.com/rest/api/securityinsights/incidents

One incident is one envelope: its alerts stay in ``raw``, and the entities of the incident and
of every alert are collected. Entities by ``kind``: Account (accountName, then the UPN), Host
(hostName), Ip (address), Url (url), FileHash (hashValue), DnsResolution (domainName).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from runner.routing.envelope import Alert, AlertStatus, EntityBag
from runner.routing.formats.common import mapping, text
from runner.routing.limits import AlertError
from runner.routing.severity import from_word

NAME = "sentinel"
_TYPE = "microsoft.securityinsights/incidents"


def _incident(doc: object) -> Mapping[str, object] | None:
    if not isinstance(doc, Mapping):
        return None
    for candidate in (doc, doc.get("object")):
        if isinstance(candidate, Mapping) and text(candidate.get("type")).lower() == _TYPE:
            return candidate
    return None


def detect(doc: object) -> str | None:
    return NAME if _incident(doc) is not None else None


def normalise(doc: object, where: str, fmt: str = NAME) -> list[Alert]:
    incident = _incident(doc)
    if incident is None:
        raise AlertError(f"a Sentinel incident has `type: {_TYPE}`", path=where)
    props = mapping(incident.get("properties"), "the incident's `properties`", where)
    bag = EntityBag()
    _entities(bag, _get(props, "relatedEntities"))
    alerts = _get(props, "alerts")
    for alert in alerts if isinstance(alerts, list) else []:
        if isinstance(alert, Mapping):
            alert_props = alert.get("properties")
            if isinstance(alert_props, Mapping):
                _entities(bag, _get(alert_props, "relatedEntities") or alert_props.get("entities"))
    extra = props.get("additionalData")
    additional = extra if isinstance(extra, Mapping) else {}
    labels = {
        "status": text(props.get("status")),
        "incident_number": text(props.get("incidentNumber")),
        "provider": text(props.get("providerName")),
        "products": ",".join(str(p) for p in _list(additional.get("alertProductNames"))),
        "tactics": ",".join(str(t) for t in _list(additional.get("tactics"))),
    }
    for label in _list(props.get("labels")):
        if isinstance(label, Mapping) and text(label.get("labelName")):
            labels[text(label.get("labelName"))] = "true"
    arm_id = text(incident.get("id"))
    return [
        Alert(
            source=NAME,
            format=NAME,
            id=text(incident.get("name")) or arm_id.rsplit("/", 1)[-1],
            dedup_key=arm_id or text(incident.get("name")),
            status=AlertStatus.RESOLVED
            if text(props.get("status")).lower() == "closed"
            else AlertStatus.FIRING,
            severity=from_word(props.get("severity")),
            title=text(props.get("title")),
            time=text(props.get("firstActivityTimeUtc")) or text(props.get("createdTimeUtc")),
            labels=MappingProxyType({k: v for k, v in labels.items() if v}),
            entities=bag.freeze(),
            raw=incident,
        )
    ]


def _get(data: Mapping[str, object], key: str) -> object:
    """Logic Apps capitalise some keys (`Alerts`, `RelatedEntities`); the API does not."""
    return data.get(key) if key in data else data.get(key[0].upper() + key[1:])


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _entities(bag: EntityBag, entities: object) -> None:
    for entity in _list(entities):
        if not isinstance(entity, Mapping):
            continue
        raw_props = entity.get("properties")
        props = raw_props if isinstance(raw_props, Mapping) else entity
        kind = text(entity.get("kind") or props.get("kind") or entity.get("Type")).lower()
        if kind == "account":
            name = text(props.get("accountName"))
            bag.add("users", name)
            if name and text(props.get("upnSuffix")):
                bag.add("users", f"{name}@{text(props.get('upnSuffix'))}")
        elif kind == "host":
            bag.add("hosts", props.get("hostName"))
        elif kind == "ip":
            bag.add("ips", props.get("address"))
        elif kind == "url":
            bag.add("urls", props.get("url"))
        elif kind == "filehash":
            bag.add("hashes", props.get("hashValue"))
        elif kind == "dnsresolution":
            bag.add("domains", props.get("domainName"))
