"""One persistent bash process, driven through pipes instead of a pseudo-terminal.

Why this shape:

* bash runs *interactive* (``-i``) but without a terminal. Only an interactive shell
  abandons the whole current command -- sourced file, functions, loops -- when the
  foreground job dies of SIGINT and then goes back to reading its next command. That is
  exactly "interrupt the cell, keep the shell": a non-interactive shell would either exit
  or carry on with the next line of the cell.
* bash's stdin is a control pipe carrying one short line per action. Cell code never
  travels on it: each cell is written to a file and ``source``d with ``</dev/null``,
  so multi-line code, heredocs and functions work and no command can eat the control
  stream.
* Results come back on a dedicated descriptor (fd 62) as NUL-terminated records, so
  stdout and stderr are forwarded untouched and never scanned for markers. bash strings
  cannot hold NUL, so a record can never be cut short by a value.
* Every control line stands alone: if a cell line is aborted (interrupt, expansion
  error), the status line after it still runs and reports ``$?``.

* A cell stops at its first failing command, as a CI system's ``bash -e -o pipefail``
  step does, but without ``set -e`` itself: errexit in an interactive shell ends the
  shell, and with it the run's directory, variables and exports. An ``ERR`` trap (with
  ``errtrace``, so functions and subshells have it too) ends the sourced cell instead.
  bash fires it exactly where ``set -e`` would stop (never in ``if``, ``while``, ``&&``,
  ``||`` or ``!``). ``set`` and ``exit`` are shell functions in the cell's scope: ``set
  -e``/``set +e`` switch the trap's effect, the other options go to the builtin and are
  reset after the cell; ``exit N`` ends the cell with status N and keeps the shell.
* When bash is gone all the same (``exec``, ``kill $$``), a fresh one is started in the
  last working directory, and the result says so and which exported variables and
  functions were lost, so the runner can put its inputs and outputs back.

One pump thread reads stdout, stderr, the record pipe and the exit notification. Before
it hands a record over it drains stdout and stderr, so a cell's output is always
published before the cell's verdict.

Long on purpose: the bash session, its sentinel protocol and its watchdog are one conversation
with one process.
"""

from __future__ import annotations

import codecs
import contextlib
import enum
import errno
import os
import queue
import selectors
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from runner.shell_kernel.procs import interrupt_missed

#: The descriptor bash writes records to; high enough that scripts leave it alone.
RECORD_FD = 62
#: Seconds bash gets to leave after SIGHUP/SIGTERM before the group is SIGKILLed.
CLOSE_GRACE = 0.2
#: Seconds between checks that the pump thread is alive while a cell waits.
PUMP_CHECK = 1.0
#: How often, and how far apart, a lost interrupt is sent again.
REINTERRUPTS = 10
REINTERRUPT_DELAY = 0.1
#: Bytes read per ``os.read``; big reads keep a flood of output to a few messages.
READ_SIZE = 1 << 16
#: Output read in one go is handed on in pieces of at most this many bytes: a flood becomes
#: a few hundred messages a second rather than tens of thousands.
BATCH_SIZE = 1 << 20

#: How bash is started; the runner tells the kernel's own processes from a step's by it.
BASH_ARGV = ("bash", "--noprofile", "--norc", "--noediting", "-i")
#: The watchdog's script (see _Watchdog).
WATCHDOG_SCRIPT = 'read _; kill -KILL -- "-$0" 2>/dev/null'

OutputSink = Callable[[str, str], None]
"""Receives ``(stream_name, text)`` with stream_name ``"stdout"`` or ``"stderr"``."""


class Outcome(enum.Enum):
    """How a cell ended."""

    OK = "ok"  # ran to its end (or `exit 0`) with status 0
    FAILED = "failed"  # a command failed and stopped the cell, or it ended non-zero
    INTERRUPTED = "interrupted"  # interrupt() was called while the cell ran
    EXITED = "exited"  # bash itself went away; a fresh bash has been started


@dataclass(frozen=True, slots=True)
class Failure:
    """The command that stopped a cell."""

    line: int  # 1-based line in the cell (or in the file that defined the function)
    command: str  # the command as bash saw it, before expansion
    status: int  # its exit status


