"""`runbook drill --alert FILE`: the inputs a real alert gives the drill.

The alert goes the whole way an intake would take it: normalised, routed among the runbooks of
the runbook's folder, mapped into inputs. It must route to the runbook being drilled; one that
routes elsewhere, or not at all, stops the drill with the reason (exit 2), since rehearsing an
alert the runbook would never receive teaches the wrong thing.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.markup import escape

from runner.cli.routing import load_alerts
from runner.errors import UsageError
from runner.format.model import InputValue, Runbook
from runner.text.terminal import visible


def drill_alert(
    book: Runbook,
    source: str,
    alert_format: str | None,
    given: Mapping[str, object],
    console: Console,
) -> dict[str, InputValue]:
    """The inputs the alert in `source` maps for `book`, after checking it routes there."""
    from runner.routing.catalog import load_runbooks
    from runner.routing.route import Router

    alerts = load_alerts(source, alert_format)
    books, _ = load_runbooks([book.path.parent])
    if not any(b.path.resolve() == book.path.resolve() for b in books):
        books.append(book)
    router = Router(books)
    routes = [router.route(a, given) for a in alerts]
    mine = [r for r in routes if r.routed and r.runbook and r.runbook.path == book.path]
    if not mine:
        said = "; ".join(
            f"alert {n}: "
            + (f"routes to {r.runbook.metadata.id}" if r.routed and r.runbook else r.reason)
            for n, r in enumerate(routes, 1)
        )
        raise UsageError(f"{source}: no alert in it routes to {book.metadata.id} ({said})")
    if len(mine) > 1:
        raise UsageError(
            f"{source}: {len(mine)} of its alerts route to {book.metadata.id}; a drill rehearses "
            "one: keep one alert in the file"
        )
    route = mine[0]
    assert route.mapping is not None  # a routed alert has its inputs
    alert = route.alert
    mapped = {i.name: i.value for i in route.mapping.inputs if i.path}
    shown = ", ".join(f"{k}={v!r}" for k, v in mapped.items()) or "none"
    console.print(
        f"[bold]Alert:[/] {escape(f'[{alert.format}]')} {escape(visible(alert.title or alert.id))} "
        f"({alert.severity}) → {escape(book.metadata.id)}; from the alert: "
        f"{escape(visible(shown))}",
        soft_wrap=True,
    )
    return mapped
