"""The lab's Starlette application: every API family mounted under ``/api`` behind the gate.

``GET /health`` answers ``{"status": "ok"}`` without a token; everything under ``/api/``
needs ``Authorization: Bearer <token>``. Errors are always JSON ``{"error": "..."}``.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from runner.lab import (
    backups,
    cloud,
    control,
    ec2,
    edr,
    etcd,
    firewall,
    idp,
    intel,
    services,
    tickets,
)
from runner.lab.api import LabError, reply
from runner.lab.middleware import LabMiddleware
from runner.lab.seed import seed
from runner.lab.store import Store

FAMILIES: tuple[tuple[str, list[Route]], ...] = (
    ("/api/edr", edr.ROUTES),
    ("/api/idp", idp.ROUTES),
    ("/api/firewall", firewall.ROUTES),
    ("/api/tickets", tickets.ROUTES),
    ("/api/intel", intel.ROUTES),
    ("/api/backups", backups.ROUTES),
    ("/api/services", services.ROUTES),
    ("/api/cloud", cloud.ROUTES),
    ("/api/etcd", etcd.ROUTES),
    ("/api/ec2", ec2.ROUTES),
    ("/api/_lab", control.ROUTES),
)


def _routes() -> list[BaseRoute]:
    # Flat routes with full paths rather than Mounts: `/api/tickets` must answer without a
    # redirect to `/api/tickets/`, since runbooks call it with plain `curl -f` (no -L).
    routes: list[BaseRoute] = [Route("/health", health)]
    for prefix, family in FAMILIES:
        for route in family:
            path = (prefix + route.path).rstrip("/")
            routes.append(Route(path, route.endpoint, methods=route.methods))
    return routes


async def health(request: Request) -> JSONResponse:
    return reply({"status": "ok"})


async def _lab_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LabError)
    return JSONResponse({"error": exc.message}, status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {
        404: f"no such route: {request.method} {request.url.path}",
        405: f"method {request.method} not allowed on {request.url.path}",
    }
    text = message.get(exc.status_code, str(exc.detail))
    return JSONResponse({"error": text}, status_code=exc.status_code, headers=exc.headers)


def open_store(db_path: Path) -> Store:
    """The store at `db_path`, seeded first if it has never been."""
    store = Store(db_path)
    if store.meta("seeded_at") is None:
        seed(store)
    return store


def create_app(db_path: Path, token: str) -> Starlette:
    """The lab app over the database at `db_path` (created and seeded when new)."""
    if not token:
        raise ValueError("the lab needs a non-empty token")
    store = open_store(Path(db_path))
    app = Starlette(
        routes=_routes(),
        middleware=[Middleware(LabMiddleware, store=store, token=token)],
        exception_handlers={LabError: _lab_error, HTTPException: _http_error},
    )
    app.state.store = store
    return app


def reset_db(db_path: Path) -> None:
    """Restore the seeded scenario in the database at `db_path`."""
    store = Store(Path(db_path))
    try:
        seed(store)
    finally:
        store.close()
