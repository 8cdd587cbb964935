"""EDR / XDR console: hosts, alerts, telemetry and response actions.

Routes (all under ``/api/edr``, bearer token required):

- ``GET  /hosts?isolated=true|false``: managed hosts (without telemetry).
- ``GET  /hosts/{id}``: one host: ``isolated``, ``agent``, ``patch_level``, ``pending_patches``.
- ``POST /hosts/{id}/isolate`` ``{"reason": "..."}``: network-isolate; idempotent
  (``changed: false`` when already isolated).
- ``POST /hosts/{id}/release`` ``{"reason": "..."}``: lift isolation; idempotent.
- ``GET  /hosts/{id}/processes``: running processes: pid, name, path, cmdline, parent, user,
  sha256, signed, started_at.
- ``GET  /hosts/{id}/connections``: recent network connections: remote_ip, remote_port,
  remote_host_id (set when the peer is a managed host), process, direction, seen_at.
- ``POST /hosts/{id}/collect`` ``{"artifacts": ["processes", "connections", "detections"]}``
  answers 201 ``{"bundle_id", "sha256", "size_bytes", ...}``.
- ``GET  /bundles/{id}``: the bundle with its ``content``; ``sha256`` is the SHA-256 of the
  canonical JSON of ``content`` (``json.dumps(content, sort_keys=True, separators=(",", ":"))``).
- ``POST /hosts/{id}/scan``: full scan: ``{"result": "clean"|"infected", "detections": [...]}``.
- ``POST /hosts/{id}/patch``: install pending patches: ``patch_level`` becomes current.
- ``POST /hosts/{id}/restore`` ``{"image": "golden-2024-06"}``: reimage from the golden
  image: removes the malware, its processes and its connections.
- ``GET  /alerts?status=&host_id=&severity=&category=``: alerts, newest last.
- ``GET  /alerts/{id}``: one alert.
- ``POST /alerts/{id}/ack`` ``{"by": "..."}``: open -> acknowledged (409 when closed).
- ``POST /alerts/{id}/close`` ``{"resolution": "..."}``: -> closed (409 when already closed).
"""

from __future__ import annotations

import hashlib
import json

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runner.lab.api import (
    LabError,
    body_of,
    fetch,
    need_str,
    opt_str,
    path_id,
    public,
    query_bool,
    reply,
    store_of,
)
from runner.lab.store import Doc, now_iso

CURRENT_PATCH_LEVEL = "2024-06"
GOLDEN_IMAGE = "golden-2024-06"
_ARTIFACTS = ("processes", "connections", "detections")
_TELEMETRY = ("processes", "connections")


def host_view(host: Doc) -> Doc:
    return public(host, *_TELEMETRY)


def _host(request: Request) -> Doc:
    return fetch(store_of(request), "host", path_id(request), "host")


async def list_hosts(request: Request) -> JSONResponse:
    isolated = query_bool(request, "isolated")
    hosts = [h for h in store_of(request).all("host") if isolated in (None, h["isolated"])]
    return reply({"hosts": [host_view(h) for h in hosts]})


async def get_host(request: Request) -> JSONResponse:
    return reply(host_view(_host(request)))


async def _set_isolation(request: Request, isolated: bool) -> JSONResponse:
    host = _host(request)
    body = await body_of(request)
    changed = host["isolated"] != isolated
    if changed:
        host["isolated"] = isolated
        host["isolation_reason" if isolated else "release_reason"] = opt_str(body, "reason")
        host["isolation_changed_at"] = now_iso()
        store_of(request).put("host", host)
    return reply({**host_view(host), "changed": changed})


async def isolate(request: Request) -> JSONResponse:
    return await _set_isolation(request, True)


async def release(request: Request) -> JSONResponse:
    return await _set_isolation(request, False)


async def processes(request: Request) -> JSONResponse:
    host = _host(request)
    return reply({"host_id": host["id"], "processes": [public(p) for p in host["processes"]]})


async def connections(request: Request) -> JSONResponse:
    host = _host(request)
    return reply({"host_id": host["id"], "connections": [public(c) for c in host["connections"]]})


def bundle_digest(content: Doc) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def collect(request: Request) -> JSONResponse:
    store = store_of(request)
    host = _host(request)
    body = await body_of(request)
    wanted = body.get("artifacts", list(_ARTIFACTS))
    if not isinstance(wanted, list) or not all(a in _ARTIFACTS for a in wanted) or not wanted:
        raise LabError(422, f"'artifacts' must be a non-empty list drawn from {list(_ARTIFACTS)}")
    sources: Doc = {
        "processes": [public(p) for p in host["processes"]],
        "connections": [public(c) for c in host["connections"]],
        "detections": host["_detections"] if host["_infected"] else [],
    }
    content: Doc = {"host_id": host["id"], "collected_at": now_iso()}
    content.update({a: sources[a] for a in wanted})
    number = store.next_number("bundle", 1)
    bundle = {
        "id": f"bnd-{number:04d}",
        "host_id": host["id"],
        "artifacts": wanted,
        "sha256": bundle_digest(content),
        "size_bytes": len(json.dumps(content, sort_keys=True, separators=(",", ":"))),
        "created_at": content["collected_at"],
        "content": content,
    }
    store.put("bundle", bundle)
    return reply({"bundle_id": bundle["id"], **public(bundle, "content")}, 201)


