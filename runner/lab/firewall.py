"""Perimeter firewall / DNS filter: block lists of IP addresses and domains.

Routes (all under ``/api/firewall``, bearer token required):

- ``GET    /rules?type=ip|domain&value=``: block rules.
- ``POST   /rules`` ``{"type": "ip"|"domain", "value": "...", "reason": "..."}``: block;
  201 with the new rule, or 200 with the existing one when the value is already blocked
  (``created`` tells which). Internal, loopback and link-local addresses are refused (422):
  blocking them would cut off our own systems.
- ``DELETE /rules/{id}``: unblock: ``{"deleted": "fw-0003"}``.
"""

from __future__ import annotations

import ipaddress
import re

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runner.lab.api import LabError, body_of, need_str, opt_str, path_id, reply, store_of
from runner.lab.store import now_iso

# Our own address space. Not `ip_address.is_private`: that also covers the documentation
# ranges (203.0.113.0/24...) the scenario uses for attackers.
INTERNAL_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "0.0.0.0/8",
    )
)
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def normalise(kind: str, value: str) -> str:
    """The canonical form of a value to block, or a 422 saying why it cannot be blocked."""
    if kind == "domain":
        domain = value.strip().lower().rstrip(".")
        if not _DOMAIN_RE.match(domain):
            raise LabError(422, f"{value!r} is not a domain name (e.g. bad.example)")
        return domain
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError as exc:
        raise LabError(422, f"{value!r} is not an IP address or CIDR range") from exc
    if any(
        network.version == inner.version and network.overlaps(inner) for inner in INTERNAL_NETWORKS
    ):
        raise LabError(
            422,
            f"refusing to block internal address {value!r}; isolate the host in the EDR instead",
        )
    return str(network.network_address) if network.num_addresses == 1 else str(network)


async def list_rules(request: Request) -> JSONResponse:
    q = request.query_params
    rules = [
        r
        for r in store_of(request).all("firewall_rule")
        if q.get("type") in (None, "", r["type"]) and q.get("value") in (None, "", r["value"])
    ]
    return reply({"rules": rules})


async def add_rule(request: Request) -> JSONResponse:
    store = store_of(request)
    body = await body_of(request)
    kind = need_str(body, "type", choices=("ip", "domain"))
    value = normalise(kind, need_str(body, "value"))
    reason = need_str(body, "reason")
    for rule in store.all("firewall_rule"):
        if rule["type"] == kind and rule["value"] == value:
            return reply({**rule, "created": False})
    rule = {
        "id": f"fw-{store.next_number('firewall_rule', 3):04d}",
        "type": kind,
        "value": value,
        "action": "block",
        "reason": reason,
        "created_by": opt_str(body, "created_by", "runbook"),
        "created_at": now_iso(),
    }
    store.put("firewall_rule", rule)
    return reply({**rule, "created": True}, 201)


async def delete_rule(request: Request) -> JSONResponse:
    rule_id = path_id(request)
    if not store_of(request).delete("firewall_rule", rule_id):
        raise LabError(404, f"no firewall rule {rule_id!r}; GET /api/firewall/rules lists them")
    return reply({"deleted": rule_id})


ROUTES = [
    Route("/rules", list_rules),
    Route("/rules", add_rule, methods=["POST"]),
    Route("/rules/{id}", delete_rule, methods=["DELETE"]),
]
