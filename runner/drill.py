"""Tabletop drills: a scenario (YAML) that drives a runbook against the lab.

A scenario names the runbook, the alert shown to the participants, input values, who takes part
in which role, how each step is answered (approve or deny, done or skip, notes), the faults the
lab injects before given steps, and the expected end: the run's status and assertions on the
lab's ``/api/_lab/state``. See ``docs/drills.md`` for the format.

This module holds the scenario model and its loading (:func:`load_scenario`), the checks of a
scenario against its runbook (:func:`check_scenario`), the operator that plays the scenario
(:class:`DrillOperator`) and the end-of-drill verdict (:func:`check_expectations`). The CLI
(``runner.cli.drills``) wires them to a lab, kernels and the terminal.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import EllipsisType, UnionType
from typing import Annotated, Any, Literal, TypeGuard, Union, cast, get_args, get_origin
from urllib.parse import urlsplit

import httpx
import msgspec
import yaml

from .errors import RunbookError, UsageError
from .journal import Event, Journal, RunInfo, list_runs
from .lab.api import LabError
from .lab.control import parse_route
from .lab.server import is_loopback
from .model import Problem, Runbook, Step
from .operator import Approval, ApprovalRequest, Decision, Operator
from .parse import parse_file

SCENARIO_SUFFIXES = (".yaml", ".yml")
DRILLS_FOLDER = "drills"  # scenarios live in runbooks/drills/<runbook-id>.yaml
DEFAULT_APPROVER = "drill-approver"  # who approves when the scenario names no participant
RunStatusName = Literal["succeeded", "succeeded_with_handled_failures", "failed", "cancelled"]
Loc = tuple[str | int, ...]


class ScenarioError(RunbookError):
    """A scenario file cannot be used: unreadable, invalid, or not fitting its runbook."""

    exit_code = 2


class LabUnreachable(RunbookError):
    """The lab did not answer, or refused the token."""

    exit_code = 2


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
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key{hint}; see docs/drills.md for the scenario keys"


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


def find_scenario(runbook_path: Path, runbook_id: str) -> Path:
    """The default scenario: runbooks/drills/<id>.yaml, drills/ beside the runbook, or beside it."""
    folders = [Path("runbooks") / DRILLS_FOLDER, runbook_path.parent / DRILLS_FOLDER]
    names = [runbook_id, runbook_path.stem]
    candidates = [f / f"{n}{s}" for f in folders for n in names for s in SCENARIO_SUFFIXES]
    candidates += [runbook_path.with_suffix(f".drill{s}") for s in SCENARIO_SUFFIXES]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in dict.fromkeys(candidates[:2] + candidates[-2:-1]))
    raise UsageError(
        f"no drill scenario for runbook {runbook_id!r} (looked for {looked}); write one "
        "(see docs/drills.md) or give --scenario FILE",
        path=str(runbook_path),
    )


# --- the scenario against its runbook -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepRef:
    """A step of the runbook, main or in an alternative procedure."""

    step: Step
    procedure: str | None

    @property
    def label(self) -> str:
        return f"{self.procedure}/{self.step.number}" if self.procedure else str(self.step.number)


def all_steps(book: Runbook) -> list[StepRef]:
    refs = [StepRef(s, None) for s in book.steps]
    refs += [StepRef(s, p.id) for p in book.procedures for s in p.steps]
    return refs


def find_step(book: Runbook, ref: str) -> StepRef | None:
    """`isolate`, `3`, `manual-isolation/2` or `manual-isolation/<step id>`."""
    proc, sep, rest = ref.rpartition("/")
    for r in all_steps(book):
        if sep:
            if r.procedure == proc and rest in (str(r.step.number), r.step.id):
                return r
        elif r.step.id == ref or (r.procedure is None and str(r.step.number) == ref):
            return r
    return None


@dataclass(frozen=True, slots=True)
class LabInputNames:
    """The runbook inputs the drill fills with the lab's URL and token."""

    url: str
    token: str


def check_scenario(scenario: ScenarioFile, book: Runbook) -> LabInputNames:
    """Every problem of the scenario against its runbook, as a ScenarioError with its line."""
    spec = scenario.spec
    _check_runbook_named(scenario, book)
    names = _lab_input_names(scenario, book)
    for name in spec.inputs:
        declared = book.metadata.input(name)
        if declared is None:
            known = ", ".join(i.name for i in book.metadata.inputs) or "none"
            raise scenario.error(
                f"unknown input {name!r} (the runbook's inputs: {known})", "inputs", name
            )
        if declared.secret:
            raise scenario.error(
                f"input {name!r} is a secret: scenarios hold no secrets, the drill gives the lab "
                "token itself; remove it",
                "inputs",
                name,
            )
    for ref, answer in spec.answers.items():
        _check_answer(scenario, book, ref, answer)
    for index, fault in enumerate(spec.faults):
        if find_step(book, fault.at_step) is None:
            raise scenario.error(_no_step(book, fault.at_step), "faults", index, "at_step")
    return names


