"""Commands for authors: check, list, show, schema."""

from __future__ import annotations

import json

import click

from ..format import front_matter_schema
from . import cli


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the front matter, for editors."""
    click.echo(json.dumps(front_matter_schema(), indent=2))
