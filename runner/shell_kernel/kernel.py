"""The Jupyter side: an ipykernel ``Kernel`` that runs each cell in one persistent bash.

Only ``ipykernel.kernelbase`` is imported here; the kernel app (and the IPython
machinery it drags in) is imported by ``launch`` alone.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from typing import Any

from ipykernel._version import kernel_protocol_version
from ipykernel.kernelbase import Kernel

from runner import __version__
from runner.shell_kernel.procs import become_subreaper
from runner.shell_kernel.shell import CellResult, Outcome, Shell

#: What a reply's ``ename`` says for each unsuccessful outcome.
ERROR_NAMES = {
    Outcome.FAILED: "ExitStatus",
    Outcome.INTERRUPTED: "KeyboardInterrupt",
    Outcome.EXITED: "ShellExited",
}


class ShellKernel(Kernel):
    """Runs cells in a persistent bash; a cell's verdict is its last command's status."""

    implementation = "runbook-shell"
    implementation_version = __version__
    banner = "Shell (runbook): one persistent bash; cd, variables and exports carry over."
    language_info = {  # noqa: RUF012  # the base class declares it as a plain attribute
        "name": "bash",
        "mimetype": "text/x-sh",
        "file_extension": ".sh",
        "codemirror_mode": "shell",
        "pygments_lexer": "bash",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]  # ipykernel is untyped
        # The parent of the cell whose output is being forwarded; the pump thread reads
        # it, because ipykernel keeps the current parent in a per-thread context.
        self._output_parent: dict[str, Any] | None = None
        self._silent = False
        self._shell = Shell(self._forward_output)
        # Signal-mode interrupts (SIGINT to the kernel's group) reach bash through us.
        # Installed before bash starts: the app ignores SIGINT, and an ignored signal
        # would be inherited by every command bash runs.
        signal.signal(signal.SIGINT, self._on_sigint)
        # jupyter_client's last resort before SIGKILL; without this bash's commands
        # would outlive the kernel.
        signal.signal(signal.SIGTERM, self._on_sigterm)
        # What a step leaves running in the background stays below this kernel, where the
        # runner finds it and stops it at the end of the run.
        become_subreaper()
        self._shell.start()
        self.language_info = {**self.language_info, "version": self._shell.version}

    @property
    def kernel_info(self) -> dict[str, Any]:
        """The base's, minus its probe for debugpy (~60 ms of imports on first request).

        No debugger and no subshells: a subshell would run cells concurrently in the
        one bash.
        """
        return {
            "protocol_version": kernel_protocol_version,
            "implementation": self.implementation,
            "implementation_version": self.implementation_version,
            "language_info": self.language_info,
            "banner": self.banner,
            "help_links": [],
            "supported_features": [],
        }

    def pre_handler_hook(self) -> None:
        """Keep our SIGINT handler: the base would install KeyboardInterrupt here."""

    def post_handler_hook(self) -> None:
        """Nothing to restore, see ``pre_handler_hook``."""

    async def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, str] | None = None,
        allow_stdin: bool = False,
        *,
        cell_meta: dict[str, Any] | None = None,
        cell_id: str | None = None,
    ) -> dict[str, Any]:
        self._output_parent = self.get_parent()  # type: ignore[no-untyped-call]
        self._silent = silent
        # The runner sends a block's settings in the request's metadata (ipykernel hands
        # it over as cell_meta): `errexit=false` on a block turns first-failure stops off.
        options = (cell_meta or {}).get("runbook") or {}
        errexit = options.get("errexit", True) is not False
        result = self._shell.run(code, user_expressions or {}, errexit=errexit)
        reply = {
            "execution_count": self.execution_count,
            "exit_status": result.exit_status,
            "user_expressions": _expression_replies(result),
            "payload": [],
            "runbook": _runbook_facts(result),
        }
        if result.outcome is Outcome.OK:
            return {"status": "ok", **reply}
        error = _error_content(result)
        if not silent:
            self._publish("error", error, self._output_parent)
        return {"status": "error", **error, **reply}

    async def interrupt_request(self, stream: Any, ident: Any, parent: Any) -> None:
        """Message-mode interrupt: stop bash's foreground job instead of signalling us."""
        self._shell.interrupt()
        self._session.send(stream, "interrupt_reply", {"status": "ok"}, parent, ident=ident)

    async def do_shutdown(self, restart: bool) -> dict[str, Any]:
        self._shell.close()
        return {"status": "ok", "restart": restart}

    async def shutdown_request(self, stream: Any, ident: Any, parent: Any) -> None:
        """The base handler, except that the loops stop only after the control reply.

        The base stops the main loop from inside this handler; the main thread then
        closes the iopub thread while the control thread is still flushing stdout after
        the handler, and that flush waits out its timeout. The kernel then hangs until
        jupyter_client gives up and sends SIGTERM (2.5 s). Stopping the loops from a
        control-loop callback runs them after that flush.
        """
        content = await self.do_shutdown(parent["content"]["restart"])
        self._session.send(stream, "shutdown_reply", content, parent, ident=ident)
        # Broadcast on iopub too, as the base does (``_at_shutdown`` sends it).
        self._shutdown_message = self._session.msg("shutdown_reply", content, parent)
        await self._at_shutdown()  # type: ignore[no-untyped-call]
        stream.io_loop.add_callback(self._stop_loops, stream.io_loop)

    def _stop_loops(self, control_loop: Any) -> None:
        loops = [self.io_loop]
        if self.shell_stream is not None and self.shell_stream.io_loop is not self.io_loop:
            loops.append(self.shell_stream.io_loop)
        for loop in [*loops, control_loop]:
            loop.add_callback(loop.stop)

    @property
    def _session(self) -> Any:
        """The message session; the app always sets it before any handler runs."""
        if self.session is None:
            raise RuntimeError("the kernel has no session")
        return self.session

    def _publish(self, msg_type: str, content: dict[str, Any], parent: Any) -> None:
        """Send one iopub message on behalf of ``parent``; safe from any thread."""
        topic = self._topic(msg_type)  # type: ignore[no-untyped-call]
        self._session.send(self.iopub_socket, msg_type, content, parent=parent, ident=topic)

    def _forward_output(self, name: str, text: str) -> None:
        """Publish bash output live; runs on the shell's pump thread."""
        if self._silent or self._output_parent is None:
            return
        self._publish("stream", {"name": name, "text": text}, self._output_parent)

    def _on_sigint(self, signum: int, frame: object) -> None:
        # A thread does the work so the handler never waits on a lock the interrupted
        # main thread might hold.
        threading.Thread(target=self._shell.interrupt, name="sigint", daemon=True).start()

    def _on_sigterm(self, signum: int, frame: object) -> None:
        self._shell.close()
        os._exit(128 + signum)


