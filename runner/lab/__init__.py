"""The lab: a simulated SOC environment the example runbooks run against.

An HTTP JSON API on 127.0.0.1 standing in for the outside systems a response touches: EDR,
identity provider, firewall, ticketing, threat intel, backups, service health and cloud
configuration, plus ``/api/_lab`` to inspect state, inject faults and reset. State lives in
SQLite and survives restarts; a reset restores the seeded scenario. Routes are documented in
each family's module (``edr``, ``idp``, ``firewall``, ``tickets``, ``intel``, ``backups``,
``services``, ``cloud``, ``control``) and in ``docs/lab.md``.
"""

from __future__ import annotations

from runner.lab.app import create_app, reset_db
from runner.lab.server import DEFAULT_DB, DEFAULT_PORT, LabServer, serve

__all__ = ["DEFAULT_DB", "DEFAULT_PORT", "LabServer", "create_app", "reset_db", "serve"]
