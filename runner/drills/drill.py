"""Tabletop drills: a scenario (``runner.drills.scenario``) drives a runbook against the lab.

This module holds the checks of a loaded scenario against its runbook (:func:`check_scenario`),
the lab's control API as a drill uses it (:class:`LabClient`), the operator that plays the
scenario (:class:`DrillOperator`), the end-of-drill verdict (:func:`check_expectations`) and the
runbooks not drilled lately (:func:`stale_problems`). The CLI (``runner.cli.drills``) wires them
to a lab, kernels and the terminal.

Long on purpose: the drill operator is one state machine over the scenario (answers, faults,
notes, assertions), and its parts only make sense together.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from runner.drills.scenario import Answer, Assertion, Fault, Note, ScenarioFile
from runner.errors import ExitCode, RunbookError, UsageError
from runner.exec.operator import Answer as OperatorAnswer
from runner.exec.operator import Approval, ApprovalRequest, Decision, Operator
from runner.format.answers import read_answer
from runner.format.model import Problem, Question, Runbook, Step, all_steps, find_step
from runner.lab.server import is_loopback
from runner.parse.markdown import parse_file
from runner.runs import events as ev
from runner.runs.store import RunInfo, RunWriter, list_runs

SCENARIO_SUFFIXES = (".yaml", ".yml")
DRILLS_FOLDER = "drills"  # scenarios live in runbooks/drills/<runbook-id>.yaml
DEFAULT_APPROVER = "drill-approver"  # who approves when the scenario names no participant


class LabUnreachable(RunbookError):
    """The lab did not answer, or refused the token."""

    exit_code = ExitCode.USAGE


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
    if step.question is not None:
        if decision not in (None, "approve", "deny"):
            raise scenario.error(
                f"step {ref} asks a question; answer it with `answer: VALUE`, not {decision}",
                "answers",
                ref,
            )
        if answer.answer is not None:
            try:
                read_answer(step.question, answer.answer)
            except ValueError as exc:
                raise scenario.error(f"step {ref}: {exc}", "answers", ref, "answer") from None
    elif answer.answer is not None:
        raise scenario.error(
            f"step {ref} asks no question, so it takes no `answer:`; use done, run or skip",
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
    journal: RunWriter
    lab: LabClient
    facilitator: str  # who runs the drill
    person: Operator | None = None  # a person answers; None: the scenario answers
    on_event: Callable[[ev.JournalEvent], None] | None = None  # live display: faults, notes
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
                ev.Fault(
                    step=step.number,
                    step_id=step.id,
                    procedure=procedure,
                    description=fault.description or f"{fault.route} answers {fault.status}",
                    route=fault.route,
                    status=fault.status,
                    times=fault.times,
                )
            )

    def _write_note(self, step: Step, note: Note) -> None:
        self._emit(
            ev.Note(
                step=step.number,
                step_id=step.id,
                procedure=self._procedures.get(id(step)),
                by=note.by,
                role=self._role(note.by),
                text=note.text,
                unclear=note.unclear,
            )
        )

    def _emit(self, event: ev.JournalEvent) -> None:
        record = self.journal.append(event)
        if self.on_event is not None:
            self.on_event(ev.decode(record))  # as written: redacted, with seq and ts

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

    def answer(self, step: Step, question: Question) -> OperatorAnswer:
        asked = time.monotonic()
        answer = self._before(step)
        if self.person is not None:
            return self.person.answer(step, question)
        if answer.answer is None:
            # No answer in the scenario: the run pauses, and the drill's verdict says so.
            return OperatorAnswer("later", by=self.name)
        value = read_answer(question, answer.answer)  # checked with the scenario
        waited = time.monotonic() - asked
        return OperatorAnswer("answer", value, self.name, "scenario", waited)

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
