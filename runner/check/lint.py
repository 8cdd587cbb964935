"""Lint rules: what `runbook check` reports beyond what the parser found.

The parser reports what a file *says* wrongly in one place (bad YAML, an unknown attribute, an
unclosed fence). The rules here look across the whole plan: names that must refer to something
(inputs, outputs, procedures, roles), ids that must be unique, and what a file lacks of the
standard format. Each rule is a small function with a stable code, documented in docs/format.md.

A runbook with error-level problems does not run: the runner calls :func:`load_for_run`.

Long on purpose: the rule list is read top to bottom as the catalogue of what `check` reports
(docs/check.md follows its order); the helpers live in the sibling modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from runner.check import code as check_code
from runner.check import decisions as check_decisions
from runner.check import flow as check_flow
from runner.check import references as check_references
from runner.check import routing as check_routing
from runner.check import structure as check_structure
from runner.errors import InvalidRunbook, UnreadableRunbook, UsageError
from runner.format import syntax as fmt
from runner.format.model import Problem, ProblemLevel, Runbook, Step
from runner.parse.markdown import did_you_mean, parse_file

Rule = Callable[[Runbook], Iterator[Problem]]

#: Folders never searched for runbooks: tool state and dependencies, not content.
_SKIP_DIRS = frozenset({"node_modules", "site", "__pycache__"})


# --- finding and loading ---------------------------------------------------------------------


def iter_runbook_files(paths: Sequence[str | Path]) -> list[Path]:
    """The runbook files named by `paths`: files as given, folders searched for `*.md`.

    Raises UsageError for a path that does not exist, since a typo must not pass as "clean".
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(_markdown_under(path))
        elif path.exists():
            found.append(path)
        else:
            raise UsageError(f"{raw}: no such file or folder")
    return list(dict.fromkeys(found))  # a file named twice is checked once


