"""`runbook serve` and `runbook worker`: the response service on Temporal."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click

from runner.cli import EXIT_OK, cli, runs_dir_option
from runner.cli.routing import _given
from runner.errors import UsageError


def _announce(line: str) -> None:
    # One line each, flushed: a supervisor (or a test) reads them as they come.
    print(line, flush=True)


@cli.command("serve")
@click.option(
    "--runbooks",
    "runbooks",
    multiple=True,
    type=click.Path(path_type=Path),
    default=[Path("runbooks")],
    show_default=True,
    help="Runbook files or folders to route alerts among (repeatable).",
)
@runs_dir_option
@click.option("--host", default="127.0.0.1", show_default=True, help="The intake's address.")
@click.option("--port", type=int, default=8080, show_default=True, help="0 picks a free port.")
@click.option(
    "--temporal",
    metavar="HOST:PORT",
    help="An existing Temporal cluster; without it an embedded dev server is started.",
)
@click.option("--namespace", default="default", show_default=True)
@click.option("--task-queue", default="runbook-runs", show_default=True,
              help="The queue this service's runs go to; its workers poll only it.")  # fmt: skip
@click.option("--slots", type=click.IntRange(min=1), default=4, show_default=True,
              help="Runs this machine executes at once.")  # fmt: skip
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".runbook/service"),
    show_default=True,
    help="The dev server's database, the unrouted alerts.",
)
@click.option("-i", "--input", "pairs", multiple=True, metavar="NAME=VALUE",
              help="An input every triggered run gets (as RUNBOOK_INPUT_NAME does); never a "
              "secret: secrets come from the worker's environment.")  # fmt: skip
@click.option(
    "--sources",
    "sources_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Per-source credentials (tokens stored hashed, HMAC secrets from the environment).",
)
@click.option(
    "--secrets",
    "secrets_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Secret inputs for triggered runs: a YAML mapping, mode 0600, owned by this user.",
)
@click.option(
    "--notify",
    "notify_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Webhook targets for the runbooks' `notify:` names, and the console's URL (YAML).",
)
@click.option(
    "--heartbeat-timeout",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="How long a worker may go silent before its run counts as interrupted.",
)
@click.option("--roles", "roles_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Who holds each runbook role (YAML: `IR-lead: [alice, group:ir]`); without "
              "it nobody may decide at a gate through the service.")  # fmt: skip
@click.option("--docs-url", metavar="URL",
              help="The docs site (`make docs` / `mkdocs serve`): the console links each run to "
              "its runbook's page there.")  # fmt: skip
def serve_command(
    runbooks: tuple[Path, ...],
    runs_dir: Path | None,
    host: str,
    port: int,
    temporal: str | None,
    namespace: str,
    task_queue: str,
    slots: int,
    state_dir: Path,
    pairs: tuple[str, ...],
    sources_file: Path | None,
    secrets_file: Path | None,
    notify_file: Path | None,
    heartbeat_timeout: float,
    roles_file: Path | None,
    docs_url: str | None,
) -> int:
    """Take alerts over HTTP and run the runbooks they route to, on Temporal.

    Prints the intake's URL and its token (from $RUNBOOK_SERVICE_TOKEN when set, else a new
    one), then `ready`. Ctrl-C or SIGTERM stops it, and the embedded server with it.
    """
    from runner.identity.roles import load_roles
    from runner.runs.store import default_runs_dir
    from runner.service.secrets_file import load_secrets
    from runner.service.serve import TOKEN_ENV, ServiceConfig, serve, temporal_target
    from runner.service.sources import load_sources

    # Checked before anything starts: a bad file is exit 2, with the file and the entry.
    sources = load_sources(sources_file) if sources_file else {}
    secrets = load_secrets(secrets_file) if secrets_file else {}
    roles = load_roles(roles_file) if roles_file else None
    from runner.notify.config import load_notify

    notify = load_notify(notify_file) if notify_file else None
    if docs_url and not re.fullmatch(r"https?://[^\s\"'<>]+", docs_url):
        raise UsageError(f"--docs-url {docs_url!r}: give the site's http(s) address, e.g. "
                         "http://127.0.0.1:8000/")  # fmt: skip

    config = ServiceConfig(
        runbooks=list(runbooks),
        runs_dir=(runs_dir or default_runs_dir()).absolute(),
        state_dir=state_dir.absolute(),
        host=host,
        port=port,
        temporal=temporal,
        namespace=namespace,
        slots=slots,
        token=os.environ.get(TOKEN_ENV) or None,
        given=_given(pairs),
        heartbeat_timeout=heartbeat_timeout,
        task_queue=task_queue,
        sources=sources,
        secrets=secrets,
        roles=roles,
        notify=notify,
        docs_url=docs_url.rstrip("/") + "/" if docs_url else None,
    )
    with temporal_target(config) as target:
        asyncio.run(serve(config, target, _announce))
    return EXIT_OK


@cli.command("worker")
@click.option("--temporal", metavar="HOST:PORT", required=True, help="The Temporal cluster.")
@click.option("--namespace", default="default", show_default=True)
@click.option("--task-queue", default="runbook-runs", show_default=True)
@click.option("--slots", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--secrets", "secrets_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Secret inputs: a YAML mapping, mode 0600, owned by this user.")  # fmt: skip
def worker_command(
    temporal: str, namespace: str, task_queue: str, slots: int, secrets_file: Path | None
) -> int:
    """Run triggered runs for a service elsewhere (same runbooks and runs folder)."""
    from runner.service.secrets_file import load_secrets
    from runner.service.serve import connect, worker

    secrets = load_secrets(secrets_file) if secrets_file else {}

    async def main() -> None:
        client = await connect(temporal, namespace)
        with ThreadPoolExecutor(max_workers=slots, thread_name_prefix="run") as executor:
            _announce(f"worker: {temporal} (namespace {namespace}), {slots} slots")
            await worker(client, slots, executor, task_queue=task_queue, secrets=secrets).run()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    return EXIT_OK
