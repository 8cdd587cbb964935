"""Lint rules for loops (`foreach=`) and sub-runbooks (```runbook blocks), and the finding of
the runbooks a file calls.

A called runbook is looked for in the folder of the calling file and below it (hidden folders
skipped), by id. :func:`with_called` hands the plan to the runner with every runbook it calls,
parsed and checked, so the engine runs plans and never reads a file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

from runner.errors import UnreadableRunbook
from runner.format.model import Problem, Runbook, Step, step_label
from runner.format.reads import declared_outputs, reads
from runner.format.syntax import is_literal
from runner.parse.markdown import did_you_mean, parse_file

#: Folders never searched for called runbooks: tool state, the site, drills and alert samples.
_SKIP = frozenset({"node_modules", "site", "__pycache__"})
_parse_cache: dict[tuple[str, float, int], Runbook] = {}


def _problem(runbook: Runbook, line: int, code: str, msg: str) -> Problem:
    return Problem(str(runbook.path), line, "error", code, msg)


def _steps_with_known(runbook: Runbook) -> Iterator[tuple[str, Step, set[str]]]:
    """Each step, where it is, and the names it may use: inputs and earlier outputs (any main
    output for a procedure's steps, which run after a main step failed)."""
    inputs = {spec.name for spec in runbook.metadata.inputs}
    every = {n for s in runbook.steps for n in s.outputs}
    earlier: set[str] = set()
    for step in runbook.steps:
        yield f"step {step.number}", step, inputs | earlier
        earlier |= set(step.outputs)
    for proc in runbook.procedures:
        known = inputs | every
        for step in proc.steps:
            yield f"procedure {proc.id!r} step {step.number}", step, set(known)
            known |= set(step.outputs)


# --- loops ------------------------------------------------------------------------------------


def rule_loop_source(runbook: Runbook) -> Iterator[Problem]:
    """RB101: `foreach=NAME` names neither a list input nor an output of an earlier step.
    RB103: `as=NAME` hides an input or output of the same name."""
    inputs = {spec.name: spec for spec in runbook.metadata.inputs}
    outputs = {n for s in runbook.steps for n in s.outputs}
    outputs |= {n for p in runbook.procedures for s in p.steps for n in s.outputs}
    for where, step, known in _steps_with_known(runbook):
        block = next((b for b in step.executable_blocks if b.loop), None)
        if block is None or block.loop is None:
            continue
        loop = block.loop
        if loop.var in inputs or loop.var in outputs:
            yield _problem(runbook, block.line, "RB103",
                           f"{where}: as={loop.var} hides the input or output {loop.var!r} "
                           "inside the loop; name the item something else, e.g. as=each_"
                           f"{loop.var}")  # fmt: skip
        if loop.items is not None:
            continue
        name = loop.source
        spec = inputs.get(name)
        if spec is not None:
            if spec.type != "list":
                yield _problem(runbook, block.line, "RB101",
                               f"{where}: foreach={name} names an input of type {spec.type}, "
                               f"not a list; declare it `type: list`")  # fmt: skip
            continue
        if name in known:
            continue
        if name in outputs:
            why = "is only set by a later step; move the loop after the step that sets it"
        else:
            hint = did_you_mean(name, sorted(set(inputs) | outputs))
            why = (f"is neither an input nor an output of an earlier step{hint}; declare it "
                   "as a `type: list` input, set it with outputs=, or write a literal "
                   "foreach=\"[a, b]\"")  # fmt: skip
        yield _problem(runbook, block.line, "RB101", f"{where}: foreach={name} {why}")


def rule_loop_blocks(runbook: Runbook) -> Iterator[Problem]:
    """RB104: a step whose blocks carry two different foreach=: the step loops once."""
    for where, step, _ in _steps_with_known(runbook):
        loops = [b for b in step.executable_blocks if b.loop]
        if len(loops) > 1 and len({b.loop for b in loops}) > 1:
            yield _problem(runbook, loops[1].line, "RB104",
                           f"{where}: a second foreach= in one step; the step's blocks run "
                           "together once per item of the first block's list: make the "
                           "second loop a step of its own")  # fmt: skip


# --- sub-runbooks -----------------------------------------------------------------------------


def runbook_index(root: Path) -> dict[str, Path]:
    """Runbook id -> file, for every runbook in ``root`` and below (a file that does not parse
    is left out; `check` reports it anyway). The folders are walked each time, which is cheap;
    the files are parsed again only when they changed."""
    index: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP)
        for name in sorted(files):
            if name.endswith(".md") and not name.startswith("."):
                book = _parsed(Path(folder) / name)
                if book is not None and book.metadata.has_front_matter:
                    index.setdefault(book.metadata.id, Path(folder) / name)
    return index


def _parsed(path: Path) -> Runbook | None:
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime, st.st_size)
    except OSError:
        return None
    if key not in _parse_cache:
        try:
            _parse_cache[key] = parse_file(path)
        except UnreadableRunbook:
            return None
    return _parse_cache[key]


def _calls(runbook: Runbook) -> Iterator[tuple[str, Step]]:
    for where, step, _ in _steps_with_known(runbook):
        if step.call is not None:
            yield where, step


def _target(runbook: Runbook, ref: str) -> Runbook | None:
    path = runbook_index(Path(runbook.path).parent).get(ref)
    return _parsed(path) if path is not None else None


