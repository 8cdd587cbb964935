"""MkDocs hook: the CLI reference in docs/cli.md, generated from the commands' own help.

The marker ``<!-- cli-reference -->`` in a page is replaced by every `runbook` command's
``--help`` text, walked recursively through click, so the reference never drifts from the code.
A hook (not the plugin) does this, because the plugin must not import the CLI.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

MARKER = "<!-- cli-reference -->"
WIDTH = 100  # the width `runbook --help` itself uses (max_content_width)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, reference())


def reference() -> str:
    from runner.cli import cli, register_all

    register_all()  # command modules attach themselves to the group on import
    return "\n\n".join(_sections(cli, "runbook", None, 2))


def _sections(
    cmd: click.Command, name: str, parent: click.Context | None, level: int
) -> Iterator[str]:
    settings = {**cmd.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    ctx = click.Context(cmd, info_name=name, parent=parent, **settings)
    yield f"{'#' * level} `{ctx.command_path}`"
    yield f"```text\n{cmd.get_help(ctx)}\n```"
    if isinstance(cmd, click.Group):
        for sub in cmd.list_commands(ctx):
            child = cmd.get_command(ctx, sub)
            if child is not None and not child.hidden:
                yield from _sections(child, sub, ctx, min(level + 1, 3))