def _markdown_under(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        parts = path.relative_to(folder).parts
        if any(p.startswith(".") or p in _SKIP_DIRS for p in parts[:-1]):
            continue
        if path.suffix.lower() == ".md" and path.is_file() and not parts[-1].startswith("."):
            yield path


def resolve_runbook(ref: str, search: Sequence[str | Path] = ("runbooks",)) -> Path:
    """A runbook named by path, or by id or file stem under the `search` folders."""
    path = Path(ref)
    if path.exists() or path.suffix.lower() == ".md" or "/" in ref:
        if not path.exists():
            raise UsageError(f"{ref}: no such file")
        return path
    folders = [Path(f) for f in search if Path(f).is_dir()]
    candidates = [p for f in folders for p in sorted(_markdown_under(f))]
    for candidate in candidates:
        if candidate.stem == ref:
            return candidate
    for candidate in candidates:
        try:
            if parse_file(candidate).metadata.id == ref:
                return candidate
        except UnreadableRunbook:
            continue
    where = ", ".join(str(f) for f in search)
    raise UsageError(
        f"{ref}: no such file, and no runbook with that id under {where}; "
        "give a path, or see `runbook list`"
    )


def check_path(path: str | Path) -> list[Problem]:
    """Every problem of one file, parse problems included; an unreadable file is one problem."""
    try:
        runbook = parse_file(path)
    except UnreadableRunbook as exc:
        return [exc.as_problem()]
    return lint(runbook)


def load_for_run(path: str | Path) -> Runbook:
    """The parsed runbook, or InvalidRunbook listing its errors. Warnings do not stop a run."""
    return checked(parse_file(path))


def checked(runbook: Runbook) -> Runbook:
    """The runbook itself when it may run, with the runbooks it calls (each checked too),
    else InvalidRunbook listing its errors."""
    errors = [p for p in lint(runbook) if p.level == "error"]
    if errors:
        raise InvalidRunbook(str(runbook.path), errors)
    runbook = check_flow.with_called(runbook)
    todo = list(runbook.called.values())
    while todo:
        child = todo.pop()
        errors = [p for p in lint(child) if p.level == "error"]
        if errors:
            raise InvalidRunbook(str(child.path), errors)
        todo += child.called.values()
    return runbook


def lint(runbook: Runbook) -> list[Problem]:
    """The parser's problems and every rule's, in line order."""
    problems = list(runbook.problems)
    for rule in RULES:
        problems += rule(runbook)
    return sorted(problems, key=lambda p: (p.line, p.code))


# --- helpers -----------------------------------------------------------------------------------


def _standard(runbook: Runbook) -> bool:
    """Whether the file is written in the standard format (our front matter)."""
    return runbook.metadata.has_front_matter


def _front_matter_unreadable(runbook: Runbook) -> bool:
    """Whether the front matter is there but is not YAML, or not a mapping of keys."""
    return any(p.code in ("RB010", "RB011") for p in runbook.problems)


def _problem(runbook: Runbook, line: int, level: ProblemLevel, code: str, msg: str) -> Problem:
    return Problem(str(runbook.path), line, level, code, msg)


def _all_steps(runbook: Runbook) -> Iterator[tuple[str, Step]]:
    """Every step with a label saying where it is, main steps first."""
    for step in runbook.steps:
        yield f"step {step.number} {step.title!r}", step
    for proc in runbook.procedures:
        for step in proc.steps:
            yield f"procedure {proc.id!r} step {step.number} {step.title!r}", step


def _declared_roles(runbook: Runbook) -> str:
    return ", ".join(runbook.metadata.roles) or "none"


# --- rules -------------------------------------------------------------------------------------


def rule_not_empty(runbook: Runbook) -> Iterator[Problem]:
    """RB005: the file has no content at all."""
    nothing = (
        not runbook.front_matter_line
        and not runbook.sections
        and not runbook.all_blocks()
        and not runbook.description.strip()
        and runbook.metadata.name == runbook.path.stem  # no H1 either
    )
    if nothing and not runbook.problems:
        yield _problem(runbook, 1, "error", "RB005",
                           "the file is empty; write a runbook (see docs/format.md)")  # fmt: skip


def rule_standard_format(runbook: Runbook) -> Iterator[Problem]:
    """RB040: plain Markdown (or another tool's front matter), not the standard format."""
    if _standard(runbook) or _front_matter_unreadable(runbook):
        return  # the author wrote our front matter; RB010/RB011 already say what is wrong
    lacks = ["front matter with name and service", "objective", "time_limit", "roles"]
    if not runbook.has_steps_section:
        lacks.append("a `## Steps` section")
    what = (
        "front matter has no `name` or `service`, so the file is read as plain Markdown"
        if runbook.front_matter_line
        else "no front matter, so the file is read as plain Markdown"
    )
    yield _problem(
        runbook,
        runbook.front_matter_line or 1,
        "warning",
        "RB040",
        f"{what}; it lacks of the standard format: {', '.join(lacks)} (see docs/format.md)",
    )


def rule_steps_section(runbook: Runbook) -> Iterator[Problem]:
    """RB020: no `## Steps`; RB021: a Steps section with no steps in it."""
    level: ProblemLevel = "error" if _standard(runbook) else "warning"
    if not runbook.has_steps_section:
        found = f"; read {len(runbook.steps)} code block(s) as steps" if runbook.steps else ""
        yield _problem(
            runbook,
            1,
            level,
            "RB020",
            f"no `## Steps` section{found}; add one, with a `###` heading or a numbered "
            "list item per step",
        )
    elif not runbook.steps:
        yield _problem(
            runbook,
            runbook.steps_line or 1,
            level,
            "RB021",
            "the Steps section has no steps; give each step a `### ` heading, "
            "or make the steps items of a numbered list (`1. ...`)",
        )


def rule_unique_ids(runbook: Runbook) -> Iterator[Problem]:
    """RB022: two steps, or two runnable blocks, with the same id (procedures included)."""
    seen: dict[str, int] = {}
    reported: set[int] = set()
    for where, step in _all_steps(runbook):
        # A step's id is usually its first block's id: count each id once per step.
        ids: dict[str, int] = {step.id: step.line}
        for block in step.executable_blocks:
            ids.setdefault(block.id, block.line)
        for ident, line in ids.items():
            first = seen.setdefault(ident, line)
            if first != line and line not in reported:
                reported.add(line)
                yield _problem(
                    runbook,
                    line,
                    "error",
                    "RB022",
                    f"{where}: id {ident!r} is already used at line {first}; "
                    "ids must be unique in a runbook: change one `id=`",
                )


def rule_when_names(runbook: Runbook) -> Iterator[Problem]:
    """RB033: a `when` names something that is neither an input nor an output of an earlier step."""
    inputs = {spec.name for spec in runbook.metadata.inputs}
    every_output = {name for _, step in _all_steps(runbook) for name in step.outputs}
    earlier: set[str] = set()
    for step in runbook.steps:
        yield from _when_problems(runbook, f"step {step.number}", step, inputs | earlier,
                                  every_output)  # fmt: skip
        earlier.update(step.outputs)
    # A procedure runs after some main step failed: any main output may be set by then.
    for proc in runbook.procedures:
        known = inputs | every_output
        for step in proc.steps:
            where = f"procedure {proc.id!r} step {step.number}"
            yield from _when_problems(runbook, where, step, known, every_output)


def _when_problems(
    runbook: Runbook, where: str, step: Step, known: set[str], every_output: set[str]
) -> Iterator[Problem]:
    for block in step.policy_blocks:
        if block.condition is None:
            continue  # no condition, or one that did not parse (the parser reported RB032)
        names = block.condition.names
        for name in sorted(names - known):
            if name in every_output:
                why = "is only set by a later step; move the condition, or the step that sets it"
            else:
                choices = sorted({spec.name for spec in runbook.metadata.inputs} | every_output)
                why = (
                    "is neither an input nor an output of an earlier step"
                    f"{did_you_mean(name, choices)}; declare it under `inputs:` or add "
                    "`outputs=` to the block that sets it"
                )
            yield _problem(
                runbook, block.line, "error", "RB033", f"{where}: when= names {name!r}, which {why}"
            )


def rule_on_failure(runbook: Runbook) -> Iterator[Problem]:
    """RB034: `on_failure=procedure:NAME` where no alternative procedure has that name."""
    policy = ((where, b) for where, step in _all_steps(runbook) for b in step.policy_blocks)
    for where, block in policy:
        if not block.on_failure.startswith("procedure:"):
            continue
        name = block.on_failure.split(":", 1)[1]
        if runbook.procedure(name) is None:
            known = [p.id for p in runbook.procedures]
            hint = did_you_mean(name, known) or (
                f" (procedures: {', '.join(known)})" if known else ""
            )
            yield _problem(
                runbook,
                block.line,
                "error",
                "RB034",
                f"{where}: on_failure names procedure {name!r}, which does not exist{hint}; "
                "add a `### ` heading with that title under `## Alternative procedures`",
            )


def rule_roles(runbook: Runbook) -> Iterator[Problem]:
    """RB035: a step's role is not declared; RB038: `approve=ROLE` names an undeclared role."""
    if not _standard(runbook):
        return
    roles = runbook.metadata.roles
    for where, step in _all_steps(runbook):
        if step.role and step.role not in roles:
            yield _problem(
                runbook,
                step.line,
                "error",
                "RB035",
                f"{where}: role {step.role!r} is not declared{did_you_mean(step.role, roles)}; "
                f"add it under `roles:` (declared: {_declared_roles(runbook)})",
            )
        for kind, names in (("informed", step.informed), ("consulted", step.consulted)):
            for name in names:
                if name not in roles:
                    yield _problem(
                        runbook, step.line, "error", "RB035",
                        f"{where}: {kind} role {name!r} is not declared"
                        f"{did_you_mean(name, roles)}; add it under `roles:` "
                        f"(declared: {_declared_roles(runbook)})",
                    )  # fmt: skip
        for block in step.policy_blocks:
            if block.approver_role and block.approver_role not in roles:
                yield _problem(
                    runbook,
                    block.line,
                    "error",
                    "RB038",
                    f"{where}: approve={block.approver_role} names a role that is not declared; "
                    f"add it under `roles:` or use approve=true "
                    f"(declared: {_declared_roles(runbook)})",
                )
            if block.escalate_role and block.escalate_role not in roles:
                yield _problem(
                    runbook,
                    block.line,
                    "error",
                    "RB038",
                    f"{where}: escalate={block.escalate_role} names a role that is not declared; "
                    f"add it under `roles:` (declared: {_declared_roles(runbook)})",
                )


def rule_expiry(runbook: Runbook) -> Iterator[Problem]:
    """RB051: `approval_timeout=` or `escalate=` where they can do nothing (a typo would
    otherwise leave a gate that never expires, or one without a gate)."""
    for where, step in _all_steps(runbook):
        for block in step.executable_blocks:
            fix = ""
            if (block.approval_timeout or block.escalate_role) and not block.approve:
                fix = "the block has no `approve=`: add one, or remove the expiry"
            elif block.escalate_role and not block.approval_timeout:
                fix = "`escalate=` needs `approval_timeout=` (when the gate passes on), e.g. 30m"
            if fix:
                yield _problem(runbook, block.line, "error", "RB051", f"{where}: {fix}")


def rule_step_role(runbook: Runbook) -> Iterator[Problem]:
    """RB041: a step with no responsible role, in a runbook that declares roles."""
    if not _standard(runbook) or not runbook.metadata.roles:
        return
    for where, step in _all_steps(runbook):
        if not step.role:
            yield _problem(
                runbook,
                step.line,
                "warning",
                "RB041",
                f"{where} has no role; add a first line `Role: ROLE` "
                f"(declared: {_declared_roles(runbook)}) or `role=` on its block"
                + (
                    ", or one `Role:` line under the procedure's heading"
                    if "procedure" in where
                    else ""
                ),
            )


def rule_kernel_for_language(runbook: Runbook) -> Iterator[Problem]:
    """RB036: a block in a programming language no kernel runs; it stays documentation."""
    for block in runbook.all_blocks():
        if block.executable or block.lang not in fmt.KNOWN_PROGRAM_LANGS:
            continue
        if block.attributes.get("exec", "").lower() in fmt.FALSE_WORDS:
            continue
        yield _problem(
            runbook,
            block.line,
            "warning",
            "RB036",
            f"```{block.lang} block has no kernel, so it will not run; map the language under "
            f"`kernels:` (e.g. `{block.lang}: KERNEL`), or mark it `{{exec=false}}`",
        )


def rule_kernels_installed(runbook: Runbook) -> Iterator[Problem]:
    """RB039: `kernels:` maps a language to a kernelspec that is not installed here."""
    overrides = runbook.metadata.kernels
    if not overrides:
        return
    installed = _installed_kernels()
    for lang, kernel in overrides.items():
        if kernel not in installed:
            yield _problem(
                runbook,
                runbook.front_matter_line or 1,
                "error",
                "RB039",
                f"kernels: {lang!r} -> {kernel!r}, which is not installed here"
                f"{did_you_mean(kernel, installed)} (installed: {', '.join(sorted(installed))}); "
                "install it (`jupyter kernelspec list`) or fix the name",
            )


def _installed_kernels() -> frozenset[str]:
    from jupyter_client.kernelspec import KernelSpecManager  # slow import: only when needed

    return frozenset(KernelSpecManager().find_kernel_specs())


def _only_standard(rule: Rule) -> Rule:
    """A rule that concerns authors of the standard format only: plain Markdown read in
    compatibility mode never gets its findings (it has at most RB040)."""

    def wrapped(runbook: Runbook) -> Iterator[Problem]:
        if _standard(runbook):
            yield from rule(runbook)

    wrapped.__doc__ = rule.__doc__
    wrapped.__name__ = rule.__name__
    return wrapped


def rule_recommended_keys(runbook: Runbook) -> Iterator[Problem]:
    """RB042: no objective; RB043: no time limit; RB044: no success criteria."""
    if not _standard(runbook):
        return
    meta = runbook.metadata
    line = runbook.front_matter_line or 1
    if not meta.objective:
        yield _problem(runbook, line, "warning", "RB042",
                       "no `objective:`; say what outcome the response must reach, e.g. "
                       "`objective: Contain and resolve the threat within 1 hour`")  # fmt: skip
    if meta.time_limit is None and "time_limit" not in runbook.front_matter:
        yield _problem(runbook, line, "warning", "RB043",
                       "no `time_limit:`; give the time the response may take, e.g. "
                       "`time_limit: 1h`")  # fmt: skip
    if not runbook.success_criteria:
        yield _problem(runbook, 1, "warning", "RB044",
                       "no success criteria; add a `## Success criteria` section with a list "
                       "of what must be true when the response is done")  # fmt: skip


#: Every rule, in the order they run; `lint` sorts their findings by line. Another module's rules
#: join by being listed here (each is a function of the parsed runbook).
RULES: list[Rule] = [
    rule_not_empty,
    rule_standard_format,
    rule_steps_section,
    rule_unique_ids,
    rule_when_names,
    rule_on_failure,
    rule_roles,
    rule_expiry,
    rule_step_role,
    rule_kernel_for_language,
    rule_kernels_installed,
    rule_recommended_keys,
    *(
        _only_standard(rule)
        for rule in (
            *check_structure.RULES,
            *check_decisions.RULES,
            *check_code.RULES,
            *check_flow.RULES,
            *check_references.RULES,
            *check_routing.RULES,
        )
    ),
]


def count_levels(problems: Iterable[Problem]) -> tuple[int, int]:
    """(errors, warnings)."""
    errors = warnings = 0
    for p in problems:
        if p.level == "error":
            errors += 1
        else:
            warnings += 1
    return errors, warnings
