"""Identity provider: users, their sessions and MFA, and the sign-in log.

Routes (all under ``/api/idp``, bearer token required):

- ``GET  /users?enabled=true|false``: directory users.
- ``GET  /users/{id}``: one user: ``enabled``, ``mfa_enrolled``, ``mfa_methods``,
  ``must_change_password``, ``sessions`` (id, ip, country, app, started_at), ``phone``.
- ``POST /users/{id}/disable`` ``{"reason": "..."}``: block sign-in; idempotent (``changed``).
- ``POST /users/{id}/enable``: allow sign-in again; idempotent.
- ``POST /users/{id}/revoke-sessions``: end every session: ``{"revoked": N, ...}``.
- ``POST /users/{id}/reset-mfa``: remove every MFA method; the user re-enrols at next sign-in.
- ``POST /users/{id}/reset-password``: expire the password and mail a reset link
  (no password is ever returned): ``must_change_password`` becomes true.
- ``GET  /signins?user=&result=success|failure&ip=&since=``: sign-in log, oldest first.
  ``since`` is an ISO time (``2024-06-01T10:00:00Z``) or a look-back such as ``30m``, ``1h``,
  ``24h``, ``7d``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runner.lab.api import LabError, body_of, fetch, opt_str, path_id, query_bool, reply, store_of
from runner.lab.store import Doc, now_iso

_LOOKBACK_RE = re.compile(r"^(\d+)([mhd])$")
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 1440}


def parse_since(text: str) -> str:
    """An ISO timestamp (same format as stored ones, so strings compare in time order)."""
    match = _LOOKBACK_RE.match(text.strip())
    if match:
        minutes = int(match[1]) * _UNIT_MINUTES[match[2]]
        return (datetime.now(UTC) - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise LabError(
            400, f"'since' must be an ISO time or a look-back like 30m, 1h, 7d; got {text!r}"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user(request: Request) -> Doc:
    return fetch(store_of(request), "user", path_id(request), "user")


async def list_users(request: Request) -> JSONResponse:
    enabled = query_bool(request, "enabled")
    users = [u for u in store_of(request).all("user") if enabled in (None, u["enabled"])]
    return reply({"users": users})


async def get_user(request: Request) -> JSONResponse:
    return reply(_user(request))


async def _set_enabled(request: Request, enabled: bool) -> JSONResponse:
    user = _user(request)
    body = await body_of(request)
    changed = user["enabled"] != enabled
    if changed:
        user["enabled"] = enabled
        user["disabled_reason"] = "" if enabled else opt_str(body, "reason")
        user["enabled_changed_at"] = now_iso()
        store_of(request).put("user", user)
    return reply({**user, "changed": changed})


async def disable(request: Request) -> JSONResponse:
    return await _set_enabled(request, False)


async def enable(request: Request) -> JSONResponse:
    return await _set_enabled(request, True)


async def revoke_sessions(request: Request) -> JSONResponse:
    user = _user(request)
    revoked = len(user["sessions"])
    user.update(sessions=[], sessions_revoked_at=now_iso())
    store_of(request).put("user", user)
    return reply({**user, "revoked": revoked})


async def reset_mfa(request: Request) -> JSONResponse:
    user = _user(request)
    removed = list(user["mfa_methods"])
    user.update(mfa_enrolled=False, mfa_methods=[], mfa_reset_at=now_iso())
    store_of(request).put("user", user)
    return reply({**user, "removed_methods": removed})


async def reset_password(request: Request) -> JSONResponse:
    user = _user(request)
    user.update(must_change_password=True, password_reset_at=now_iso())
    store_of(request).put("user", user)
    return reply({**user, "reset_link_sent_to": user["email"]})


async def signins(request: Request) -> JSONResponse:
    q = request.query_params
    result = q.get("result") or None
    if result not in (None, "success", "failure"):
        raise LabError(400, f"'result' must be success or failure; got {result!r}")
    since = parse_since(q["since"]) if q.get("since") else None
    rows = [
        s
        for s in store_of(request).all("signin")
        if q.get("user") in (None, "", s["user_id"])
        and q.get("ip") in (None, "", s["ip"])
        and result in (None, s["result"])
        and (since is None or s["at"] >= since)
    ]
    rows.sort(key=lambda s: str(s["at"]))
    return reply({"signins": rows, "count": len(rows), "since": since})


ROUTES = [
    Route("/users", list_users),
    Route("/users/{id}", get_user),
    Route("/users/{id}/disable", disable, methods=["POST"]),
    Route("/users/{id}/enable", enable, methods=["POST"]),
    Route("/users/{id}/revoke-sessions", revoke_sessions, methods=["POST"]),
    Route("/users/{id}/reset-mfa", reset_mfa, methods=["POST"]),
    Route("/users/{id}/reset-password", reset_password, methods=["POST"]),
    Route("/signins", signins),
]
