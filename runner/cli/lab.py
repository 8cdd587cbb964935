"""`runbook lab`: serve the simulated SOC environment on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import click

from runner.cli import cli


@cli.command()
@click.option("--port", type=int, default=None, help="Port on 127.0.0.1 (default 8765).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite file holding the lab's state (default .runbook/lab/lab.db).",
)
@click.option("--reset", is_flag=True, help="Restore the seeded scenario before serving.")
@click.option(
    "--allow-non-loopback",
    is_flag=True,
    help="Bind an address other than loopback. The lab is a simulation: think twice.",
)
def lab(
    port: int | None, host: str, db_path: Path | None, reset: bool, allow_non_loopback: bool
) -> None:
    """Serve the lab: simulated EDR, identity, firewall, ticketing, intel, backups and services.

    Every /api/ request needs the bearer token, read from RUNBOOK_LAB_TOKEN or kept in
    .runbook/lab/token (mode 0600); it is never printed. Stop with Ctrl-C.
    """
    from runner.lab import DEFAULT_PORT, serve  # starlette and uvicorn load only for this command

    serve(
        host=host,
        port=port if port is not None else DEFAULT_PORT,
        db_path=db_path,
        reset=reset,
        allow_non_loopback=allow_non_loopback,
    )
