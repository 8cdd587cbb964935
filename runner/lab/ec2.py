"""EC2 instances, their EBS volumes and snapshots, and quarantine security groups (after
aws-samples/aws-incident-response-playbooks' GuardDuty EC2 malware findings playbook).

Routes (all under ``/api/ec2``, bearer token required):

- ``GET  /instances/{id}``: ``{"id", "name", "state", "security_groups", "volumes",
  "termination_protection", "tags"}``.
- ``GET  /instances/{id}/volumes``: ``{"volumes": [{"id", "device", "size_gb"}]}``.
- ``POST /volumes/{id}/snapshot`` ``{"description": "..."}``: a new snapshot
  ``{"id": "snap-ec2-N", "volume_id", "status": "completed", "description", "started_at"}``.
- ``GET  /snapshots?volume_id=``: the snapshots taken.
- ``POST /instances/{id}/security-groups`` ``{"groups": ["sg-..."]}``: replaces the instance's
  groups (quarantine); 422 for a group that does not exist.
- ``POST /instances/{id}/protect``: termination protection on.
- ``POST /instances/{id}/tags`` ``{"tags": {"k": "v"}}``: merges tags.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runner.lab.api import LabError, body_of, fetch, opt_str, path_id, reply, store_of
from runner.lab.store import Doc, now_iso

#: Security groups the lab knows; the quarantine group allows no traffic.
GROUPS = ("sg-web", "sg-quarantine")


def _instance(request: Request) -> Doc:
    return fetch(store_of(request), "ec2_instance", path_id(request), "EC2 instance")


async def get_instance(request: Request) -> JSONResponse:
    return reply(_instance(request))


async def volumes(request: Request) -> JSONResponse:
    instance = _instance(request)
    store = store_of(request)
    found = [fetch(store, "ec2_volume", v, "EBS volume") for v in instance["volumes"]]
    return reply({"volumes": found})


async def snapshot(request: Request) -> JSONResponse:
    store = store_of(request)
    volume = fetch(store, "ec2_volume", path_id(request), "EBS volume")
    body = await body_of(request)
    number = store.next_number("ec2_snapshot", 1)
    snap = {
        "id": f"snap-ec2-{number}",
        "volume_id": volume["id"],
        "status": "completed",
        "description": opt_str(body, "description"),
        "started_at": now_iso(),
    }
    store.put("ec2_snapshot", snap)
    return reply(snap, 201)


async def snapshots(request: Request) -> JSONResponse:
    volume = request.query_params.get("volume_id")
    found = [s for s in store_of(request).all("ec2_snapshot") if volume in (None, s["volume_id"])]
    return reply({"snapshots": found})


async def set_groups(request: Request) -> JSONResponse:
    instance = _instance(request)
    groups = (await body_of(request)).get("groups")
    if not isinstance(groups, list) or not groups or not all(isinstance(g, str) for g in groups):
        raise LabError(422, "'groups' must be a non-empty list of security group ids")
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise LabError(422, f"no security group {unknown[0]!r}; known: {', '.join(GROUPS)}")
    instance = {**instance, "security_groups": groups}
    store_of(request).put("ec2_instance", instance)
    return reply(instance)


async def protect(request: Request) -> JSONResponse:
    instance = {**_instance(request), "termination_protection": True}
    store_of(request).put("ec2_instance", instance)
    return reply(instance)


async def tag(request: Request) -> JSONResponse:
    instance = _instance(request)
    tags = (await body_of(request)).get("tags")
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise LabError(422, "'tags' must be an object of name -> text")
    instance = {**instance, "tags": {**instance["tags"], **tags}}
    store_of(request).put("ec2_instance", instance)
    return reply(instance)


ROUTES = [
    Route("/instances/{id}", get_instance),
    Route("/instances/{id}/volumes", volumes),
    Route("/instances/{id}/security-groups", set_groups, methods=["POST"]),
    Route("/instances/{id}/protect", protect, methods=["POST"]),
    Route("/instances/{id}/tags", tag, methods=["POST"]),
    Route("/volumes/{id}/snapshot", snapshot, methods=["POST"]),
    Route("/snapshots", snapshots),
]
