"""The alert envelope: what every normaliser produces, and what conditions and mappings read.

One envelope is one unit of work: a webhook that carries a group or a batch becomes several.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from urllib.parse import urlsplit

from runner.format.model import Severity

_NO_LABELS: Mapping[str, str] = MappingProxyType({})


class AlertStatus(StrEnum):
    """Whether the source says the problem is happening or over."""

    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Entities:
    """What the alert is about, by kind; each tuple in the order the source named them."""

    hosts: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    hashes: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert, whatever format it came in."""

    source: str  # the system that raised it: "alertmanager", "splunk", a CloudEvents source...
    format: str  # the normaliser that read it: alertmanager, grafana, cloudevents, ocsf...
    id: str  # the source's own id for this alert ("" when it gives none)
    dedup_key: str  # the same problem, alerted again, has the same key
    status: AlertStatus
    severity: Severity  # on the runbook scale
    title: str
    time: str  # when it started, ISO 8601 as the source gave it ("" when it gives none)
    labels: Mapping[str, str] = field(default_factory=lambda: _NO_LABELS)  # flat text pairs
    entities: Entities = field(default_factory=Entities)
    raw: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))  # the item

    def view(self) -> dict[str, object]:
        """The envelope as plain data, for paths: `entities.hosts[0]`, `raw.event.kind`."""
        e = self.entities
        return {
            "source": self.source,
            "format": self.format,
            "id": self.id,
            "dedup_key": self.dedup_key,
            "status": self.status.value,
            "severity": self.severity.value,
            "title": self.title,
            "time": self.time,
            "labels": self.labels,
            "entities": {
                "hosts": e.hosts, "users": e.users, "ips": e.ips,
                "domains": e.domains, "hashes": e.hashes, "urls": e.urls,
            },
            "raw": self.raw,
        }  # fmt: skip


class EntityBag:
    """Collects entities while a normaliser reads an alert: no duplicates, order kept."""

    __slots__ = ("domains", "hashes", "hosts", "ips", "urls", "users")

    def __init__(self) -> None:
        self.hosts: dict[str, None] = {}
        self.users: dict[str, None] = {}
        self.ips: dict[str, None] = {}
        self.domains: dict[str, None] = {}
        self.hashes: dict[str, None] = {}
        self.urls: dict[str, None] = {}

    def add(self, kind: str, values: object) -> None:
        """Add one value or a list of them; empty values and non-text are skipped."""
        items = values if isinstance(values, list | tuple) else (values,)
        for value in items:
            vk = type(value)
            if vk is str:
                text = str(value).strip()
            elif vk is int:
                text = str(value)
            else:
                continue
            if not text:
                continue
            if kind == "hosts":
                self._host(text)
            elif kind == "ips" and not _is_ip(text):
                self.hosts[text] = None  # Splunk's `src` and `dest` may be names
            else:
                getattr(self, kind)[text] = None

    def _host(self, text: str) -> None:
        """A host as monitoring names it: `10.0.0.5:9100` is an address, `web-01:443` a host,
        and a probed URL (`https://portal.example/health`) a URL and its domain."""
        if "://" in text:
            self.urls[text] = None
            domain = urlsplit(text).hostname
            if domain:
                (self.ips if _is_ip(domain) else self.domains)[domain] = None
            return
        name = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
        name = name.strip("[]")
        (self.ips if _is_ip(name) else self.hosts)[name] = None

    def freeze(self) -> Entities:
        return Entities(
            tuple(self.hosts), tuple(self.users), tuple(self.ips),
            tuple(self.domains), tuple(self.hashes), tuple(self.urls),
        )  # fmt: skip


def _is_ip(text: str) -> bool:
    # Most hosts are names: only what could be an address is parsed (ip_address costs ~5 us).
    if not text or not (text[0].isdigit() or ":" in text):
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def text_labels(pairs: Mapping[str, object] | None) -> Mapping[str, str]:
    """Labels as text pairs: nested values are left to `raw`."""
    if not isinstance(pairs, Mapping):
        return _NO_LABELS
    out: dict[str, str] = {}
    for k, v in pairs.items():
        kind = type(v)
        if kind is str:
            out[str(k)] = v  # type: ignore[assignment]
        elif kind is bool:
            out[str(k)] = "true" if v else "false"
        elif kind is int or kind is float:
            out[str(k)] = str(v)
    return out


def first_text(data: Mapping[str, object], keys: Iterable[str], default: str = "") -> str:
    """The first of `keys` that holds a non-empty scalar, as text."""
    for key in keys:
        value = data.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value):
            return str(value)
    return default
