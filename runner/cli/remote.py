"""`--server URL`: the CLI deciding on, answering or acting on a run of the service, as the user
whose API token is in ``$RUNBOOK_TOKEN`` (never a typed name: the service knows who it is).

`approve|deny RUN STEP --server`, `answer RUN STEP VALUE --server`, `resume RUN --server
[--skip]` and `cancel RUN --server` post to the console's API for people; what the service
answers is said as it is, and a refusal (the role, the two-person rule, a quorum's same person
twice) is exit 1, bad input exit 2.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import click

from runner.cli import EXIT_FAILED, EXIT_OK
from runner.errors import UsageError

TOKEN_ENV = "RUNBOOK_TOKEN"


def decide_remote(
    server: str, run: str, step: str, decision: str, by: str | None, role: str | None,
    comment: str | None,
) -> int:  # fmt: skip
    _no_typed_identity(by, role)
    body = {"step": step, "decision": decision, "comment": comment}
    return _post(server, run, "decisions", body, "the service resumes the run")


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


def _post(server: str, run: str, what: str, body: dict[str, Any], after: str) -> int:
    import httpx

    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(
            f"--server needs your API token in ${TOKEN_ENV} (`runbook users token NAME` on the "
            "service makes one)"
        )
    if not server.startswith(("http://", "https://")):
        raise UsageError(f"--server {server!r}: give the service's http(s) address")
    url = f"{server.rstrip('/')}/api/runs/{quote(run, safe='')}/{what}"
    try:
        answer = httpx.post(
            url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot reach the service at {server}: {exc}") from None
    try:
        said = str(answer.json().get("message") or answer.text)
    except ValueError:
        said = answer.text
    if answer.status_code == 202:
        click.echo(f"{said}; {after}" if after else said)
        return EXIT_OK
    if answer.status_code in (400, 401, 404):
        raise UsageError(f"the service refused ({answer.status_code}): {said}")
    click.echo(f"refused ({answer.status_code}): {said}", err=True)
    return EXIT_FAILED
