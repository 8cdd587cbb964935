"""The console's routes, mounted by `runbook serve` beside the intake (same port).

Pages under ``/console/`` want a signed-in session; ``POST /api/runs/{id}/decisions`` wants a
user's API token (``Authorization: Bearer``). Both decide through ``decisions.decide``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from runner.console import views
from runner.console.actions import ACTIONS, APPLIES, Act, RolesOf, act
from runner.console.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    LoginLimiter,
    new_login_token,
    same,
    set_cookie,
)
from runner.console.decisions import (
    Outcome,
    Send,
    answer_question,
    decide,
    shown_digest,
    workflow_of,
)
from runner.identity.model import Identity
from runner.identity.roles import RoleMap
from runner.identity.store import SESSION_TTL, LoginSession, UserStore
from runner.runs.store import find_run, load_run

HERE = Path(__file__).parent
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
_STEP = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,100}")
#: Seconds between looks at a journal while a page follows it.
TAIL_EVERY = 0.25
MAX_FORM = 64 * 1024
MAX_COMMENT = 2000
#: Routes an unrouted alert again: its kept record in, the intake's answer for it out.
RouteAgain = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]
_HEADERS = {
    # Nothing from elsewhere, no inline script: an injected <script> would not run even if an
    # escape were missed.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class ConsoleConfig:
    runs_dir: Path
    state_dir: Path
    users: UserStore
    roles: RoleMap
    send: Send  # a verdict to a run's workflow
    route_again: RouteAgain | None = None
    docs_url: str | None = None  # the docs site, for links to a runbook's page
    act: Act | None = None  # cancel / resume / skip to a run's workflow
    roles_of: RolesOf | None = None  # a served runbook's roles, by its id


def console_routes(config: ConsoleConfig) -> list[BaseRoute]:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    limiter = LoginLimiter()

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        body = env.get_template(name).render(request=request, **context)
        return HTMLResponse(body, status_code=status, headers=_HEADERS)

    def session_of(request: Request) -> LoginSession | None:
        sid = request.cookies.get(SESSION_COOKIE)
        return config.users.session(sid, config.roles) if sid else None

    def to_login(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/console/login?next={quote(target)}", status_code=303)

    async def form(request: Request) -> dict[str, str]:
        body = await request.body()
        if len(body) > MAX_FORM:
            return {}
        return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}

    def signed_in(
        handler: Callable[[Request, LoginSession], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            session = session_of(request)
            if session is None:
                if request.method == "POST":
                    return page(request, "error.html", 401, message="Sign in first.")
                return to_login(request)
            return await handler(request, session)

        return wrapped

    def checked_post(
        handler: Callable[[Request, LoginSession, dict[str, str]], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """A POST from a signed-in page: refused (403) unless it carries the session's CSRF."""

        async def wrapped(request: Request, session: LoginSession) -> Response:
            fields = await form(request)
            if not same(fields.get("csrf"), session.csrf):
                return page(request, "error.html", 403, session=session,
                            message="This form is stale or did not come from the console "
                            "(no valid CSRF token); reload the page and try again.")  # fmt: skip
            return await handler(request, session, fields)

        return signed_in(wrapped)

    # --- sign-in -------------------------------------------------------------------------------

    async def login_page(request: Request) -> Response:
        token = new_login_token()
        response = page(request, "login.html", csrf=token, next=_next(request), error=None)
        set_cookie(response, request, LOGIN_COOKIE, token, 600)
        return response

    async def login(request: Request) -> Response:
        fields = await form(request)
        if not same(fields.get("csrf"), request.cookies.get(LOGIN_COOKIE)):
            why = "The sign-in form is stale (no valid CSRF token); reload it."
            return page(request, "error.html", 403, message=why)
        user = fields.get("user", "").strip().lower()[:64]
        address = request.client.host if request.client else ""
        if (wait := limiter.blocked(user, address)) is not None:
            why = f"Too many failed sign-ins; try again in {int(wait)} s."
            refused = page(request, "login.html", 429, csrf=fields["csrf"], next=_next(request),
                           error=why)  # fmt: skip
            refused.headers["Retry-After"] = str(int(wait))
            return refused
        who = await asyncio.to_thread(
            config.users.check_password, user, fields.get("password", ""), config.roles
        )  # argon2 takes tens of milliseconds on purpose: off the event loop
        if who is None:
            limiter.failed(user, address)
            return page(request, "login.html", 401, csrf=fields["csrf"], next=_next(request),
                        error="Wrong user name or password.")  # fmt: skip
        limiter.succeeded(user, address)
        sid, _ = config.users.open_session(who)
        response = RedirectResponse(_next(request, fields.get("next")), status_code=303)
        set_cookie(response, request, SESSION_COOKIE, sid, int(SESSION_TTL))
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    async def logout(request: Request, session: LoginSession, fields: dict[str, str]) -> Response:
        config.users.close_session(request.cookies.get(SESSION_COOKIE, ""))
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # --- pages ---------------------------------------------------------------------------------

    async def home(request: Request) -> Response:
        return RedirectResponse("/console/inbox", status_code=303)

    async def alerts(request: Request, session: LoginSession) -> Response:
        # Reading runs is file work: off the event loop the intake shares.
        rows = await asyncio.to_thread(views.alerts, config.runs_dir, config.state_dir)
        return page(request, "alerts.html", session=session, alerts=rows,
                    can_route=config.route_again is not None,
                    said=request.query_params.get("said"))  # fmt: skip

    async def route_again(
        request: Request, session: LoginSession, fields: dict[str, str]
    ) -> Response:
        kept = views.unrouted(config.state_dir)
        index = request.path_params["index"]
        if config.route_again is None or not index.isdigit() or int(index) >= len(kept):
            return page(request, "error.html", 404, session=session, message="No such alert.")
        answer = await config.route_again(kept[int(index)])
        said = f"{answer.get('outcome')}: {answer.get('reason') or answer.get('workflow_id')}"
        return RedirectResponse(f"/console/alerts?said={quote(said)}", status_code=303)

    async def runs(request: Request, session: LoginSession) -> Response:
        rows = await asyncio.to_thread(
            lambda: [views.run_row(r) for r in views.records(config.runs_dir)]
        )
        name = "runs_rows.html" if request.query_params.get("rows") else "runs.html"
        return page(request, name, session=session, runs=rows)

    def record_of(request: Request) -> Any:
        ref = request.path_params["run_id"]
        if not _RUN_ID.fullmatch(ref):
            return None
        try:
            return load_run(find_run(config.runs_dir, ref))
        except Exception:
            return None

    async def run(request: Request, session: LoginSession) -> Response:
        def shown() -> dict[str, Any] | None:
            record = record_of(request)
            if record is None:
                return None
            return {"run": views.snapshot(record), "gates": views.gates(record),
                    "questions": views.questions(record),
                    "service": workflow_of(record) is not None,
                    "trigger": record.start.get("trigger") or {},
                    "journal": views.journal_rows(record.run_dir),
                    "runbook_id": record.runbook.get("id")}  # fmt: skip

        context = await asyncio.to_thread(shown)
        if context is None:
            return page(request, "error.html", 404, session=session, message="No such run.")
        status = context["run"]["status"]
        actions = [k for k in ACTIONS if status in APPLIES[k]] if context["service"] else []
        return page(request, "run.html", session=session, docs_url=config.docs_url,
                    actions=actions if config.act is not None else [], **context)  # fmt: skip

    async def run_action(
        request: Request, session: LoginSession, fields: dict[str, str]
    ) -> Response:
        run_id, kind = request.path_params["run_id"], request.path_params["action"]
        outcome = await _act(run_id, kind, session.identity, fields.get("comment"))
        if outcome.status != 202:
            return page(request, "error.html", outcome.status, session=session,
                        message=outcome.message)  # fmt: skip
        return RedirectResponse(f"/console/runs/{quote(run_id)}", status_code=303)

    async def _act(run_id: str, kind: str, who: Identity, comment: str | None) -> Outcome:
        if config.act is None or config.roles_of is None:
            return Outcome(404, "this console does not act on runs")
        if not _RUN_ID.fullmatch(run_id):
            return Outcome(400, "a run id is letters, digits, dashes and dots")
        return await act(config.runs_dir, run_id, kind, who,
                         (comment or "")[:MAX_COMMENT] or None, config.roles_of,
                         config.act)  # fmt: skip

    async def report(request: Request, session: LoginSession) -> Response:
        from runner.reports.report import render_markdown

        record = await asyncio.to_thread(record_of, request)
        if record is None:
            return page(request, "error.html", 404, session=session, message="No such run.")
        text = await asyncio.to_thread(render_markdown, record, image=lambda p: p.name)
        return page(request, "report.html", session=session, run_id=record.run_id, text=text)

    async def live(request: Request, session: LoginSession) -> Response:
        """Server-Sent Events: the run's state each time its journal grows, to its end."""
        record = await asyncio.to_thread(record_of, request)
        if record is None:
            return JSONResponse({"error": "no such run"}, status_code=404)
        journal = record.run_dir / "journal.jsonl"

        async def stream() -> AsyncIterator[str]:
            seen: tuple[int, int] | None = None
            while not await request.is_disconnected():
                try:
                    st = journal.stat()
                    now = (st.st_size, st.st_mtime_ns)
                except OSError:
                    now = (0, 0)
                if now != seen:
                    seen = now
                    snap = await asyncio.to_thread(lambda: views.snapshot(load_run(record.run_dir)))
                    yield f"data: {json.dumps(snap, ensure_ascii=False, default=str)}\n\n"
                    if snap["finished"]:
                        yield "event: end\ndata: {}\n\n"
                        return
                await asyncio.sleep(TAIL_EVERY)

        headers = {**_HEADERS, "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def inbox(request: Request, session: LoginSession) -> Response:
        found = await asyncio.to_thread(views.inbox, config.runs_dir, session.identity)
        return page(request, "inbox.html", session=session, gates=found)

    def gate_of(request: Request) -> tuple[Any, views.Gate | None]:
        record = record_of(request)
        step = request.path_params["step"]
        if record is None or not _STEP.fullmatch(step):
            return None, None
        found = [g for g in views.gates(record, full=True) if step in (str(g.step), g.step_id)]
        return record, (found[0] if found else None)

    def question_of(request: Request) -> views.Question | None:
        record = record_of(request)
        step = request.path_params["step"]
        if record is None or not _STEP.fullmatch(step):
            return None
        found = [q for q in views.questions(record) if step in (str(q.step), q.step_id)]
        return found[0] if found else None

    async def question(request: Request, session: LoginSession) -> Response:
        found = await asyncio.to_thread(question_of, request)
        if found is None:
            why = "This question is not waiting for an answer (any more)."
            return page(request, "error.html", 404, session=session, message=why)
        return page(request, "question.html", session=session, q=found,
                    may=session.identity.holds(found.role))  # fmt: skip

    async def question_post(
        request: Request, session: LoginSession, fields: dict[str, str]
    ) -> Response:
        run_id = request.path_params["run_id"]
        outcome = await answer_question(config.runs_dir, run_id, request.path_params["step"],
                                        fields.get("answer", "").strip()[:MAX_COMMENT],
                                        session.identity, config.send)  # fmt: skip
        if outcome.status != 202:
            return page(request, "error.html", outcome.status, session=session,
                        message=outcome.message)  # fmt: skip
        return RedirectResponse(f"/console/runs/{quote(run_id)}", status_code=303)

    async def gate(request: Request, session: LoginSession) -> Response:
        record, found = await asyncio.to_thread(gate_of, request)
        if found is None:
            return page(request, "error.html", 404, session=session,
                        message="This gate is not waiting for a decision (any more).")  # fmt: skip
        return page(request, "gate.html", session=session, gate=found,
                    shown=shown_digest(found.code), trigger=record.start.get("trigger") or {},
                    may=session.identity.holds(found.role))  # fmt: skip

    async def gate_post(
        request: Request, session: LoginSession, fields: dict[str, str]
    ) -> Response:
        decision = {"approve": "approved", "deny": "denied"}.get(fields.get("decision", ""), "")
        outcome = await decide(
            config.runs_dir,
            request.path_params["run_id"],
            request.path_params["step"],
            decision,
            session.identity,
            fields.get("comment", "")[:MAX_COMMENT] or None,
            config.send,
            shown=fields.get("shown", ""),
        )
        if outcome.status != 202:
            return page(request, "error.html", outcome.status, session=session,
                        message=outcome.message)  # fmt: skip
        return RedirectResponse(f"/console/runs/{quote(request.path_params['run_id'])}",
                                status_code=303)  # fmt: skip

    # --- the API -------------------------------------------------------------------------------

    def token_identity(request: Request) -> Identity | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return config.users.check_token(token.strip(), config.roles)

    async def api_decide(request: Request) -> Response:
        who = token_identity(request)
        if who is None:
            return _json(Outcome(401, "a user's API token is required (Authorization: Bearer "
                                      "TOKEN; `runbook users token NAME` makes one)"))  # fmt: skip
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("step"), str | int):
            return _json(Outcome(400, 'the body is {"step": ..., "decision": "approved"|'
                                      '"denied", "comment": ...}'))  # fmt: skip
        ref = request.path_params["run_id"]
        if not _RUN_ID.fullmatch(ref):
            return _json(Outcome(400, "a run id is letters, digits, dashes and dots"))
        comment = body.get("comment")
        outcome = await decide(
            config.runs_dir, ref, str(body["step"]), str(body.get("decision") or ""), who,
            str(comment)[:MAX_COMMENT] if comment else None, config.send,
            shown=str(body["shown"]) if body.get("shown") else None,
        )  # fmt: skip
        return _json(outcome)

    async def api_answer(request: Request) -> Response:
        """`POST /api/runs/{id}/answers` `{"step": ..., "answer": ...}`: a decision step's
        answer, by the token's user."""
        who = token_identity(request)
        if who is None:
            return _json(Outcome(401, "a user's API token is required (Authorization: Bearer "
                                      "TOKEN; `runbook users token NAME` makes one)"))  # fmt: skip
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if (not isinstance(body, dict) or not isinstance(body.get("step"), str | int)
                or not isinstance(body.get("answer"), str | int | float)):  # fmt: skip
            return _json(Outcome(400, 'the body is {"step": ..., "answer": ...}'))
        ref = request.path_params["run_id"]
        if not _RUN_ID.fullmatch(ref):
            return _json(Outcome(400, "a run id is letters, digits, dashes and dots"))
        outcome = await answer_question(config.runs_dir, ref, str(body["step"]),
                                        str(body["answer"]), who, config.send)  # fmt: skip
        return _json(outcome)

    async def api_act(request: Request) -> Response:
        """`POST /api/runs/{id}/actions` `{"action": "cancel"|"resume"|"skip", "comment": ...}`:
        a person acts on a run with their own token (journaled as them; the service token's
        `/api/runs/{id}/cancel` is for automation)."""
        who = token_identity(request)
        if who is None:
            return _json(Outcome(401, "a user's API token is required (Authorization: Bearer "
                                      "TOKEN; `runbook users token NAME` makes one)"))  # fmt: skip
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("action"), str):
            return _json(Outcome(400, 'the body is {"action": "cancel"|"resume"|"skip", '
                                      '"comment": ...}'))  # fmt: skip
        comment = body.get("comment")
        return _json(await _act(request.path_params["run_id"], body["action"], who,
                                str(comment) if comment else None))  # fmt: skip

    return [
        Route("/console", home, methods=["GET"]),
        Route("/console/", home, methods=["GET"]),
        Route("/console/login", login_page, methods=["GET"]),
        Route("/console/login", login, methods=["POST"]),
        Route("/console/logout", checked_post(logout), methods=["POST"]),
        Route("/console/alerts", signed_in(alerts), methods=["GET"]),
        Route("/console/alerts/{index}/route", checked_post(route_again), methods=["POST"]),
        Route("/console/runs", signed_in(runs), methods=["GET"]),
        Route("/console/runs/{run_id}", signed_in(run), methods=["GET"]),
        Route("/console/runs/{run_id}/live", signed_in(live), methods=["GET"]),
        Route("/console/runs/{run_id}/report", signed_in(report), methods=["GET"]),
        Route("/console/runs/{run_id}/gates/{step}", signed_in(gate), methods=["GET"]),
        Route("/console/runs/{run_id}/gates/{step}", checked_post(gate_post), methods=["POST"]),
        Route("/console/runs/{run_id}/questions/{step}", signed_in(question), methods=["GET"]),
        Route(
            "/console/runs/{run_id}/questions/{step}", checked_post(question_post), methods=["POST"]
        ),
        Route("/console/runs/{run_id}/{action:str}", checked_post(run_action), methods=["POST"]),
        Route("/console/inbox", signed_in(inbox), methods=["GET"]),
        Route("/api/runs/{run_id}/decisions", api_decide, methods=["POST"]),
        Route("/api/runs/{run_id}/answers", api_answer, methods=["POST"]),
        Route("/api/runs/{run_id}/actions", api_act, methods=["POST"]),
        Mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static"),
    ]


def _next(request: Request, given: str | None = None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    target = given if given is not None else request.query_params.get("next", "")
    if target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console/inbox"


def _json(outcome: Outcome) -> JSONResponse:
    body: dict[str, Any] = {"version": 1, "message": outcome.message}
    if outcome.status >= 400:
        body["error"] = outcome.message
    if outcome.verdict is not None:
        v = outcome.verdict
        body["decision"] = {"step": v.step, "decision": v.decision, "by": v.by, "role": v.role,
                            "auth": v.auth}  # fmt: skip
    return JSONResponse(body, status_code=outcome.status)
