"""Lint rules for routing: what `runbook check` says about triggers, mappings and samples.

The parser reports conditions and paths that do not parse (RB080-RB082). The rules here look
further: inputs an alert-started run could never fill (RB083), `from:` paths no sample alert
has (RB084), and, across the runbooks of a folder, sample alerts that no longer route as
expected (RB085), that two runbooks match at one priority (RB086), or that cannot be read
(RB087). Routing is then a reviewed, regression-tested part of the runbook.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from runner.errors import UsageError
from runner.format.inputs import InputValueError, coerce
from runner.format.match import normal
from runner.format.model import InputSpec, Problem, Runbook
from runner.routing.catalog import load_runbooks
from runner.routing.envelope import Alert
from runner.routing.limits import AlertError
from runner.routing.route import Route, Router
from runner.routing.samples import Expected, load_sample, sample_alerts, sample_files
from runner.routing.samples import sample_folder as _folder


def _routable(runbook: Runbook) -> bool:
    return runbook.metadata.trigger.condition is not None


def _input_line(runbook: Runbook, name: str) -> int:
    """The line of an input's key in the front matter (searched only when reporting)."""
    try:
        lines = runbook.path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return runbook.front_matter_line
    in_inputs = False
    for n, line in enumerate(lines, 1):
        if re.match(r"^inputs\s*:", line):
            in_inputs = True
        elif in_inputs and re.match(rf"^\s+{re.escape(name)}\s*:", line):
            return n
    return runbook.front_matter_line


def rule_unfilled_inputs(runbook: Runbook) -> Iterator[Problem]:
    """RB083: a routable runbook's required input that neither an alert path nor a safe
    default fills: every alert it matches would stay unrouted."""
    if not _routable(runbook):
        return
    for spec in runbook.metadata.inputs:
        if spec.secret or not spec.required or spec.alert_paths:
            continue
        if spec.default_safe and spec.default is not None:
            continue
        yield Problem(
            str(runbook.path), _input_line(runbook, spec.name), "warning", "RB083",
            f"input {spec.name!r} is required, and neither `from:` (a path into the alert) "
            "nor a `default_safe: true` default fills it, so every alert this runbook matches "
            "stays unrouted; add `from: entities.hosts[0]` (or the path that has it)",
        )  # fmt: skip


def rule_unseen_paths(runbook: Runbook) -> Iterator[Problem]:
    """RB084: a `from:` path that no sample alert of the runbook has."""
    mapped = [s for s in runbook.metadata.inputs if s.alert_paths]
    files = sample_files(_folder(runbook.path, runbook.metadata.id)) if mapped else []
    views = []
    for path in files:
        try:
            views += [a.view() for a in sample_alerts(load_sample(path))]
        except AlertError:
            continue  # RB087, from the folder's check
    if not views:
        return
    for spec in mapped:
        if not any(p.values(v) for p in spec.alert_paths for v in views):
            where = ", ".join(p.text for p in spec.alert_paths)
            folder = _folder(runbook.path, runbook.metadata.id)
            yield Problem(
                str(runbook.path), _input_line(runbook, spec.name), "warning", "RB084",
                f"input {spec.name!r}: no sample alert in {folder} has {where}; fix the path, "
                "or add a sample that has it",
            )  # fmt: skip


RULES = [rule_unfilled_inputs, rule_unseen_paths]


# --- samples across the runbooks of a folder ---------------------------------------------------


def sample_problems(files: Sequence[Path]) -> list[Problem]:
    """RB085-RB087 for the samples of the runbooks in `files`, each routed among every runbook
    of its folder (the set `runbook route` uses for that folder)."""
    problems: list[Problem] = []
    for folder in sorted({f.parent for f in files}):
        samples_root = folder / "alerts"
        if not samples_root.is_dir():
            continue
        try:
            books, _ = load_runbooks([folder])
        except UsageError:
            continue
        router = Router(books)
        checked = {f.resolve() for f in files}
        ids = {b.metadata.id: b for b in books}
        for sub in sorted(p for p in samples_root.iterdir() if p.is_dir()):
            book = ids.get(sub.name)
            if book is None:
                problems.append(Problem(
                    str(sub), 0, "warning", "RB087",
                    f"no runbook in {folder} has the id {sub.name!r}, so these samples are "
                    "never checked; rename the folder",
                ))  # fmt: skip
                continue
            if book.path.resolve() in checked:
                for path in sample_files(sub):
                    problems += _sample(router, path)
    return problems


def _sample(router: Router, path: Path) -> list[Problem]:
    try:
        sample = load_sample(path)
        alerts = sample_alerts(sample)
    except AlertError as exc:
        return [Problem(str(exc.path or path), 0, "error", "RB087", exc.message)]
    expected = sample.expected
    if expected is None:
        expected = tuple(Expected(sample.runbook_id) for _ in alerts)
    if len(expected) != len(alerts):
        return [Problem(str(path), 0, "error", "RB085",
                        f"the payload holds {len(alerts)} alert(s), and its expectations "
                        f"list {len(expected)}; give one `alerts:` entry per alert")]  # fmt: skip
    problems = []
    for n, (alert, want) in enumerate(zip(alerts, expected, strict=True), 1):
        route = router.route(alert, sample.given, explain=True)
        problems += _compare(path, n, alert, route, want)
    return problems


def _compare(path: Path, n: int, alert: Alert, route: Route, want: Expected) -> list[Problem]:
    where = f"alert {n} ({alert.title or alert.id})"
    tied = _tied(route)
    if len(tied) > 1:
        return [Problem(str(path), 0, "error", "RB086",
                        f"{where}: {', '.join(tied)} all match at the same priority; give one "
                        "a higher trigger.priority, or narrow their conditions")]  # fmt: skip
    got = route.runbook.metadata.id if route.routed and route.runbook else None
    if got != want.runbook:
        said = f"routes to {got}" if got else f"is unrouted ({route.reason})"
        hope = want.runbook or "stay unrouted"
        return [Problem(str(path), 0, "error", "RB085", f"{where} {said}; expected {hope}")]
    if route.mapping is None or route.runbook is None:
        return []
    values = route.mapping.values
    problems = []
    for name, value in want.inputs.items():
        spec = route.runbook.metadata.input(name)
        if spec is None or name not in values or not _same(spec, values[name], value):
            shown = "no value" if name not in values else repr(values[name])
            problems.append(Problem(str(path), 0, "error", "RB085",
                                    f"{where}: input {name!r} is {shown}; expected "
                                    f"{value!r}"))  # fmt: skip
    return problems


def _tied(route: Route) -> list[str]:
    matched = [c.runbook for c in route.checks if c.matched]
    if not matched:
        return []
    top = max(b.metadata.trigger.priority for b in matched)
    return [b.metadata.id for b in matched if b.metadata.trigger.priority == top]


def _same(spec: InputSpec, got: object, want: object) -> bool:
    try:
        return coerce(spec, want) == got
    except InputValueError:
        return normal(got) == normal(want)
