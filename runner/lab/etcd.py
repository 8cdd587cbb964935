"""An etcd cluster's members: database size against the quota, health, defragmentation, and
the NOSPACE alarm (after openshift/runbooks' etcdDatabaseQuotaLowSpace).

Routes (all under ``/api/etcd``, bearer token required):

- ``GET  /members``: ``{"members": [{"id", "endpoint", "healthy", "leader", "db_size_mb",
  "db_in_use_mb", "quota_mb", "defragmented_at"}]}``.
- ``GET  /members/{id}/health``: ``{"member", "healthy"}``; 503 when the member is unhealthy,
  as ``etcdctl endpoint health`` fails.
- ``POST /members/{id}/defrag``: the member's database shrinks to what is in use; 409 while
  another member is unhealthy (defragmenting then could lose the quorum).
- ``GET  /alarms``: ``{"alarms": [{"member", "alarm": "NOSPACE"}]}``.
- ``POST /alarms/disarm``: clears the alarms, 409 while a member is still above 90 % of its
  quota (etcd would raise it again at once).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runner.lab.api import LabError, fetch, path_id, reply, store_of
from runner.lab.store import Doc, now_iso

#: Above this share of its quota a member keeps the NOSPACE alarm up.
ALARM_SHARE = 0.9


def _member(request: Request) -> Doc:
    return fetch(store_of(request), "etcd_member", path_id(request), "etcd member")


def over_quota(member: Doc) -> bool:
    return bool(member["db_size_mb"] > ALARM_SHARE * member["quota_mb"])


async def list_members(request: Request) -> JSONResponse:
    return reply({"members": store_of(request).all("etcd_member")})


async def health(request: Request) -> JSONResponse:
    member = _member(request)
    body = {"member": member["id"], "healthy": member["healthy"]}
    return reply(body, 200 if member["healthy"] else 503)


async def defrag(request: Request) -> JSONResponse:
    store = store_of(request)
    member = _member(request)
    others = [m for m in store.all("etcd_member") if m["id"] != member["id"]]
    down = [m["id"] for m in others if not m["healthy"]]
    if down:
        raise LabError(
            409,
            f"member(s) {', '.join(down)} unhealthy: defragmenting "
            f"{member['id']} now could lose the quorum",
        )
    member = {**member, "db_size_mb": member["db_in_use_mb"], "defragmented_at": now_iso()}
    store.put("etcd_member", member)
    return reply({"member": member})


async def alarms(request: Request) -> JSONResponse:
    return reply({"alarms": store_of(request).all("etcd_alarm")})


async def disarm(request: Request) -> JSONResponse:
    store = store_of(request)
    full = [m["id"] for m in store.all("etcd_member") if over_quota(m)]
    if full:
        raise LabError(
            409,
            f"member(s) {', '.join(full)} still above {ALARM_SHARE:.0%} of "
            "the quota; defragment them first",
        )
    cleared = store.all("etcd_alarm")
    for alarm in cleared:
        store.delete("etcd_alarm", alarm["id"])
    return reply({"disarmed": len(cleared)})


ROUTES = [
    Route("/members", list_members),
    Route("/members/{id}/health", health),
    Route("/members/{id}/defrag", defrag, methods=["POST"]),
    Route("/alarms", alarms),
    Route("/alarms/disarm", disarm, methods=["POST"]),
]