def _check_runbook_named(scenario: ScenarioFile, book: Runbook) -> None:
    named = scenario.spec.runbook
    if named in (book.metadata.id, book.path.stem) or Path(named).stem == book.path.stem:
        return
    raise scenario.error(
        f"this scenario drills runbook {named!r}, not {book.metadata.id!r} ({book.path}); "
        "give the matching runbook or scenario",
        "runbook",
    )


def _lab_input_names(scenario: ScenarioFile, book: Runbook) -> LabInputNames:
    inputs = book.metadata.inputs
    chosen = scenario.spec.lab_inputs
    url = chosen.url or next(
        (i.name for i in inputs if i.name == "base_url"),
        next((i.name for i in inputs if "url" in i.name.lower() and not i.secret), None),
    )
    secrets = [i.name for i in inputs if i.secret]
    token = chosen.token or next(
        (n for n in secrets if "token" in n.lower()), secrets[0] if len(secrets) == 1 else None
    )
    for kind, name in (("url", url), ("token", token)):
        if name is None or book.metadata.input(name) is None:
            raise scenario.error(
                f"cannot tell which input of runbook {book.metadata.id!r} receives the lab's "
                f"{kind}; name it in `lab_inputs: {{{kind}: INPUT}}`",
                "lab_inputs",
                kind,
            )
    others = [n for n in secrets if n != token and book.metadata.input(n)]
    required = [n for n in others if (spec := book.metadata.input(n)) and spec.required]
    if required:
        raise scenario.error(
            f"the runbook needs secret input(s) {', '.join(required)} that a drill cannot supply; "
            "only the lab token is given",
        )
    assert url is not None and token is not None
    return LabInputNames(url, token)


def _no_step(book: Runbook, ref: str) -> str:
    known = ", ".join(f"{r.label} ({r.step.id})" for r in all_steps(book)[:12])
    return (
        f"no step {ref!r} in runbook {book.metadata.id!r}; steps are named by id or number: {known}"
    )


def _check_answer(scenario: ScenarioFile, book: Runbook, ref: str, answer: Answer) -> None:
    target = find_step(book, ref)
    if target is None:
        raise scenario.error(_no_step(book, ref), "answers", ref)
    step, decision = target.step, answer.decision
    if decision in ("approve", "deny") and not step.approve:
        raise scenario.error(
            f"step {ref} needs no approval, so it cannot be {decision}d; use run or skip",
            "answers",
            ref,
        )
    if decision == "done" and not step.manual:
        raise scenario.error(f"step {ref} runs code; `done` is for manual steps", "answers", ref)
    if decision == "run" and step.manual:
        raise scenario.error(f"step {ref} is manual; answer done or skip", "answers", ref)
    people = scenario.spec.participants
    named = [("by", answer.by)] + [(f"notes.{i}.by", n.by) for i, n in enumerate(answer.notes)]
    for key, who in named:
        if who is not None and who not in people:
            known = ", ".join(people) or "none"
            raise scenario.error(
                f"{who!r} is not a participant (participants: {known}); add them under "
                "`participants:` with their role",
                "answers",
                ref,
                *key.split("."),
            )


def check_loopback(values: Mapping[str, object], scenario: ScenarioFile | None = None) -> None:
    """Refuse any URL input that points anywhere but this machine: drills only touch the lab."""
    for name, value in values.items():
        if not isinstance(value, str) or not value:
            continue
        if "://" not in value and "url" not in name.lower():
            continue
        host = urlsplit(value if "://" in value else f"//{value}").hostname or ""
        if not is_loopback(host):
            message = (
                f"input {name!r} points at {host or value!r}, which is not this machine: "
                "drills run against the lab only (127.0.0.1); remove it from the scenario or "
                "point it at the lab"
            )
            if scenario is not None and name in scenario.spec.inputs:
                raise scenario.error(message, "inputs", name)
            raise UsageError(message)


# --- the lab -------------------------------------------------------------------------------------


