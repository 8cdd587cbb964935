"""The console's routes, mounted by `runbook serve` beside the intake (same port).

Pages under ``/console/`` want a signed-in session (every POST its CSRF token); the JSON API
beside them (``api``) wants a user's API token. Both decide through ``decisions`` and act
through ``actions``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
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
from runner.console.actions import ACTIONS, APPLIES
from runner.console.api import api_routes
from runner.console.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    LoginLimiter,
    new_login_token,
    same,
    set_cookie,
)
from runner.console.config import MAX_COMMENT, RUN_ID, STEP, ConsoleConfig, act_on
from runner.console.decisions import (
    answer_question,
    decide,
    shown_digest,
    workflow_of,
)
from runner.format.syntax import page_slug
from runner.identity.store import SESSION_TTL, LoginSession
from runner.runs.store import find_run, load_run

HERE = Path(__file__).parent
#: Seconds between looks at a journal while a page follows it.
TAIL_EVERY = 0.25
MAX_FORM = 64 * 1024
_HEADERS = {
    # Nothing from elsewhere, no inline script: an injected <script> would not run even if an
    # escape were missed.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


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
        # Reading the intake's records is file work: off the event loop the intake shares.
        rows = await asyncio.to_thread(views.alerts, config.state_dir)
        return page(request, "alerts.html", session=session, alerts=rows, outcomes=views.OUTCOMES,
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
        if not RUN_ID.fullmatch(ref):
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
                    page_slug=page_slug,
                    actions=actions if config.act is not None else [], **context)  # fmt: skip

    async def run_action(
        request: Request, session: LoginSession, fields: dict[str, str]
    ) -> Response:
        run_id, kind = request.path_params["run_id"], request.path_params["action"]
        outcome = await act_on(config, run_id, kind, session.identity, fields.get("comment"))
        if outcome.status != 202:
            return page(request, "error.html", outcome.status, session=session,
                        message=outcome.message)  # fmt: skip
        return RedirectResponse(f"/console/runs/{quote(run_id)}", status_code=303)

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
        if record is None or not STEP.fullmatch(step):
            return None, None
        return record, views.gate_named(record, step)

    def question_of(request: Request) -> views.Question | None:
        record = record_of(request)
        step = request.path_params["step"]
        if record is None or not STEP.fullmatch(step):
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

    return [
        *api_routes(config),
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
        Mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static"),
    ]


def _next(request: Request, given: str | None = None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    target = given if given is not None else request.query_params.get("next", "")
    if target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console/inbox"
