"""Ticketing: incident tickets with comments and a resolution.

Routes (all under ``/api/tickets``, bearer token required):

- ``GET  /api/tickets?status=open|resolved``: tickets, oldest first.
- ``POST /api/tickets`` ``{"title", "severity": "low|medium|high|critical", "description",
  "assignee", "runbook"}``: 201 with the ticket; ids run ``INC-1001``, ``INC-1002``...
- ``GET  /api/tickets/{id}``: one ticket with its comments.
- ``POST /api/tickets/{id}/comments`` ``{"text", "author"}``: 201 with the comment.
- ``POST /api/tickets/{id}/resolve`` ``{"resolution"}``: open -> resolved (409 if resolved).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runner.lab.api import LabError, body_of, fetch, need_str, opt_str, path_id, reply, store_of
from runner.lab.store import Doc, now_iso

SEVERITIES = ("low", "medium", "high", "critical")


def _ticket(request: Request) -> Doc:
    return fetch(store_of(request), "ticket", path_id(request), "ticket")


async def list_tickets(request: Request) -> JSONResponse:
    status = request.query_params.get("status") or None
    tickets = [t for t in store_of(request).all("ticket") if status in (None, t["status"])]
    return reply({"tickets": tickets})


async def create(request: Request) -> JSONResponse:
    store = store_of(request)
    body = await body_of(request)
    ticket = {
        "title": need_str(body, "title"),
        "severity": need_str(body, "severity", choices=SEVERITIES),
        "description": opt_str(body, "description"),
        "assignee": opt_str(body, "assignee", "soc"),
        "runbook": opt_str(body, "runbook"),
        "status": "open",
        "resolution": "",
        "comments": [],
        "created_at": now_iso(),
    }
    ticket["id"] = f"INC-{store.next_number('ticket', 1001)}"
    store.put("ticket", ticket)
    return reply(ticket, 201)


async def get(request: Request) -> JSONResponse:
    return reply(_ticket(request))


async def comment(request: Request) -> JSONResponse:
    ticket = _ticket(request)
    body = await body_of(request)
    note = {
        "n": len(ticket["comments"]) + 1,
        "text": need_str(body, "text"),
        "author": opt_str(body, "author", "runbook"),
        "at": now_iso(),
    }
    ticket["comments"].append(note)
    store_of(request).put("ticket", ticket)
    return reply({"ticket_id": ticket["id"], **note}, 201)


async def resolve(request: Request) -> JSONResponse:
    ticket = _ticket(request)
    body = await body_of(request)
    resolution = need_str(body, "resolution")
    if ticket["status"] == "resolved":
        raise LabError(409, f"ticket {ticket['id']} is already resolved")
    ticket.update(status="resolved", resolution=resolution, resolved_at=now_iso())
    store_of(request).put("ticket", ticket)
    return reply(ticket)


ROUTES = [
    Route("/", list_tickets),
    Route("/", create, methods=["POST"]),
    Route("/{id}", get),
    Route("/{id}/comments", comment, methods=["POST"]),
    Route("/{id}/resolve", resolve, methods=["POST"]),
]
