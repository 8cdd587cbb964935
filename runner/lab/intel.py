"""Threat intelligence: verdicts on IP addresses, domains and file hashes from the shipped feed.

Routes (under ``/api/intel``, bearer token required):

- ``GET /lookup?type=ip|domain|hash&value=...``: ``{"type", "value", "verdict":
  "malicious"|"suspicious"|"benign"|"unknown", "score": 0-100, "tags": [...], "first_seen",
  "source"}``. A value absent from the feed is ``unknown`` with score 0, not an error.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runner.lab.api import LabError, reply
from runner.lab.seed import intel_feed

TYPES = ("ip", "domain", "hash")


async def lookup(request: Request) -> JSONResponse:
    kind = request.query_params.get("type", "")
    value = request.query_params.get("value", "").strip().lower()
    if kind not in TYPES:
        raise LabError(400, f"'type' must be one of {', '.join(TYPES)}; got {kind!r}")
    if not value:
        raise LabError(400, "'value' is required, e.g. /api/intel/lookup?type=ip&value=8.8.8.8")
    for item in intel_feed():
        if item["type"] == kind and item["value"].lower() == value:
            return reply({**item, "source": "lab-threat-feed"})
    return reply(
        {
            "type": kind,
            "value": value,
            "verdict": "unknown",
            "score": 0,
            "tags": [],
            "first_seen": None,
            "source": "lab-threat-feed",
        }
    )


ROUTES = [Route("/lookup", lookup)]
