"""Kernel sessions over jupyter_client: start, execute, interrupt, restart and shut down kernels.

One :class:`KernelSession` per kernelspec lives for a whole run, so variables, the working
directory and exported environment carry over from step to step. :class:`KernelPool` starts a
kernel on first use (or early, while the runbook is still being validated), and shuts every
kernel down at the end, escalating shutdown request -> SIGTERM -> SIGKILL to the kernel's whole
process group, so nothing outlives the run.

The execute loop follows jupyter_client's ``_async_execute_interactive`` and nbclient: iopub
messages are filtered by the request's ``msg_id``, outputs are handed on live, the loop stops
when the kernel reports ``idle`` *and* the ``execute_reply`` has arrived, and the verdict is the
reply's ``status``. One deadline is computed per execution; the kernel process is polled beside
the sockets, so a kernel that dies mid-step is noticed within one poll interval.

Long on purpose: starting, feeding, interrupting, restarting and restoring a kernel are one
lifecycle around jupyter_client's messages; apart they would each need the session's private
state.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import NoSuchKernel
from jupyter_client.manager import KernelManager

from runner.errors import ExitCode, RunbookError
from runner.format.syntax import PLAIN_ERRORS, error_headline
from runner.kernels.backend import Kernel
from runner.kernels.cancel import CancelToken, Terminated
from runner.shell_kernel.procs import descendants
from runner.shell_kernel.shell import BASH_ARGV, WATCHDOG_SCRIPT

#: How often the execute loop checks that the kernel process is alive (seconds).
POLL_INTERVAL = 0.02
#: How long a kernel may take to answer its first kernel_info request (seconds).
START_TIMEOUT = 60.0
#: Once the reply is in, how long iopub may stay silent before the wait for ``idle`` ends: a
#: lost ``idle`` must never hold a run forever (seconds).
IDLE_GRACE = 10.0
#: After an interrupt, how long the kernel has to finish the cell before it is restarted.
INTERRUPT_GRACE = 3.0
#: Shutdown escalation: wait this long after the request, then after SIGTERM (seconds).
SHUTDOWN_REQUEST_WAIT = 0.15
SHUTDOWN_TERM_WAIT = 0.1
#: Set in each kernel's environment and inherited by everything it starts: how shutdown finds
#: processes that left the kernel's process group (the shell kernel runs bash in a session of
#: its own) or outlived a kernel that died.
KERNEL_TAG = "RUNBOOK_KERNEL_TAG"
#: Set in each kernel's environment: the folder of that kernel process (removed with it), where
#: the shell kernel keeps its cell files.
KERNEL_FOLDER = "RUNBOOK_KERNEL_FOLDER"

Message = dict[str, Any]


class KernelError(RunbookError):
    """A kernel cannot be found or started."""

    exit_code = ExitCode.USAGE


class ExecStatus(StrEnum):
    """How one execution ended."""

    OK = "ok"
    ERROR = "error"  # the code raised, or the shell command exited non-zero
    TIMED_OUT = "timed_out"
    INTERRUPTED = "interrupted"  # the operator pressed Ctrl-C
    DIED = "died"  # the kernel process went away mid-execution


@dataclass(frozen=True, slots=True)
class Output:
    """One output of an execution, as the journal and the terminal show it."""

    kind: str  # stream | result | display | error
    text: str = ""  # stream text, or the text/plain of a result/display, or the error summary
    stream: str | None = None  # stdout | stderr, for streams
    data: Mapping[str, Any] = field(default_factory=dict)  # mime bundle (result/display)
    ename: str | None = None
    evalue: str | None = None
    traceback: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ShellRestart:
    """The shell kernel replaced its bash during an execution (the code ended it)."""

    status: int  # the old bash's exit status
    cwd: str | None  # the directory the new bash starts in; None when it is gone
    lost_exports: tuple[str, ...]  # exported variables the old bash held
    lost_functions: tuple[str, ...]  # functions it held


@dataclass(frozen=True, slots=True)
class ExecResult:
    """The outcome of one execute_request."""

    status: ExecStatus
    duration: float  # seconds
    exit_status: int | None = None  # the block's exit status (shell, or a Python exit(N))
    ename: str | None = None
    evalue: str | None = None
    expressions: Mapping[str, Any] = field(default_factory=dict)  # name -> value read back
    expression_errors: Mapping[str, str] = field(default_factory=dict)  # name -> why not
    restart: ShellRestart | None = None  # the shell kernel's bash was replaced
    output_incomplete: bool = False  # iopub went silent before `idle`: output may be missing

    @property
    def error(self) -> str | None:
        """One line saying why the execution did not succeed, or None."""
        if self.status is ExecStatus.OK:
            return None
        if self.status is ExecStatus.DIED:
            return "kernel died"
        if self.status is ExecStatus.TIMED_OUT:
            return "timed out"
        if self.status is ExecStatus.INTERRUPTED:
            return "interrupted by the operator"
        if self.ename in PLAIN_ERRORS:
            return self.evalue or "error"
        return f"{self.ename}: {self.evalue}" if self.ename else "error"


OutputCallback = Callable[[Output], None]


class Interrupted(KeyboardInterrupt):
    """Raised out of an execution when the operator pressed Ctrl-C; carries the partial result."""

    def __init__(self, result: ExecResult) -> None:
        super().__init__("interrupted")
        self.result = result


# --- values crossing into kernels --------------------------------------------------------------


def is_shell(language: str) -> bool:
    return language.lower() in {"bash", "sh", "shell", "zsh"}


def assignment_code(language: str, values: Mapping[str, object]) -> str:
    """Code that makes ``values`` available in a kernel: Python variables or shell exports."""
    if is_shell(language):
        return "\n".join(
            f"export {name.upper()}={shlex.quote(shell_text(value))}"
            for name, value in values.items()
        )
    return "\n".join(f"{name} = {python_literal(value)}" for name, value in values.items())


def shell_text(value: object) -> str:
    """A value as the shell sees it: booleans lower-case, lists space-separated."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return " ".join(shell_text(v) for v in value)
    return str(value)


