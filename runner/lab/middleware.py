"""The gate in front of every route: token check, injected faults, and the audit log.

A plain ASGI middleware rather than Starlette's ``BaseHTTPMiddleware`` because it must see the
request body (to record it) without consuming it before the handler reads it.

Order matters: a request without a valid token gets 401 before any fault fires, so drills
count only authenticated calls; faults never apply to ``/api/_lab/`` so a drill can always
clear them; every request, refused or not, lands in the audit table.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.responses import JSONResponse

from .store import Doc, Store

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BODY_LIMIT = 4000  # characters of a request body kept in the audit log
_LAB_PREFIX = "/api/_lab/"


def fault_matches(fault: Doc, method: str, path: str) -> bool:
    """`route` is a path pattern matched segment by segment as a prefix; `{x}` or `*` is any
    one segment. `method` is an HTTP verb or `*`."""
    if fault["method"] not in ("*", method):
        return False
    want = [s for s in str(fault["route"]).split("/") if s]
    have = [s for s in path.split("/") if s]
    if len(want) > len(have):
        return False
    return all(
        w == "*" or (w.startswith("{") and w.endswith("}")) or w == h
        for w, h in zip(want, have, strict=False)
    )


def token_ok(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


class LabMiddleware:
    """Authenticates `/api/` requests, applies faults and records every request."""

    def __init__(self, app: ASGIApp, store: Store, token: str) -> None:
        self.app = app
        self.store = store
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        status = [0]

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        fault_id = await self._handle(scope, recording_receive, recording_send)
        body = b"".join(chunks).decode("utf-8", "replace")[:_BODY_LIMIT]
        query = scope.get("query_string", b"").decode("latin-1")
        self.store.record_request(scope["method"], scope["path"], query, status[0], body, fault_id)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> int | None:
        path: str = scope["path"]
        if not (path == "/api" or path.startswith("/api/")):
            await self.app(scope, receive, send)
            return None
        if not token_ok(_header(scope, b"authorization"), self.token):
            await _drain(receive)
            await _error(
                scope,
                receive,
                send,
                401,
                "missing or wrong token: send "
                "'Authorization: Bearer <token>' (the token the lab printed at start)",
            )
            return None
        fault = None if path.startswith(_LAB_PREFIX) else self._fault_for(scope["method"], path)
        if fault is None:
            await self.app(scope, receive, send)
            return None
        self.store.consume_fault(int(fault["id"]))
        if fault["delay"]:
            await asyncio.sleep(float(fault["delay"]))
        if int(fault["status"]) >= 400:
            await _drain(receive)
            await _error(
                scope,
                receive,
                send,
                int(fault["status"]),
                f"injected fault #{fault['id']} on {fault['method']} {fault['route']}",
            )
        else:
            await self.app(scope, receive, send)
        return int(fault["id"])

    def _fault_for(self, method: str, path: str) -> Doc | None:
        return next((f for f in self.store.faults() if fault_matches(f, method, path)), None)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


async def _drain(receive: Receive) -> None:
    """Read the body so it is recorded even when the handler never runs."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _error(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    await JSONResponse({"error": message}, status_code=status)(scope, receive, send)
