"""The runs API: list runs and queues, read a run, start a run by hand, cancel a run.

Every route wants the service's bearer token. A run is named by its run id (or a unique prefix
of one), as `runbook log` names it; a queued run has no journal yet and is found in its queue.
Answers never carry the server's paths.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route as HttpRoute
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError

from runner.console.decisions import manual_workflow_id, workflow_of
from runner.errors import RunbookError
from runner.format.inputs import resolve
from runner.format.model import Runbook
from runner.reports.progress import run_progress
from runner.runs.journal import new_run_id, read_events
from runner.runs.store import find_run, info_of, list_runs, load_run
from runner.service.messages import Actor, QueueState, RunRequest
from runner.service.queues import RunQueue, limits_of
from runner.service.workflow import RunbookRun

API_VERSION = 1
_LIST_LIMIT = 200
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
#: Who the journal names as having started a run through the API with the service's token
#: (the console, with people's own identities, names the person).
API_STARTER = "service-api"

Refuse = Callable[[int, str], JSONResponse]


def routes(intake: Any, authorised: Callable[[Request], bool], refuse: Refuse) -> list[HttpRoute]:
    """The routes, bound to the intake (``runner.service.intake.Intake``)."""

    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def checked(request: Request) -> JSONResponse:
            if not authorised(request):
                return refuse(401, "a bearer token is required (Authorization: Bearer TOKEN)")
            return await handler(request)  # type: ignore[no-any-return]

        return checked

    async def runs(request: Request) -> JSONResponse:
        """Runs, newest first, with their status and current step (`runbook runs` as JSON)."""
        found = list_runs(intake.runs_dir, request.query_params.get("runbook"))[:_LIST_LIMIT]
        listed = [{**r.as_json(), **run_progress(r).as_json()} for r in found]
        for row in listed:
            row.pop("run_dir", None)  # a path on the server is not the caller's business
        return JSONResponse({"version": API_VERSION, "runs": listed})

    async def run(request: Request) -> JSONResponse:
        """One run: its summary, the gates it waits on, and its events (`?events=1`)."""
        ref = request.path_params["run_id"]
        if not _RUN_ID.fullmatch(ref):
            return refuse(400, "a run id is letters, digits, dashes and dots")
        try:
            record = load_run(find_run(intake.runs_dir, ref))
        except RunbookError:
            # Not the store's message: it names the server's folders.
            return _error(404, f"no run {ref} (a run id, or a unique prefix of one)")
        waiting = [
            {"step": w.step, "step_id": w.step_id, "procedure": w.procedure, "title": w.title}
            for w in record.waiting_steps()
        ]
        body: dict[str, Any] = {
            "version": API_VERSION,
            "run": {k: v for k, v in info_of(record).as_json().items() if k != "run_dir"},
            "trigger": record.start.get("trigger"),
            "waiting": waiting,
        }
        if request.query_params.get("events"):
            body["events"] = read_events(record.run_dir)
        return JSONResponse(body)

    async def queues(request: Request) -> JSONResponse:
        """Every queue with a run in it: who holds a place, who waits, in order."""
        listed = [_queue_json(q) for q in await _queues(intake.client)]
        return JSONResponse({"version": API_VERSION, "queues": [q for q in listed if q]})

    async def start(request: Request) -> JSONResponse:
        """Start a run by hand: `{"runbook": ID, "inputs": {...}}`. Secret inputs come from the
        worker's secret sources, never from a request."""
        try:
            body = await request.json()
        except ValueError:
            return refuse(400, 'expected JSON: {"runbook": "ID", "inputs": {"name": "value"}}')
        if not isinstance(body, dict) or not isinstance(body.get("runbook"), str):
            return refuse(400, 'expected JSON: {"runbook": "ID", "inputs": {"name": "value"}}')
        given = body.get("inputs") or {}
        if not isinstance(given, dict):
            return refuse(400, "`inputs` is an object of input names and values")
        book = _runbook(intake.router.runbooks, body["runbook"])
        if book is None:
            known = ", ".join(sorted(b.metadata.id for b in intake.router.runbooks)) or "none"
            return refuse(404, f"no runbook {body['runbook']!r} is served (served: {known})")
        secret = sorted(s.name for s in book.metadata.inputs if s.secret and s.name in given)
        if secret:
            return refuse(422, f"secret inputs are never sent to the service: {', '.join(secret)}"
                               "; they come from its environment or --secrets file")  # fmt: skip
        # Checked here, with the secrets left to the worker, so that a typo is a 422 at once.
        public = {**intake.given, **given}
        values, problems = resolve(book.metadata, public)
        problems = [p for p in problems if not _about_secret(book, p)]
        if problems:
            return refuse(422, f"{book.metadata.id}: " + "; ".join(problems))
        run_id = new_run_id(book.metadata.id)
        wid = manual_workflow_id(book.metadata.id, run_id)
        request_ = RunRequest(
            run_id=run_id,
            runbook_path=str(book.path.resolve()),
            sha256=book.sha256,
            inputs={k: v for k, v in public.items() if k in {s.name for s in book.metadata.inputs}},
            runs_dir=str(intake.runs_dir),
            received=time.time(),
            heartbeat_timeout=intake.heartbeat_timeout,
            limits=limits_of(book, values),
            started_by=API_STARTER,
        )
        await intake.client.start_workflow(
            RunbookRun.run, request_, id=wid, task_queue=intake.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )  # fmt: skip
        return JSONResponse(
            {"version": API_VERSION, "run_id": run_id, "workflow_id": wid}, status_code=202
        )

    async def cancel(request: Request) -> JSONResponse:
        """Cancel a run wherever it stands: queued, waiting, interrupted or mid-step."""
        ref = request.path_params["run_id"]
        if not _RUN_ID.fullmatch(ref):
            return refuse(400, "a run id is letters, digits, dashes and dots")
        wid = await _workflow_of(intake, ref)
        if wid is None:
            return _error(404, f"no run {ref} that the service started")
        try:
            await intake.client.get_workflow_handle(wid).signal(
                RunbookRun.abort, Actor(API_STARTER)
            )
        except RPCError:
            return _error(409, f"run {ref} has ended; nothing to cancel")
        return JSONResponse({"version": API_VERSION, "workflow_id": wid, "cancelling": True},
                            status_code=202)  # fmt: skip

    return [
        HttpRoute("/api/runs", guarded(runs), methods=["GET"]),
        HttpRoute("/api/runs", guarded(start), methods=["POST"]),
        HttpRoute("/api/runs/{run_id}", guarded(run), methods=["GET"]),
        HttpRoute("/api/runs/{run_id}/cancel", guarded(cancel), methods=["POST"]),
        HttpRoute("/api/queues", guarded(queues), methods=["GET"]),
    ]


