"""Dotted paths into an alert: `labels.instance`, `entities.hosts[0]`, `raw["kibana.alert.uuid"]`.

A path is parsed once, when the runbook is parsed, into its parts; looking it up is then a walk
over dictionaries and lists with no string work. Where the walk meets a list and the next part
is a key rather than an index, it continues into every item, so `raw.alerts.severity` is every
alert's severity: conditions then hold when any of the values satisfies them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

#: The envelope's own fields: a path that starts with anything else is read under `labels`,
#: so the old `match: {category: malware}` still means the alert's `category` label.
ROOTS = frozenset(
    {"source", "format", "id", "dedup_key", "status", "severity", "title", "time", "labels",
     "entities", "raw"}
)  # fmt: skip
ENTITY_KINDS = ("hosts", "users", "ips", "domains", "hashes", "urls")

_TOKEN = re.compile(
    r"""(?P<key>[A-Za-z_@$][\w@$-]*)      # a plain key
      | \[(?P<index>-?\d+)\]               # [0], [-1]
      | \[(?P<q>["'])(?P<quoted>.*?)(?P=q)\]  # ["app.kubernetes.io/name"]
      | (?P<dot>\.)""",
    re.VERBOSE,
)

Part = str | int


class PathError(ValueError):
    """A path that does not parse; the message says where."""


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A parsed path into the alert envelope."""

    text: str  # as the author wrote it, for messages
    parts: tuple[Part, ...]  # keys and list indexes, from the envelope's root

    def values(self, view: Mapping[str, object]) -> list[object]:
        """Every value the path reaches in the alert's view ([] when it reaches none)."""
        return _collect(view, self.parts, 0, [])

    def first(self, view: Mapping[str, object]) -> object | None:
        """The first value the path reaches, or None."""
        found = _collect(view, self.parts, 0, [])
        return found[0] if found else None

    def __str__(self) -> str:
        return self.text


def parse_path(text: str) -> FieldPath:
    """The path `text`, read under `labels.` when it does not start at an envelope field."""
    parts = _split(text)
    if not parts or not isinstance(parts[0], str):
        raise PathError(f"path {text!r} must start with a field name, such as labels.host")
    if parts[0] not in ROOTS:
        parts = ["labels", *parts]
    if parts[0] == "entities" and len(parts) > 1 and parts[1] not in ENTITY_KINDS:
        kinds = ", ".join(ENTITY_KINDS)
        raise PathError(f"path {text!r}: entities are {kinds}, not {parts[1]!r}")
    return FieldPath(text, tuple(parts))


def _split(text: str) -> list[Part]:
    parts: list[Part] = []
    pos, expect_key = 0, True
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise PathError(f"path {text!r}: unexpected {text[pos]!r} at column {pos + 1}")
        if m.group("dot"):
            if expect_key:
                raise PathError(f"path {text!r}: a name is missing at column {pos + 1}")
            expect_key = True
        elif m.group("key") is not None:
            if not expect_key:
                raise PathError(f"path {text!r}: a '.' is missing at column {pos + 1}")
            parts.append(m.group("key"))
            expect_key = False
        elif m.group("index") is not None:
            parts.append(int(m.group("index")))
            expect_key = False
        else:
            parts.append(m.group("quoted"))
            expect_key = False
        pos = m.end()
    if expect_key and parts:
        raise PathError(f"path {text!r} ends with '.'")
    return parts


def _collect(node: object, parts: Sequence[Part], i: int, out: list[object]) -> list[object]:
    """Append to `out` every value the path `parts[i:]` reaches from `node`.

    The hot path of routing: a loop over dictionaries with exact type tests before the slower
    abstract ones, no generators, and recursion only where the path fans out through a list.
    """
    n = len(parts)
    while i < n:
        part = parts[i]
        kind = type(node)
        if (
            kind is dict
            or kind is MappingProxyType
            or (kind is not list and kind is not tuple and isinstance(node, Mapping))
        ):
            mapping: Mapping[str, object] = node  # type: ignore[assignment]
            if type(part) is int:
                return out
            if part in mapping:
                node = mapping[part]  # type: ignore[index]
                i += 1
                continue
            # Elastic and Splunk send flattened keys ("kibana.alert.rule.name": ...): try the
            # rest of the path joined, longest first.
            for j in range(n, i + 1, -1):
                joined = ".".join(str(p) for p in parts[i:j])
                if joined in mapping:
                    node, i = mapping[joined], j
                    break
            else:
                return out
        elif kind is list or kind is tuple:
            items: Sequence[object] = node  # type: ignore[assignment]
            if type(part) is int:
                index: int = part
                if not -len(items) <= index < len(items):
                    return out
                node = items[index]
                i += 1
            else:
                for item in items:
                    _collect(item, parts, i, out)
                return out
        else:
            return out
    if type(node) is list or type(node) is tuple:
        out.extend(v for v in node if v is not None)
    elif node is not None:
        out.append(node)
    return out


def lookup(data: object, dotted: str) -> object | None:
    """The first value at `dotted` in `data`, nested (`{"host": {"name": ..}}`) or flattened
    (`{"host.name": ..}`), as normalisers read their formats' fields."""
    found = _collect(data, dotted.split("."), 0, [])
    return found[0] if found else None


def lookup_all(data: object, dotted: str) -> list[object]:
    """Every value at `dotted` in `data`, through lists (`evidences.file.hashes.value`)."""
    return _collect(data, dotted.split("."), 0, [])
