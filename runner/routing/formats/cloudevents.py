"""CloudEvents 1.0: structured mode (one JSON event), batch mode (a JSON array of events) and
binary mode (``ce-*`` HTTP headers, the body as ``data``). https://github.com/cloudevents/spec

CloudEvents fixes only the context attributes (``id``, ``source``, ``type``, ``specversion``,
``time``, ``subject``); what the alert says is in ``data``, read with the generic keys. The
spec makes ``source`` + ``id`` unique per event, so they are the dedup key.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from runner.routing.envelope import Alert, EntityBag, first_text, text_labels
from runner.routing.formats.common import add_flat_entities, mapping, status_of, text
from runner.routing.limits import AlertError
from runner.routing.severity import from_word

NAME = "cloudevents"
_CONTEXT = ("specversion", "id", "source", "type")


def detect(doc: object) -> str | None:
    if isinstance(doc, Mapping) and all(k in doc for k in _CONTEXT):
        return NAME
    return None


def from_binary(headers: Mapping[str, str], body: object) -> dict[str, object]:
    """A binary-mode event (headers `ce-id: ...`, the body as data) as a structured one."""
    event: dict[str, object] = {}
    for name, value in headers.items():
        key = name.strip().lower()
        if key.startswith("ce-"):
            event[key[3:]] = value
    if "data" not in event:
        event["data"] = body
    return event


def normalise(doc: object, where: str, fmt: str = NAME) -> list[Alert]:
    event = mapping(doc, "a CloudEvent", where)
    missing = [k for k in _CONTEXT if not text(event.get(k))]
    if missing:
        raise AlertError(
            f"a CloudEvent must have {', '.join(_CONTEXT)}; this one lacks {', '.join(missing)}",
            path=where,
        )
    if not str(event["specversion"]).startswith("1."):
        raise AlertError(f"CloudEvents specversion {event['specversion']!r} is not 1.x", path=where)
    raw_data = event.get("data")
    data: Mapping[str, object] = raw_data if isinstance(raw_data, Mapping) else {}
    extensions = {k: v for k, v in event.items() if k not in ("data", "data_base64")}
    raw_labels = data.get("labels")
    labels = text_labels({**extensions, **(raw_labels if isinstance(raw_labels, Mapping) else {})})
    bag = EntityBag()
    add_flat_entities(bag, data)
    source, event_id = text(event["source"]), text(event["id"])
    return [
        Alert(
            source=source,
            format=NAME,
            id=event_id,
            dedup_key=text(data.get("dedup_key")) or f"{source}/{event_id}",
            status=status_of(data.get("status") or data.get("state")),
            severity=from_word(data.get("severity")),
            title=first_text(data, ("title", "summary", "name", "message"))
            or text(event.get("subject"))
            or text(event["type"]),
            time=text(event.get("time")),
            labels=MappingProxyType(dict(labels)),
            entities=bag.freeze(),
            raw=event,
        )
    ]
