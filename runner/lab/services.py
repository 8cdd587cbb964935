"""Service health monitoring: status of business services and a restart action.

Routes (all under ``/api/services``, bearer token required):

- ``GET  /api/services?status=up|down|starting``: services: name, host_id, url, status,
  last_error, response_time_ms, depends_on.
- ``GET  /api/services/{name}``: one service, with ``recent_events`` (log lines that explain
  an outage). A service reported ``starting`` after a restart is ``up`` at the next check.
- ``POST /api/services/{name}/restart`` ``{"reason"}``: 202, status becomes ``starting``.
  409 while the service's host is isolated by the EDR (its health checks cannot reach it).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runner.lab.api import LabError, body_of, fetch, opt_str, path_id, reply, store_of
from runner.lab.store import Doc, now_iso


def _service(request: Request) -> Doc:
    return fetch(store_of(request), "service", path_id(request, "name"), "service")


async def list_services(request: Request) -> JSONResponse:
    status = request.query_params.get("status") or None
    services = [s for s in store_of(request).all("service") if status in (None, s["status"])]
    return reply({"services": services})


async def get_service(request: Request) -> JSONResponse:
    service = _service(request)
    if service["status"] == "starting":
        # The health check that follows a restart finds the service answering.
        service.update(status="up", last_error="", response_time_ms=42)
        service["recent_events"].append(
            {"at": now_iso(), "level": "info", "message": "health check passed"}
        )
    service["last_check_at"] = now_iso()
    store_of(request).put("service", service)
    return reply(service)


async def restart(request: Request) -> JSONResponse:
    store = store_of(request)
    service = _service(request)
    body = await body_of(request)
    host = store.get("host", service["host_id"])
    if host is not None and host["isolated"]:
        raise LabError(
            409, f"host {host['id']} is isolated; release it before restarting {service['name']}"
        )
    service.update(status="starting", restart_count=service["restart_count"] + 1)
    service["restarted_at"] = now_iso()
    service["recent_events"].append(
        {
            "at": now_iso(),
            "level": "info",
            "message": f"restart requested: {opt_str(body, 'reason') or 'no reason given'}",
        }
    )
    store.put("service", service)
    return reply(service, 202)


ROUTES = [
    Route("/", list_services),
    Route("/{name}", get_service),
    Route("/{name}/restart", restart, methods=["POST"]),
]
