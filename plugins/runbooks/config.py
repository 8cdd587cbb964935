"""The plugin's options, as a typed MkDocs config class (validated by MkDocs itself)."""

from __future__ import annotations

from mkdocs.config import base
from mkdocs.config import config_options as c


# mkdocs' Config.__init_subclass__ carries no annotations.
class RunbooksConfig(base.Config):  # type: ignore[no-untyped-call]
    """Options under ``plugins: - runbooks:`` in ``mkdocs.yml``; paths are relative to that file."""

    # Folder of runbook Markdown files; each becomes a page at /runbooks/<id>/.
    runbooks_dir = c.Type(str, default="runbooks")
    # Folder of runs (`<runs_dir>/<run>/journal.jsonl`); unset or missing shows no runs.
    runs_dir = c.Optional(c.Type(str))
    # True: `runbook check` problems are MkDocs warnings, so `mkdocs build --strict` fails.
    # False: they are logged as info and the build goes on.
    strict_runbooks = c.Type(bool, default=True)
    # Title of the navigation section that lists the runbooks.
    nav_title = c.Type(str, default="Runbooks")
