"""The gate in front of every route: token check, injected faults, and the audit log.

A plain ASGI middleware rather than Starlette's ``BaseHTTPMiddleware`` because it must see the
request body (to record it) without consuming it before the handler reads it.

Order matters: a request without a valid token gets 401 before any fault fires, so drills
count only authenticated calls; faults never apply to ``/api/_lab/`` so a drill can always
clear them; every request, refused or not, lands in the audit table, the lab token masked.

The body is read whole (at most ``MAX_BODY`` bytes, else 413) before any handler runs, and
handed to it from memory. A handler then never yields to the event loop between reading a
document and writing it back, so concurrent requests cannot interleave a read-modify-write
(lost comments, an alert closed three times). A handler that crashes answers a JSON 500 that
the audit log records too.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.responses import JSONResponse

from runner.lab.store import Doc, Store

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BODY_LIMIT = 4000  # characters of a request body kept in the audit log
MAX_BODY = 1 << 20  # bytes of a request body the lab accepts
_LAB_PREFIX = "/api/_lab/"
_log = logging.getLogger("runner.lab")


class _TooLarge(Exception):
    """The request body is over MAX_BODY."""


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
        status = [0]

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        fault_id: int | None = None
        raw = b""
        try:
            if _is_api(scope["path"]) and not self._authorised(scope):
                # Refused before its body is read: an unauthenticated client costs no memory.
                await _error(scope, receive, recording_send, 401, _NO_TOKEN)
            else:
                raw = await _read_body(receive)
                fault_id = await self._handle(scope, _replay(raw), recording_send)
        except _TooLarge:
            await _error(scope, receive, recording_send, 413, f"body over {MAX_BODY} bytes")
        except Exception as exc:
            _log.exception("lab handler failed")
            if not status[0]:
                message = f"the lab failed on this request ({type(exc).__name__}); see its log"
                await _error(scope, receive, recording_send, 500, message)
            status[0] = 500
        body = self._masked(raw[: _BODY_LIMIT * 4].decode("utf-8", "replace")[:_BODY_LIMIT])
        query = self._masked(scope.get("query_string", b"").decode("latin-1"))
        self.store.record_request(scope["method"], scope["path"], query, status[0], body, fault_id)

    def _authorised(self, scope: Scope) -> bool:
        return token_ok(_header(scope, b"authorization"), self.token)

    def _masked(self, text: str) -> str:
        # A token sent in a query string or a body must not be kept in the audit log.
        return text.replace(self.token, "***") if self.token in text else text

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> int | None:
        path: str = scope["path"]
        if not _is_api(path):
            await self.app(scope, receive, send)
            return None
        fault = None if path.startswith(_LAB_PREFIX) else self._fault_for(scope["method"], path)
        if fault is None:
            await self.app(scope, receive, send)
            return None
        self.store.consume_fault(int(fault["id"]))
        if fault["delay"]:
            await asyncio.sleep(float(fault["delay"]))
        if int(fault["status"]) >= 400:
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


_NO_TOKEN = (
    "missing or wrong token: send 'Authorization: Bearer <token>' (the token the lab printed "
    "at start)"
)


def _is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > MAX_BODY:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    """A receive that hands over the body already read, without suspending the handler."""
    sent = [False]

    async def receive() -> Message:
        if sent[0]:
            return {"type": "http.disconnect"}
        sent[0] = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _error(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    await JSONResponse({"error": message}, status_code=status)(scope, receive, send)
