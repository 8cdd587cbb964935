"""A drill scenario file: its model (msgspec structs) and its reading (:func:`load_scenario`).

A scenario (YAML) names the runbook, the alert shown to the participants, input values, who takes
part in which role, how each step is answered (approve or deny, done or skip, notes), the faults
the lab injects before given steps, and the expected end: the run's status and assertions on the
lab's ``/api/_lab/state``. See ``docs/drills.md`` for the format.

:func:`load_scenario` reads the YAML with the line of every key, then validates it against
:class:`Scenario`; msgspec's messages are turned into the key's line and a fix. The result, a
:class:`ScenarioFile`, keeps those lines so that the checks against the runbook
(``runner.drills.drill.check_scenario``) can point at them too. Playing a scenario is
``runner.drills.drill``.

Long on purpose: one file format with its loader, its line-carrying values and its checks
against the runbook, so an error can point at the scenario's line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import EllipsisType, UnionType
from typing import Annotated, Any, Literal, TypeGuard, Union, cast, get_args, get_origin

import msgspec
import yaml

from runner.errors import ExitCode, RunbookError
from runner.lab.api import LabError
from runner.lab.control import parse_route
from runner.parse.markdown import did_you_mean

RunStatusName = Literal["succeeded", "succeeded_with_handled_failures", "failed", "cancelled"]
Loc = tuple[str | int, ...]


class ScenarioError(RunbookError):
    """A scenario file cannot be used: unreadable, invalid, or not fitting its runbook."""

    exit_code = ExitCode.USAGE


# --- the scenario model --------------------------------------------------------------------------
# msgspec structs, not pydantic models: msgspec imports in about 2 ms where pydantic and its model
# building cost 70-100 ms. Each struct is frozen and forbids unknown fields (a key the format does
# not have is a typo, usually); the options are spelled on every class because mypy does not see
# them inherited.


class Note(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A participant's remark on a step, e.g. "which console?"."""

    by: str  # a participant's name
    text: str
    unclear: bool = False  # the step was unclear to them: listed in the report's findings


