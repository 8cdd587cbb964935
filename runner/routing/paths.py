"""Dotted paths into an alert: `labels.instance`, `entities.hosts[0]`, `raw["kibana.alert.uuid"]`.

A path is parsed once, when the runbook is parsed, into its parts; looking it up is then a walk
over dictionaries and lists with no string work. Where the walk meets a list and the next part
is a key rather than an index, it continues into every item, so `raw.alerts.severity` is every
alert's severity: conditions then hold when any of the values satisfies them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

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
        return list(_walk(view, self.parts, 0))

    def first(self, view: Mapping[str, object]) -> object | None:
        """The first value the path reaches, or None."""
        return next(_walk(view, self.parts, 0), None)

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


def _walk(node: object, parts: Sequence[Part], i: int) -> Iterator[object]:
    if i == len(parts):
        if isinstance(node, list | tuple):
            yield from (v for v in node if v is not None)
        elif node is not None:
            yield node
        return
    part = parts[i]
    if isinstance(node, Mapping):
        if isinstance(part, int):
            return
        if part in node:
            yield from _walk(node[part], parts, i + 1)
            return
        # Elastic and Splunk send flattened keys ("kibana.alert.rule.name": ...): try the rest
        # of the path joined, longest first.
        for j in range(len(parts), i + 1, -1):
            joined = ".".join(str(p) for p in parts[i:j])
            if joined in node:
                yield from _walk(node[joined], parts, j)
                return
    elif isinstance(node, list | tuple):
        if isinstance(part, int):
            if -len(node) <= part < len(node):
                yield from _walk(node[part], parts, i + 1)
        else:
            for item in node:
                yield from _walk(item, parts, i)


def lookup(data: object, dotted: str) -> object | None:
    """The first value at `dotted` in `data`, nested (`{"host": {"name": ..}}`) or flattened
    (`{"host.name": ..}`), as normalisers read their formats' fields."""
    return next(_walk(data, dotted.split("."), 0), None)


def lookup_all(data: object, dotted: str) -> list[object]:
    """Every value at `dotted` in `data`, through lists (`evidences.file.hashes.value`)."""
    return list(_walk(data, dotted.split("."), 0))