def _runbook(books: tuple[Runbook, ...], ref: str) -> Runbook | None:
    return next((b for b in books if ref in (b.metadata.id, b.path.stem)), None)


def _about_secret(book: Runbook, problem: str) -> bool:
    """A problem about a secret input, which the worker supplies, not the caller."""
    return any(s.secret and f"input {s.name!r}" in problem for s in book.metadata.inputs)


async def _queues(client: Client) -> list[QueueState]:
    found = []
    query = 'WorkflowType="RunQueue" AND ExecutionStatus="Running"'
    async for execution in client.list_workflows(query):
        try:
            found.append(await client.get_workflow_handle(execution.id).query(RunQueue.queue))
        except RPCError:
            continue  # ended between the list and the query
    return found


def _queue_json(q: QueueState) -> dict[str, Any] | None:
    if not q.holders and not q.waiting:
        return None
    return {
        "key": q.key,
        "limit": q.limit,
        "running": [h.run_id for h in q.holders],
        "waiting": [
            {"run_id": w.run_id, "position": n, "severity": w.severity, "since": w.since}
            for n, w in enumerate(q.waiting, 1)
        ],
    }


async def _workflow_of(intake: Any, ref: str) -> str | None:
    """The workflow of a run: named in its journal, or, for a queued run, in its queue."""
    try:
        record = load_run(find_run(intake.runs_dir, ref))
    except RunbookError:
        record = None
    if record is not None:
        return workflow_of(record)
    for q in await _queues(intake.client):
        for w in [*q.waiting, *q.holders]:
            if w.run_id == ref or w.run_id.startswith(ref):
                return w.workflow_id
    return None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"version": API_VERSION, "error": message}, status_code=status)
