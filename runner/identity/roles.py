"""Which users hold which runbook role: a YAML file kept under version control.

```yaml
# roles.yaml: role -> users, or groups of the user store (`group:NAME`)
L1: [group:soc]
L2: [bob, group:soc-l2]
IR-lead: [alice, group:ir]
```

A role nobody is mapped to can be approved by nobody (gates fail closed). A mistake in the file
stops `runbook serve` before it starts, naming the file, the line and the role.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from runner.errors import UsageError

_ROLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME = re.compile(r"[a-z0-9][a-z0-9_.@-]{0,63}")  # a user or group name
GROUP = "group:"


@dataclass(frozen=True)
class RoleMap:
    """Role -> the users and the groups that hold it."""

    users: Mapping[str, frozenset[str]] = field(default_factory=dict)
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def roles_of(self, user: str, groups: Iterable[str]) -> frozenset[str]:
        mine = set(groups)
        held = {r for r, names in self.users.items() if user in names}
        held |= {r for r, names in self.groups.items() if names & mine}
        return frozenset(held)

    @property
    def roles(self) -> list[str]:
        return sorted(set(self.users) | set(self.groups))


def load_roles(path: Path) -> RoleMap:
    """The roles a file maps; UsageError naming the file, line and role otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text)
    except OSError as exc:
        raise UsageError(f"cannot read the roles file: {exc.strerror}", path=str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UsageError(
            f"the roles file is not valid YAML: {getattr(exc, 'problem', exc)}",
            path=str(path),
            line=mark.line + 1 if mark else None,
        ) from None
    if not isinstance(node, yaml.MappingNode) or not node.value:
        raise UsageError(
            "the roles file is a mapping of role to users, e.g. `IR-lead: [alice, group:ir]`",
            path=str(path),
            line=1,
        )
    users: dict[str, frozenset[str]] = {}
    groups: dict[str, frozenset[str]] = {}
    for key, value in node.value:
        line = key.start_mark.line + 1
        role = key.value if isinstance(key, yaml.ScalarNode) else ""
        if not _ROLE.fullmatch(role):
            raise UsageError(
                f"{role!r} is not a role name (letters, digits, `-`, `_`, `.`)",
                path=str(path),
                line=line,
            )
        if role in users:
            raise UsageError(f"role {role} is mapped twice", path=str(path), line=line)
        if not isinstance(value, yaml.SequenceNode) or not all(
            isinstance(v, yaml.ScalarNode) for v in value.value
        ):
            raise UsageError(
                f"role {role} maps to a list of users and `group:NAME`s, e.g. [alice, group:ir]",
                path=str(path),
                line=line,
            )
        names: set[str] = set()
        group_names: set[str] = set()
        for item in value.value:
            entry = str(item.value)
            bare = entry.removeprefix(GROUP)
            if not NAME.fullmatch(bare):
                raise UsageError(
                    f"role {role}: {entry!r} is not a user or `group:NAME` (lower case letters, "
                    "digits, `.`, `_`, `-`, `@`)",
                    path=str(path),
                    line=item.start_mark.line + 1,
                )
            (group_names if entry.startswith(GROUP) else names).add(bare)
        users[role] = frozenset(names)
        groups[role] = frozenset(group_names)
    return RoleMap(users, groups)