def python_literal(value: object) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return repr(value)


def expression_for(language: str, name: str) -> str:
    """The user_expression that reads output ``name`` back: the variable, or "${NAME?}".

    ``${NAME?}`` fails to expand when NAME was never set, so an unset output is an error
    rather than an empty string.
    """
    return f"${{{name.upper()}?}}" if is_shell(language) else name


def chdir_code(language: str, path: str) -> str:
    """Code that puts a kernel back into ``path``."""
    if is_shell(language):
        return f"cd -- {shlex.quote(path)}"
    return f"__import__('os').chdir({path!r})"


#: Run once in each new Python kernel: `exit(N)` and `quit()` end the block with that status,
#: as `sys.exit(N)` does, instead of IPython's exit autocall, which only asks the front end
#: to close the kernel and lets the step succeed (`if not ok: exit(1)` would fail open).
PYTHON_PRELUDE = """\
def __runbook_exit_autocall():
    try:
        from IPython.core.autocall import IPyAutocall
    except ImportError:
        return None

    class RunbookExit(IPyAutocall):
        \"\"\"exit(status=None): end this runbook block with the status (0 is success).\"\"\"

        def __call__(self, status=None):
            raise SystemExit(status)

    return RunbookExit()


exit = quit = __runbook_exit_autocall() or exit
del __runbook_exit_autocall
# IPython warns "To exit: use 'exit', 'quit', or Ctrl-D." on every SystemExit: here it is the
# way to end a block, not a mistake.
__import__("warnings").filterwarnings("ignore", message="To exit: use")

# What a block leaves running in the background stays below this kernel (PR_SET_CHILD_SUBREAPER),
# where the runner finds it and stops it at the end of the run.
try:
    __import__("ctypes").CDLL(None).prctl(36, 1)
except (OSError, AttributeError):
    pass
"""


def kernel_prelude(language: str) -> str:
    """Code a new kernel of ``language`` runs before the run's first block, or ""."""
    return PYTHON_PRELUDE if language.lower() == "python" else ""


_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def typed_output(value: Any, kind: str | None) -> Any:
    """An output read back, as its declared type (``outputs=count:int``).

    Raises ValueError naming what was found when the value does not read as the type.
    """
    if kind is None:
        return value
    if kind == "str":
        return value if isinstance(value, str) else str(value)
    text = value.strip() if isinstance(value, str) else value
    if kind == "bool":
        if isinstance(text, bool):
            return text
        if isinstance(text, str) and text.lower() in _TRUE_WORDS | _FALSE_WORDS:
            return text.lower() in _TRUE_WORDS
    elif kind == "int" and not isinstance(text, bool):
        if isinstance(text, int):
            return text
        with contextlib.suppress(ValueError):
            return int(str(text))
    elif kind == "float" and not isinstance(text, bool):
        if isinstance(text, int | float):
            return float(text)
        with contextlib.suppress(ValueError):
            return float(str(text))
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:60] + "…"
    raise ValueError(f"expected {_TYPE_WORDS[kind]}, got {shown}")