class Answer(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How one step is answered; every field optional (defaults: run, approve, done).

    ``isolate: deny`` is short for ``isolate: {decision: deny}``: :func:`load_scenario` expands it
    before validation (see ``_expand_shorthand``).
    """

    decision: Literal["run", "skip", "done", "approve", "deny"] | None = None
    # A decision step's answer (docs/format.md, "Decision steps"), checked against its type.
    # YAML reads `yes`/`no` unquoted as booleans: they are taken as yes and no.
    answer: str | int | float | bool | None = None
    by: str | None = None  # the participant who acts (an approver for approve/deny)
    comment: str | None = None  # the approver's comment, or the note on done/skip
    notes: tuple[Note, ...] = ()


HttpStatus = Annotated[int, msgspec.Meta(ge=100, le=599)]
FaultTimes = Annotated[int, msgspec.Meta(ge=-1, le=1000)]
FaultDelay = Annotated[float, msgspec.Meta(ge=0.0, le=30.0)]


class Fault(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A lab fault injected just before a step starts."""

    at_step: str  # step id or number; `procedure-id/N` for a procedure's step
    route: str  # "POST /api/edr/hosts/{id}/isolate", or a path prefix such as "/api/idp"
    status: HttpStatus = 500
    times: FaultTimes = 1  # how many requests fail; -1: until the drill ends
    delay: FaultDelay = 0.0  # seconds before the answer
    description: str = ""  # what the fault stands for ("the EDR API is down")

    def __post_init__(self) -> None:
        # msgspec reports a ValueError raised here as a ValidationError at this fault's place.
        if self.times == 0:
            raise ValueError("times must be at least 1, or -1 for every request until the end")
        try:
            parse_route(self.route)
        except LabError as exc:
            raise ValueError(exc.message) from None


_OPERATORS = ("equals", "not_equals", "contains", "not_contains")


class Assertion(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One fact about the lab's end state: a dotted path into /api/_lab/state and one test.

    The tests default to UNSET, not None: ``equals: null`` is a test (the value is null), an
    absent key is not.
    """

    path: str  # e.g. "hosts.wks-0042.isolated" or "firewall_rules"
    equals: Any | msgspec.UnsetType = msgspec.UNSET
    not_equals: Any | msgspec.UnsetType = msgspec.UNSET
    contains: Any | msgspec.UnsetType = msgspec.UNSET  # list item (a mapping: a subset), ...
    not_contains: Any | msgspec.UnsetType = msgspec.UNSET  # ... substring, or mapping key

    def __post_init__(self) -> None:
        given = self._given()
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of {', '.join(_OPERATORS)} (got {len(given)}: "
                f"{', '.join(given) or 'none'})"
            )

    def _given(self) -> list[str]:
        return [name for name in _OPERATORS if getattr(self, name) is not msgspec.UNSET]

    @property
    def test(self) -> str:
        return self._given()[0]

    @property
    def expected(self) -> Any:
        return getattr(self, self.test)


class Expect(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How the drill must end for it to pass."""

    status: RunStatusName = "succeeded"
    state: tuple[Assertion, ...] = ()


class LabInputs(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Which runbook inputs receive the lab's URL and token (guessed when not given)."""

    url: str | None = None
    token: str | None = None


InputScalar = str | int | float | bool


class Scenario(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A drill scenario, as written in YAML."""

    runbook: str  # path or id of the runbook it drills
    description: str = ""
    alert: dict[str, Any] = {}  # shown to the participants first (msgspec copies `{}` defaults)
    inputs: dict[str, InputScalar | list[InputScalar]] = {}
    lab_inputs: LabInputs = msgspec.field(default_factory=LabInputs)
    participants: dict[str, str] = {}  # name -> role
    answers: dict[str, Answer] = {}  # step ref -> answer
    faults: tuple[Fault, ...] = ()
    expect: Expect = msgspec.field(default_factory=Expect)


def _line(lines: Mapping[Loc, int], loc: Loc) -> int:
    """The line of ``loc`` or of its closest enclosing key (a missing key has no line)."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


@dataclass(frozen=True, slots=True)
class ScenarioFile:
    """A loaded scenario with the line of every key, so later checks can point at it."""

    path: Path
    spec: Scenario
    lines: Mapping[Loc, int]  # location (keys and indexes) -> 1-based line

    def line(self, *loc: str | int) -> int:
        """The line of ``loc`` or of its closest enclosing key."""
        return _line(self.lines, loc)

    def error(self, message: str, *loc: str | int) -> ScenarioError:
        return ScenarioError(message, path=str(self.path), line=self.line(*loc))


# --- loading -------------------------------------------------------------------------------------


def load_scenario(path: Path) -> ScenarioFile:
    """Read and validate a scenario file; ScenarioError names the file and line of a problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise ScenarioError(f"cannot read the scenario: {reason}", path=str(path)) from None
    data, lines = _parse_yaml(text, path)
    if not isinstance(data, dict):
        raise ScenarioError(
            "a scenario is a YAML mapping with at least `runbook:`; see docs/drills.md",
            path=str(path),
            line=1,
        )
    data = _expand_shorthand(data)
    # msgspec stops at the first problem. Unknown keys, the commonest one (a typo), are all
    # looked for first, so a scenario with several typos is fixed in one round.
    unknown = list(_unknown_keys(data, Scenario, ()))
    if unknown:
        raise _scenario_error(unknown, path, lines)
    try:
        # Not strict: like a YAML author would expect, accept "503" for 503.
        spec = msgspec.convert(data, type=Scenario, strict=False)
    except msgspec.ValidationError as exc:
        raise _scenario_error([_problem(str(exc), data)], path, lines) from None
    return ScenarioFile(path, spec, lines)


def _expand_shorthand(data: dict[Any, Any]) -> dict[Any, Any]:
    """``answers: {isolate: deny}`` -> ``{isolate: {decision: deny}}``.

    Expanded here rather than typed as ``Answer | Literal[...]``, so that ``Scenario.answers``
    holds only Answers and a bad decision is reported at ``answers.<step>.decision`` with the
    choices.
    """
    answers = data.get("answers")
    if not isinstance(answers, dict):
        return data
    expanded = {k: {"decision": v} if isinstance(v, str) else v for k, v in answers.items()}
    return {**data, "answers": expanded}


def _parse_yaml(text: str, path: Path) -> tuple[Any, dict[Loc, int]]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(
            f"not valid YAML: {problem}",
            path=str(path),
            line=mark.line + 1 if mark is not None else None,
        ) from None
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    if node is not None:
        _record_lines(node, (), lines)
    return data, lines


def _record_lines(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            here = (*loc, str(key.value))
            lines[here] = key.start_mark.line + 1
            _record_lines(value, here, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, (*loc, index), lines)


def _scenario_error(
    problems: Sequence[tuple[Loc, str]], path: Path, lines: Mapping[Loc, int]
) -> ScenarioError:
    """One problem as `file:line: where: what`; several as a list with a line each."""
    listed = [
        (_line(lines, loc), f"{'.'.join(str(p) for p in loc) or 'the scenario'}: {message}")
        for loc, message in problems
    ]
    if len(listed) == 1:
        return ScenarioError(listed[0][1], path=str(path), line=listed[0][0])
    body = "\n  ".join(f"line {line}: {text}" for line, text in listed)
    return ScenarioError(f"invalid scenario:\n  {body}", path=str(path), line=listed[0][0])


# --- msgspec's message -> a location and a fix ---------------------------------------------------

ErrorPath = tuple[str | int | EllipsisType, ...]  # a Loc; `...`: a mapping key msgspec leaves out


@dataclass(frozen=True, slots=True)
class ValidationProblem:
    """msgspec's text for a problem, split into what is wrong and where."""

    message: str  # "Expected `int` <= 599"
    path: ErrorPath  # ("faults", 0, "status"); () for the whole scenario
    in_key: bool = False  # a key of the mapping at ``path`` is wrong, not a value


# "... - at `$.faults[0].status`", or "... - at `key` in `$.answers`" for a mapping's key. Greedy:
# a message may quote text with " - at `" in it (a fault's route); the location comes last.
_AT = re.compile(r"(?P<message>.*) - at (?P<key>`key` in )?`(?P<path>\$[^`]*)`", re.DOTALL)
_PATH_STEP = re.compile(r"\.(?P<name>[^.\[\]`]+)|\[(?P<index>\d+)\]|(?P<value>\[\.\.\.\])")


def split_validation_error(text: str) -> ValidationProblem:
    """``str(msgspec.ValidationError)`` -> its message and location (the whole scenario when
    there is no location, or one that cannot be read)."""
    match = _AT.fullmatch(text)
    path = parse_error_path(match["path"]) if match else None
    if match is None or path is None:
        return ValidationProblem(text, ())
    return ValidationProblem(match["message"], path, in_key=match["key"] is not None)


def parse_error_path(text: str) -> ErrorPath | None:
    """msgspec's ``$.faults[0].status`` -> ("faults", 0, "status"); None if it is not one.

    A struct field is ``.name``, a list index ``[0]``; a mapping's value is ``[...]``, since
    msgspec does not say which key: it becomes ``...``, for :func:`_resolve` to find.
    """
    if not text.startswith("$"):
        return None
    parts: list[str | int | EllipsisType] = []
    at = 1
    while at < len(text):
        step = _PATH_STEP.match(text, at)
        if step is None:
            return None
        if step["name"] is not None:
            parts.append(step["name"])
        else:
            parts.append(int(step["index"]) if step["index"] is not None else ...)
        at = step.end()
    return tuple(parts)


def _problem(text: str, data: object) -> tuple[Loc, str]:
    """msgspec's first problem as the location of its YAML key and a message saying the fix."""
    problem = split_validation_error(text)
    loc = _resolve(problem.path, data)
    message, schema = problem.message, _schema_at(loc)
    if problem.in_key:
        bad = next((k for k in _mapping_at(data, loc) if not isinstance(k, str)), None)
        if bad is not None:
            return (*loc, str(bad)), f"{_yaml_words(message)}; put the key in quotes: '{bad}'"
    if field := _quoted_after(message, "Object contains unknown field "):
        struct = next((o for o in _options(schema) if _is_struct(o)), None)
        return (*loc, field), _unknown_key(field, _fields(struct) if struct else {})
    if field := _quoted_after(message, "Object missing required field "):
        return (*loc, field), f"missing; add `{field}:` (see docs/drills.md)"
    choices = [str(v) for o in _options(schema) if get_origin(o) is Literal for v in get_args(o)]
    if message.startswith("Invalid enum value") and choices:
        return loc, f"{message}; expected one of: {', '.join(choices)}"
    return loc, _yaml_words(message)


def _quoted_after(message: str, prefix: str) -> str | None:
    """``Object contains unknown field `stat``` -> "stat" for that prefix; else None."""
    rest = message.removeprefix(prefix)
    if rest == message or len(rest) < 2 or rest[0] != "`" or rest[-1] != "`":
        return None
    return rest[1:-1]


def _yaml_words(message: str) -> str:
    """msgspec names JSON's types; a scenario's author writes YAML mappings and lists."""
    if not message.startswith("Expected `"):
        return message
    return re.sub(r"\bobject\b", "mapping", re.sub(r"\barray\b", "list", message))


def _unknown_key(key: str, known: Iterable[str]) -> str:
    return f"unknown key{did_you_mean(key, known)}; see docs/drills.md for the scenario keys"


def _unknown_keys(value: object, schema: object, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """Every key the scenario format does not have, with the line order of the file."""
    struct = next((o for o in _options(schema) if _is_struct(o)), None)
    if isinstance(value, dict) and struct is not None:
        fields = _fields(struct)
        for key, item in value.items():
            if key in fields:
                yield from _unknown_keys(item, fields[key], (*loc, key))
            else:
                yield (*loc, str(key)), _unknown_key(str(key), fields)
    elif isinstance(value, dict | list):
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            child = _child(schema, key)
            if child is not None:
                yield from _unknown_keys(item, child, (*loc, key))


def _resolve(path: ErrorPath, data: object) -> Loc:
    """The location of msgspec's problem, with each key it leaves out (`...`) found again: the
    first key, in file order, whose value alone fails too (msgspec stops at the first failure)."""
    loc: list[str | int] = []
    value, schema = data, cast(object, Scenario)
    for part in path:
        key = _failing_key(value, schema) if isinstance(part, EllipsisType) else part
        if key is None:
            break
        loc.append(key)
        value, schema = _item(value, key), _child(schema, key)
    return tuple(loc)


def _failing_key(value: object, schema: object) -> str | None:
    if not isinstance(value, dict):
        return None
    for key, item in value.items():
        item_type = _child(schema, key)
        if not isinstance(key, str) or item_type is None:
            continue
        try:
            msgspec.convert(item, type=item_type, strict=False)
        except msgspec.ValidationError:
            return key
    return None


def _mapping_at(data: object, loc: Loc) -> dict[Any, Any]:
    for part in loc:
        data = _item(data, part)
    return data if isinstance(data, dict) else {}


def _item(value: object, part: str | int) -> object:
    """``value[part]`` for a mapping's key or a list's index; None when there is none."""
    if isinstance(value, dict):
        return value.get(part)
    if isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
        return value[part]
    return None


def _schema_at(loc: Loc) -> object:
    schema: object = Scenario
    for part in loc:
        schema = _child(schema, part)
    return schema


def _child(schema: object, part: object) -> object:
    """The type of ``part`` (a key or index) in a value of type ``schema``; None: not known."""
    for option in _options(schema):
        if _is_struct(option):
            field_type = _fields(option).get(part) if isinstance(part, str) else None
            if field_type is not None:
                return field_type
        elif get_origin(option) is dict and isinstance(part, str):
            return get_args(option)[1]
        elif get_origin(option) in (list, tuple) and isinstance(part, int):
            return get_args(option)[0]
    return None


def _options(schema: object) -> tuple[object, ...]:
    """The types a value of ``schema`` may have: Annotated unwrapped, unions flattened."""
    origin = get_origin(schema)
    if origin is Annotated:
        return _options(get_args(schema)[0])
    if origin in (Union, UnionType):
        return tuple(option for arg in get_args(schema) for option in _options(arg))
    return (schema,)


def _is_struct(schema: object) -> TypeGuard[type[msgspec.Struct]]:
    return isinstance(schema, type) and issubclass(schema, msgspec.Struct)


def _fields(struct: type[msgspec.Struct]) -> dict[str, object]:
    return {f.encode_name: f.type for f in msgspec.structs.fields(struct)}