def _error_content(result: CellResult) -> dict[str, Any]:
    """The ename/evalue/traceback triple Jupyter expects for an unsuccessful cell."""
    if result.outcome is Outcome.EXITED:
        evalue = (
            f"the shell itself exited with status {result.exit_status}; a fresh shell was "
            "started in the same directory"
        )
    elif result.outcome is Outcome.INTERRUPTED:
        evalue = "interrupted"
    elif result.failure is not None:
        failure = result.failure
        command = failure.command if len(failure.command) <= 200 else failure.command[:200] + "…"
        evalue = f"line {failure.line}: `{command}` exited {failure.status}"
    elif result.exited:
        evalue = f"exit {result.exit_status}"
    else:
        evalue = f"exit status {result.exit_status}"
    ename = ERROR_NAMES[result.outcome]
    # The traceback is what front ends print: the value alone says it ("exit 3").
    return {"ename": ename, "evalue": evalue, "traceback": [evalue]}


def _runbook_facts(result: CellResult) -> dict[str, Any]:
    """What the runner needs beyond Jupyter's reply: how the cell stopped, and whether bash
    was replaced (then the runner puts its inputs and outputs back before the next cell)."""
    facts: dict[str, Any] = {"exited": result.exited}
    if result.failure is not None:
        failure = result.failure
        facts["failure"] = {
            "line": failure.line,
            "command": failure.command,
            "status": failure.status,
        }
    if result.restart is not None:
        restart = result.restart
        facts["restarted"] = {
            "status": restart.status,
            "cwd": restart.cwd,
            "lost_exports": list(restart.lost_exports),
            "lost_functions": list(restart.lost_functions),
        }
    return facts


def _expression_replies(result: CellResult) -> dict[str, dict[str, Any]]:
    """``user_expressions`` in Jupyter's shape: a mime bundle, or an error per expression."""
    replies: dict[str, dict[str, Any]] = {}
    for name, value in result.values.items():
        if value is None and result.outcome is Outcome.EXITED:
            replies[name] = _expression_error("ShellExited", "the shell exited before it")
        elif value is None:
            replies[name] = _expression_error(
                "ExpansionError", "not set, or bash could not expand it"
            )
        else:
            replies[name] = {"status": "ok", "data": {"text/plain": value}, "metadata": {}}
    return replies


def _expression_error(ename: str, evalue: str) -> dict[str, Any]:
    return {"status": "error", "ename": ename, "evalue": evalue, "traceback": []}


def launch() -> None:
    """Run the kernel; ``IPKernelApp`` reads ``-f CONNECTION_FILE`` from ``sys.argv``."""
    import zmq
    from ipykernel.kernelapp import IPKernelApp

    class ShellKernelApp(IPKernelApp):
        def init_iopub(self, context: zmq.Context[Any]) -> None:
            # A PUB socket drops messages past its high-water mark (1,000 by default), the
            # final `idle` among them, and a step that floods output would then never end.
            # No limit: output waits in memory until the runner has read it.
            context.setsockopt(zmq.SNDHWM, 0)
            super().init_iopub(context)  # type: ignore[no-untyped-call]

    ShellKernelApp.launch_instance(kernel_class=ShellKernel)
    # Tearing down the interpreter (an IPython-sized heap) takes ~80 ms and is of no use
    # to a process that is leaving: run the exit hooks -- ipykernel closes its sockets
    # there -- and go.
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
    os._exit(0)