@dataclass(frozen=True, slots=True)
class Restart:
    """What a replaced bash got back, and what it did not."""

    status: int  # the old bash's exit status
    cwd: str | None  # the working directory restored, or None when it no longer exists
    lost_exports: tuple[str, ...]  # exported variables the cells had set
    lost_functions: tuple[str, ...]  # functions the cells had defined


@dataclass(frozen=True, slots=True)
class CellResult:
    """What one cell produced besides its streamed output."""

    outcome: Outcome  # how the cell ended
    exit_status: int  # the cell's status (exit N's N), or bash's own status when it exited
    values: Mapping[str, str | None] = field(default_factory=dict)
    """Each requested expression's value; None when it is unset or bash could not expand it."""
    failure: Failure | None = None  # the command that stopped the cell, when one did
    exited: bool = False  # the cell ended by `exit N` (or `return N`)
    restart: Restart | None = None  # set when bash was replaced during this cell


@dataclass(slots=True)
class _Cell:
    """Bookkeeping for the cell being run; only touched under ``Shell._lock``."""

    ident: int  # the id bash echoes in this cell's records
    accepted: set[int]  # record ids that end the wait (the cell's, plus interrupt syncs)
    interrupted: bool = False  # interrupt() was called during the cell


class Shell:
    """A persistent ``bash`` whose cells are run with :meth:`run`.

    ``run`` blocks the calling thread; ``interrupt`` may be called from any thread.
    """

    def __init__(self, sink: OutputSink, *, env: Mapping[str, str] | None = None) -> None:
        self._sink = sink  # where stdout/stderr text goes, from the pump thread
        self._env = dict(os.environ if env is None else env)
        self._lock = threading.Lock()  # guards _cell, _next_id and writes to bash's stdin
        self._run_lock = threading.Lock()  # one cell at a time, whichever thread asks
        self._next_id = 1
        self._cell: _Cell | None = None
        self._records: queue.SimpleQueue[tuple[str, int, str]] = queue.SimpleQueue()
        # In the kernel's own folder when the runner gave one: it is removed with the kernel,
        # even when the runner is killed outright.
        self._workdir = tempfile.mkdtemp(
            prefix="runbook-shell-", dir=os.environ.get("RUNBOOK_KERNEL_FOLDER") or None
        )
        self._proc: subprocess.Popen[bytes] | None = None
        self._stdin_fd = -1
        self._pump: threading.Thread | None = None
        self.version = ""  # $BASH_VERSION, known once the first bash has started
        self._closed = False  # close() was called: never start bash again
        self._watchdog: _Watchdog | None = None  # kills bash's group if this process vanishes
        self.cwd: str | None = None  # bash's working directory after the last cell
        self._baseline: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
        self._names: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())

    @property
    def pid(self) -> int | None:
        """The current bash's process id (also its process group id)."""
        return None if self._proc is None else self._proc.pid

    def alive(self) -> bool:
        """Whether the current bash is still running."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start bash and wait until it has taken its settings."""
        record_read, record_write = os.pipe()
        prelude = self._write_file("prelude.sh", PRELUDE)
        self._proc = subprocess.Popen(
            list(BASH_ARGV),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(record_write,),
            env=self._env,
            cwd=self.cwd if self.cwd and os.path.isdir(self.cwd) else None,
            # Its own session and group: interrupts and kills reach bash and every
            # command it started, and never the kernel.
            start_new_session=True,
            preexec_fn=_unignore_interrupts if _interrupts_ignored() else None,
        )
        os.close(record_write)
        self._watchdog = _Watchdog(self._proc.pid)
        assert self._proc.stdin is not None
        self._stdin_fd = self._proc.stdin.fileno()
        self._records = queue.SimpleQueue()
        self._pump = _Pump(self._proc, record_read, self._sink, self._records)
        self._pump.start()
        self._write(_setup_line(record_write, prelude))
        while True:
            kind, _, payload = self._next_record()
            if kind == "N":
                self._baseline = self._names = _names(payload)
            elif kind == "E":
                break
            else:
                raise OSError(f"bash exited with status {payload} while starting")
        self.version = payload

    def run(
        self, code: str, expressions: Mapping[str, str] | None = None, *, errexit: bool = True
    ) -> CellResult:
        """Run ``code`` as one cell, then expand each of ``expressions`` in the same shell.

        With ``errexit`` the cell stops at its first failing command (see the module's
        docstring); without it only its last command's status counts.
        """
        with self._run_lock:
            return self._run(code, expressions, errexit)

    def _run(self, code: str, expressions: Mapping[str, str] | None, errexit: bool) -> CellResult:
        if self._closed:
            raise RuntimeError("the shell has been closed")
        restart = None if self.alive() else self._restart(-1)
        names = list(expressions or {})
        cell = self._begin(code, [(expressions or {})[n] for n in names], errexit)
        status: int | None = None
        stop = ""
        values: dict[int, str] = {}
        while True:
            kind, ident, payload = self._next_record()
            if kind == "X":
                with self._lock:
                    self._cell = None
                if not self._closed:
                    restart = self._restart(int(payload))
                return CellResult(
                    Outcome.EXITED, int(payload), dict.fromkeys(names), restart=restart
                )
            if ident not in cell.accepted:
                continue  # a late record of an earlier cell or interrupt
            if kind == "S":
                status = int(payload)
            elif kind == "F":
                stop = payload
            elif kind == "V":
                index, _, value = payload.partition(" ")
                values[int(index)] = value
            elif kind == "P":
                self.cwd = payload
            elif kind == "N":
                self._names = _names(payload)
            elif kind == "E":
                break
        with self._lock:
            self._cell = None
        self._forget_code()
        found = {name: values.get(i) for i, name in enumerate(names)}
        return _verdict(cell.interrupted, status, found, stop, restart)

    def _next_record(self) -> tuple[str, int, str]:
        """The next record; an exit record if the pump thread died without one."""
        while True:
            try:
                return self._records.get(timeout=PUMP_CHECK)
            except queue.Empty:
                if self._pump is None or not self._pump.is_alive():
                    # Drained by now if the pump queued anything before dying.
                    with contextlib.suppress(queue.Empty):
                        return self._records.get_nowait()
                    return ("X", -1, "-1")

    def interrupt(self) -> bool:
        """Interrupt the running cell, as Ctrl-C would; False when no cell is running."""
        with self._lock:
            cell = self._cell
            if cell is None or self._proc is None:
                return False
            cell.interrupted = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGINT)
            # The signal may land while bash reads the lines after the cell; a fresh
            # sync line guarantees some record still ends the wait.
            sync = self._take_id()
            cell.accepted.add(sync)
            self._write(f"printf 'E {sync} \\0' >&{RECORD_FD}\n")
            pgid = self._proc.pid
        threading.Thread(
            target=self._follow_up, args=(cell, pgid), name="interrupt-follow-up", daemon=True
        ).start()
        return True

    def _follow_up(self, cell: _Cell, pgid: int) -> None:
        """Send SIGINT again while the cell's commands can only have missed it (see procs)."""
        for _ in range(REINTERRUPTS):
            time.sleep(REINTERRUPT_DELAY)
            with self._lock:
                if self._cell is not cell:
                    return
                if interrupt_missed(pgid):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pgid, signal.SIGINT)

    def close(self) -> None:
        """Stop bash and everything it started, then remove the cell files."""
        self._closed = True
        self._stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def _begin(self, code: str, expressions: list[str], errexit: bool) -> _Cell:
        """Write the cell's files and control lines; return its bookkeeping."""
        with self._lock:
            cell = _Cell(self._take_id(), set())
            cell.accepted.add(cell.ident)
            cell_path = self._write_file("cell.sh", code)
            script = _expression_script(cell.ident, expressions)
            expr_path = self._write_file("expressions.sh", script)
            self._cell = cell
            self._write(_cell_lines(cell.ident, cell_path, expr_path, errexit))
        return cell

    def _forget_code(self) -> None:
        """Remove the cell file once bash has run it.

        The runner injects inputs as cells (`export API_TOKEN=...`), so a cell file may hold a
        secret; it must not outlive the cell, even when the kernel is killed later.
        """
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self._workdir, "cell.sh"))

    def _take_id(self) -> int:
        ident = self._next_id
        self._next_id += 1
        return ident

    def _write_file(self, name: str, text: str) -> str:
        path = os.path.join(self._workdir, name)
        try:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        except FileNotFoundError:
            # A cell removed our directory (rm -rf /tmp/...): make it again.
            os.makedirs(self._workdir, mode=0o700, exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        return path

    def _write(self, line: str) -> None:
        # One write per action, each under PIPE_BUF, so lines never interleave.
        data = line.encode()
        while data:
            try:
                written = os.write(self._stdin_fd, data)
            except BrokenPipeError:
                return  # bash is gone; the pump reports the exit
            data = data[written:]

    def _restart(self, status: int) -> Restart:
        """A fresh bash in the last working directory; says what the old one took with it."""
        exports, functions = (
            sorted(now - base) for now, base in zip(self._names, self._baseline, strict=True)
        )
        self._stop()
        self.start()
        cwd = self.cwd if self.cwd and os.path.isdir(self.cwd) else None
        return Restart(status, cwd, tuple(exports), tuple(functions))

    def _stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        _kill_group(proc)
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if self._pump is not None:
            self._pump.join(timeout=1)
        self._proc = None
        self._pump = None
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None


def _setup_line(record_write: int, prelude: str) -> str:
    """Move the record pipe to RECORD_FD and quiet everything an interactive bash adds."""
    return (
        f"exec {RECORD_FD}>&{record_write} {record_write}>&-; "
        "PS1=; PS2=; PS0=; PROMPT_COMMAND=; unset HISTFILE MAILCHECK; set +o history +H; "
        f"source {shlex.quote(prelude)}; "
        + _NAMES_RECORD.format(ident=0)
        + f"printf 'E 0 %s\\0' \"$BASH_VERSION\" >&{RECORD_FD}\n"
    )


#: Loaded once into every bash: the ERR trap that stops a cell at its first failing
#: command, and the ``set`` and ``exit`` that cells see (see the module's docstring). Names
#: start with ``__rb_`` so no script collides with them.
PRELUDE = r"""
__rb_errexit=1 __rb_exit= __rb_fline= __rb_fcmd= __rb_fstat=
# One line, so that $LINENO is still the failing command's line when it is read. The
# `return` must be the trap's own: in a function it would only leave that function.
__rb_trap='__rb_s=$? __rb_l=$LINENO __rb_c=$BASH_COMMAND; if ((${#BASH_SOURCE[@]})) && __rb_stop; '
__rb_trap+='then if ((${#FUNCNAME[@]})); then return $__rb_s; fi; return ${__rb_exit:-$__rb_s}; fi'
__rb_stop() {
  ((__rb_errexit)) || [[ -n $__rb_exit ]] || return 1
  ((BASH_SUBSHELL == 0)) || builtin exit "$__rb_s"
  [[ -n $__rb_fline$__rb_exit ]] || __rb_fline=$__rb_l __rb_fcmd=$__rb_c __rb_fstat=$__rb_s
}
exit() {
  ((BASH_SUBSHELL == 0)) || builtin exit "$@"
  local __rb_n=${1-$?}
  if ! [[ $__rb_n =~ ^-?[0-9]+$ ]]; then
    echo "exit: $__rb_n: numeric argument required" >&2
    __rb_n=2
  fi
  __rb_exit=$((__rb_n & 255))
  return 1
}
__rb_positional() {
  echo "set: a runbook block cannot set positional parameters (set -- ...);" \
    "use an array instead: args=(...)" >&2
  return 2
}
set() {
  local -a __rb_pass=()
  local __rb_a __rb_f __rb_o __rb_on
  if (($# == 0)); then builtin set; return; fi
  while (($#)); do
    __rb_a=$1; shift
    case $__rb_a in
      -|--) __rb_positional; return ;;
      [-+]?*) ;;
      *) __rb_positional; return ;;
    esac
    [[ ${__rb_a:0:1} == - ]] && __rb_on=1 || __rb_on=0
    __rb_f=${__rb_a:1}
    if [[ $__rb_f == *e* ]]; then __rb_errexit=$__rb_on; __rb_f=${__rb_f//e/}; fi
    if [[ $__rb_f == *o* ]]; then
      __rb_f=${__rb_f//o/}
      __rb_o=${1-}
      (($#)) && shift
      if [[ $__rb_o == errexit ]]; then __rb_errexit=$__rb_on
      elif [[ -n $__rb_o ]]; then __rb_pass+=("${__rb_a:0:1}o" "$__rb_o")
      else __rb_pass+=("${__rb_a:0:1}o"); fi
    fi
    [[ -z $__rb_f ]] || __rb_pass+=("${__rb_a:0:1}$__rb_f")
  done
  ((${#__rb_pass[@]} == 0)) || builtin set "${__rb_pass[@]}"
}
builtin set -E -o pipefail
"""

#: The settings every cell starts from, whatever the one before it set: options written in
#: a cell are scoped to it. pipefail: a runbook step is judged by its exit status, so
#: `curl -f ... | jq ...` must fail when curl does, as CI systems' bash steps do.
_RESET = "builtin set +auvxfCkT -hBE -o pipefail"

#: The names of exported variables and functions, to say what a lost bash took with it.
#: Builtins only, writing straight to the record pipe: no fork per cell.
_NAMES_RECORD = (
    "{{ printf 'N {ident} '; compgen -e; printf '\\1'; compgen -A function; printf '\\0'; }}"
    f" >&{RECORD_FD}; "
)


def _cell_lines(ident: int, cell_path: str, expr_path: str, errexit: bool) -> str:
    """The control lines for one cell; each must survive the one before being aborted."""
    return (
        f"__rb_exit= __rb_fline= __rb_fcmd= __rb_fstat= __rb_errexit={int(errexit)}; "
        f'trap "$__rb_trap" ERR\n'
        f"source {shlex.quote(cell_path)} </dev/null {RECORD_FD}>&-\n"
        f"printf 'S {ident} %d\\0' \"$?\" >&{RECORD_FD}; "
        f'printf \'F {ident} %s:%s:%s:%s\\0\' "$__rb_exit" "$__rb_fstat" "$__rb_fline" '
        f'"$__rb_fcmd" >&{RECORD_FD}\n'
        f"__rb_errexit=0 __rb_exit=; {_RESET}\n"
        f"source {shlex.quote(expr_path)} </dev/null\n"
        f"printf 'P {ident} %s\\0' \"$PWD\" >&{RECORD_FD}; "
        + _NAMES_RECORD.format(ident=ident)
        + f"printf 'E {ident} \\0' >&{RECORD_FD}\n"
    )


def _expression_script(ident: int, expressions: list[str]) -> str:
    """One printf per expression, tagged with its index; a failed expansion prints nothing.

    Its message is bash's own (``NAME: parameter not set``), so it goes nowhere: the
    runner names the unset output itself.
    """
    return "".join(
        f"{{ printf 'V {ident} {i} %s\\0' \"{expr}\" >&{RECORD_FD}; }} 2>/dev/null\n"
        for i, expr in enumerate(expressions)
    )


def _names(payload: str) -> tuple[frozenset[str], frozenset[str]]:
    exports, _, functions = payload.partition("\1")
    return frozenset(exports.split()), frozenset(functions.split())


def _verdict(
    interrupted: bool,
    status: int | None,
    values: Mapping[str, str | None],
    stop: str,
    restart: Restart | None,
) -> CellResult:
    if interrupted or status is None:
        # No status line means it was aborted itself; bash reports 130 for that.
        code = 130 if status is None else status
        return CellResult(Outcome.INTERRUPTED, code, values, restart=restart)
    exit_code, fstat, fline, fcmd = stop.split(":", 3) if stop else ("", "", "", "")
    failure = None
    if fline and not exit_code:
        failure = Failure(int(fline), fcmd, int(fstat))
    outcome = Outcome.OK if status == 0 else Outcome.FAILED
    return CellResult(outcome, status, values, failure, bool(exit_code), restart)


class _Watchdog:
    """A small process that SIGKILLs bash's process group once this kernel is gone.

    bash runs in a session of its own, so when the kernel is killed outright (SIGKILL, or its
    runner killed: the kernel dies with its parent) nothing would stop bash and the commands
    it started. The watchdog waits for end of file on a pipe whose write end only this
    process holds (descriptors are not inherited), so it notices the kernel's end however it
    comes. A clean stop kills the watchdog first, so it never signals a recycled group id.
    """

    def __init__(self, pgid: int) -> None:
        read_end, self._write_end = os.pipe()
        try:
            self._proc = subprocess.Popen(
                ["bash", "-c", WATCHDOG_SCRIPT, str(pgid)],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # out of reach of the group it guards
            )
        finally:
            os.close(read_end)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._proc.kill()
        self._proc.wait()
        os.close(self._write_end)


def _interrupts_ignored() -> bool:
    """Whether SIGINT is ignored here, which bash and its commands would inherit."""
    return signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def _unignore_interrupts() -> None:
    """In the child before exec: an ignored SIGINT would make ``sleep`` uninterruptible."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGHUP/SIGTERM the group (interactive bash ignores TERM), then SIGKILL stragglers."""
    for sig in (signal.SIGHUP, signal.SIGTERM):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=CLOSE_GRACE)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


