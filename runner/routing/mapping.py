"""Inputs from an alert: each input's `from:` paths, coerced through the input's own type,
pattern and enum, as a value typed at the command line would be.

A run an alert starts never falls back to a default written for people running the runbook by
hand (the lab's host, an example account): a default serves it only when the input says
``default_safe: true``. Secrets never come from the alert; the intake supplies them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from runner.format.inputs import InputValueError, coerce
from runner.format.model import InputSpec, InputValue, Metadata


class Origin(StrEnum):
    """Where a triggered run's input value comes from."""

    ALERT = "alert"  # one of the input's `from:` paths
    GIVEN = "given"  # the intake's (or `route -i`'s) value for every triggered run
    SAFE_DEFAULT = "default"  # the default, marked default_safe
    RUN_TIME = "run time"  # a secret: the intake supplies it when the run starts


@dataclass(frozen=True, slots=True)
class MappedInput:
    """One input of a triggered run."""

    name: str
    value: InputValue  # None for a secret (never held here) and for RUN_TIME
    origin: Origin
    path: str = ""  # the `from:` path that gave the value, for ALERT
    secret: bool = False


@dataclass(frozen=True, slots=True)
class InputMapping:
    """The inputs a triggered run would start with, or why it cannot start."""

    inputs: tuple[MappedInput, ...]
    problems: tuple[str, ...]  # each makes the alert unrouted

    @property
    def values(self) -> dict[str, InputValue]:
        """The values to start the run with (secrets excepted: the intake adds them)."""
        return {i.name: i.value for i in self.inputs if i.origin is not Origin.RUN_TIME}


def map_inputs(
    meta: Metadata, view: Mapping[str, object], given: Mapping[str, object] | None = None
) -> InputMapping:
    """Every declared input's value for a run this alert starts, and what is missing."""
    given = given or {}
    inputs: list[MappedInput] = []
    problems: list[str] = []
    # `given` holds the intake's values for every runbook: names a runbook lacks are not its.
    for spec in meta.inputs:
        try:
            mapped = _one(spec, view, given)
        except InputValueError as exc:
            problems.append(f"input {spec.name!r}: {exc}")
            continue
        if isinstance(mapped, str):
            problems.append(mapped)
        elif mapped is not None:
            inputs.append(mapped)
    return InputMapping(tuple(inputs), tuple(problems))


def _one(
    spec: InputSpec, view: Mapping[str, object], given: Mapping[str, object]
) -> MappedInput | str | None:
    """The input's mapping, a problem (str), or None for an optional input left unset."""
    if spec.secret:  # never from the alert, never held here: the intake adds it at the start
        return MappedInput(spec.name, None, Origin.RUN_TIME, secret=True)
    for path in spec.alert_paths:
        values = path.values(view)
        if not values:
            continue
        raw: object = values if spec.type == "list" else values[0]
        try:
            return MappedInput(spec.name, coerce(spec, raw), Origin.ALERT, path.text)
        except InputValueError as exc:
            raise InputValueError(f"the alert's {path.text} gives {raw!r}, but {exc}") from None
    if spec.name in given:
        return MappedInput(spec.name, coerce(spec, given[spec.name]), Origin.GIVEN)
    if spec.default_safe and spec.default is not None:
        return MappedInput(spec.name, coerce(spec, spec.default), Origin.SAFE_DEFAULT)
    if not spec.required and spec.default is None:
        return None
    reached = ", ".join(p.text for p in spec.alert_paths)
    why = f"the alert has nothing at {reached}" if reached else "it has no `from:` path"
    if spec.required:
        return f"input {spec.name!r} is required and {why}"
    return (
        f"input {spec.name!r}: {why}, and its default is for runs started by hand; give the "
        f"intake a value (RUNBOOK_INPUT_{spec.name.upper()}, or `route -i {spec.name}=...`), "
        "or mark the default `default_safe: true` if it is right for every alert"
    )
