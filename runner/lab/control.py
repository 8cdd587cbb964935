"""Lab control: a state summary for assertions, fault injection for drills, audit and reset.

Routes (all under ``/api/_lab``, bearer token required; faults never apply here):

- ``GET    /state``: one summary of everything a test or drill asserts on: hosts (isolated,
  infected, patch level), alerts, users (enabled, sessions, MFA), firewall rules, tickets,
  services, cloud resources with their open findings, snapshots, restore jobs, faults.
- ``GET    /requests?after=0&limit=500``: the audit log: every request with method, path,
  query, status, body and the fault that fired (if any).
- ``GET    /faults``: active faults.
- ``POST   /faults`` ``{"route": "POST /api/edr/hosts/{id}/isolate", "status": 500,
  "times": 1, "delay": 0}``: fail matching requests. ``route`` is an optional method then a
  path pattern matched segment by segment as a prefix (``{x}`` or ``*`` is any segment), so
  ``/api/edr`` hits the whole EDR. ``times`` -1 fires until cleared. ``delay`` (seconds, at
  most 30) slows the answer; with a status below 400 the real answer follows the delay.
- ``DELETE /faults``: clear every fault.
- ``POST   /reset``: restore the seeded scenario (also clears faults and the audit log).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runner.lab.api import LabError, body_of, reply, store_of
from runner.lab.cloud import findings_for
from runner.lab.seed import seed
from runner.lab.store import Doc

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "*")


def summary(request: Request) -> Doc:
    store = store_of(request)
    return {
        "seeded_at": store.meta("seeded_at"),
        "hosts": {
            h["id"]: {
                "isolated": h["isolated"],
                "infected": h["_infected"],
                "patch_level": h["patch_level"],
                "restored_from": h.get("restored_from"),
            }
            for h in store.all("host")
        },
        "alerts": {a["id"]: a["status"] for a in store.all("alert")},
        "users": {
            u["id"]: {
                "enabled": u["enabled"],
                "sessions": len(u["sessions"]),
                "mfa_enrolled": u["mfa_enrolled"],
                "must_change_password": u["must_change_password"],
            }
            for u in store.all("user")
        },
        "firewall_rules": [
            {k: r[k] for k in ("id", "type", "value")} for r in store.all("firewall_rule")
        ],
        "tickets": {t["id"]: t["status"] for t in store.all("ticket")},
        "services": {s["name"]: s["status"] for s in store.all("service")},
        "cloud": {
            r["id"]: {"revision": r["revision"], "findings": [f["rule"] for f in findings_for(r)]}
            for r in store.all("cloud_resource")
        },
        "snapshots": {s["id"]: s["status"] for s in store.all("snapshot")},
        "restore_jobs": {j["id"]: j["status"] for j in store.all("restore_job")},
        "bundles": [b["id"] for b in store.all("bundle")],
        "etcd": {
            m["id"]: {
                "db_size_mb": m["db_size_mb"],
                "healthy": m["healthy"],
                "defragmented": m["defragmented_at"] is not None,
            }
            for m in store.all("etcd_member")
        },
        "etcd_alarms": [a["alarm"] for a in store.all("etcd_alarm")],
        "ec2": {
            i["id"]: {
                "security_groups": i["security_groups"],
                "termination_protection": i["termination_protection"],
                "tags": i["tags"],
            }
            for i in store.all("ec2_instance")
        },
        "ec2_snapshots": {s["id"]: s["volume_id"] for s in store.all("ec2_snapshot")},
        "faults": store.faults(),
        "request_count": store.request_count(),
    }


async def state(request: Request) -> JSONResponse:
    return reply(summary(request))


def _int_param(request: Request, key: str, default: int) -> int:
    raw = request.query_params.get(key, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise LabError(400, f"query parameter {key!r} must be an integer; got {raw!r}") from exc


async def requests_log(request: Request) -> JSONResponse:
    after = _int_param(request, "after", 0)
    limit = max(1, min(_int_param(request, "limit", 500), 5000))
    return reply({"requests": store_of(request).requests(after, limit)})


def parse_route(text: object) -> tuple[str, str]:
    """`"POST /api/x/{id}"` -> ("POST", "/api/x/{id}"); a bare path means any method."""
    if not isinstance(text, str) or not text.strip():
        raise LabError(422, "'route' is required, e.g. \"POST /api/edr/hosts/{id}/isolate\"")
    parts = text.split()
    method, path = ("*", parts[0]) if len(parts) == 1 else (parts[0].upper(), parts[1])
    if len(parts) > 2 or method not in _METHODS or not path.startswith("/api/"):
        raise LabError(
            422,
            f"'route' must look like \"POST /api/edr/hosts/{{id}}/isolate\" "
            f'or "/api/edr"; got {text!r}',
        )
    return method, path


def _int_field(body: Doc, key: str, default: int, low: int, high: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LabError(422, f"{key!r} must be an integer from {low} to {high}")
    return value


async def add_fault(request: Request) -> JSONResponse:
    body = await body_of(request)
    method, path = parse_route(body.get("route"))
    status = _int_field(body, "status", 500, 100, 599)
    times = _int_field(body, "times", 1, -1, 1000)
    if times == 0:
        raise LabError(422, "'times' must be at least 1, or -1 for until cleared")
    delay = body.get("delay", 0)
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 30:
        raise LabError(422, "'delay' must be a number of seconds from 0 to 30")
    fault = store_of(request).add_fault(method, path, status, times, float(delay))
    return reply(fault, 201)


async def list_faults(request: Request) -> JSONResponse:
    return reply({"faults": store_of(request).faults()})


async def clear_faults(request: Request) -> JSONResponse:
    return reply({"cleared": store_of(request).clear_faults()})


async def reset(request: Request) -> JSONResponse:
    seed(store_of(request))
    return reply({"reset": True, "seeded_at": store_of(request).meta("seeded_at")})


ROUTES = [
    Route("/state", state),
    Route("/requests", requests_log),
    Route("/faults", list_faults),
    Route("/faults", add_fault, methods=["POST"]),
    Route("/faults", clear_faults, methods=["DELETE"]),
    Route("/reset", reset, methods=["POST"]),
]
