"""Splunk's webhook alert action: ``result`` (the first row of the search's results), ``sid``,
``search_name``, ``owner``, ``app`` and ``results_link``.
https://help.splunk.com/splunk-enterprise/alert-and-respond/alerting-manual/

Splunk gives no alert id that survives the next run of the search (``sid`` is one search job),
so the dedup key is the search's name with the result's fields, Splunk's own ``_*`` fields
(time, serial) left out. Every field is text, as Splunk sends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from runner.routing.envelope import Alert, EntityBag, text_labels
from runner.routing.formats.common import (
    add_flat_entities,
    digest,
    iso_time,
    mapping,
    status_of,
    text,
)
from runner.routing.severity import from_word

NAME = "splunk"
_KEYS = ("result", "sid", "search_name")


def detect(doc: object) -> str | None:
    if isinstance(doc, Mapping) and all(k in doc for k in _KEYS) and "results_link" in doc:
        return NAME
    return None


def normalise(doc: object, where: str, fmt: str = NAME) -> list[Alert]:
    payload = mapping(doc, "a Splunk webhook payload", where)
    result = mapping(payload.get("result") or {}, "`result`", where)
    search = text(payload.get("search_name")) or "splunk search"
    fields = {k: v for k, v in result.items() if not str(k).startswith("_")}
    labels = {
        **text_labels(fields),
        "search_name": search,
        "app": text(payload.get("app")),
        "owner": text(payload.get("owner")),
    }
    bag = EntityBag()
    add_flat_entities(bag, fields)
    return [
        Alert(
            source=NAME,
            format=NAME,
            id=text(payload.get("sid")),
            dedup_key=f"{search}:{digest(sorted((str(k), str(v)) for k, v in fields.items()))}",
            status=status_of(result.get("status")),
            severity=from_word(result.get("severity") or result.get("urgency")),
            title=text(result.get("title")) or search,
            time=iso_time(result.get("_time")),
            labels=MappingProxyType(labels),
            entities=bag.freeze(),
            raw=payload,
        )
    ]
