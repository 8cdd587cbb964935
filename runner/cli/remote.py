"""`--server URL`: the CLI deciding on, answering or acting on a run of the service, as the user
whose API token is in ``$RUNBOOK_TOKEN`` (never a typed name: the service knows who it is).

`pending RUN STEP --server` (the gate as the approval page shows it), `approve|deny RUN STEP
--server` (the gate fetched first, shown and confirmed at a terminal, its digest sent with the
decision), `answer RUN STEP VALUE --server`, `resume RUN --server
[--skip]` and `cancel RUN --server` post to the console's API for people; what the service
answers is said as it is, and a refusal (the role, the two-person rule, a quorum's same person
twice) is exit 1, bad input exit 2.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import click

from runner.cli import EXIT_FAILED, EXIT_OK
from runner.errors import UsageError
from runner.text.terminal import visible

TOKEN_ENV = "RUNBOOK_TOKEN"


def decide_remote(
    server: str, run: str, step: str, decision: str, by: str | None, role: str | None,
    comment: str | None,
) -> int:  # fmt: skip
    """The decision, bound to the gate as the service shows it now: its digest goes with the
    decision, and a person at a terminal sees the gate and confirms before approving."""
    _no_typed_identity(by, role)
    shown = fetch_gate(server, run, step)
    if decision == "approved" and sys.stdin.isatty() and sys.stdout.isatty():
        click.echo(gate_text(shown))
        if not click.confirm(f"approve step {shown['gate']['step']}?", default=False):
            click.echo("not approved; nothing was sent", err=True)
            return EXIT_FAILED
    body = {"step": step, "decision": decision, "comment": comment, "shown": shown["shown"]}
    return _post(server, run, "decisions", body, "the service resumes the run")


def pending_remote(server: str, run: str, step: str | None, output_format: str) -> int:
    """`runbook pending RUN STEP --server`: the gate as the approval page shows it."""
    if not step:
        raise UsageError("with --server, name the gate: runbook pending RUN STEP --server URL")
    shown = fetch_gate(server, run, step)
    if output_format == "json":
        click.echo(json.dumps(shown, indent=2, ensure_ascii=False))
    else:
        click.echo(gate_text(shown))
    return EXIT_OK


def fetch_gate(server: str, run: str, step: str) -> dict[str, Any]:
    answer = _request("GET", server, f"{quote(run, safe='')}/gates/{quote(step, safe='')}")
    if answer.status_code != 200:
        raise UsageError(f"the service refused ({answer.status_code}): {_said(answer)}")
    found = answer.json()
    if not isinstance(found, dict) or not isinstance(found.get("gate"), dict):
        raise UsageError(f"the service at {server} answered something that is not a gate")
    return found


def _v(value: object) -> str:
    """A value from the run, shown on a terminal: control characters escaped."""
    return visible(str(value))


def gate_text(shown: Mapping[str, Any]) -> str:
    """The gate in plain text, every value from the run escaped for the terminal."""
    g = shown["gate"]
    head = f"needs {_v(g.get('role') or 'any approver')}"
    if int(g.get("needed") or 1) > 1:
        head += f", {len(g.get('approved_by') or [])} of {g.get('needed')} approvals"
    if g.get("expires"):
        head += f"; {_v(g.get('on_expiry'))} at {_v(g.get('expires'))}"
    lines = [f"{_v(g.get('runbook'))}: step {_v(g.get('step'))} {_v(g.get('title'))}", head]
    alert = shown.get("alert") or {}
    if alert.get("title"):
        lines.append(f"alert: {_v(alert.get('title'))} ({_v(alert.get('source'))}, "
                     f"{_v(alert.get('severity'))})")  # fmt: skip
    lines += ["", "code:", *("  " + _v(line) for line in str(g.get("code") or "").splitlines())]
    if g.get("values"):
        lines += ["", "values now:", *(f"  {_v(k)} = {_v(x)}" for k, x in g["values"].items())]
    lines += [f"warning: {_v(w)}" for w in g.get("warnings") or []]
    lines += ["", "evidence:"]
    for e in g.get("evidence") or []:
        lines.append(f"  {_v(e.get('step'))} {_v(e.get('title'))}: {_v(e.get('status'))}"
                     + (f" ({_v(e.get('why'))})" if e.get("why") else ""))  # fmt: skip
        lines += [f"    | {_v(t)}" for t in e.get("tail") or []]
    if not shown.get("may"):
        lines += ["", f"you do not hold role {_v(g.get('role'))}: a decision from you is refused"]
    return "\n".join(lines)


def answer_remote(server: str, run: str, step: str, value: str, by: str | None) -> int:
    _no_typed_identity(by, None)
    return _post(server, run, "answers", {"step": step, "answer": value},
                 "the service resumes the run")  # fmt: skip


def act_remote(server: str, run: str, action: str, comment: str | None) -> int:
    return _post(server, run, "actions", {"action": action, "comment": comment}, "")


def _no_typed_identity(by: str | None, role: str | None) -> None:
    if by or role:
        raise UsageError(
            "with --server the service records who decides from the token, and the role from "
            "the roles file: leave out --by and --role"
        )


def _request(method: str, server: str, path: str, body: dict[str, Any] | None = None) -> Any:
    import httpx

    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(
            f"--server needs your API token in ${TOKEN_ENV} (`runbook users token NAME` on the "
            "service makes one)"
        )
    if not server.startswith(("http://", "https://")):
        raise UsageError(f"--server {server!r}: give the service's http(s) address")
    url = f"{server.rstrip('/')}/api/runs/{path}"
    try:
        return httpx.request(method, url, json=body, timeout=60,
                             headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot reach the service at {server}: {exc}") from None


def _said(answer: Any) -> str:
    try:
        found = answer.json()
        said = found.get("message") or found.get("error") if isinstance(found, dict) else None
    except ValueError:
        said = None
    return visible(str(said or answer.text))


def _post(server: str, run: str, what: str, body: dict[str, Any], after: str) -> int:
    answer = _request("POST", server, f"{quote(run, safe='')}/{what}", body)
    said = _said(answer)
    if answer.status_code == 202:
        click.echo(f"{said}; {after}" if after else said)
        return EXIT_OK
    if answer.status_code in (400, 401, 404):
        raise UsageError(f"the service refused ({answer.status_code}): {said}")
    click.echo(f"refused ({answer.status_code}): {said}", err=True)
    return EXIT_FAILED