class LabClient:
    """The lab's control API, as a drill uses it."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=15
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise LabUnreachable(
                f"the lab at {self.url} does not answer ({type(exc).__name__}); start it with "
                "`runbook lab`, or drop --lab to let the drill start its own"
            ) from None
        if response.status_code == 401:
            raise LabUnreachable(
                f"the lab at {self.url} refused the token; set RUNBOOK_LAB_TOKEN to the lab's "
                "token (see .runbook/lab/token)"
            )
        if response.status_code >= 400:
            raise LabUnreachable(f"the lab answered {method} {path}: {response.text[:300]}")
        return response.json()

    def reset(self) -> None:
        self._call("POST", "/api/_lab/reset")

    def add_fault(self, fault: Fault) -> None:
        self._call(
            "POST",
            "/api/_lab/faults",
            {
                "route": fault.route,
                "status": fault.status,
                "times": fault.times,
                "delay": fault.delay,
            },
        )

    def clear_faults(self) -> None:
        self._call("DELETE", "/api/_lab/faults")

    def state(self) -> dict[str, Any]:
        result = self._call("GET", "/api/_lab/state")
        return result if isinstance(result, dict) else {}


# --- playing the scenario ------------------------------------------------------------------------


@dataclass
class DrillOperator:
    """Plays a scenario: injects its faults before their steps, writes participants' notes, and
    answers each prompt as the scenario says, or asks ``person`` (an interactive drill).

    Decisions are journaled by the engine with ``by`` set to :attr:`name`, which this operator
    sets to the participant acting for the step's role before each answer.
    """

    book: Runbook
    scenario: ScenarioFile
    journal: Journal
    lab: LabClient
    facilitator: str  # who runs the drill
    person: Operator | None = None  # a person answers; None: the scenario answers
    on_event: Callable[[Event], None] | None = None  # live display of faults and notes
    name: str = ""
    interactive: bool = True  # decisions are journaled
    injected: list[tuple[int, str]] = field(default_factory=list)  # (fault index, step label)
    _procedures: dict[int, str | None] = field(default_factory=dict)
    _prepared: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.name = self.facilitator
        self._procedures = {id(r.step): r.procedure for r in all_steps(self.book)}

    # who acts

    def _participant(self, role: str | None) -> str:
        people = self.scenario.spec.participants
        return next((n for n, r in people.items() if r == role), self.facilitator)

    def _answer(self, step: Step) -> Answer:
        answers = self.scenario.spec.answers
        procedure = self._procedures.get(id(step))
        for ref, answer in answers.items():
            found = find_step(self.book, ref)
            if found is not None and found.step is step and found.procedure == procedure:
                return answer
        return Answer()

    def _role(self, name: str) -> str | None:
        return self.scenario.spec.participants.get(name)

    # what happens before a step

    def _before(self, step: Step) -> Answer:
        answer = self._answer(step)
        key = id(step)
        if key not in self._prepared:  # a retried or re-prompted step gets its faults once
            self._prepared.add(key)
            self._inject(step)
            if self.person is None:
                for note in answer.notes:
                    self._write_note(step, note)
        acting = answer.by if answer.decision not in ("approve", "deny") else None
        self.name = self.person.name if self.person else acting or self._participant(step.role)
        return answer

    def _inject(self, step: Step) -> None:
        procedure = self._procedures.get(id(step))
        for index, fault in enumerate(self.scenario.spec.faults):
            found = find_step(self.book, fault.at_step)
            if found is None or found.step is not step or found.procedure != procedure:
                continue
            self.lab.add_fault(fault)
            self.injected.append((index, found.label))
            self._emit(
                "fault",
                step=step.number,
                step_id=step.id,
                procedure=procedure,
                description=fault.description or f"{fault.route} answers {fault.status}",
                route=fault.route,
                status=fault.status,
                times=fault.times,
            )

    def _write_note(self, step: Step, note: Note) -> None:
        self._emit(
            "note",
            step=step.number,
            step_id=step.id,
            procedure=self._procedures.get(id(step)),
            by=note.by,
            role=self._role(note.by),
            text=note.text,
            unclear=note.unclear,
        )

    def _emit(self, event: str, **fields: Any) -> None:
        record = self.journal.append(event, **fields)
        if self.on_event is not None:
            self.on_event(record)

    # the Operator protocol

    def before_step(self, step: Step, index: int, total: int) -> Decision:
        answer = self._before(step)
        if self.person is not None:
            return self.person.before_step(step, index, total)
        if answer.decision == "skip":
            return Decision("skip", note=answer.comment or "skipped as the scenario says")
        return Decision("run")

    def manual(self, step: Step, index: int, total: int) -> Decision:
        asked = time.monotonic()
        answer = self._before(step)
        if self.person is not None:
            return self.person.manual(step, index, total)
        action = "skip" if answer.decision == "skip" else "done"
        return Decision(action, note=answer.comment, waited=time.monotonic() - asked)

    def after_failure(self, step: Step, status: str, error: str | None) -> Decision:
        if self.person is not None:
            return self.person.after_failure(step, status, error)
        # Not retry, skip, quit or continue: the engine applies the step's on_failure policy,
        # which is what the drill exercises.
        return Decision("on_failure", note="the runbook's on_failure policy applies")

    def approve(self, request: ApprovalRequest) -> Approval | None:
        if self.person is not None:
            return self.person.approve(request)
        answer = self._answer(request.step)
        by = answer.by or self._approver(request.approver_role)
        role = self._role(by) if by in self.scenario.spec.participants else request.approver_role
        decision = "denied" if answer.decision == "deny" else "approved"
        return Approval(decision, by, role, answer.comment)

    def _approver(self, role: str | None) -> str:
        people = self.scenario.spec.participants
        if role is None:
            return next(iter(people), DEFAULT_APPROVER)
        return next((n for n, r in people.items() if r == role), DEFAULT_APPROVER)


# --- the verdict ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """One expectation and whether it held."""

    what: str  # "run status" or the assertion's path and test
    ok: bool
    detail: str  # expected and actual


def check_expectations(
    scenario: ScenarioFile, status: str, state: Mapping[str, Any], injected: Sequence[int]
) -> list[Check]:
    """The run's status, every state assertion, and whether each fault was injected."""
    spec = scenario.spec
    checks = [
        Check(
            "run status",
            status == spec.expect.status,
            f"expected {spec.expect.status}, got {status}",
        )
    ]
    for assertion in spec.expect.state:
        checks.append(_assert(assertion, state))
    for index, fault in enumerate(spec.faults):
        if index not in injected:
            checks.append(
                Check(
                    f"fault at {fault.at_step}",
                    False,
                    "never injected: the run did not reach that step",
                )
            )
    return checks


