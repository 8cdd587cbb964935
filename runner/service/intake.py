"""`POST /api/alerts`: a payload in, one route per alert, one workflow per new run, `202` out.

Every alert goes through the routing library exactly as `runbook route` does. A routed, firing
alert starts the workflow whose id is its runbook and dedup key: Temporal refuses a second
workflow with that id, atomically, across concurrent deliveries and restarts, so a repeated
alert attaches to its run instead of starting another. The answer is sent only once Temporal
has the workflow (stored), so an accepted alert is never lost. An unrouted alert is kept, with
its reason, in ``unrouted.jsonl`` beside the service's state, to be routed again after a fix.

A source authenticates with the service's bearer token; the token is held only as its SHA-256.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from runner.private_files import append_private
from runner.routing.detect import read_alerts
from runner.routing.envelope import Alert, AlertStatus
from runner.routing.limits import DEFAULT, AlertError
from runner.routing.route import Route, Router
from runner.runs.journal import new_run_id, now_iso
from runner.service import runs_api
from runner.service.idempotency import MAX_KEY, Conflict, IdempotencyStore
from runner.service.messages import TASK_QUEUE, RunRequest
from runner.service.metrics import Metrics
from runner.service.queues import limits_of
from runner.service.sources import Source, Verifier
from runner.service.workflow import RunbookRun

API_VERSION = 1
_LIST_LIMIT = 200
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class Intake:
    """What the intake needs: the router over the runbooks, and where runs and state go."""

    client: Client
    router: Router
    given: Mapping[str, object]  # inputs the intake gives every triggered run (non-secret)
    runs_dir: Path
    state_dir: Path
    token_sha256: bytes
    metrics: Metrics
    heartbeat_timeout: float = 30.0  # seconds without heartbeats before a worker counts as lost
    task_queue: str = TASK_QUEUE
    sources: Mapping[str, Source] = field(default_factory=dict)  # POST /api/alerts/{source}


def workflow_id(route: Route) -> str:
    assert route.runbook is not None
    return f"run:{route.runbook.metadata.id}:{route.dedup_key}"


class _Unrouted:
    """The one writer of the intake's alert records (a lock: requests are served concurrently):
    ``unrouted.jsonl``, each alert no runbook took with its reason and its payload, to be
    routed again; and ``alerts.jsonl``, what became of every alert received (started a run,
    attached to one as a duplicate, resolved, unrouted), without the payload, for the
    console's Alerts page."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.log = path.with_name("alerts.jsonl")
        self._lock = threading.Lock()

    def add(self, alert: Alert, reason: str) -> None:
        line = json.dumps(
            {"at": now_iso(), "source": alert.source, "format": alert.format, "id": alert.id,
             "title": alert.title, "reason": reason, "raw": dict(alert.raw)},
            default=str, ensure_ascii=False,
        )  # fmt: skip
        with self._lock:
            append_private(self.path, line)

    def took(self, answer: Mapping[str, Any], severity: str, run_id: str | None) -> None:
        kept = {k: answer.get(k) for k in ("source", "id", "title", "status", "outcome",
                                           "runbook", "workflow_id", "reason")}  # fmt: skip
        line = json.dumps({"at": now_iso(), **kept, "severity": severity, "run_id": run_id},
                          default=str, ensure_ascii=False)  # fmt: skip
        with self._lock:
            append_private(self.log, line)


