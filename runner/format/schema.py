"""The front matter's schema: typed msgspec structs, their validation, and their JSON Schema.

The structs are the one definition of the front matter: the parser validates against them and
``runbook schema`` prints them as JSON Schema for editors. msgspec rather than pydantic: it
imports in about 2 ms instead of 70 and validates a front matter in microseconds, and both costs
are paid by every ``runbook`` command and every site build.

Validation is in two passes. The first converts the whole mapping at once and stops at the
first problem, which is all a valid front matter (nearly every one) ever needs. Only when it
fails does the second walk the keys one by one, so that ``check`` reports every bad key, each
at its own place, rather than one per run.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from runner.format.syntax import SLUG_RE

InputType = Literal["string", "integer", "number", "boolean", "list"]
SeverityName = Literal["low", "medium", "high", "critical"]
Scalar = str | int | float | bool | None


class InputSchema(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """An input the operator supplies when the runbook runs."""

    type: Annotated[InputType, Meta(description="string, integer, number, boolean or list")] = (
        "string"
    )
    description: Annotated[str, Meta(description="what the value is, for the operator")] = ""
    required: Annotated[bool, Meta(description="the run refuses to start without it")] = False
    default: Annotated[Scalar | list[Scalar], Meta(description="used when none is given")] = None
    enum: Annotated[list[Scalar] | None, Meta(description="the only values allowed")] = None
    pattern: Annotated[str | None, Meta(description="regular expression a string must match")] = (
        None
    )
    secret: Annotated[
        bool, Meta(description="never written to the journal, reports or the terminal")
    ] = False
    expose: Annotated[
        Literal["run", "block"],
        Meta(
            description="run: the value is in every kernel for the whole run (default); "
            "block: only while a block that names it runs"
        ),
    ] = "run"
    from_: Annotated[
        str | list[str] | None,
        Meta(
            description="where a triggering alert gives the value: a path into the alert "
            "envelope such as entities.hosts[0]; with a list, the first path that has a value"
        ),
    ] = msgspec.field(default=None, name="from")
    default_safe: Annotated[
        bool,
        Meta(
            description="the default may serve a run an alert started; without it a triggered "
            "run never falls back to the default"
        ),
    ] = False


class CorrelateSchema(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Which alerts are related to an open run of this runbook."""

    by: Annotated[
        list[Literal["hosts", "users", "ips", "domains", "hashes", "urls"]],
        Meta(description="entity kinds an alert must share with the run (default: hosts, users)"),
    ] = msgspec.field(default_factory=lambda: ["hosts", "users"])
    window: Annotated[
        str | int, Meta(description="how long after the run started: 30m, 1h, 1d")
    ] = "1h"


