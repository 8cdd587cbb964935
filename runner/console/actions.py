"""What a person does to a whole run through the service: cancel it, or, once it was
interrupted (its worker lost mid-step, and the step not safe to run twice), resume it with the
cut-off step run again or skipped.

Like a gate's decision (``decisions``), an action is made by an authenticated identity under a
role it holds, checked here before anything is sent, and journaled by the worker with the user
id, the role and how they authenticated. The role an action is made under is one of the
runbook's own roles (its front matter's ``roles:``): a user who holds none of them has no say
in its runs. A runbook that names no roles leaves its runs to any signed-in user.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from runner.console.decisions import Outcome, workflow_of
from runner.errors import RunbookError
from runner.exec.session import cut_off_step, open_run
from runner.identity.model import Identity

ActionKind = Literal["cancel", "resume", "skip"]
ACTIONS: tuple[ActionKind, ...] = ("cancel", "resume", "skip")
#: Run statuses (as the journal and its lock tell them) each action applies to. `crashed`: no
#: attempt holds the journal and none ended it: the service's run is interrupted.
APPLIES: Mapping[str, frozenset[str]] = {
    "cancel": frozenset({"running", "paused", "crashed"}),
    "resume": frozenset({"crashed"}),
    "skip": frozenset({"crashed"}),
}


@dataclass(frozen=True, slots=True)
class Action:
    """What the service sends a run's workflow: `abort`, or `resume` (with ``skip``)."""

    kind: ActionKind
    by: str  # the authenticated user id
    role: str | None
    auth: str
    comment: str | None = None


#: Sends an action to the workflow with this id; raises LookupError when it has ended, and
#: ValueError when it is in no state to take it.
Act = Callable[[str, Action], Awaitable[None]]
#: A runbook's roles, in its front matter's order, by runbook id (None: not served here).
RolesOf = Callable[[str], Sequence[str] | None]


def acting_role(who: Identity, runbook_roles: Sequence[str]) -> tuple[bool, str | None]:
    """Whether ``who`` may act on a run of a runbook with these roles, and the role they act
    under (the first of the runbook's roles they hold; None for a runbook with no roles)."""
    if not runbook_roles:
        return True, None
    held = [r for r in runbook_roles if r in who.roles]
    return (True, held[0]) if held else (False, None)


async def act(
    runs_dir: Path,
    run_id: str,
    kind: str,
    who: Identity,
    comment: str | None,
    roles_of: RolesOf,
    send: Act,
) -> Outcome:
    checked = await asyncio.to_thread(_check, runs_dir, run_id, kind, who, comment, roles_of)
    if isinstance(checked, Outcome):
        return checked
    workflow_id, action, said = checked
    try:
        await send(workflow_id, action)
    except LookupError:
        return Outcome(409, f"run {run_id} has ended; nothing to {kind}")
    except ValueError as exc:
        return Outcome(409, f"run {run_id}: {exc}; nothing to {kind}")
    return Outcome(202, said)


def _check(
    runs_dir: Path,
    run_id: str,
    kind: str,
    who: Identity,
    comment: str | None,
    roles_of: RolesOf,
) -> Outcome | tuple[str, Action, str]:
    if kind not in ACTIONS:
        return Outcome(400, f"an action is one of {', '.join(ACTIONS)}, not {kind!r}")
    try:
        run = open_run(runs_dir, run_id)
    except RunbookError:
        return Outcome(404, f"no run {run_id}")
    record = run.record
    workflow_id = workflow_of(record)
    if not workflow_id:
        return Outcome(409, f"run {run_id} was not started by the service; act on it where it "
                            "runs, with `runbook resume` or Ctrl-C")  # fmt: skip
    roles = roles_of(str(record.runbook.get("id") or ""))
    if roles is None:
        return Outcome(409, f"run {run_id}'s runbook is not served here any more")
    may, role = acting_role(who, roles)
    if not may:
        held = ", ".join(sorted(who.roles)) or "none"
        return Outcome(403, f"{who.user} holds none of the runbook's roles ({', '.join(roles)}; "
                            f"roles held: {held}), so may not {kind} its runs")  # fmt: skip
    if record.status not in APPLIES[kind]:
        why = {"cancel": "it has ended", "resume": "it was not interrupted",
               "skip": "it was not interrupted"}[kind]  # fmt: skip
        return Outcome(409, f"run {run_id} is {record.status}: nothing to {kind} ({why})")
    if kind == "skip" and cut_off_step(run) is None:
        return Outcome(409, f"run {run_id} stopped between steps: resume it, nothing to skip")
    said = {"cancel": "cancelling", "resume": "resuming", "skip": "skipping the cut-off step of"}
    return (
        workflow_id,
        Action(kind, who.user, role, who.auth, comment or None),
        (f"{said[kind]} run {run_id}, as {who.user}" + (f" ({role})" if role else "")),
    )