_TYPE_WORDS = {"int": "a whole number", "float": "a number", "bool": "true or false"}


def _parse_expression_value(language: str, text: str) -> Any:
    """A Python repr turned back into a value where it is a literal; shell text stays text."""
    if is_shell(language):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


# --- one kernel ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KernelInfo:
    """What a kernel says about itself (journaled as ``kernel_started``)."""

    kernel: str  # kernelspec name
    language: str
    implementation: str
    version: str
    language_version: str


class KernelSession:
    """One running kernel and the client connected to it."""

    def __init__(self, name: str, runtime_dir: Path, index: int) -> None:
        self.name = name
        self._runtime_dir = runtime_dir
        self._index = index
        self.km: KernelManager | None = None
        self.kc: BlockingKernelClient | None = None
        self.info: KernelInfo | None = None
        self._ready = False
        self.generation = 0  # incremented at each (re)start
        self._tag: str | None = None  # KERNEL_TAG's value in the current kernel's environment
        self._folder: Path | None = None  # the current kernel process's folder
        self.cancel: CancelToken | None = None  # polled while waiting on the kernel

    def _polled(self) -> contextlib.AbstractContextManager[None]:
        return self.cancel.polled() if self.cancel is not None else contextlib.nullcontext()

    def _stop_if_cancelled(self) -> None:
        """Raise, from a safe place, the Ctrl-C or SIGTERM a handler only noted."""
        token = self.cancel
        if token is not None and token.requested:
            if token.terminated:
                raise Terminated("terminated by SIGTERM")
            token.take()
            raise KeyboardInterrupt

    # -- lifecycle --

    def launch(self) -> None:
        """Start the kernel process; returns at once (see :meth:`wait_ready`)."""
        with self._polled():
            self._launch()
        self._stop_if_cancelled()

    def _launch(self) -> None:
        self.generation += 1
        # One folder per kernel process, for its sockets, log and the shell's cell files; its
        # reaper removes it when the kernel ends, even after the runner was SIGKILLed.
        folder = self._runtime_dir / f"k{self._index}-{self.generation}"
        folder.mkdir(mode=0o700, parents=True)  # its parent goes when its last kernel does
        stem = folder / "k"
        self._folder = folder
        self._tag = str(stem)
        try:
            km = _ReapedKernelManager(
                kernel_name=self.name,
                transport="ipc",
                ip=str(stem),
                connection_file=str(stem) + ".json",
                context=_client_context(),
            )
            log = open(str(stem) + ".log", "wb")  # noqa: SIM115  # kept open by the kernel process
            try:
                km.start_kernel(
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent,
                    env=_kernel_environment(self._tag, folder),
                )
            finally:
                log.close()
        except NoSuchKernel:
            raise KernelError(
                f"no Jupyter kernel named {self.name!r} is installed; install it, or map the "
                "language to an installed kernel under `kernels:` in the front matter "
                "(`jupyter kernelspec list` shows them)"
            ) from None
        except (OSError, RuntimeError) as exc:
            raise KernelError(f"kernel {self.name!r} could not start: {exc}") from None
        self.km = km
        kc = km.client()
        kc.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=True)
        self.kc = kc
        self._ready = False

    def wait_ready(self) -> KernelInfo:
        """Block until the kernel answers kernel_info and its iopub channel is connected."""
        if self.km is None:
            self.launch()
        if self._ready and self.info is not None:
            return self.info
        with self._polled():
            return self._wait_ready()

    def _wait_ready(self) -> KernelInfo:
        kc = self._client()
        deadline = time.monotonic() + START_TIMEOUT
        reply: Message | None = None
        iopub_seen = False
        while not (reply and iopub_seen):
            msg_id = kc.kernel_info()
            resend = time.monotonic() + 0.25
            while time.monotonic() < resend and not (reply and iopub_seen):
                if not self.alive():
                    raise KernelError(
                        f"kernel {self.name!r} exited while starting{self._log_tail()}"
                    )
                if time.monotonic() > deadline:
                    raise KernelError(
                        f"kernel {self.name!r} did not answer within {START_TIMEOUT:.0f}s"
                    )
                self._stop_if_cancelled()
                for sock in _poll([kc.shell_channel.socket, kc.iopub_channel.socket], 0.02):
                    if sock is kc.iopub_channel.socket:
                        kc.iopub_channel.get_msg(timeout=0)
                        iopub_seen = True
                    else:
                        msg = kc.shell_channel.get_msg(timeout=0)
                        if msg["parent_header"].get("msg_id") == msg_id:
                            reply = msg
        self._drain_iopub()
        content = reply["content"]
        lang = content.get("language_info") or {}
        self.info = KernelInfo(
            kernel=self.name,
            language=str(lang.get("name", "")),
            implementation=str(content.get("implementation", "")),
            version=str(content.get("implementation_version", "")),
            language_version=str(lang.get("version", "")),
        )
        self._ready = True
        return self.info

    def alive(self) -> bool:
        if self.km is None:
            return False
        process = getattr(self.km.provisioner, "process", None)
        if isinstance(process, subprocess.Popen):
            return process.poll() is None
        return bool(self.km.is_alive())

    def pid(self) -> int | None:
        process = getattr(self.km.provisioner, "process", None) if self.km else None
        return process.pid if isinstance(process, subprocess.Popen) else None

    def cwd(self) -> str | None:
        """The working directory the next block would start in, read from /proc (Linux): the
        shell kernel's bash's, or the kernel process's own. None when it cannot be told."""
        reaper = self.pid()
        if reaper is None or self.km is None:
            return None
        tree = descendants(reaper)
        connection = str(self.km.connection_file)
        kernel = next((p for p, parent, c in tree if parent == reaper and connection in c), None)
        if kernel is None:
            return None
        own = " ".join(BASH_ARGV)
        bash = next((p for p, parent, c in tree if parent == kernel and c == own), None)
        try:
            return os.readlink(f"/proc/{bash or kernel}/cwd")
        except OSError:
            return None

    def background(self) -> list[tuple[int, str]]:
        """``(pid, command line)`` of processes the blocks left running below this kernel:
        everything below its reaper except the kernel itself and the shell kernel's own bash
        and watchdog."""
        reaper = self.pid()
        if reaper is None or self.km is None:
            return []
        tree = descendants(reaper)
        connection = str(self.km.connection_file)
        kernels = {pid for pid, parent, cmd in tree if parent == reaper and connection in cmd}
        own = " ".join(BASH_ARGV)
        return [
            (pid, cmd)
            for pid, parent, cmd in tree
            if pid not in kernels
            and not (parent in kernels and (cmd == own or WATCHDOG_SCRIPT in cmd))
        ]

    def interrupt(self) -> None:
        if self.km is not None and self.alive():
            with contextlib.suppress(Exception):
                self.km.interrupt_kernel()

    def restart(self) -> KernelInfo:
        """A fresh kernel of the same kernelspec; all state is lost."""
        self.shutdown()
        self.launch()
        return self.wait_ready()

    def request_shutdown(self) -> None:
        """First stage of shutdown: ask politely (does not wait)."""
        if self.kc is not None and self.km is not None and self.alive():
            with contextlib.suppress(Exception):
                msg = self.kc.session.msg("shutdown_request", {"restart": False})
                self.kc.control_channel.send(msg)

    def shutdown(self) -> None:
        """Stop the kernel and its process group: request, then SIGTERM, then SIGKILL."""
        self.request_shutdown()
        _wait_gone([self], SHUTDOWN_REQUEST_WAIT)
        self.force_stop()

    def force_stop(self) -> None:
        """Escalate to signals if the kernel is still there, then release every resource."""
        if self.km is None:
            return
        pid = self.pid()
        # What the blocks started, found while the reaper still holds it (set-sid'd processes
        # are its children): after the signals below nothing would lead to them any more.
        below = [child for child, _, _ in descendants(pid)] if pid is not None else []
        if self.alive():
            self._signal_group(signal.SIGTERM)
            _wait_gone([self], SHUTDOWN_TERM_WAIT)
        # The group may hold children (bash, commands a step started) even after the kernel
        # itself exited: SIGKILL the whole group so nothing outlives the run.
        self._signal_group(signal.SIGKILL)
        for child in below:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, signal.SIGKILL)
        process = getattr(self.km.provisioner, "process", None)
        if isinstance(process, subprocess.Popen):
            with contextlib.suppress(Exception):
                process.wait(timeout=1)
        if self._tag is not None:
            _kill_tagged(self._tag)
        if self.kc is not None:
            with contextlib.suppress(Exception):
                self.kc.stop_channels()
        with contextlib.suppress(Exception):
            self.km.cleanup_resources()
        with contextlib.suppress(Exception):
            self.km.context.destroy(linger=0)  # ours (see _client_context): not the manager's
        self.km, self.kc, self._ready = None, None, False

    def _signal_group(self, signum: int) -> None:
        pid = self.pid()
        if pid is None:
            return
        try:
            os.killpg(pid, signum)  # jupyter_client starts kernels in their own session
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)

    # -- execution --

    def execute(
        self,
        code: str,
        *,
        on_output: OutputCallback | None = None,
        timeout: float | None = None,
        expressions: Mapping[str, str] | None = None,
        silent: bool = False,
        errexit: bool = True,
    ) -> ExecResult:
        """Run ``code``; outputs go to ``on_output`` as they arrive.

        ``errexit`` reaches the shell kernel in the request's metadata: without it a shell
        block runs every line and only the last command's status counts.

        Ctrl-C (KeyboardInterrupt) interrupts the kernel, waits for it to settle and raises
        :class:`Interrupted` carrying the result.
        """
        self.wait_ready()
        with self._polled():
            return self._execute(code, on_output, timeout, expressions, silent, errexit)

    def _execute(
        self,
        code: str,
        on_output: OutputCallback | None,
        timeout: float | None,
        expressions: Mapping[str, str] | None,
        silent: bool,
        errexit: bool,
    ) -> ExecResult:
        kc = self._client()
        started = time.monotonic()
        deadline = started + timeout if timeout else None
        content = {
            "code": code,
            "silent": silent,
            "store_history": not silent,
            "user_expressions": dict(expressions or {}),
            "allow_stdin": False,
            "stop_on_error": False,
        }
        msg = kc.session.msg("execute_request", content, metadata={"runbook": {"errexit": errexit}})
        kc.shell_channel.send(msg)
        msg_id: str = msg["header"]["msg_id"]
        try:
            return self._collect(msg_id, started, deadline, on_output)
        except KeyboardInterrupt as exc:
            if isinstance(exc, Interrupted | Terminated):
                raise
            result = self._settle(msg_id, started, on_output, ExecStatus.INTERRUPTED)
            raise Interrupted(result) from None

    def _collect(
        self, msg_id: str, started: float, deadline: float | None, on_output: OutputCallback | None
    ) -> ExecResult:
        kc = self._client()
        shell, iopub = kc.shell_channel.socket, kc.iopub_channel.socket
        reply: Message | None = None
        idle = False
        heard = time.monotonic()  # when iopub last delivered anything
        while not (reply is not None and idle):
            wait = POLL_INTERVAL
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            ready = _poll([iopub, shell], wait)
            if iopub in ready:
                idle = self._handle_iopub(msg_id, on_output) or idle
                heard = time.monotonic()
            if shell in ready:
                msg = kc.shell_channel.get_msg(timeout=0)
                if msg["parent_header"].get("msg_id") == msg_id:
                    reply = msg
            if reply is not None and not idle and time.monotonic() - heard > IDLE_GRACE:
                # The verdict is in; only the end of the output is missing. Say so rather
                # than wait for a message that may have been lost.
                return self._result(reply, started, output_incomplete=True)
            if self.cancel is not None and self.cancel.requested:
                result = self._settle(msg_id, started, on_output, ExecStatus.INTERRUPTED)
                if self.cancel.terminated:
                    raise Terminated("terminated by SIGTERM")
                self.cancel.take()
                raise Interrupted(result)
            if not ready or (reply is None and not idle):
                if not self.alive():
                    return ExecResult(ExecStatus.DIED, time.monotonic() - started)
                if deadline is not None and time.monotonic() >= deadline:
                    return self._settle(msg_id, started, on_output, ExecStatus.TIMED_OUT)
        return self._result(reply, started)

    def _handle_iopub(self, msg_id: str, on_output: OutputCallback | None) -> bool:
        """Drain ready iopub messages; True when this execution's ``idle`` arrived."""
        kc = self._client()
        idle = False
        while kc.iopub_channel.msg_ready():
            msg = kc.iopub_channel.get_msg(timeout=0)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                idle = True
            elif on_output is not None:
                output = _to_output(kind, content)
                if output is not None:
                    on_output(output)
        return idle

    def _settle(
        self, msg_id: str, started: float, on_output: OutputCallback | None, status: ExecStatus
    ) -> ExecResult:
        """Interrupt a running cell and wait for it to finish; restart the kernel if it won't."""
        self.interrupt()
        until = time.monotonic() + INTERRUPT_GRACE
        kc = self._client()
        reply: Message | None = None
        idle = False
        presses = self.cancel.presses if self.cancel is not None else 0
        while time.monotonic() < until and not (reply is not None and idle) and self.alive():
            if self.cancel is not None and (
                self.cancel.presses > max(presses, 1) or self.cancel.terminated
            ):
                break  # pressed again while the kernel settles: restart it now
            ready = _poll([kc.iopub_channel.socket, kc.shell_channel.socket], POLL_INTERVAL)
            if kc.iopub_channel.socket in ready:
                idle = self._handle_iopub(msg_id, on_output) or idle
            if kc.shell_channel.socket in ready:
                msg = kc.shell_channel.get_msg(timeout=0)
                if msg["parent_header"].get("msg_id") == msg_id:
                    reply = msg
        restarted = not (reply is not None and idle)
        if restarted:
            self.restart()
        exit_status = reply["content"].get("exit_status") if reply else None
        return ExecResult(
            status,
            time.monotonic() - started,
            exit_status=exit_status,
            ename="KeyboardInterrupt" if status is ExecStatus.INTERRUPTED else "Timeout",
            evalue="the kernel was restarted" if restarted else "interrupted",
        )

    def _result(
        self, reply: Message | None, started: float, *, output_incomplete: bool = False
    ) -> ExecResult:
        assert reply is not None
        content = reply["content"]
        values: dict[str, Any] = {}
        problems: dict[str, str] = {}
        language = self.info.language if self.info else ""
        for name, answer in (content.get("user_expressions") or {}).items():
            if answer.get("status") == "ok":
                text = str((answer.get("data") or {}).get("text/plain", ""))
                values[name] = _parse_expression_value(language, text)
            else:
                problems[name] = f"{answer.get('ename', 'Error')}: {answer.get('evalue', '')}"
        ok = content.get("status") == "ok"
        ename = None if ok else str(content.get("ename", "Error"))
        evalue = None if ok else str(content.get("evalue", ""))
        exit_status = content.get("exit_status")
        if ename == "SystemExit":
            # exit(N), quit() and sys.exit(N) in a Python block end it with that status, as
            # `exit N` does in a shell block: 0 (or none) is success.
            exit_status = _system_exit_status(evalue or "")
            ok = exit_status == 0
            evalue = f"exit({evalue})" if evalue else "exit()"
        return ExecResult(
            ExecStatus.OK if ok else ExecStatus.ERROR,
            time.monotonic() - started,
            exit_status=exit_status,
            ename=None if ok else ename,
            evalue=None if ok else evalue,
            expressions=values,
            expression_errors=problems,
            restart=_shell_restart(content),
            output_incomplete=output_incomplete,
        )

    def _drain_iopub(self) -> None:
        kc = self._client()
        while kc.iopub_channel.msg_ready():
            kc.iopub_channel.get_msg(timeout=0)

    def _client(self) -> BlockingKernelClient:
        if self.kc is None:
            raise KernelError(f"kernel {self.name!r} is not running")
        return self.kc

    def _log_tail(self) -> str:
        path = self._runtime_dir / f"k{self._index}-{self.generation}" / "k.log"
        try:
            lines = path.read_text(errors="replace").strip().splitlines()[-5:]
        except OSError:
            return ""
        return (":\n  " + "\n  ".join(lines)) if lines else ""


