"""The index page: every runbook in one table, grouped by service, filterable by service,
severity and role.

The table is plain HTML, one `<tbody>` per service under a heading row, with the facts to filter
on in `data-` attributes; a few lines of JavaScript shipped with the plugin (no CDN) hide the
rows that do not match, keep the filters in the URL and show a "no match" row. The table has a
class, so Material does not wrap it in its own scroll areas: it scrolls in one container.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING

from plugins.runbooks.catalog import Entry, Loaded
from plugins.runbooks.markup import Rendered, hold

if TYPE_CHECKING:
    from plugins.runbooks.runs import (
        Run,  # runs.py is imported only when there are runs (see `plugin._read_runs`)
    )

_SEVERITY_ORDER = ("critical", "high", "medium", "low")


def index_markdown(
    loaded: Loaded, runs: Mapping[str, Sequence[Run]], folder: str, directory_urls: bool
) -> Rendered:
    """The page `runbooks/index.md`; ``runs`` are each runbook's, by id, newest first;
    ``folder`` is the runbooks folder as configured.

    The filters and the table are ready-made HTML, put in after Markdown (see `render.hold`):
    a row per runbook would otherwise be parsed again by Markdown's raw-HTML pass and the
    search indexer, a cost that grows with the number of runbooks.
    """
    entries = loaded.entries
    title = "# Runbooks"
    if not entries:
        return Rendered(f"{title}\n\nNo runbooks found in `{folder}/`.\n", ())
    groups: dict[str, list[Entry]] = {}
    for e in entries:  # already sorted by service, then name
        groups.setdefault(e.runbook.metadata.service or "Other", []).append(e)
    count = f"{len(entries)} runbook(s) from `{folder}/`, in {len(groups)} service group(s)."
    bodies = "\n".join(
        _group(service, members, loaded.last_change, runs, directory_urls)
        for service, members in groups.items()
    )
    nomatch = (
        '<tbody class="rb-nomatch" hidden><tr><td colspan="7">No runbook matches these filters. '
        '<button type="button" class="rb-clear md-button">Show all</button></td></tr></tbody>'
    )
    table = (
        '<div class="rb-index">\n<table class="rb-index-table">\n<thead><tr><th>Runbook</th>'
        "<th>Severity</th><th>Objective</th><th>Roles</th><th>Steps</th><th>Last change</th>"
        f"<th>Last exercised</th></tr></thead>\n{bodies}\n{nomatch}\n</table>\n</div>"
    )
    slots: list[str] = []
    parts = (title, count, hold(slots, _filters(entries)), hold(slots, table))
    return Rendered("\n\n".join(parts) + "\n", tuple(slots))


def _filters(entries: Sequence[Entry]) -> str:
    services = sorted({e.runbook.metadata.service for e in entries if e.runbook.metadata.service})
    present = {e.runbook.metadata.severity.value for e in entries if e.runbook.metadata.severity}
    severities = [s for s in _SEVERITY_ORDER if s in present]
    roles = sorted({r for e in entries for r in _roles(e)})
    return (
        '<div class="rb-filters" hidden>'
        f"{_select('service', 'Service', services)}{_select('severity', 'Severity', severities)}"
        f"{_select('role', 'Role', roles)}"
        '<span class="rb-filter-count" aria-live="polite"></span></div>'
    )


def _select(key: str, label: str, values: Iterable[str]) -> str:
    options = "".join(f'<option value="{escape(v)}">{escape(v)}</option>' for v in values)
    return (
        f'<label>{label} <select data-filter="{key}"><option value="">all</option>'
        f"{options}</select></label> "
    )


def _roles(entry: Entry) -> list[str]:
    """Roles the runbook declares, plus any a step names without declaring it."""
    roles = list(entry.runbook.metadata.roles)
    roles += [s.role for s in entry.runbook.steps if s.role and s.role not in roles]
    return roles


def _group(
    service: str,
    members: Sequence[Entry],
    last_change: Mapping[str, str],
    runs: Mapping[str, Sequence[Run]],
    directory_urls: bool,
) -> str:
    """One service's runbooks under a heading row that names the service."""
    rows = "\n".join(
        _row(e, last_change.get(e.id, ""), runs.get(e.id, ()), directory_urls) for e in members
    )
    head = f'<tr class="rb-group-head"><th colspan="7" scope="rowgroup">{escape(service)}</th></tr>'
    return f'<tbody class="rb-group" data-service="{escape(service)}">{head}\n{rows}\n</tbody>'


def _row(entry: Entry, last_change: str, runs: Sequence[Run], directory_urls: bool) -> str:
    meta = entry.runbook.metadata
    href = f"{entry.slug}/" if directory_urls else f"{entry.slug}.html"
    severity = meta.severity.value if meta.severity else ""
    roles = _roles(entry)
    data = _data(
        {"service": meta.service, "severity": severity, "role": "|" + "|".join(roles) + "|"}
    )
    sev = f'<span class="rb-sev rb-sev--{severity}">{severity}</span>' if severity else "—"
    badges = " ".join(f'<span class="rb-badge rb-badge--role">{escape(r)}</span>' for r in roles)
    cells = (
        f'<a href="{escape(href)}">{escape(meta.name)}</a>',
        sev,
        escape(meta.objective) or "—",
        badges or "—",
        str(len(entry.runbook.steps)),
        escape(last_change) or "—",
        _exercised(runs),
    )
    return f'<tr class="rb-row"{data}>' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _data(values: Mapping[str, str]) -> str:
    return "".join(f' data-{k}="{escape(v)}"' for k, v in values.items())


def _exercised(runs: Sequence[Run]) -> str:
    if not runs:
        return "never"
    latest = runs[0]
    return f"{escape(latest.started_text)} ({escape(latest.mode)}, {escape(latest.status)})"