class TriggerSchema(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """When the runbook is activated."""

    when: Annotated[str, Meta(description="the situation, in words")] = ""
    match: Annotated[
        dict[str, Any],
        Meta(description="conditions over the alert envelope that select this runbook"),
    ] = {}
    priority: Annotated[
        int, Meta(description="when several runbooks match an alert, the highest wins")
    ] = 0
    dedup_key: Annotated[
        str | list[str] | None,
        Meta(description="path(s) whose values identify the same alert; default: the source's"),
    ] = None
    correlate: CorrelateSchema | None = None


class ConcurrencySchema(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """How many runs the service runs at once; the rest wait, by alert severity."""

    runs: Annotated[int, Meta(ge=1, description="runs of this runbook at once")] | None = None
    target: Annotated[
        str | None,
        Meta(description="an input naming what a run acts on (a host): runs per value are limited"),
    ] = None
    per_target: Annotated[
        int, Meta(ge=1, description="runs at once per value of `target` (default 1)")
    ] = 1


class FrontMatterSchema(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """The YAML front matter of a runbook."""

    id: (
        Annotated[str, Meta(pattern=SLUG_RE.pattern, description="slug; defaults to the file name")]
        | None
    ) = None
    name: Annotated[str, Meta(description="the runbook's title")]
    service: Annotated[str, Meta(description="the service or system it concerns")]
    owner: Annotated[str, Meta(description="team or person who maintains it")] = ""
    severity: SeverityName | None = None
    objective: Annotated[
        str, Meta(description="the expected outcome, e.g. 'Contain within 1 hour'")
    ] = ""
    time_limit: Annotated[
        str | int | None, Meta(description="how long the response may take: 30m, 1h, 1h30m")
    ] = None
    roles: Annotated[dict[str, str], Meta(description="role -> who holds it")] = {}
    tools: Annotated[list[str], Meta(description="tools the responder needs")] = []
    trigger: Annotated[TriggerSchema | str | None, Meta(description="when it is activated")] = None
    inputs: dict[str, InputSchema] = {}
    tags: list[str] = []
    notify: Annotated[list[str] | str, Meta(description="who is told")] = []
    kernels: Annotated[
        dict[str, str], Meta(description="fence language -> Jupyter kernelspec name")
    ] = {}
    concurrency: ConcurrencySchema | None = None


def _field_types(cls: type[Struct]) -> dict[str, Any]:
    # By the name written in YAML (`from`), not the attribute's (`from_`).
    return {f.encode_name: f.type for f in msgspec.structs.fields(cls)}


_REQUIRED = tuple(f.name for f in msgspec.structs.fields(FrontMatterSchema) if f.required)
_TYPES: dict[type[Struct], dict[str, Any]] = {
    cls: _field_types(cls)
    for cls in (FrontMatterSchema, InputSchema, TriggerSchema, ConcurrencySchema)
}

#: What the author may write, in words, for keys where msgspec's own complaint would mislead:
#: for a key of several shapes, the first shape's complaint alone ("expected a list") hides the
#: others; for an id, a regular expression is no help.
HINTS = {
    "id": "expected a slug of lower-case letters, digits, '-' and '_', such as `lost-laptop`",
    "trigger": "expected text, or a mapping with `when:` (text), `match:` (conditions), "
    "`priority:`, `dedup_key:` and `correlate:`",
    "notify": "expected a list of who is told, or one name",
    "time_limit": "expected a duration such as 30m, 1h or 1h30m",
}


@dataclass(frozen=True, slots=True)
class SchemaIssue:
    """One way a front matter departs from the schema."""

    loc: tuple[str, ...]  # the key's path: ("inputs", "host_id", "type")
    kind: Literal["missing", "unknown", "value"]
    message: str  # what is wrong with the value, for "value"; empty otherwise
    allowed: tuple[str, ...] = ()  # the keys allowed beside an unknown one, for a did-you-mean


def validate_front_matter(
    fm: Mapping[str, Any],
) -> tuple[FrontMatterSchema | None, list[SchemaIssue]]:
    """The typed front matter when it is valid; otherwise None and every problem found."""
    try:
        return msgspec.convert(fm, FrontMatterSchema, strict=True), []
    except msgspec.ValidationError:
        return None, list(_struct_issues(FrontMatterSchema, fm, ()))


def valid_inputs(fm: Mapping[str, Any]) -> dict[str, InputSchema]:
    """The inputs that are valid on their own, when the front matter as a whole is not."""
    inputs = fm.get("inputs")
    valid = {}
    for name, raw in (inputs if isinstance(inputs, dict) else {}).items():
        try:
            valid[str(name)] = msgspec.convert(raw or {}, InputSchema, strict=True)
        except msgspec.ValidationError:
            continue  # validate_front_matter reported it
    return valid


def _struct_issues(
    cls: type[Struct], data: Mapping[str, Any], loc: tuple[str, ...]
) -> Iterator[SchemaIssue]:
    types = _TYPES[cls]
    if cls is FrontMatterSchema:
        for key in _REQUIRED:
            if key not in data:
                yield SchemaIssue((key,), "missing", "")
    for raw_key, value in data.items():
        key = str(raw_key)
        where = (*loc, key)
        if key not in types:
            yield SchemaIssue(where, "unknown", "", cls.__struct_encode_fields__)
        elif cls is FrontMatterSchema and key == "inputs" and isinstance(value, dict):
            for name, spec in value.items():
                if spec is None or isinstance(spec, dict):
                    yield from _struct_issues(InputSchema, spec or {}, (*where, str(name)))
                else:
                    yield SchemaIssue(
                        (*where, str(name)), "value",
                        "expected the input's settings as a mapping (type:, description: ...)",
                    )  # fmt: skip
        elif cls is FrontMatterSchema and key == "trigger" and isinstance(value, dict):
            yield from _struct_issues(TriggerSchema, value, where)
        elif cls is FrontMatterSchema and key == "concurrency" and isinstance(value, dict):
            yield from _struct_issues(ConcurrencySchema, value, where)
        else:
            problem = _value_problem(value, types[key])
            if problem:
                hint = HINTS.get(key) if cls is FrontMatterSchema else None
                yield SchemaIssue(where, "value", hint or problem)


def _value_problem(value: object, tp: Any) -> str:
    try:
        msgspec.convert(value, type=tp, strict=True)
    except msgspec.ValidationError as exc:
        choices = _literal_choices(tp)
        if choices and isinstance(value, str):
            return f"expected one of {', '.join(map(repr, choices))}, got {value!r}"
        return _readable(str(exc))
    return ""


def _literal_choices(tp: Any) -> tuple[object, ...]:
    """The values of a Literal inside ``tp`` (through Annotated and unions), if any."""
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    return next((c for arg in typing.get_args(tp) if (c := _literal_choices(arg))), ())


def _readable(message: str) -> str:
    """msgspec's "Expected `str`, got `int` - at `$[1]`" as "expected `str`, got `int` (item 2)"."""
    text, _, where = message.partition(" - at `$")
    text = text[:1].lower() + text[1:]
    where = where.rstrip("`")
    if where.startswith("[") and where[1:-1].isdigit():
        return f"{text} (item {int(where[1:-1]) + 1})"
    return f"{text} (in {where})" if where and where != "[...]" else text


def front_matter_schema() -> dict[str, Any]:
    """The JSON Schema of the front matter, for editors (VS Code YAML and others)."""
    generated = msgspec.json.schema(FrontMatterSchema)
    defs = generated.get("$defs", {})
    # msgspec puts every struct under $defs and refers to the root; editors and readers expect
    # the root's properties at the top.
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://secops-runbooks.dev/schema/front-matter.json",
        **defs.pop("FrontMatterSchema"),
        "title": "secops-runbooks front matter",
    }
    if defs:
        schema["$defs"] = defs
    _publish_conditions(schema)
    return schema


def _publish_conditions(schema: dict[str, Any]) -> None:
    """Spell out the match language, which msgspec sees as a plain mapping.

    The parser checks conditions itself (runner.format.match), with a line per problem;
    this is the same language for editors.
    """
    from runner.format.match_schema import CONDITION_DEFS

    defs = schema.setdefault("$defs", {})
    defs.update(CONDITION_DEFS)
    trigger = defs.get("TriggerSchema", {}).get("properties", {})
    if "match" in trigger:
        trigger["match"] = {
            "$ref": "#/$defs/Conditions",
            "description": trigger["match"].get("description", ""),
        }
