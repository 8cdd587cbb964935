"""Running the lab: :class:`LabServer` in a background thread (tests, drills) and :func:`serve`
in the foreground (``runbook lab``).

The lab binds loopback only unless told otherwise: it speaks plain HTTP and simulates systems
that can disable accounts, so it has no business on a shared network.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import sqlite3
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import httpx
import uvicorn

from runner.errors import UsageError
from runner.lab.app import create_app, reset_db
from runner.lab.store import Store

DEFAULT_DB = Path(".runbook/lab/lab.db")
DEFAULT_PORT = 8765
TOKEN_ENV = "RUNBOOK_LAB_TOKEN"
URL_ENV = "RUNBOOK_LAB_URL"
_START_TIMEOUT = 15.0


class LabServer:
    """The lab on 127.0.0.1 in a background thread; `port=0` picks a free port.

    ``with LabServer(db_path) as lab: httpx.get(lab.url + "/health")``
    """

    def __init__(
        self,
        db_path: Path,
        *,
        port: int = 0,
        token: str | None = None,
        reset: bool = False,
    ) -> None:
        self.db_path = Path(db_path)
        self.token = token or secrets.token_urlsafe(24)
        self.port = port
        self.reset = reset
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._store: Store | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LabServer:
        """Bind, serve in a thread and return once `/health` answers."""
        if self._thread is not None:
            raise RuntimeError("this LabServer is already running")
        if self.reset:
            reset_db(self.db_path)
        app = create_app(self.db_path, self.token)
        self._store = app.state.store
        # Bind here, not in uvicorn, so port 0 resolves before the thread starts.
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
        # and without it every keep-alive request after the first waited ~40 ms (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="runbook-lab", daemon=True
        )
        self._thread.start()
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._thread is not None and not self._thread.is_alive():
                break
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the lab did not answer on {self.url}/health")

    def stop(self) -> None:
        """Ask uvicorn to finish, wait for the thread, close the database."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._store is not None:
            self._store.close()
        self._server = self._thread = self._store = None

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token_for(db_path: Path) -> tuple[str, str]:
    """The token and how the operator obtains it, without ever printing the token itself."""
    from_env = os.environ.get(TOKEN_ENV, "")
    if from_env:
        return from_env, f'"${TOKEN_ENV}" (already set in your environment)'
    token_file = db_path.parent / "token"
    if token_file.is_file():
        # Reused across restarts so an exported RUNBOOK_LAB_TOKEN stays valid.
        kept = token_file.read_text(encoding="utf-8").strip()
        if kept:
            return kept, _cat(token_file)
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    # Written 0600 rather than printed: secrets never reach the terminal or a scrollback log.
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return token, _cat(token_file)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # see start() on why
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen()
        return sock
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "is another lab running? Stop it, or pick another --port"
        ) from None


def _check_db(db: Path) -> None:
    """Fail with the fix when `db` exists but is not an SQLite database (a mistyped --db)."""
    try:
        Store(db).close()
    except sqlite3.DatabaseError as exc:
        raise UsageError(
            f"{db}: not a lab database ({exc}); point --db at a new file or an earlier lab.db"
        ) from None


def _cat(token_file: Path) -> str:
    """Shell text reading the token file, by its absolute path: pasteable from any folder."""
    import shlex

    return f'"$(cat {shlex.quote(str(token_file.resolve()))})"'


def banner(url: str, token_shell: str | None) -> str:
    """What to paste so that runbooks target this lab: a runbook reads its inputs from
    ``RUNBOOK_INPUT_<NAME>``, and one on another port would otherwise quietly use its default
    base URL. ``token_shell`` is the shell text that yields the token (never the token)."""
    token = token_shell or "THE-TOKEN-YOU-PASSED"
    return "\n".join(
        [
            "  runbooks (inputs base_url, api_token) target it once you paste, in their shell:",
            f"    export RUNBOOK_INPUT_BASE_URL={url}",
            f"    export RUNBOOK_INPUT_API_TOKEN={token}",
            "  drills against it:",
            f"    export {TOKEN_ENV}={token}; runbook drill RUNBOOK --lab {url}",
        ]
    )


def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    db_path: Path | None = None,
    token: str | None = None,
    reset: bool = False,
    *,
    allow_non_loopback: bool = False,
) -> None:
    """Run the lab in the foreground until Ctrl-C."""
    if not is_loopback(host) and not allow_non_loopback:
        raise UsageError(
            f"refusing to serve the lab on {host!r}: it binds loopback only "
            "(use 127.0.0.1, or pass the explicit allow flag if you really mean it)"
        )
    db = Path(db_path) if db_path is not None else DEFAULT_DB
    # Bind and open the database before announcing anything: a taken port or a stray --db file
    # gets one clear message instead of a "serving" line followed by uvicorn's log.
    sock = _listen(host, port)
    try:
        _check_db(db)
        if reset:
            reset_db(db)
        how = "the token you passed"
        if not token:
            token, how = _token_for(db)
        app = create_app(db, token)
    except BaseException:
        sock.close()
        raise
    url = f"http://{host}:{port}"
    print(f"runbook lab: serving {url} (database {db})", file=sys.stderr)
    print(
        banner(url, how.split(" (")[0] if how != "the token you passed" else None), file=sys.stderr
    )
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        app.state.store.close()
