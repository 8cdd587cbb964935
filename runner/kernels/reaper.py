"""``python -m runner.kernels.reaper --parent PID [--remove DIR] -- KERNEL...``: a kernel's keeper.

Every kernel of a run is started through this small process, so that nothing a step starts can
outlive the run, however it was started and however the run ends:

* It is a *child subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``): a process that double-forks or
  calls ``setsid`` (``(setsid cmd &)``, ``nohup``, ``subprocess.Popen(start_new_session=True)``,
  even ``env -i``) is re-parented to it instead of to init, so it stays findable by parentage.
* When the kernel ends (a clean shutdown, a crash, a kill) it kills everything left below it and
  removes the kernel's temporary folder, then exits with the kernel's status.
* When the runner dies, even by SIGKILL, the kernel gets SIGTERM (``PR_SET_PDEATHSIG``), and so
  does this process, which then does the same cleanup.

It stays in the kernel's process group, so jupyter_client's signals to the group (interrupts,
shutdown escalation) reach the kernel as before; it ignores SIGINT itself.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from types import FrameType

from runner.shell_kernel.procs import become_subreaper, descendants

#: prctl option: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1
#: Seconds the kernel has to leave after SIGTERM before everything below is SIGKILLed.
TERM_GRACE = 0.5
#: Seconds the final SIGKILL passes may take (a process stuck in the kernel cannot be killed).
KILL_BOUND = 5.0


class _Stop(Exception):
    """SIGTERM or SIGHUP arrived: stop the kernel and clean up."""


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _die_with_parent(signum: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum)


def _kill_below(me: int, signum: int) -> None:
    """SIGKILL every process below this one, until this process has no child left.

    Reading the tree from /proc is not atomic: a process forked while it is read (a step's
    ``(setsid cmd &)`` as the kill lands) can be missed, and stopping at the first pass that
    found nothing let such a process outlive the run. No child left is the exact test: as a
    subreaper this process inherits every orphan below it, so with no child nothing is below.
    """
    deadline = time.monotonic() + KILL_BOUND
    while True:
        for pid, _, _ in descendants(me):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)
        if not _reap() or time.monotonic() > deadline:
            return
        time.sleep(0.01)  # the killed are exiting; their orphans come here meanwhile


def _reap() -> bool:
    """Collect every child that has exited (orphans re-parented here included); True while
    some child is still alive."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def _clean(kernel: subprocess.Popen[bytes] | None, remove: list[str]) -> None:
    me = os.getpid()
    if kernel is not None and kernel.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            kernel.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            kernel.wait(TERM_GRACE)
    _kill_below(me, signal.SIGKILL)
    for path in remove:
        shutil.rmtree(path, ignore_errors=True)
        # The run's folder holds one such folder per kernel; the last to go removes it.
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(path.rstrip("/")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.kernels.reaper")
    parser.add_argument("--parent", type=int, required=True, help="the runner's pid")
    parser.add_argument("--remove", action="append", default=[], help="folder to remove at end")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the kernel, in this group, gets it
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGHUP, _on_term)
    _die_with_parent(signal.SIGTERM)
    become_subreaper()
    kernel: subprocess.Popen[bytes] | None = None
    status = 1
    try:
        if os.getppid() != args.parent:
            raise _Stop  # the runner died before the death signal was armed
        # SIGINT back to its default in the kernel (it is ignored here).
        kernel = subprocess.Popen(command, preexec_fn=_kernel_preexec)
        status = _wait(kernel)
    except _Stop:
        status = 128 + signal.SIGTERM
    finally:
        # Nothing may skip the cleanup: a second signal raising _Stop before the handlers
        # were switched off used to jump over it. Block them first (retrying if one lands
        # before the mask does), then clean up with them blocked.
        while True:
            try:
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGHUP})
                break
            except _Stop:
                continue
        _clean(kernel, args.remove)
    return status


def _kernel_preexec() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _die_with_parent(signal.SIGTERM)  # this process's death takes the kernel with it


def _wait(kernel: subprocess.Popen[bytes]) -> int:
    """Reap children until the kernel itself exits; its status."""
    while True:
        try:
            pid, raw = os.wait()
        except ChildProcessError:
            return kernel.returncode if kernel.returncode is not None else 1
        except InterruptedError:
            continue
        if pid == kernel.pid:
            kernel.returncode = os.waitstatus_to_exitcode(raw)
            code = kernel.returncode
            return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
