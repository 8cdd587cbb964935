"""Backups: snapshots per system, integrity checks and restore jobs.

Routes (all under ``/api/backups``, bearer token required):

- ``GET  /snapshots?system=srv-files-01``: snapshots, oldest first: id, system, type,
  size_bytes, created_at, ``sha256`` (catalogue checksum), ``status``
  (``unverified``/``ok``/``corrupt``).
- ``GET  /snapshots/{id}``: one snapshot.
- ``POST /snapshots/{id}/verify``: recompute the checksum: ``{"result": "ok"|"corrupt",
  "expected_sha256", "actual_sha256"}``; the snapshot's ``status`` records the result.
- ``POST /restore`` ``{"system", "snapshot_id"}``: 202 with a job ``{"id": "job-0001",
  "status": "running", ...}``. 422 when the snapshot belongs to another system or was verified
  corrupt. Restoring a host's snapshot removes the compromise from the EDR view and brings
  the host's services back up.
- ``GET  /jobs/{id}``: job progress. A job reports ``running`` on its first poll and
  ``completed`` (or ``failed``, for an unverified snapshot that turns out corrupt) afterwards.
"""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runner.lab.api import LabError, body_of, fetch, need_str, path_id, public, reply, store_of
from runner.lab.edr import reimage
from runner.lab.store import Doc, Store, now_iso


def _snapshot(request: Request) -> Doc:
    return fetch(store_of(request), "snapshot", path_id(request), "snapshot")


def actual_digest(snapshot: Doc) -> str:
    """What reading the snapshot back yields: the catalogue checksum unless it is damaged."""
    if not snapshot["_corrupt"]:
        return str(snapshot["sha256"])
    return hashlib.sha256(f"damaged:{snapshot['id']}".encode()).hexdigest()


async def list_snapshots(request: Request) -> JSONResponse:
    system = request.query_params.get("system") or None
    snaps = [public(s) for s in store_of(request).all("snapshot") if system in (None, s["system"])]
    snaps.sort(key=lambda s: str(s["created_at"]))
    return reply({"snapshots": snaps})


async def get_snapshot(request: Request) -> JSONResponse:
    return reply(public(_snapshot(request)))


async def verify(request: Request) -> JSONResponse:
    snap = _snapshot(request)
    actual = actual_digest(snap)
    result = "ok" if actual == snap["sha256"] else "corrupt"
    snap.update(status=result, verified_at=now_iso())
    store_of(request).put("snapshot", snap)
    return reply(
        {
            "snapshot_id": snap["id"],
            "system": snap["system"],
            "result": result,
            "expected_sha256": snap["sha256"],
            "actual_sha256": actual,
        }
    )


def _apply_restore(store: Store, snap: Doc) -> None:
    """A clean restore undoes the compromise of the host and restarts its services."""
    host = store.get("host", snap["system"])
    if host is not None:
        reimage(host, snap["id"])
        store.put("host", host)
    for service in store.all("service"):
        if service["host_id"] == snap["system"] and service["status"] != "up":
            service.update(status="up", last_error="", response_time_ms=40)
            service["recovered_at"] = now_iso()
            store.put("service", service)


async def restore(request: Request) -> JSONResponse:
    store = store_of(request)
    body = await body_of(request)
    system = need_str(body, "system")
    snap = fetch(store, "snapshot", need_str(body, "snapshot_id"), "snapshot")
    if snap["system"] != system:
        raise LabError(422, f"snapshot {snap['id']} belongs to {snap['system']}, not {system}")
    if snap["status"] == "corrupt":
        raise LabError(422, f"snapshot {snap['id']} failed verification; pick another one")
    job = {
        "id": f"job-{store.next_number('restore_job', 1):04d}",
        "system": system,
        "snapshot_id": snap["id"],
        "status": "running",
        "progress": 0,
        "polls": 0,
        "started_at": now_iso(),
        "error": "",
        "_fails": bool(snap["_corrupt"]),
    }
    with store.transaction():
        store.put("restore_job", job)
        if not snap["_corrupt"]:
            _apply_restore(store, snap)
    return reply(public(job), 202)


async def get_job(request: Request) -> JSONResponse:
    store = store_of(request)
    job = fetch(store, "restore_job", path_id(request), "restore job")
    job["polls"] += 1
    if job["status"] == "running" and job["polls"] >= 2:
        if job["_fails"]:
            job.update(status="failed", error="checksum mismatch while reading the snapshot")
        else:
            job.update(status="completed", progress=100)
        job["finished_at"] = now_iso()
    elif job["status"] == "running":
        job["progress"] = 50
    store.put("restore_job", job)
    return reply(public(job))


ROUTES = [
    Route("/snapshots", list_snapshots),
    Route("/snapshots/{id}", get_snapshot),
    Route("/snapshots/{id}/verify", verify, methods=["POST"]),
    Route("/restore", restore, methods=["POST"]),
    Route("/jobs/{id}", get_job),
]
