"""Cloud configuration: resources, their settings, posture findings and redeploys.

Routes (all under ``/api/cloud``, bearer token required):

- ``GET  /resources``: resources: id, type, region, owner, data_classification, revision,
  settings.
- ``GET  /resources/{id}``: one resource, with ``recent_access`` (who read it, from where)
  and ``history`` (past redeploys).
- ``GET  /findings?resource_id=&severity=``: posture findings computed from the current
  settings: ``{"id", "rule", "resource_id", "severity", "title", "remediation": {setting:
  value}}``.
- ``POST /resources/{id}/redeploy`` ``{"settings": {...}, "reason": "...", "dry_run": false}``
  merges the given settings (only existing keys, same types; 422 otherwise), bump
  ``revision`` and return ``{"resource", "findings"}`` (the findings that remain). With
  ``dry_run: true`` nothing changes: the answer previews the result.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runner.lab.api import LabError, body_of, fetch, opt_str, path_id, public, reply, store_of
from runner.lab.store import Doc, now_iso

_ADMIN_PORTS = (22, 3389)
_TYPE_NAMES = {bool: "boolean", str: "string", int: "integer", list: "list", dict: "object"}


def _open_admin(settings: Doc) -> bool:
    return any(
        r.get("port") in _ADMIN_PORTS and r.get("source") == "0.0.0.0/0"
        for r in settings.get("ingress", [])
    )


# rule, resource type, severity, title, test on the settings, remediation
Rule = tuple[str, str, str, str, Callable[[Doc], bool], Doc]
RULES: tuple[Rule, ...] = (
    (
        "CLD-001",
        "storage_bucket",
        "critical",
        "Bucket allows public (anonymous) access",
        lambda s: s.get("public_access") is True,
        {"public_access": False},
    ),
    (
        "CLD-002",
        "storage_bucket",
        "high",
        "Bucket is not encrypted at rest",
        lambda s: s.get("encryption") == "none",
        {"encryption": "aws:kms"},
    ),
    (
        "CLD-003",
        "storage_bucket",
        "medium",
        "Bucket access logging is disabled",
        lambda s: s.get("access_logging") is False,
        {"access_logging": True},
    ),
    (
        "CLD-004",
        "storage_bucket",
        "low",
        "Bucket versioning is disabled",
        lambda s: s.get("versioning") is False,
        {"versioning": True},
    ),
    (
        "CLD-005",
        "security_group",
        "high",
        "SSH or RDP open to the internet (0.0.0.0/0)",
        _open_admin,
        {"ingress": [{"port": 443, "source": "0.0.0.0/0"}]},
    ),
)


def findings_for(resource: Doc) -> list[Doc]:
    return [
        {
            "id": f"{rule}:{resource['id']}",
            "rule": rule,
            "resource_id": resource["id"],
            "severity": severity,
            "title": title,
            "remediation": remediation,
        }
        for rule, kind, severity, title, test, remediation in RULES
        if resource["type"] == kind and test(resource["settings"])
    ]


def merged_settings(resource: Doc, changes: object) -> Doc:
    """The resource's settings with `changes` applied, or a 422 naming the bad key."""
    if not isinstance(changes, dict) or not changes:
        raise LabError(422, "'settings' must be a non-empty object of setting -> value")
    current: Doc = resource["settings"]
    for key, value in changes.items():
        if key not in current:
            raise LabError(
                422,
                f"unknown setting {key!r} for {resource['id']}; "
                f"known: {', '.join(sorted(current))}",
            )
        if type(value) is not type(current[key]):
            raise LabError(
                422,
                f"setting {key!r} must be a {_TYPE_NAMES.get(type(current[key]), 'value')}, "
                f"like the current value {json.dumps(current[key])}",
            )
    return {**current, **changes}


def _resource(request: Request) -> Doc:
    return fetch(store_of(request), "cloud_resource", path_id(request), "cloud resource")


async def list_resources(request: Request) -> JSONResponse:
    resources = store_of(request).all("cloud_resource")
    return reply({"resources": [public(r, "recent_access", "history") for r in resources]})


async def get_resource(request: Request) -> JSONResponse:
    return reply(_resource(request))


async def list_findings(request: Request) -> JSONResponse:
    q = request.query_params
    findings = [
        f
        for r in store_of(request).all("cloud_resource")
        if q.get("resource_id") in (None, "", r["id"])
        for f in findings_for(r)
        if q.get("severity") in (None, "", f["severity"])
    ]
    return reply({"findings": findings, "count": len(findings)})


async def redeploy(request: Request) -> JSONResponse:
    resource = _resource(request)
    body = await body_of(request)
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise LabError(422, "'dry_run' must be true or false")
    candidate = {**resource, "settings": merged_settings(resource, body.get("settings"))}
    if not dry_run:
        candidate["revision"] = resource["revision"] + 1
        candidate["history"] = [
            *resource["history"],
            {
                "revision": candidate["revision"],
                "at": now_iso(),
                "reason": opt_str(body, "reason"),
                "changed": sorted(body["settings"]),
            },
        ]
        store_of(request).put("cloud_resource", candidate)
    return reply({"dry_run": dry_run, "resource": candidate, "findings": findings_for(candidate)})


ROUTES = [
    Route("/resources", list_resources),
    Route("/resources/{id}", get_resource),
    Route("/resources/{id}/redeploy", redeploy, methods=["POST"]),
    Route("/findings", list_findings),
]