class _Pump(threading.Thread):
    """Forwards stdout/stderr to the sink and records to the queue until bash exits."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        record_fd: int,
        sink: OutputSink,
        records: queue.SimpleQueue[tuple[str, int, str]],
    ) -> None:
        super().__init__(name=f"bash-{proc.pid}-pump", daemon=True)
        self._proc = proc
        self._sink = sink
        self._records = records
        self._forwarding = False  # off until setup is done: hides bash's startup noise
        assert proc.stdout is not None and proc.stderr is not None
        self._streams = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr"}
        self._decoders = {
            fd: codecs.getincrementaldecoder("utf-8")("replace") for fd in self._streams
        }
        self._record_fd = record_fd
        self._pending = b""  # an incomplete record
        self._exit_fd = _exit_notifier(proc)

    def run(self) -> None:
        selector = selectors.DefaultSelector()
        for fd in (*self._streams, self._record_fd, self._exit_fd):
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        try:
            self._loop(selector)
        finally:
            selector.close()
            os.close(self._record_fd)
            os.close(self._exit_fd)

    def _loop(self, selector: selectors.BaseSelector) -> None:
        while True:
            ready = {key.fd for key, _ in selector.select()}
            for fd in self._streams:
                if fd in ready and not self._drain(fd):
                    selector.unregister(fd)
            if self._record_fd in ready and not self._read_records():
                selector.unregister(self._record_fd)
            if self._exit_fd in ready:
                for fd in self._streams:
                    self._drain(fd)
                self._records.put(("X", -1, str(self._proc.wait())))
                return

    def _drain(self, fd: int) -> bool:
        """Forward everything readable on ``fd`` now; False at end of file."""
        batch: list[bytes] = []
        size = 0
        open_ = True
        while open_:
            try:
                chunk = os.read(fd, READ_SIZE)
            except BlockingIOError:
                break
            except OSError as err:
                if err.errno != errno.EBADF:
                    raise
                chunk = b""
            open_ = bool(chunk)
            batch.append(chunk)
            size += len(chunk)
            if size >= BATCH_SIZE or not open_:
                self._hand_on(fd, batch, final=not open_)
                batch, size = [], 0
        if batch:
            self._hand_on(fd, batch, final=False)
        return open_

    def _hand_on(self, fd: int, chunks: list[bytes], *, final: bool) -> None:
        text = self._decoders[fd].decode(b"".join(chunks), final=final)
        if text and self._forwarding:
            self._forward(self._streams[fd], text)

    def _forward(self, name: str, text: str) -> None:
        try:
            self._sink(name, text)
        except Exception:
            # Output that cannot be delivered (say, during shutdown) is dropped; the
            # pump must live on, or the cell waiting for its records never returns.
            return

    def _read_records(self) -> bool:
        """Queue every complete record; output written before it is forwarded first."""
        while True:
            try:
                chunk = os.read(self._record_fd, READ_SIZE)
            except BlockingIOError:
                return True
            if not chunk:
                return False
            *complete, self._pending = (self._pending + chunk).split(b"\0")
            self._queue_records(complete)

    def _queue_records(self, complete: list[bytes]) -> None:
        for raw in complete:
            for fd in self._streams:
                self._drain(fd)
            kind, _, rest = raw.decode("utf-8", "replace").partition(" ")
            ident, _, payload = rest.partition(" ")
            if kind == "E" and ident == "0":
                self._forwarding = True
            self._records.put((kind, int(ident), payload))


def _exit_notifier(proc: subprocess.Popen[bytes]) -> int:
    """A descriptor that becomes readable when ``proc`` exits."""
    if hasattr(os, "pidfd_open"):
        return os.pidfd_open(proc.pid)
    # No pidfd (not Linux): a thread waits and pokes a pipe.
    read_fd, write_fd = os.pipe()

    def wait() -> None:
        proc.wait()
        os.write(write_fd, b"x")
        os.close(write_fd)

    threading.Thread(target=wait, name=f"bash-{proc.pid}-wait", daemon=True).start()
    return read_fd
