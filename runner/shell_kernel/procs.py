"""What the commands in bash's process group do with SIGINT, read from ``/proc``.

Why: a SIGINT that lands while bash is forking a command is lost. The new child still
runs bash's handler until it execs, so the command never sees the signal; bash, having
seen its child exit normally, assumes the command handled the interrupt and goes on.
A command that is still alive with SIGINT at its *default* action can only have missed
the signal, so it is safe to send it again. One that catches SIGINT is handling it (a
second Ctrl-C would often mean "force"), so it is left alone.
"""

from __future__ import annotations

import enum
import os

#: SIGINT's bit in the masks of /proc/PID/status.
SIGINT_BIT = 1 << 1


class Disposition(enum.Enum):
    """What a process does on SIGINT."""

    DEFAULT = "default"  # dies
    IGNORED = "ignored"  # e.g. background jobs of a shell without job control
    CAUGHT = "caught"  # runs a handler
    GONE = "gone"  # exited, or a zombie


def group_members(pgid: int) -> list[int]:
    """Live process ids in process group ``pgid``; empty where there is no /proc."""
    members = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        # After "pid (comm)": state is field 0 and the process group field 2.
        if fields is not None and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry))
    return members


def sigint_disposition(pid: int) -> Disposition:
    """How ``pid`` treats SIGINT, from the SigIgn and SigCgt masks in its status."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            masks = dict(line.split(":", 1) for line in handle if line.startswith("Sig"))
    except OSError:
        return Disposition.GONE
    if int(masks.get("SigIgn", "0").strip(), 16) & SIGINT_BIT:
        return Disposition.IGNORED
    if int(masks.get("SigCgt", "0").strip(), 16) & SIGINT_BIT:
        return Disposition.CAUGHT
    return Disposition.DEFAULT


def interrupt_missed(pgid: int) -> bool:
    """Whether the group's foreground commands all still run with SIGINT at its default.

    bash itself (the group leader) always catches SIGINT and is not counted.
    """
    commands = [pid for pid in group_members(pgid) if pid != pgid]
    found = [sigint_disposition(pid) for pid in commands]
    listening = [d for d in found if d in (Disposition.DEFAULT, Disposition.CAUGHT)]
    return bool(listening) and all(d is Disposition.DEFAULT for d in listening)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; it ends at the last ")".
    return stat.rsplit(")", 1)[1].split()


def descendants(root: int) -> list[tuple[int, int, str]]:
    """``(pid, parent pid, command line)`` of every live process below ``root``.

    Walks ``/proc/PID/task/TID/children`` down from ``root``, a few reads for a kernel's small
    tree (the runner asks after every block); where the kernel does not offer those files,
    one pass over all of ``/proc`` builds the parent map instead. Zombies are left out.
    """
    found: list[tuple[int, int, str]] = []
    todo = [root]
    try:
        while todo:
            parent = todo.pop()
            for pid in _children(parent):
                fields = _stat_fields(pid)
                if fields is None or fields[0] == "Z":
                    continue
                found.append((pid, parent, command_line(pid)))
                todo.append(pid)
    except _NoChildrenFile:
        return _descendants_by_scan(root)
    return found


class _NoChildrenFile(Exception):
    """This kernel has no /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN)."""


def _children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []  # gone meanwhile
    out: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as handle:
                out += [int(c) for c in handle.read().split()]
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread ended meanwhile
            raise _NoChildrenFile from None
        except OSError:
            continue
    return out


def _descendants_by_scan(root: int) -> list[tuple[int, int, str]]:
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        # After "pid (comm)": state is field 0 and the parent's pid field 1.
        if fields is not None and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[tuple[int, int, str]] = []
    todo = [root]
    while todo:
        parent = todo.pop()
        for pid in children.get(parent, ()):
            found.append((pid, parent, command_line(pid)))
            todo.append(pid)
    return found


def command_line(pid: int) -> str:
    """The process's arguments joined by spaces; "" when it is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except OSError:
        return ""
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")


def become_subreaper() -> None:
    """Orphans of this process's descendants (``(cmd &)``, ``setsid cmd &``) become its
    children instead of init's, so they can be found and stopped. Linux only."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1)  # 36 = PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return