def rule_calls(runbook: Runbook) -> Iterator[Problem]:
    """RB111 to RB116: a ```runbook block's runbook, its inputs, its outputs, and cycles."""
    for where, step, known in _steps_with_known(runbook):
        if step.call is None:
            continue
        block = next(b for b in step.executable_blocks if b.call)
        call = block.call
        assert call is not None
        others = [b for b in step.executable_blocks if b is not block]
        if others:
            yield _problem(runbook, others[0].line, "RB116",
                           f"{where}: a step that calls a runbook runs nothing else; put "
                           "this block in a step of its own")  # fmt: skip
        child = _target(runbook, call.runbook)
        if child is None:
            ids = sorted(runbook_index(Path(runbook.path).parent))
            yield _problem(runbook, block.line, "RB111",
                           f"{where}: runbook={call.runbook}: no runbook with that id in "
                           f"{Path(runbook.path).parent}/ or below"
                           f"{did_you_mean(call.runbook, ids)}")  # fmt: skip
            continue
        declared = {s.name: s for s in child.metadata.inputs}
        for name, source in call.inputs.items():
            if name not in declared:
                yield _problem(runbook, block.line, "RB112",
                               f"{where}: with= gives {name!r}, which runbook {call.runbook} "
                               f"does not declare{did_you_mean(name, declared)}")  # fmt: skip
            if not is_literal(source) and source not in known:
                yield _problem(runbook, block.line, "RB113",
                               f"{where}: with= maps {name}={source}, and {source!r} is "
                               "neither an input nor an output of an earlier step; quote a "
                               f"literal ({name}='text') or name a value of this run")  # fmt: skip
        for spec in child.metadata.inputs:
            if spec.required and spec.default is None and spec.name not in call.inputs:
                yield _problem(runbook, block.line, "RB112",
                               f"{where}: runbook {call.runbook} requires input {spec.name!r}; "
                               f'map it: with="{spec.name}=NAME"')  # fmt: skip
        set_by_child = {n for s in child.steps for n in s.outputs}
        set_by_child |= {n for p in child.procedures for s in p.steps for n in s.outputs}
        for name in block.outputs:
            if name not in set_by_child:
                yield _problem(runbook, block.line, "RB115",
                               f"{where}: outputs={name}: no step of runbook {call.runbook} "
                               f"sets it{did_you_mean(name, set_by_child)}")  # fmt: skip
        cycle = _cycle(runbook, child, [runbook.metadata.id])
        if cycle:
            yield _problem(runbook, block.line, "RB114",
                           f"{where}: the runbooks call each other: {' -> '.join(cycle)}; "
                           "a run would never end")  # fmt: skip


def _cycle(origin: Runbook, book: Runbook, path: list[str]) -> list[str] | None:
    here = [*path, book.metadata.id]
    if book.metadata.id in path:
        return here
    for _, step in _calls(book):
        assert step.call is not None
        child = _target(book, step.call.runbook)
        if child is not None:
            found = _cycle(origin, child, here)
            if found:
                return found
    return None


def with_called(runbook: Runbook) -> Runbook:
    """The plan with the runbooks it calls (and those they call), as the engine runs them.
    A runbook that cannot be found is left out: `check` has reported RB111 by then."""
    return _with_called(runbook, frozenset())


def _with_called(runbook: Runbook, seen: frozenset[str]) -> Runbook:
    calls = [step.call.runbook for _, step in _calls(runbook) if step.call is not None]
    if not calls:
        return runbook
    called: dict[str, Runbook] = {}
    for ref in dict.fromkeys(calls):
        child = _target(runbook, ref)
        if child is not None and ref not in seen:
            called[ref] = _with_called(child, seen | {runbook.metadata.id})
    return dataclasses.replace(runbook, called=MappingProxyType(called))


def rule_reads_unset(runbook: Runbook) -> Iterator[Problem]:
    """RB117: a step reads an output that can be unset when it runs: its setter has a `when=`
    the reader does not share, or only a later step (or a procedure) sets it. The engine stops
    such a step rather than run it with an empty value; this says so before the incident."""
    declared = declared_outputs(runbook)
    inputs = {spec.name for spec in runbook.metadata.inputs}
    lists = [(None, runbook.steps), *((p.id, p.steps) for p in runbook.procedures)]
    for procedure, steps in lists:
        order = {step.id: n for n, step in enumerate(steps)}
        for n, step in enumerate(steps):
            own = set(step.outputs)
            names = [x for x in declared if x not in own and x not in inputs]
            for block in step.executable_blocks:
                for name in reads(block, names):
                    source = declared[name]
                    setter = next((s for s in steps if s.id == source.step_id), None)
                    where = f"step {step_label(procedure, step.number)}"
                    if source.procedure != procedure or setter is None or order[setter.id] > n:
                        when = "only later" if source.procedure == procedure else "in another list"
                        yield Problem(str(runbook.path), block.line, "warning", "RB117",
                                      f"{where} reads {name}, which only step {source.label} "
                                      f"({source.step_id}) sets, {when}: the step stops without "
                                      "it; set it before, or make it an input")  # fmt: skip
                    elif setter.when and setter.when != step.when:
                        yield Problem(str(runbook.path), block.line, "warning", "RB117",
                                      f"{where} reads {name}, which step {source.label} "
                                      f"({source.step_id}) sets only when {setter.when!r}: "
                                      "otherwise the step stops without it; give it "
                                      f'`when="{setter.when}"` too, or read '
                                      f"${{{name.upper()}:-fallback}}")  # fmt: skip


RULES = [rule_loop_source, rule_loop_blocks, rule_calls, rule_reads_unset]
