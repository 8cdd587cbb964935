"""What several normalisers share: entity keys in flat records, ids, times and statuses."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping

from runner.routing.envelope import AlertStatus, EntityBag
from runner.routing.limits import AlertError

#: Keys that name an entity in flat records (Alertmanager labels, Splunk results, generic JSON).
ENTITY_KEYS: dict[str, tuple[str, ...]] = {
    "hosts": ("host", "hostname", "host_name", "host_id", "instance", "nodename", "node",
              "computer", "computer_name", "device", "device_name", "dest_host", "src_host",
              "machine"),
    "users": ("user", "username", "user_name", "user_id", "account", "account_name",
              "src_user", "dest_user", "upn", "email"),
    "ips": ("ip", "ip_address", "src_ip", "dest_ip", "source_ip", "destination_ip",
            "client_ip", "remote_ip", "src", "dest"),
    "domains": ("domain", "dest_domain", "fqdn", "query", "domain_name"),
    "hashes": ("hash", "sha256", "sha1", "md5", "file_hash"),
    "urls": ("url", "uri", "full_url"),
}  # fmt: skip
_RESOLVED = frozenset({"resolved", "closed", "ok", "recovered", "inactive", "normal", "cleared"})


_KIND_OF = {key: kind for kind, keys in ENTITY_KEYS.items() for key in keys}


def add_flat_entities(bag: EntityBag, record: Mapping[str, object]) -> None:
    """Entities from a flat record's well-known keys, in the record's order (and from an
    `entities:` mapping of lists)."""
    kind_of = _KIND_OF
    for key, value in record.items():
        kind = kind_of.get(key)
        if kind is not None:
            bag.add(kind, value)
    given = record.get("entities")
    if isinstance(given, Mapping):
        for kind in ENTITY_KEYS:
            if kind in given:
                bag.add(kind, given[kind])


def status_of(word: object) -> AlertStatus:
    """`resolved` for the words sources use for "over"; `firing` otherwise."""
    if isinstance(word, str) and word.strip().lower() in _RESOLVED:
        return AlertStatus.RESOLVED
    return AlertStatus.FIRING


def digest(*parts: object) -> str:
    """A stable key from values a source gives no id for: 16 hex digits of their SHA-256."""
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def iso_time(value: object) -> str:
    """An ISO 8601 time from a string (kept as given) or epoch seconds or milliseconds."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return str(value)
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value  # OCSF and Elastic send milliseconds
        try:
            return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")
        except (OverflowError, OSError, ValueError):
            return ""
    return ""


def mapping(value: object, what: str, where: str) -> Mapping[str, object]:
    """`value` when it is a JSON object; otherwise the payload is not of the format."""
    if not isinstance(value, Mapping):
        raise AlertError(f"{what} must be a JSON object, not {_kind(value)}", path=where)
    return value


def items(value: object, what: str, where: str) -> list[Mapping[str, object]]:
    """`value` when it is a list of JSON objects."""
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise AlertError(f"{what} must be a list of JSON objects", path=where)
    return value


def _kind(value: object) -> str:
    return {list: "a list", str: "text", type(None): "null"}.get(type(value), type(value).__name__)


def text(value: object) -> str:
    """A scalar as text; "" for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""