def create_app(intake: Intake) -> Starlette:
    unrouted = _Unrouted(intake.state_dir / "unrouted.jsonl")

    def authorised(request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token_digest(token.strip())
        return scheme.lower() == "bearer" and hmac.compare_digest(given, intake.token_sha256)

    verifier = Verifier()
    remembered = IdempotencyStore(intake.state_dir / "idempotency.sqlite")
    idempotent = asyncio.Lock()

    async def alerts(request: Request) -> JSONResponse:
        received = time.time()
        if not authorised(request):
            return refuse(401, "a bearer token is required (Authorization: Bearer TOKEN)")
        return await take(request, received, None)

    async def source_alerts(request: Request) -> JSONResponse:
        received = time.time()
        source = intake.sources.get(request.path_params["source"])
        if source is None:
            return refuse(404, "no such source; the sources file names them")
        return await take(request, received, source)

    async def take(request: Request, received: float, source: Source | None) -> JSONResponse:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > DEFAULT.max_bytes:
            return refuse(413, f"the payload is over {DEFAULT.max_bytes:,} bytes")
        body = await _capped_body(request, DEFAULT.max_bytes)
        if body is None:  # a chunked body has no length to refuse it by before it is read
            return refuse(413, f"the payload is over {DEFAULT.max_bytes:,} bytes")
        if source is not None and (why := verifier.check(source, request.headers, body)):
            return refuse(401, why)
        key = request.headers.get("idempotency-key")
        scope = source.name if source else ""
        if key is not None:
            if not 0 < len(key) <= MAX_KEY:
                return refuse(400, f"an Idempotency-Key is 1 to {MAX_KEY} characters")
            # One keyed delivery at a time, so a retry racing its original gets its answer.
            async with idempotent:
                try:
                    earlier = remembered.get(scope, key, body)
                except Conflict:
                    return refuse(422, "this Idempotency-Key came before with another body")
                if earlier is not None:
                    return JSONResponse(earlier, status_code=202,
                                        headers={"Idempotent-Replayed": "true"})  # fmt: skip
                answer = await route_and_start(request, received, source, body)
                if answer.status_code == 202:
                    remembered.put(scope, key, body, json.loads(bytes(answer.body)))
                return answer
        return await route_and_start(request, received, source, body)

    async def route_and_start(
        request: Request, received: float, source: Source | None, body: bytes
    ) -> JSONResponse:
        fmt = request.query_params.get("format") or (source.format if source else None)
        try:
            found = read_alerts(body, request.url.path, fmt)
        except AlertError as exc:
            return refuse(400, str(exc))
        answers = [await _take(intake, unrouted, alert, received) for alert in found]
        for answer in answers:
            intake.metrics.alerts.labels(answer["outcome"]).inc()
        return JSONResponse({"version": API_VERSION, "alerts": answers}, status_code=202)

    def refuse(status: int, message: str) -> JSONResponse:
        intake.metrics.refused.labels(str(status)).inc()
        return _error(status, message)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> JSONResponse:
        # Served once the worker runs and Temporal answered: `serve` starts the intake last.
        return JSONResponse({"status": "ready"})

    async def metrics(request: Request) -> Response:
        # Figures only, no alert content: served without the token, as Prometheus scrapes.
        return Response(generate_latest(intake.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            HttpRoute("/api/alerts", alerts, methods=["POST"]),
            HttpRoute("/api/alerts/{source}", source_alerts, methods=["POST"]),
            *runs_api.routes(intake, authorised, refuse),
            HttpRoute("/health", health, methods=["GET"]),
            HttpRoute("/ready", ready, methods=["GET"]),
            HttpRoute("/metrics", metrics, methods=["GET"]),
        ]
    )
    app.state.unrouted = unrouted  # for the console's "route again" (one writer of the file)
    return app


async def route_kept(intake: Intake, unrouted: Any, kept: Mapping[str, Any]) -> dict[str, Any]:
    """An unrouted alert, as ``unrouted.jsonl`` kept it, routed again (after a runbook fix)."""
    raw = json.dumps(kept.get("raw") or {}).encode()
    try:
        [alert] = read_alerts(raw, "/api/alerts", str(kept.get("format") or "") or None)
    except (AlertError, ValueError) as exc:
        return {"outcome": "unrouted", "reason": f"the kept alert cannot be read again: {exc}"}
    answer = await _take(intake, unrouted, alert, time.time())
    intake.metrics.alerts.labels(answer["outcome"]).inc()
    return answer


async def _take(
    intake: Intake, unrouted: _Unrouted, alert: Alert, received: float
) -> dict[str, Any]:
    answer, run_id = await _route_one(intake, unrouted, alert, received)
    unrouted.took(answer, alert.severity.value, run_id)
    return answer


async def _route_one(
    intake: Intake, unrouted: _Unrouted, alert: Alert, received: float
) -> tuple[dict[str, Any], str | None]:
    """The intake's answer for one alert, and the run it started (if it did)."""
    route = intake.router.route(alert, intake.given)
    answer: dict[str, Any] = {
        "source": alert.source,
        "id": alert.id,
        "title": alert.title,
        "status": alert.status.value,
        "runbook": route.runbook.metadata.id if route.runbook else None,
        "dedup_key": route.dedup_key,
        "reason": route.reason,
    }
    if not route.routed or route.runbook is None or route.mapping is None:
        unrouted.add(alert, route.reason)
        return {**answer, "outcome": "unrouted"}, None
    wid = workflow_id(route)
    answer["workflow_id"] = wid
    if alert.status is AlertStatus.RESOLVED:
        # Told to its run, which journals it between attempts: a person waiting at a gate
        # sees that the source says the problem went away (the run is not stopped for it).
        said = f"the alert resolved at its source: {alert.source} {alert.id} {alert.title}"
        try:
            await intake.client.get_workflow_handle(wid).signal(RunbookRun.alert_resolved, said)
        except RPCError:
            return {**answer, "outcome": "resolved_no_run"}, None  # no run of it, or it ended
        return {**answer, "outcome": "resolved"}, None
    book = route.runbook
    request = RunRequest(
        run_id=new_run_id(book.metadata.id),
        runbook_path=str(book.path.resolve()),
        sha256=book.sha256,
        inputs=dict(route.mapping.values),
        runs_dir=str(intake.runs_dir),
        alert={"source": alert.source, "format": alert.format, "id": alert.id,
               "title": alert.title, "severity": alert.severity.value,
               "dedup_key": route.dedup_key, "workflow_id": wid},
        received=received,
        heartbeat_timeout=intake.heartbeat_timeout,
        limits=limits_of(book, route.mapping.values),
    )  # fmt: skip
    try:
        await intake.client.start_workflow(
            RunbookRun.run,
            request,
            id=wid,
            task_queue=intake.task_queue,
            # A finished run still holds its dedup key: the same alert re-sent is the same run.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        return {**answer, "outcome": "duplicate"}, None
    return {**answer, "outcome": "started"}, request.run_id


async def _capped_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past ``limit`` bytes (never held whole)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"version": API_VERSION, "error": message}, status_code=status)
