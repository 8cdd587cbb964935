"""What every lab route shares: the error type, JSON in and out, and lookups that 404.

Handlers raise :class:`LabError`; the app turns it into ``{"error": "..."}`` with its status, so
a runbook's ``curl -f`` fails and its ``jq`` sees a message saying what to fix.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from runner.lab.store import Doc, Store


class LabError(Exception):
    """A request the lab refuses: becomes an HTTP error with a JSON body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def reply(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


async def body_of(request: Request) -> Doc:
    """The request's JSON object; an empty body counts as `{}`."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise LabError(400, f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise LabError(400, 'request body must be a JSON object, e.g. {"reason": "..."}')
    try:
        # "\ud800" parses to a lone surrogate, which no UTF-8 response can carry: stored, it
        # would make every later listing of its kind fail.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise LabError(
            400, "request body holds a lone UTF-16 surrogate (\\ud800-\\udfff)"
        ) from None
    return data


def need_str(body: Doc, key: str, *, choices: tuple[str, ...] = ()) -> str:
    """A required, non-empty string field (optionally one of `choices`)."""
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise LabError(422, f"field {key!r} is required and must be a non-empty string")
    if choices and value not in choices:
        raise LabError(422, f"field {key!r} must be one of {', '.join(choices)}; got {value!r}")
    return value.strip()


def opt_str(body: Doc, key: str, default: str = "") -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise LabError(422, f"field {key!r} must be a string")
    return value


def path_id(request: Request, name: str = "id") -> str:
    return str(request.path_params[name])


def fetch(store: Store, kind: str, id_: str, label: str) -> Doc:
    """The document, or a 404 naming what was not found and how to list what exists."""
    doc = store.get(kind, id_)
    if doc is None:
        raise LabError(404, f"no {label} {id_!r}; list them to see valid ids")
    return doc


def query_bool(request: Request, key: str) -> bool | None:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return None
    low = raw.lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise LabError(400, f"query parameter {key!r} must be true or false; got {raw!r}")


def public(doc: Doc, *hidden: str) -> Doc:
    """A copy without the simulator's private fields (ground truth a real API would not show)."""
    return {k: v for k, v in doc.items() if k not in hidden and not k.startswith("_")}
