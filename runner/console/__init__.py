"""The service's web console: sign-in, alerts, runs (live), the inbox of gates waiting for the
signed-in user's roles, and the approval page; plus the decisions API the CLI talks to.

Served by `runbook serve` on the intake's port, offline (no CDN). Server-rendered with Jinja2
(autoescape on: every value from a runbook, an alert or a step's output is escaped), a little
JavaScript that writes only text nodes.
"""