class _ReapedKernelManager(KernelManager):
    """Starts the kernel through ``runner.kernels.reaper``: nothing below it outlives it."""

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd: list[str] = super().format_kernel_cmd(extra_arguments)
        folder = os.path.dirname(self.connection_file)
        reaper = [sys.executable, "-m", "runner.kernels.reaper", "--parent", str(os.getpid())]
        return [*reaper, "--remove", folder, "--", *cmd]


#: Variables no kernel inherits: secret inputs are read by the runner and handed to the
#: kernels as values, never as an environment every process of every step would see.
_WITHHELD_PREFIX = "RUNBOOK_INPUT_"


def _kernel_environment(tag: str, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_WITHHELD_PREFIX)}
    env[KERNEL_TAG] = tag
    env[KERNEL_FOLDER] = str(folder)
    return env


def _system_exit_status(evalue: str) -> int:
    """The status Python itself would exit with for ``SystemExit(evalue)``."""
    if evalue in ("", "None"):
        return 0
    try:
        return int(evalue) & 0xFF
    except ValueError:
        return 1  # sys.exit("message"): Python prints it and exits 1


def _shell_restart(content: Mapping[str, Any]) -> ShellRestart | None:
    facts = (content.get("runbook") or {}).get("restarted")
    if not facts:
        return None
    return ShellRestart(
        status=int(facts.get("status", -1)),
        cwd=facts.get("cwd"),
        lost_exports=tuple(facts.get("lost_exports") or ()),
        lost_functions=tuple(facts.get("lost_functions") or ()),
    )