_MISSING = object()


def lookup(data: Any, path: str) -> Any:
    """``a.b.0.c`` in nested mappings and lists; _MISSING when absent."""
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif (
            isinstance(current, list)
            and part.lstrip("-").isdigit()
            and -len(current) <= int(part) < len(current)
        ):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, str):
        return isinstance(item, str) and item in container
    if isinstance(container, Mapping):
        return isinstance(item, str) and item in container
    if isinstance(container, list):
        if isinstance(item, Mapping):
            return any(
                isinstance(x, Mapping) and all(x.get(k) == v for k, v in item.items())
                for x in container
            )
        return item in container
    return False


def _assert(assertion: Assertion, state: Mapping[str, Any]) -> Check:
    actual = lookup(state, assertion.path)
    test, expected = assertion.test, assertion.expected
    what = f"{assertion.path} {test.replace('_', ' ')} {_show(expected)}"
    if actual is _MISSING:
        return Check(what, False, f"{assertion.path} is not in the lab state")
    if test in ("equals", "not_equals"):
        ok = (actual == expected) == (test == "equals")
    else:
        ok = _contains(actual, expected) == (test == "contains")
    if ok and test == "contains":
        return Check(what, ok, "found")
    return Check(what, ok, f"actual: {_show(actual)}")


def _show(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("...").strip()
    return text if len(text) <= 160 else text[:157] + "..."


# --- readiness: runbooks not drilled lately ------------------------------------------------------

STALE_CODE = "RB050"  # `runbook check --stale DAYS`: not drilled within DAYS


def stale_problems(
    files: Sequence[Path], days: float, runs_dir: Path, now: dt.datetime | None = None
) -> list[Problem]:
    """A warning per runbook with no drill that started within ``days`` (journals in runs_dir)."""
    now = now or dt.datetime.now(dt.UTC)
    last: dict[str, RunInfo] = {}
    for info in list_runs(runs_dir) if runs_dir.is_dir() else []:
        if info.mode == "drill" and _started(info) is not None:
            known = last.get(info.runbook_id)
            if known is None or info.started > known.started:
                last[info.runbook_id] = info
    problems = []
    for path in files:
        try:
            runbook_id = parse_file(path).metadata.id or path.stem
        except RunbookError:
            continue  # an unreadable file already has its own problem
        drill = last.get(runbook_id)
        when = _started(drill) if drill is not None else None
        if when is not None and now - when <= dt.timedelta(days=days):
            continue
        ago = f"never drilled (no drill in {runs_dir})"
        if drill is not None and when is not None:
            days_ago = (now - when).days
            ago = f"last drilled {when.date()}, {days_ago} days ago ({drill.status})"
        problems.append(
            Problem(
                str(path),
                0,
                "warning",
                STALE_CODE,
                f"not drilled within {days:g} days: {ago}; run `runbook drill {path}`",
            )
        )
    return problems


def _started(info: RunInfo) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(info.started.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
