"""From a payload's bytes to alert envelopes: limits, JSON or NDJSON, batches, the format.

A payload is a JSON object (one alert, or a group such as Alertmanager's), a JSON array (a
batch: CloudEvents' batch mode, or a list of any of the formats) or NDJSON (one JSON document
per line). Each document's format is detected from what it says it is, unless one is named.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from runner.routing.envelope import Alert
from runner.routing.formats import (
    alertmanager,
    azure_monitor,
    cloudevents,
    ecs,
    generic,
    ocsf,
    sentinel,
    splunk,
)
from runner.routing.limits import DEFAULT, AlertError, Limits, check_shape, decode_text, parse_json

Normalise = Callable[[object, str, str], list[Alert]]


@dataclass(frozen=True, slots=True)
class Format:
    """One alert format: its name, how to tell it, how to read it."""

    name: str
    detect: Callable[[object], str | None]
    normalise: Normalise
    description: str


#: In detection order: the formats with the most specific markers first.
FORMATS: tuple[Format, ...] = (
    Format("alertmanager", alertmanager.detect, alertmanager.normalise,
           "Prometheus Alertmanager webhook, version 4"),
    Format("grafana", alertmanager.detect, alertmanager.normalise,
           "Grafana alerting webhook (Alertmanager-shaped)"),
    Format("azure_monitor", azure_monitor.detect, azure_monitor.normalise,
           "Azure Monitor common alert schema"),
    Format("sentinel", sentinel.detect, sentinel.normalise, "Microsoft Sentinel incident"),
    Format("ocsf", ocsf.detect, ocsf.normalise, "OCSF Detection Finding (class 2004)"),
    Format("cloudevents", cloudevents.detect, cloudevents.normalise,
           "CloudEvents 1.0, structured or batch"),
    Format("splunk", splunk.detect, splunk.normalise, "Splunk webhook alert action"),
    Format("ecs", ecs.detect, ecs.normalise, "Elastic Common Schema, event.kind alert or signal"),
    Format("generic", generic.detect, generic.normalise, "any JSON object (never detected)"),
)  # fmt: skip
BY_NAME: Mapping[str, Format] = {f.name: f for f in FORMATS}
NAMES = tuple(BY_NAME)


def read_alerts(
    data: bytes, where: str, fmt: str | None = None, limits: Limits = DEFAULT
) -> list[Alert]:
    """Every alert in the payload, in order; AlertError for anything unusable, with no partial
    result: one bad document in a batch refuses the batch."""
    if fmt is not None and fmt not in BY_NAME:
        raise AlertError(f"unknown alert format {fmt!r}; use one of {', '.join(NAMES)}")
    text = decode_text(data, where, limits)
    if not text.strip():
        raise AlertError("the payload is empty", path=where)
    documents = _documents(text, where, limits)
    alerts: list[Alert] = []
    for label, doc in documents:
        alerts += normalise(doc, label, fmt)
        if len(alerts) > limits.max_items:
            raise AlertError(
                f"the payload holds more than {limits.max_items:,} alerts; send smaller batches",
                path=where,
            )
    return alerts


def normalise(doc: object, where: str, fmt: str | None = None) -> list[Alert]:
    """The alerts of one JSON document, of format `fmt` or the one it says it is."""
    name = fmt or detect(doc)
    if name is None:
        keys = ", ".join(sorted(str(k) for k in doc)[:8]) if isinstance(doc, Mapping) else ""
        raise AlertError(
            "cannot tell the alert's format"
            + (f" (its keys: {keys})" if keys else f" (it is {type(doc).__name__}, not an object)")
            + f"; name it with --alert-format, one of {', '.join(NAMES)}",
            path=where,
        )
    return BY_NAME[name].normalise(doc, where, name)


def detect(doc: object) -> str | None:
    """The name of the format `doc` says it is, or None."""
    for candidate in FORMATS:
        found = candidate.detect(doc)
        if found is not None:
            return found
    return None


def _documents(text: str, where: str, limits: Limits) -> list[tuple[str, object]]:
    stripped = text.lstrip()
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and stripped[:1] == "{" and _is_ndjson(lines):
        if len(lines) > limits.max_items:
            raise AlertError(f"the payload has more than {limits.max_items:,} lines", path=where)
        return [
            (f"{where}:{n}", parse_json(line, f"{where}:{n}", limits))
            for n, line in enumerate(text.splitlines(), 1)
            if line.strip()
        ]
    doc = parse_json(text, where, limits)
    if isinstance(doc, list):
        return [(f"{where}[{n}]", item) for n, item in enumerate(doc)]
    return [(where, doc)]


def _is_ndjson(lines: list[str]) -> bool:
    """Whether each line is a document of its own: the first line closes what it opens."""
    first = lines[0].strip()
    return first.endswith("}") and lines[1].lstrip().startswith("{")


__all__ = ["BY_NAME", "FORMATS", "NAMES", "Format", "check_shape", "detect", "read_alerts"]
