"""OCSF Detection Finding (class_uid 2004, category Findings), schema 1.1+.
https://schema.ocsf.io/classes/detection_finding

The finding's identity is ``finding_info.uid``; entities come from ``device``, ``actor.user``,
``resources``, ``evidences`` and ``observables`` (by ``type_id``: 1 Hostname, 2 IP Address,
4 User Name, 6 URL String, 8 Hash).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from runner.format.model import Severity
from runner.format.paths import lookup, lookup_all
from runner.routing.envelope import Alert, AlertStatus, Entities, EntityBag
from runner.routing.formats.common import digest, iso_time, mapping, text
from runner.routing.limits import AlertError
from runner.routing.severity import OCSF_IDS, from_word

NAME = "ocsf"
DETECTION_FINDING = 2004
_OBSERVABLE_KINDS = {1: "hosts", 2: "ips", 4: "users", 6: "urls", 8: "hashes"}
# status_id: 1 New, 2 In Progress, 3 Suppressed, 4 Resolved
_RESOLVED_IDS = (3, 4)


def detect(doc: object) -> str | None:
    if isinstance(doc, Mapping) and doc.get("class_uid") == DETECTION_FINDING:
        return NAME
    return None


def normalise(doc: object, where: str, fmt: str = NAME) -> list[Alert]:
    finding = mapping(doc, "an OCSF finding", where)
    if finding.get("class_uid") != DETECTION_FINDING:
        raise AlertError(
            f"an OCSF Detection Finding has class_uid {DETECTION_FINDING}, this one "
            f"{finding.get('class_uid')!r}",
            path=where,
        )
    uid = text(lookup(finding, "finding_info.uid")) or text(lookup(finding, "metadata.uid"))
    product = text(lookup(finding, "metadata.product.name")) or "ocsf"
    labels = {
        "product": product,
        "vendor": text(lookup(finding, "metadata.product.vendor_name")),
        "analytic": text(lookup(finding, "finding_info.analytic.name")),
        "type": text(lookup(finding, "finding_info.types")),
        "class_name": text(finding.get("class_name")),
        "activity": text(finding.get("activity_name")),
    }
    return [
        Alert(
            source=product,
            format=NAME,
            id=uid,
            dedup_key=uid or digest(finding.get("message"), finding.get("time")),
            status=AlertStatus.RESOLVED
            if finding.get("status_id") in _RESOLVED_IDS
            else AlertStatus.FIRING,
            severity=_severity(finding),
            title=text(lookup(finding, "finding_info.title")) or text(finding.get("message")),
            time=iso_time(finding.get("time")),
            labels=MappingProxyType({k: v for k, v in labels.items() if v}),
            entities=_entities(finding),
            raw=finding,
        )
    ]


def _severity(finding: Mapping[str, object]) -> Severity:
    severity_id = finding.get("severity_id")
    if isinstance(severity_id, int) and severity_id in OCSF_IDS:
        return OCSF_IDS[severity_id]
    return from_word(finding.get("severity"))


def _entities(finding: Mapping[str, object]) -> Entities:
    bag = EntityBag()
    for path, kind in (
        ("device.hostname", "hosts"), ("device.name", "hosts"), ("device.ip", "ips"),
        ("actor.user.name", "users"), ("actor.user.uid", "users"),
        ("evidences.src_endpoint.ip", "ips"), ("evidences.dst_endpoint.ip", "ips"),
        ("evidences.dst_endpoint.domain", "domains"), ("evidences.url.url_string", "urls"),
        ("evidences.file.hashes.value", "hashes"),
        ("evidences.process.file.hashes.value", "hashes"),
        ("evidences.process.user.name", "users"),
        ("resources.name", "hosts"),
    ):  # fmt: skip
        bag.add(kind, lookup_all(finding, path))
    observables = finding.get("observables")
    for obs in observables if isinstance(observables, list) else []:
        if isinstance(obs, Mapping):
            type_id = obs.get("type_id")
            seen = _OBSERVABLE_KINDS.get(type_id) if isinstance(type_id, int) else None
            if seen:
                bag.add(seen, obs.get("value"))
    return bag.freeze()