async def get_bundle(request: Request) -> JSONResponse:
    bundle = fetch(store_of(request), "bundle", path_id(request), "bundle")
    return reply({"bundle_id": bundle["id"], **bundle})


async def scan(request: Request) -> JSONResponse:
    store = store_of(request)
    host = _host(request)
    number = store.next_number("scan", 1)
    detections = host["_detections"] if host["_infected"] else []
    result = {
        "scan_id": f"scan-{number:04d}",
        "host_id": host["id"],
        "result": "infected" if detections else "clean",
        "detections": detections,
        "finished_at": now_iso(),
    }
    host["last_scan"] = {"scan_id": result["scan_id"], "result": result["result"]}
    store.put("host", host)
    return reply(result)


async def patch(request: Request) -> JSONResponse:
    host = _host(request)
    installed = list(host["pending_patches"])
    host.update(patch_level=CURRENT_PATCH_LEVEL, pending_patches=[], patched_at=now_iso())
    store_of(request).put("host", host)
    return reply({**host_view(host), "installed": installed})


def reimage(host: Doc, source: str) -> None:
    """Wipe the compromise from a host (reimage or restore from a clean backup)."""
    host["processes"] = [p for p in host["processes"] if not p.get("_malicious")]
    host["connections"] = [c for c in host["connections"] if not c.get("_malicious")]
    host.update(_infected=False, _detections=[], restored_from=source, restored_at=now_iso())


async def restore(request: Request) -> JSONResponse:
    host = _host(request)
    body = await body_of(request)
    image = opt_str(body, "image", GOLDEN_IMAGE)
    if image != GOLDEN_IMAGE:
        raise LabError(422, f"unknown image {image!r}; the current golden image is {GOLDEN_IMAGE}")
    reimage(host, image)
    host.update(patch_level=CURRENT_PATCH_LEVEL, pending_patches=[])
    store_of(request).put("host", host)
    return reply(host_view(host))


async def list_alerts(request: Request) -> JSONResponse:
    filters = {
        k: request.query_params.get(k) for k in ("status", "host_id", "severity", "category")
    }
    alerts = [
        a
        for a in store_of(request).all("alert")
        if all(v in (None, "", a.get(k)) for k, v in filters.items())
    ]
    return reply({"alerts": alerts})


def _alert(request: Request) -> Doc:
    return fetch(store_of(request), "alert", path_id(request), "alert")


async def get_alert(request: Request) -> JSONResponse:
    return reply(_alert(request))


async def ack_alert(request: Request) -> JSONResponse:
    alert = _alert(request)
    body = await body_of(request)
    if alert["status"] == "closed":
        raise LabError(409, f"alert {alert['id']} is closed; reopen it in the console first")
    alert.update(status="acknowledged", acknowledged_by=opt_str(body, "by", "soc"))
    alert["acknowledged_at"] = now_iso()
    store_of(request).put("alert", alert)
    return reply(alert)


async def close_alert(request: Request) -> JSONResponse:
    alert = _alert(request)
    body = await body_of(request)
    resolution = need_str(body, "resolution")
    if alert["status"] == "closed":
        raise LabError(409, f"alert {alert['id']} is already closed")
    alert.update(status="closed", resolution=resolution, closed_at=now_iso())
    store_of(request).put("alert", alert)
    return reply(alert)


ROUTES = [
    Route("/hosts", list_hosts),
    Route("/hosts/{id}", get_host),
    Route("/hosts/{id}/isolate", isolate, methods=["POST"]),
    Route("/hosts/{id}/release", release, methods=["POST"]),
    Route("/hosts/{id}/processes", processes),
    Route("/hosts/{id}/connections", connections),
    Route("/hosts/{id}/collect", collect, methods=["POST"]),
    Route("/hosts/{id}/scan", scan, methods=["POST"]),
    Route("/hosts/{id}/patch", patch, methods=["POST"]),
    Route("/hosts/{id}/restore", restore, methods=["POST"]),
    Route("/bundles/{id}", get_bundle),
    Route("/alerts", list_alerts),
    Route("/alerts/{id}", get_alert),
    Route("/alerts/{id}/ack", ack_alert, methods=["POST"]),
    Route("/alerts/{id}/close", close_alert, methods=["POST"]),
]
