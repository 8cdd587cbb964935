"""`runbook route`: which runbook each alert of a payload would start, with which inputs.

Runs nothing: it reads the payload, normalises it, routes every alert and prints the outcome.
Exit statuses (docs/cli.md): 0 every alert routed, 1 at least one unrouted, 2 unusable input
(the payload, a runbook folder, the command line).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from runner.cli import EXIT_FAILED, EXIT_OK, cli, err_console, format_option
from runner.errors import UsageError
from runner.routing.detect import NAMES
from runner.routing.envelope import Alert
from runner.routing.limits import MAX_BYTES, AlertError
from runner.text.terminal import visible

ROUTE_HELP = """
\b
Exit statuses:
  0    every alert in the payload is routed to a runbook
  1    at least one alert is unrouted (no runbook matches, two match at one priority,
       or the matching runbook lacks an input the alert does not give)
  2    unusable input: malformed, oversized, deeply nested or non-UTF-8 payload,
       unknown format, a runbook folder that does not exist
"""

alert_format_option = click.option(
    "--alert-format",
    type=click.Choice(NAMES),
    default=None,
    help="The payload's format; detected from the payload when not given (generic never is).",
)


def read_payload(source: str) -> tuple[bytes, str]:
    """The payload's bytes from a file or `-` (stdin), read no further than the size limit."""
    if source == "-":
        return sys.stdin.buffer.read(MAX_BYTES + 1), "<stdin>"
    path = Path(source)
    if not path.is_file():
        raise UsageError(f"{source}: no such file")
    with path.open("rb") as fh:
        return fh.read(MAX_BYTES + 1), source


def parse_headers(headers: Sequence[str]) -> dict[str, str]:
    out = {}
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"--header expects 'NAME: VALUE', got {header!r}")
        out[name.strip()] = value.strip()
    return out


def load_alerts(source: str, alert_format: str | None, headers: Sequence[str] = ()) -> list[Alert]:
    """The payload's alerts; with `ce-*` headers, the payload is a binary-mode CloudEvent."""
    from runner.routing.detect import normalise, read_alerts

    data, where = read_payload(source)
    given = parse_headers(headers)
    if not any(k.lower().startswith("ce-") for k in given):
        return read_alerts(data, where, alert_format)
    from runner.routing.formats.cloudevents import from_binary
    from runner.routing.limits import decode_text, parse_json

    body = parse_json(decode_text(data, where), where)
    return normalise(from_binary(given, body), where, "cloudevents")


ENV_PREFIX = "RUNBOOK_INPUT_"


def _given(pairs: Sequence[str]) -> dict[str, str]:
    """The values the intake gives every triggered run: RUNBOOK_INPUT_<NAME> in the environment
    (as `runbook run` reads them), then -i NAME=VALUE. Secrets among them are never used."""
    out = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in os.environ.items()
        if key.startswith(ENV_PREFIX) and len(key) > len(ENV_PREFIX)
    }
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"-i expects NAME=VALUE, got {pair!r}")
        out[name.strip()] = value
    return out


@cli.command("route", epilog=ROUTE_HELP)
@click.argument("alert")
@click.option(
    "--runbooks",
    "runbook_paths",
    multiple=True,
    metavar="PATH",
    help="Runbook files or folders to route among (repeatable) [default: runbooks].",
)
@alert_format_option
@click.option("--explain", is_flag=True, help="Also say why every other runbook did not match.")
@click.option(
    "-i",
    "--input",
    "pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="A value the intake gives every triggered run, such as base_url (repeatable; "
    "never a secret).",
)
@click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="An HTTP header of the request, for CloudEvents in binary mode (ce-id, ce-source...).",
)
@format_option
def route_command(
    alert: str,
    runbook_paths: tuple[str, ...],
    alert_format: str | None,
    explain: bool,
    pairs: tuple[str, ...],
    headers: tuple[str, ...],
    output_format: str,
) -> int:
    """Route the alerts of ALERT (a file, or - for stdin) to runbooks, without running any."""
    from runner.routing.catalog import load_runbooks
    from runner.routing.output import OUTPUT_VERSION, route_json, route_lines
    from runner.routing.route import Router

    given = _given(pairs)
    books, skipped = load_runbooks(list(runbook_paths) or ["runbooks"])
    named = {p.partition("=")[0].strip() for p in pairs}
    secret = sorted({i.name for b in books for i in b.metadata.inputs if i.secret} & named)
    if secret:
        raise UsageError(
            f"-i {secret[0]}: that input is secret, and secrets are never given on the command "
            "line or taken from an alert; the intake supplies them"
        )
    for skip in skipped:
        err_console.print(
            f"skipped {visible(str(skip.path))}: {visible(skip.reason)}", markup=False
        )
    try:
        alerts = load_alerts(alert, alert_format, headers)
    except AlertError as exc:
        exc.message = f"{exc.message} (nothing was routed)"
        raise
    router = Router(books)
    routes = [router.route(a, given, explain=explain) for a in alerts]
    if output_format == "json":
        data = {"version": OUTPUT_VERSION, "alerts": [route_json(r) for r in routes]}
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        for n, route in enumerate(routes, 1):
            click.echo("\n".join(visible(line) for line in route_lines(route, n, len(routes))))
        unrouted = sum(not r.routed for r in routes)
        click.echo(
            f"{len(routes)} alert(s): {len(routes) - unrouted} routed, {unrouted} unrouted",
            err=True,
        )
    return EXIT_OK if all(r.routed for r in routes) else EXIT_FAILED


__all__ = ["alert_format_option", "load_alerts", "route_command"]
