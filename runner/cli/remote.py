"""`runbook approve|deny RUN STEP --server URL`: a decision through the service, as the user
whose API token is in ``$RUNBOOK_TOKEN`` (never a typed name: the service knows who it is)."""

from __future__ import annotations

import os
from urllib.parse import quote

import click

from runner.cli import EXIT_FAILED, EXIT_OK
from runner.errors import UsageError

TOKEN_ENV = "RUNBOOK_TOKEN"


def decide_remote(
    server: str, run: str, step: str, decision: str, by: str | None, role: str | None,
    comment: str | None,
) -> int:  # fmt: skip
    import httpx

    if by or role:
        raise UsageError(
            "with --server the service records who decides from the token, and the role from "
            "the roles file: leave out --by and --role"
        )
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(
            f"--server needs your API token in ${TOKEN_ENV} (`runbook users token NAME` on the "
            "service makes one)"
        )
    url = f"{server.rstrip('/')}/api/runs/{quote(run, safe='')}/decisions"
    try:
        answer = httpx.post(
            url,
            json={"step": step, "decision": decision, "comment": comment},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot reach the service at {server}: {exc}") from None
    try:
        said = str(answer.json().get("message") or answer.text)
    except ValueError:
        said = answer.text
    if answer.status_code == 202:
        click.echo(f"{said}; the service resumes the run")
        return EXIT_OK
    if answer.status_code in (400, 401, 404):
        raise UsageError(f"the service refused ({answer.status_code}): {said}")
    click.echo(f"refused ({answer.status_code}): {said}", err=True)
    return EXIT_FAILED