def _die_with_parent() -> None:
    """In the kernel's child process: get SIGKILL when the runner dies, even by SIGKILL.

    Linux only (prctl PR_SET_PDEATHSIG); elsewhere a killed runner leaves its kernels behind.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return


def _kill_tagged(tag: str) -> None:
    """SIGKILL every process whose environment carries ``KERNEL_TAG=tag``.

    The kernel's process group does not hold everything the kernel started: the shell kernel
    runs bash in a session of its own, and when a kernel dies its children are reparented
    away from it. Their environment still names the kernel. Linux only (/proc); a few passes,
    so a process forked during a pass is caught by the next one.
    """
    needle = b"\0" + f"{KERNEL_TAG}={tag}".encode() + b"\0"
    me = os.getpid()
    for _ in range(3):
        found = False
        try:
            entries = os.listdir("/proc")
        except OSError:
            return
        for entry in entries:
            if not entry.isdigit() or int(entry) == me:
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as fh:
                    environ = b"\0" + fh.read()
            except OSError:
                continue
            if needle in environ:
                found = True
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(entry), signal.SIGKILL)
        if not found:
            return


def _client_context() -> zmq.Context[Any]:
    """A context whose sockets queue without limit: a SUB socket past its high-water mark
    drops messages, and a flood of output would lose its tail and the final ``idle``."""
    context: zmq.Context[Any] = zmq.Context()
    context.setsockopt(zmq.RCVHWM, 0)
    return context


def _poll(sockets: Iterable[zmq.Socket[Any]], timeout: float) -> set[zmq.Socket[Any]]:
    poller = zmq.Poller()
    for sock in sockets:
        poller.register(sock, zmq.POLLIN)
    return {sock for sock, _ in poller.poll(int(timeout * 1000))}


def _wait_gone(sessions: Iterable[KernelSession], seconds: float) -> None:
    until = time.monotonic() + seconds
    pending = [s for s in sessions if s.alive()]
    while pending and time.monotonic() < until:
        time.sleep(0.005)
        pending = [s for s in pending if s.alive()]


def _to_output(kind: str, content: Mapping[str, Any]) -> Output | None:
    if kind == "stream":
        return Output("stream", text=str(content.get("text", "")), stream=content.get("name"))
    if kind in ("execute_result", "display_data"):
        data = dict(content.get("data") or {})
        return Output(
            "result" if kind == "execute_result" else "display",
            text=str(data.get("text/plain", "")),
            data=data,
        )
    if kind == "error":
        tb = tuple(str(line) for line in content.get("traceback") or ())
        return Output(
            "error",
            text=error_headline(content.get("ename"), content.get("evalue")),
            ename=str(content.get("ename", "")),
            evalue=str(content.get("evalue", "")),
            traceback=tb,
        )
    return None


# --- the pool ----------------------------------------------------------------------------------


StartHook = Callable[[Kernel], None]  # a KernelSession, seen as the engine sees it


#: The pool's folder in the temporary directory: `runbook-kernels-<runner pid>-<random>`.
POOL_PREFIX = "runbook-kernels-"


#: A Unix socket's path holds at most 107 bytes (sun_path is 108 with its NUL). A kernel's
#: sockets are `<pool>/k<i>-<generation>/k-<n>`, and the pool is `runbook-kernels-<pid>-<8>`.
_SOCKET_PATH_MAX = 107
_POOL_SUFFIX = len(f"/{POOL_PREFIX}4194304-abcdefgh/k99-999/k-99")
#: Where the pool goes when the temporary directory's path is too long for its sockets.
_SHORT_ROOTS = ("/tmp", "/var/tmp", "/dev/shm")


def _pool_root() -> Path:
    """The folder the pool is made in: the temporary directory, or a shorter one when its path
    would make a kernel's socket path too long (zmq would fail with "File name too long")."""
    root = Path(tempfile.gettempdir())
    if len(os.fsencode(root)) + _POOL_SUFFIX <= _SOCKET_PATH_MAX:
        return root
    for short in _SHORT_ROOTS:
        if os.path.isdir(short) and os.access(short, os.W_OK | os.X_OK):
            return Path(short)
    raise KernelError(
        f"the temporary directory {root} is too long a path for a kernel's sockets (at most "
        f"{_SOCKET_PATH_MAX - _POOL_SUFFIX} bytes); set TMPDIR to a shorter folder"
    )


