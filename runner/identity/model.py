"""An authenticated identity: what a decision made through the service is made by."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AuthMethod = Literal["password", "token"]


@dataclass(frozen=True, slots=True)
class Identity:
    """A user the service authenticated, with the runbook roles the roles file gives them.

    Never built from a name someone typed: only the user store makes one, after a password or
    an API token checked out."""

    user: str
    roles: frozenset[str]
    auth: AuthMethod

    def holds(self, role: str | None) -> bool:
        return role is None or role in self.roles


@dataclass(frozen=True, slots=True)
class User:
    """A user as `runbook users list` shows them (no secret, not even hashed)."""

    name: str
    groups: tuple[str, ...]
    disabled: bool
    created: str
    tokens: int  # API tokens issued and not revoked
