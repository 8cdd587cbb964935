"""A route as people and programs read it. Secrets are `***`; every value from the alert is
escaped for the terminal by the caller (``visible``), and JSON escapes by construction."""

from __future__ import annotations

from typing import Any

from runner.routing.envelope import Alert
from runner.routing.mapping import Origin
from runner.routing.route import Route

SECRET = "***"
OUTPUT_VERSION = 1


def alert_json(alert: Alert) -> dict[str, Any]:
    """The envelope, without `raw` (the payload the caller already has)."""
    e = alert.entities
    return {
        "source": alert.source,
        "format": alert.format,
        "id": alert.id,
        "dedup_key": alert.dedup_key,
        "status": alert.status.value,
        "severity": alert.severity.value,
        "title": alert.title,
        "time": alert.time,
        "labels": dict(alert.labels),
        "entities": {
            "hosts": list(e.hosts), "users": list(e.users), "ips": list(e.ips),
            "domains": list(e.domains), "hashes": list(e.hashes), "urls": list(e.urls),
        },
    }  # fmt: skip


def inputs_json(route: Route) -> dict[str, Any]:
    if route.mapping is None:
        return {}
    out: dict[str, Any] = {}
    for item in route.mapping.inputs:
        value = SECRET if item.secret else item.value
        out[item.name] = {
            "value": list(value) if isinstance(value, tuple) else value,
            "origin": item.origin.value,
            **({"path": item.path} if item.path else {}),
        }
    return out


def route_json(route: Route) -> dict[str, Any]:
    data: dict[str, Any] = {
        "alert": alert_json(route.alert),
        "verdict": route.verdict.value,
        "runbook": route.runbook.metadata.id if route.runbook else None,
        "path": str(route.runbook.path) if route.runbook else None,
        "reason": route.reason,
        "dedup_key": route.dedup_key,
        "inputs": inputs_json(route),
    }
    if route.checks:
        data["explain"] = [
            {
                "runbook": c.runbook.metadata.id,
                "matched": c.matched,
                "priority": c.runbook.metadata.trigger.priority,
                "failed": c.miss.test if c.miss else None,
                "found": c.miss.found if c.miss else None,
                "note": c.note or None,
            }
            for c in route.checks
        ]
    return data


def route_lines(route: Route, number: int, total: int) -> list[str]:
    """The route as text, one line each; the caller escapes them."""
    a = route.alert
    head = f"alert {number}/{total} [{a.format}] {a.title or a.id} ({a.severity}, {a.status})"
    lines = [head, f"  {route.verdict.value}: {route.reason}"]
    if route.routed and route.runbook is not None:
        lines.append(f"  runbook: {route.runbook.metadata.id} ({route.runbook.path})")
        lines.append(f"  dedup key: {route.dedup_key}")
    if route.mapping is not None and route.mapping.inputs:
        lines.append("  inputs:")
        width = max(len(i.name) for i in route.mapping.inputs)
        for item in route.mapping.inputs:
            if item.origin is Origin.RUN_TIME:
                shown = f"{SECRET}  (secret: the intake gives RUNBOOK_INPUT_{item.name.upper()})"
            else:
                value = SECRET if item.secret else repr(item.value)
                where = f"alert: {item.path}" if item.path else item.origin.value
                shown = f"{value}  ({where})"
            lines.append(f"    {item.name.ljust(width)} = {shown}")
    for check in route.checks:
        mark = "✓" if check.matched else "✗"
        book = check.runbook.metadata
        if check.matched:
            why = f"matches (priority {book.trigger.priority})"
        elif check.miss is not None:
            why = f"{check.miss.test}: found {check.miss.found}"
        else:
            why = check.note
        lines.append(f"  {mark} {book.id}: {why}")
    return lines
