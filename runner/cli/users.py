"""`runbook users add|list|disable|token`: the service's users, in its state folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from runner.cli import EXIT_OK, cli, format_option

if TYPE_CHECKING:
    from runner.identity.store import UserStore

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".runbook/service"),
    show_default=True,
    help="The service's state folder (as given to `runbook serve`).",
)


@cli.group("users")
def users() -> None:
    """The people who sign in to the service's console and decide at its gates.

    Their runbook roles come from the roles file (`runbook serve --roles FILE`), which maps
    each role to users and to the groups given here.
    """


def _store(state_dir: Path) -> UserStore:
    from runner.identity.store import UserStore

    return UserStore(state_dir.absolute())


@users.command("add")
@click.argument("name")
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="GROUP",
    help="A group the user belongs to (repeatable), for `group:NAME` in the roles file.",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (for scripts).",
)
@state_dir_option
def add(name: str, groups: tuple[str, ...], password_stdin: bool, state_dir: Path) -> int:
    """Add user NAME; asks for their password (kept only as an argon2 hash)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    _store(state_dir).add(name, password, groups)
    click.echo(f"user {name} added" + (f" (groups: {', '.join(groups)})" if groups else ""))
    return EXIT_OK


@users.command("list")
@state_dir_option
@format_option
def list_users(state_dir: Path, output_format: str) -> int:
    """The users, their groups, whether they are disabled, and how many API tokens they have."""
    found = _store(state_dir).users()
    if output_format == "json":
        rows = [{"name": u.name, "groups": list(u.groups), "disabled": u.disabled,
                 "created": u.created, "tokens": u.tokens} for u in found]  # fmt: skip
        click.echo(json.dumps({"version": 1, "users": rows}, indent=2))
        return EXIT_OK
    if not found:
        click.echo("no users yet: `runbook users add NAME`")
    for u in found:
        state = "disabled" if u.disabled else "enabled"
        groups = ",".join(u.groups) or "-"
        click.echo(f"{u.name:<20} {state:<9} groups={groups} tokens={u.tokens} since {u.created}")
    return EXIT_OK


@users.command("disable")
@click.argument("name")
@state_dir_option
def disable(name: str, state_dir: Path) -> int:
    """Disable NAME: no sign-in, no token; their console sessions end at once."""
    _store(state_dir).disable(name)
    click.echo(f"user {name} disabled")
    return EXIT_OK


@users.command("token")
@click.argument("name")
@click.option("--label", metavar="TEXT", help="What the token is for (kept with it).")
@click.option("--revoke", is_flag=True, help="Revoke every token NAME has instead.")
@state_dir_option
def token(name: str, label: str | None, revoke: bool, state_dir: Path) -> int:
    """A new API token for NAME (for `runbook approve --server`), printed once: it is kept
    only as its SHA-256 and cannot be shown again."""
    store = _store(state_dir)
    if revoke:
        click.echo(f"{store.revoke_tokens(name)} token(s) of {name} revoked")
        return EXIT_OK
    click.echo(store.new_token(name, label))
    click.echo("shown once: keep it in RUNBOOK_TOKEN; it cannot be shown again", err=True)
    return EXIT_OK
