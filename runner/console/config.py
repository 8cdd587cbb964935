"""What the console and its API are given by `runbook serve`, and the limits they hold to."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.console.actions import Act, RolesOf, act
from runner.console.decisions import Outcome, Send
from runner.identity.model import Identity
from runner.identity.roles import RoleMap
from runner.identity.store import UserStore

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
STEP = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,100}")
MAX_COMMENT = 2000
#: Routes an unrouted alert again: its kept record in, the intake's answer for it out.
RouteAgain = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class ConsoleConfig:
    runs_dir: Path
    state_dir: Path
    users: UserStore
    roles: RoleMap
    send: Send  # a verdict to a run's workflow
    route_again: RouteAgain | None = None
    docs_url: str | None = None  # the docs site, for links to a runbook's page
    act: Act | None = None  # cancel / resume / skip to a run's workflow
    roles_of: RolesOf | None = None  # a served runbook's roles, by its id


async def act_on(
    config: ConsoleConfig, run_id: str, kind: str, who: Identity, comment: str | None
) -> Outcome:
    """A person's action on a run, from a console page or the API (``actions.act``)."""
    if config.act is None or config.roles_of is None:
        return Outcome(404, "this console does not act on runs")
    if not RUN_ID.fullmatch(run_id):
        return Outcome(400, "a run id is letters, digits, dashes and dots")
    return await act(config.runs_dir, run_id, kind, who, (comment or "")[:MAX_COMMENT] or None,
                     config.roles_of, config.act)  # fmt: skip
