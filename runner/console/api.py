"""The console's JSON API for people: a gate's decision, a question's answer, an action on a
run, each by the user whose API token it carries (``Authorization: Bearer``), never by the
service's own token, which names no person. `runbook approve --server` is its CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from runner.console.config import MAX_COMMENT, RUN_ID, STEP, ConsoleConfig, act_on
from runner.console.decisions import Outcome, answer_question, decide, shown_digest
from runner.console.views import Gate, gate_named
from runner.errors import RunbookError
from runner.identity.model import Identity
from runner.runs.store import find_run, load_run


def api_routes(config: ConsoleConfig) -> list[BaseRoute]:

    def token_identity(request: Request) -> Identity | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return config.users.check_token(token.strip(), config.roles)

    def by_token(
        handler: Callable[[Request, Identity], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """A route for people: refused (401) unless it carries a valid user's API token."""

        async def wrapped(request: Request) -> Response:
            who = token_identity(request)
            if who is None:
                return _json(_NO_TOKEN)
            return await handler(request, who)

        return wrapped

    async def api_gate(request: Request, who: Identity) -> Response:
        """`GET /api/runs/{id}/gates/{step}`: what the approval page shows, as JSON, with the
        digest to send back with the decision (`runbook pending|approve --server`)."""
        ref, step = request.path_params["run_id"], request.path_params["step"]
        if not RUN_ID.fullmatch(ref) or not STEP.fullmatch(step):
            return _json(Outcome(400, "a run id or step is letters, digits, dashes and dots"))
        found = await asyncio.to_thread(_gate, config, ref, step)
        if found is None:
            return _json(Outcome(404, f"run {ref} has no gate {step} waiting for a decision"))
        gate, trigger = found
        alert = {k: trigger.get(k) for k in ("source", "id", "title", "severity")}
        body = {
            "version": 1,
            "gate": {k: getattr(gate, k) for k in Gate.__slots__},
            "shown": shown_digest(gate.code),
            "may": who.holds(gate.role),
            "alert": alert,
        }
        text = json.dumps(body, ensure_ascii=False, default=str)  # values are typed outputs
        return Response(text, media_type="application/json")

    async def api_decide(request: Request, who: Identity) -> Response:
        body = await _body(request)
        if not isinstance(body, dict) or not isinstance(body.get("step"), str | int):
            return _json(Outcome(400, 'the body is {"step": ..., "decision": "approved"|'
                                      '"denied", "comment": ...}'))  # fmt: skip
        ref = request.path_params["run_id"]
        if not RUN_ID.fullmatch(ref):
            return _json(Outcome(400, "a run id is letters, digits, dashes and dots"))
        comment = body.get("comment")
        outcome = await decide(
            config.runs_dir, ref, str(body["step"]), str(body.get("decision") or ""), who,
            str(comment)[:MAX_COMMENT] if comment else None, config.send,
            shown=str(body["shown"]) if body.get("shown") else None,
        )  # fmt: skip
        return _json(outcome)

    async def api_answer(request: Request, who: Identity) -> Response:
        """`POST /api/runs/{id}/answers` `{"step": ..., "answer": ...}`: a decision step's
        answer, by the token's user."""
        body = await _body(request)
        if (not isinstance(body, dict) or not isinstance(body.get("step"), str | int)
                or not isinstance(body.get("answer"), str | int | float)):  # fmt: skip
            return _json(Outcome(400, 'the body is {"step": ..., "answer": ...}'))
        ref = request.path_params["run_id"]
        if not RUN_ID.fullmatch(ref):
            return _json(Outcome(400, "a run id is letters, digits, dashes and dots"))
        outcome = await answer_question(config.runs_dir, ref, str(body["step"]),
                                        str(body["answer"]), who, config.send)  # fmt: skip
        return _json(outcome)

    async def api_act(request: Request, who: Identity) -> Response:
        """`POST /api/runs/{id}/actions` `{"action": "cancel"|"resume"|"skip", "comment": ...}`:
        a person acts on a run with their own token (journaled as them; the service token's
        `/api/runs/{id}/cancel` is for automation)."""
        body = await _body(request)
        if not isinstance(body, dict) or not isinstance(body.get("action"), str):
            return _json(Outcome(400, 'the body is {"action": "cancel"|"resume"|"skip", '
                                      '"comment": ...}'))  # fmt: skip
        comment = body.get("comment")
        return _json(await act_on(config, request.path_params["run_id"], body["action"], who,
                                str(comment) if comment else None))  # fmt: skip

    return [
        Route("/api/runs/{run_id}/gates/{step}", by_token(api_gate), methods=["GET"]),
        Route("/api/runs/{run_id}/decisions", by_token(api_decide), methods=["POST"]),
        Route("/api/runs/{run_id}/answers", by_token(api_answer), methods=["POST"]),
        Route("/api/runs/{run_id}/actions", by_token(api_act), methods=["POST"]),
    ]


_NO_TOKEN = Outcome(401, "a user's API token is required (Authorization: Bearer TOKEN; "
                         "`runbook users token NAME` makes one)")  # fmt: skip


async def _body(request: Request) -> Any:
    """The request's JSON, or None when it is not JSON (the handler says what it wants)."""
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


def _gate(config: ConsoleConfig, ref: str, step: str) -> tuple[Gate, dict[str, Any]] | None:
    try:
        record = load_run(find_run(config.runs_dir, ref))
    except RunbookError:
        return None
    found = gate_named(record, step)
    return (found, dict(record.start.get("trigger") or {})) if found else None


def _json(outcome: Outcome) -> JSONResponse:
    body: dict[str, Any] = {"version": 1, "message": outcome.message}
    if outcome.status >= 400:
        body["error"] = outcome.message
    if outcome.verdict is not None:
        v = outcome.verdict
        body["decision"] = {"step": v.step, "decision": v.decision, "by": v.by, "role": v.role,
                            "auth": v.auth}  # fmt: skip
    return JSONResponse(body, status_code=outcome.status)
