"""The routing keys of a front matter, read into typed objects once, when the runbook is parsed.

`trigger:` gains `match` conditions, `priority`, `dedup_key` and `correlate`; an input gains
`from:` (where an alert gives its value) and `default_safe:`. The schema (runner.format.schema)
checks their shapes; this module checks what the schema cannot: that paths and conditions parse, and
that no secret is ever taken from an alert. Each problem carries its key's place, for a line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from runner.format import syntax as fmt
from runner.format.match import ConditionError, parse_match
from runner.format.model import InputSpec, Metadata, Trigger
from runner.format.paths import ENTITY_KINDS, FieldPath, PathError, parse_path

#: Codes of the problems found here; documented with the others in docs/format.md.
BAD_CONDITION = "RB080"
BAD_INPUT_PATH = "RB081"
SECRET_FROM_ALERT = "RB082"


@dataclass(frozen=True, slots=True)
class RoutingIssue:
    """One routing key that cannot be used."""

    loc: tuple[str, ...]  # the key's place in the front matter: ("trigger", "match", "x")
    code: str
    message: str


def with_routing(meta: Metadata, fm: Mapping[str, object]) -> tuple[Metadata, list[RoutingIssue]]:
    """`meta` with its trigger's conditions and its inputs' alert paths parsed."""
    issues: list[RoutingIssue] = []
    trigger = _trigger(meta.trigger, fm.get("trigger"), issues)
    raw_inputs = fm.get("inputs")
    inputs = tuple(
        _input(spec, raw_inputs.get(spec.name) if isinstance(raw_inputs, dict) else None, issues)
        for spec in meta.inputs
    )
    return dataclasses.replace(meta, trigger=trigger, inputs=inputs), issues


def _trigger(base: Trigger, raw: object, issues: list[RoutingIssue]) -> Trigger:
    if not isinstance(raw, dict):
        return base
    match = raw.get("match")
    condition = None
    if isinstance(match, dict) and match:
        condition, errors = parse_match({str(k): v for k, v in match.items()})
        issues += [RoutingIssue(("trigger", *e.loc), BAD_CONDITION, str(e)) for e in errors]
    priority = raw.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        priority = 0  # the schema reported it
    keys = _paths(raw.get("dedup_key"), ("trigger", "dedup_key"), BAD_CONDITION, issues)
    by, window = _correlate(raw.get("correlate"), issues)
    return dataclasses.replace(
        base,
        match=MappingProxyType(dict(match)) if isinstance(match, dict) else base.match,
        condition=condition,
        priority=priority,
        dedup_key=keys,
        correlate_by=by,
        correlate_window=window,
    )


def _correlate(raw: object, issues: list[RoutingIssue]) -> tuple[tuple[str, ...], float | None]:
    if not isinstance(raw, dict):
        return (), None
    loc = ("trigger", "correlate")
    by_raw = raw.get("by", ["hosts", "users"])
    by = tuple(str(k) for k in (by_raw if isinstance(by_raw, list) else [by_raw]))
    unknown = [k for k in by if k not in ENTITY_KINDS]
    if unknown:
        issues.append(RoutingIssue((*loc, "by"), BAD_CONDITION,
                                   f"correlate by {unknown[0]!r}: use entity kinds, "
                                   f"{', '.join(ENTITY_KINDS)}"))  # fmt: skip
        return (), None
    try:
        window = fmt.parse_duration(raw.get("window", "1h"))
    except ValueError as exc:
        issues.append(RoutingIssue((*loc, "window"), BAD_CONDITION, f"correlate window: {exc}"))
        return (), None
    return by, window


def _paths(
    raw: object, loc: tuple[str, ...], code: str, issues: list[RoutingIssue]
) -> tuple[FieldPath, ...]:
    if raw is None:
        return ()
    texts = raw if isinstance(raw, list) else [raw]
    paths = []
    for text in texts:
        try:
            paths.append(parse_path(str(text)))
        except PathError as exc:
            issues.append(RoutingIssue(loc, code, str(exc)))
    return tuple(paths)


def _input(spec: InputSpec, raw: object, issues: list[RoutingIssue]) -> InputSpec:
    data = raw if isinstance(raw, dict) else {}
    loc = ("inputs", spec.name, "from")
    paths = _paths(data.get("from"), loc, BAD_INPUT_PATH, issues)
    if paths and spec.secret:
        issues.append(RoutingIssue(loc, SECRET_FROM_ALERT,
                                   f"input {spec.name!r} is secret, and secrets never come from "
                                   "an alert (anyone who can send one would choose it); remove "
                                   "`from:` and give it to the intake as RUNBOOK_INPUT_"
                                   f"{spec.name.upper()}"))  # fmt: skip
        paths = ()
    return dataclasses.replace(
        spec, alert_paths=paths, default_safe=data.get("default_safe") is True
    )


__all__ = ["ConditionError", "RoutingIssue", "with_routing"]
