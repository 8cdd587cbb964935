"""Input values: typed and checked against their declaration before anything runs."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from runner.format.model import InputSpec, InputValue, Metadata, Scalar

#: Secrets shorter than this are refused: a short secret cannot be told apart from ordinary
#: output, so redacting it (runner.runs.redact) would blank innocent text.
MIN_SECRET_LENGTH = 8

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class InputValueError(ValueError):
    """A value does not fit its input's declaration; the message says why."""


def coerce(spec: InputSpec, value: object) -> InputValue:
    """The value converted to the input's type, checked against its enum and pattern.

    Command-line values arrive as strings; inputs files and defaults may already be typed.
    """
    typed = _convert(spec, value)
    if spec.secret and isinstance(typed, str) and 0 < len(typed) < MIN_SECRET_LENGTH:
        raise InputValueError(
            f"the secret is {len(typed)} characters long; secrets of fewer than "
            f"{MIN_SECRET_LENGTH} cannot be told apart from ordinary output, so they would "
            "either leak or garble it: use a longer secret"
        )
    if spec.enum and typed not in spec.enum:
        allowed = ", ".join(str(v) for v in spec.enum)
        raise InputValueError(f"{_show(spec, value)} is not one of: {allowed}")
    if (
        spec.pattern is not None
        and isinstance(typed, str)
        and not re.fullmatch(spec.pattern, typed)
    ):
        raise InputValueError(f"{_show(spec, value)} does not match the pattern {spec.pattern!r}")
    return typed


def _show(spec: InputSpec, value: object) -> str:
    return "the value" if spec.secret else repr(value)


def _convert(spec: InputSpec, value: object) -> InputValue:
    kind = spec.type
    if kind == "string":
        if isinstance(value, list | tuple | dict):
            raise InputValueError(f"{_show(spec, value)} is not a string")
        return "" if value is None else str(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        low = str(value).strip().lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
        raise InputValueError(f"{_show(spec, value)} is not a boolean (use true or false)")
    if kind == "integer":
        if isinstance(value, bool) or not re.fullmatch(r"[-+]?\d+", str(value).strip()):
            raise InputValueError(f"{_show(spec, value)} is not a whole number")
        return int(str(value).strip())
    if kind == "number":
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(str(value).strip())
        except ValueError:
            raise InputValueError(f"{_show(spec, value)} is not a number") from None
    # list: a YAML/JSON list, or a comma-separated string from the command line
    if isinstance(value, list | tuple):
        return tuple(_scalar(v) for v in value)
    return tuple(part.strip() for part in str(value).split(",") if part.strip())


def _scalar(value: object) -> Scalar:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def resolve(meta: Metadata, given: Mapping[str, object]) -> tuple[dict[str, InputValue], list[str]]:
    """Every declared input's value, from `given` or its default, and the list of problems.

    Unknown names are problems too: a typo in `-i hots_id=...` must not be silently ignored.
    """
    values: dict[str, InputValue] = {}
    problems: list[str] = []
    declared = {spec.name for spec in meta.inputs}
    for name in given:
        if name not in declared:
            close = difflib.get_close_matches(name, sorted(declared), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            known = ", ".join(sorted(declared)) or "none"
            problems.append(f"unknown input {name!r} ({hint}this runbook's inputs: {known})")
    for spec in meta.inputs:
        if spec.name in given:
            raw = given[spec.name]
        elif spec.default is not None:
            raw = spec.default
        elif spec.required:
            how = "--inputs FILE, RUNBOOK_INPUT_" + spec.name.upper() if spec.secret else "-i"
            problems.append(
                f"input {spec.name!r} is required"
                + (f" ({spec.description})" if spec.description else "")
                + f"; give it with {how}"
                + ("" if spec.secret else f" {spec.name}=VALUE")
            )
            continue
        else:
            continue
        try:
            values[spec.name] = coerce(spec, raw)
        except InputValueError as exc:
            problems.append(f"input {spec.name!r}: {exc}")
    return values, problems