def _sweep_stale_folders() -> None:
    """Remove pool folders whose runner is gone.

    A kernel's reaper removes its own folder, and the last one the pool's, even after the
    runner was SIGKILLed; a runner killed before its first kernel started leaves an empty
    folder only, which the next run removes here.
    """
    root = _pool_root()
    try:
        entries = list(root.glob(f"{POOL_PREFIX}*-*"))
    except OSError:
        return
    for entry in entries:
        pid = entry.name[len(POOL_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _process_exists(int(pid)) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class KernelPool:
    """The kernels of one run, by kernelspec name; a context manager that always shuts them down."""

    def __init__(self, on_start: StartHook | None = None) -> None:
        # Handed to every session (see runner.kernels.cancel).
        self.cancel: CancelToken | None = None
        _sweep_stale_folders()
        self._dir = tempfile.TemporaryDirectory(
            prefix=f"{POOL_PREFIX}{os.getpid()}-", dir=_pool_root()
        )
        self.runtime_dir = Path(self._dir.name)
        self._sessions: dict[str, KernelSession] = {}
        self._started: dict[str, int] = {}  # kernelspec -> generation the hook last saw
        self.on_start = on_start  # called after each (re)start, e.g. to inject inputs

    def prestart(self, names: Iterable[str]) -> None:
        """Launch these kernels now, without waiting: they boot while the run is prepared."""
        for name in names:
            self._session(name)

    def _session(self, name: str) -> KernelSession:
        session = self._sessions.get(name)
        if session is None:
            session = KernelSession(name, self.runtime_dir, len(self._sessions))
            session.cancel = self.cancel
            self._sessions[name] = session
            session.launch()
        return session

    def get(self, name: str) -> KernelSession:
        """The running kernel for ``name``: started, or restarted if it died, on demand."""
        session = self._session(name)
        session.cancel = self.cancel
        if session.km is not None and not session.alive():
            session.force_stop()
        if session.km is None:
            session.launch()
        session.wait_ready()
        # Every new kernel process (first start, restart after death or timeout) gets the
        # run's values again: the hook runs once per generation.
        if self.on_start is not None and self._started.get(name) != session.generation:
            self._started[name] = session.generation
            self.on_start(session)
        return session

    def running(self) -> list[KernelSession]:
        return [s for s in self._sessions.values() if s._ready and s.alive()]

    def sessions(self) -> list[KernelSession]:
        return list(self._sessions.values())

    def shutdown(self) -> None:
        """Shut every kernel down in parallel: requests first, then one shared wait, then force."""
        sessions = [s for s in self._sessions.values() if s.km is not None]
        for session in sessions:
            session.request_shutdown()
        _wait_gone(sessions, SHUTDOWN_REQUEST_WAIT)
        for session in sessions:
            session.force_stop()
        self._sessions.clear()
        with contextlib.suppress(OSError):
            self._dir.cleanup()

    def __enter__(self) -> KernelPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
