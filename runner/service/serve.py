"""`runbook serve`: the embedded Temporal (or a given cluster), a worker and the intake, in one
process; `runbook worker`: a worker alone, for more machines.

The intake binds to 127.0.0.1 unless told otherwise and requires its token. SIGTERM or Ctrl-C
stops the intake and the worker (running activities finish first: the worker is shut down,
never abandoned) and then the dev server; nothing started here outlives the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import uvicorn
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from runner.check.lint import checked
from runner.console.actions import Action
from runner.console.app import console_routes
from runner.console.config import ConsoleConfig
from runner.console.decisions import Verdict
from runner.errors import InvalidRunbook
from runner.format.model import Runbook
from runner.identity.roles import RoleMap
from runner.identity.store import UserStore
from runner.notify.config import NotifyConfig
from runner.notify.outbox import Deliverer, Outbox
from runner.private_files import private_state
from runner.routing.catalog import load_runbooks
from runner.routing.route import Router
from runner.service.activities import RunActivities
from runner.service.devserver import DevServer, TemporalUnavailable
from runner.service.intake import Intake, create_app, route_kept, token_digest
from runner.service.messages import TASK_QUEUE, Actor, Decision, Resume
from runner.service.metrics import Metrics
from runner.service.queues import QueueActivities, RunQueue
from runner.service.sources import Source
from runner.service.workflow import RunbookRun

#: Seconds to reach Temporal's frontend after its port opened.
CONNECT_TIMEOUT = 30.0
#: Runs a worker executes at once (each holds its kernels while it runs).
DEFAULT_SLOTS = 4
TOKEN_ENV = "RUNBOOK_SERVICE_TOKEN"
#: The notifications' outbox, under the state folder (kept across restarts).
NOTIFY_OUTBOX = "notify-outbox.sqlite3"
#: How long SIGTERM waits for running attempts before the worker stops anyway.
DRAIN_TIMEOUT = timedelta(minutes=10)


@dataclass(frozen=True)
class ServiceConfig:
    runbooks: Sequence[Path]
    runs_dir: Path
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    temporal: str | None = None  # HOST:PORT of a cluster; None starts the embedded dev server
    namespace: str = "default"
    slots: int = DEFAULT_SLOTS
    token: str | None = None  # None: a new one, printed once
    given: Mapping[str, object] | None = None
    heartbeat_timeout: float = 30.0
    task_queue: str = TASK_QUEUE  # one per environment: its workers run only its runs
    sources: Mapping[str, Source] | None = None  # per-source credentials (service.sources)
    secrets: Mapping[str, str] | None = None  # secret inputs from `--secrets FILE`
    roles: RoleMap | None = None  # `--roles FILE`: who holds which runbook role (console)
    notify: NotifyConfig | None = None  # `--notify FILE`: webhook targets, the console's URL
    docs_url: str | None = None  # `--docs-url`: the docs site, ending in "/"


async def connect(target: str, namespace: str) -> Client:
    """A client, once the frontend answers (a dev server opens its port before it serves)."""
    deadline = asyncio.get_running_loop().time() + CONNECT_TIMEOUT
    while True:
        try:
            return await Client.connect(target, namespace=namespace)
        except RuntimeError as exc:  # the SDK's connection errors
            if asyncio.get_running_loop().time() > deadline:
                raise TemporalUnavailable(f"Temporal at {target} does not answer: {exc}") from None
            await asyncio.sleep(0.2)


def worker(
    client: Client,
    slots: int,
    executor: ThreadPoolExecutor,
    metrics: Metrics | None = None,
    task_queue: str = TASK_QUEUE,
    secrets: Mapping[str, str] | None = None,
    outbox: Outbox | None = None,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[RunbookRun, RunQueue],
        activities=[
            *RunActivities(metrics, secrets, outbox).all(),
            *QueueActivities(client, task_queue).all(),
        ],
        activity_executor=executor,
        max_concurrent_activities=slots,
        # A drain lets running attempts finish (a step is never cut off by a shutdown).
        graceful_shutdown_timeout=DRAIN_TIMEOUT,
    )


@contextlib.contextmanager
def temporal_target(config: ServiceConfig) -> Iterator[str]:
    if config.temporal is not None:
        yield config.temporal
        return
    with DevServer(config.state_dir / "temporal", namespace=config.namespace) as server:
        yield server.target


def _runnable(books: list[Runbook], announce: Callable[[str], None]) -> list[Runbook]:
    """The runbooks `runbook check` passes. One it fails would be routed to and then refused
    at its run's start: its alerts would start runs that never run. Left out, its alerts stay
    unrouted, kept with the reason, and can be sent again once it is fixed."""
    kept = []
    for book in books:
        try:
            kept.append(checked(book))
        except InvalidRunbook as exc:
            first = exc.problems[0]
            announce(f"skipped {book.path}: {len(exc.problems)} error(s), the first: {first}")
    return kept


async def serve(config: ServiceConfig, target: str, announce: Callable[[str], None]) -> None:
    books, skipped = load_runbooks(list(config.runbooks))
    for s in skipped:
        announce(f"skipped {s.path}: {s.reason}")
    books = _runnable(books, announce)
    token = config.token or secrets.token_urlsafe(24)
    client = await connect(target, config.namespace)
    config.runs_dir.mkdir(parents=True, exist_ok=True)
    private_state(config.state_dir)  # alerts as received, idempotency keys, users
    sources = dict(config.sources or {})
    metrics = Metrics()
    intake = Intake(
        client,
        Router(books),
        dict(config.given or {}),
        config.runs_dir,
        config.state_dir,
        token_digest(token),
        metrics,
        config.heartbeat_timeout,
        config.task_queue,
        sources,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    port = sock.getsockname()[1]
    app = create_app(intake)
    app.router.routes.extend(console_routes(_console(config, client, intake, app.state.unrouted)))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    # uvicorn catches SIGINT and SIGTERM while it serves, ends `serve`, and raises the signal
    # again once it restored the handlers it found: these, which do nothing, so that the
    # second raise does not kill the process before the worker drains.
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: None)
    outbox = Outbox(config.state_dir / NOTIFY_OUTBOX, config.notify) if config.notify else None
    deliverer = Deliverer(outbox).start() if outbox else None
    with ThreadPoolExecutor(max_workers=config.slots, thread_name_prefix="run") as executor:
        runner = worker(
            client, config.slots, executor, metrics, config.task_queue, config.secrets, outbox
        )
        async with runner:
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started:
                await asyncio.sleep(0.01)  # uvicorn sets `started` once it listens
            announce(f"intake: http://{config.host}:{port}/api/alerts")
            for name in sources:
                announce(f"source {name}: http://{config.host}:{port}/api/alerts/{name}")
            announce(f"token: {token}" if config.token is None else "token: as given")
            announce(
                f"temporal: {target} (namespace {config.namespace}, queue {config.task_queue})"
            )
            announce(f"console: http://{config.host}:{port}/console/")
            announce(f"runs: {config.runs_dir}")
            announce("ready")
            await serving  # until SIGINT or SIGTERM
            announce("stopping: no new alerts; running activities finish")
    if deliverer is not None and outbox is not None:
        deliverer.stop()  # what is not delivered stays in the outbox for the next start
        outbox.close()
    announce("stopped")


def _console(
    config: ServiceConfig, client: Client, intake: Intake, unrouted: object
) -> ConsoleConfig:
    """The console and the decisions API: users from the state folder, roles from the file."""

    async def send(workflow_id: str, v: Verdict) -> None:
        decision = Decision(v.step, v.decision, v.by, v.role, v.comment, v.auth, v.answer)
        await client.get_workflow_handle(workflow_id).signal(RunbookRun.decide, decision)

    async def route_again(kept: Mapping[str, object]) -> dict[str, object]:
        return await route_kept(intake, unrouted, kept)

    async def act(workflow_id: str, a: Action) -> None:
        who = Actor(a.by, a.role, a.auth)
        handle = client.get_workflow_handle(workflow_id)
        try:
            if a.kind == "cancel":
                await handle.signal(RunbookRun.abort, who)
                return
            if not await handle.query(RunbookRun.waits_for_person):
                # The journal says interrupted, but the run is going on by itself (a lost
                # worker with nothing cut off) or already resumed: the workflow would drop it.
                raise ValueError("the run is not waiting for a person (it went on by itself)")
            await handle.signal(RunbookRun.resume, Resume(who, a.kind == "skip", a.comment))
        except RPCError as exc:
            raise LookupError(workflow_id) from exc

    books = {b.metadata.id: tuple(b.metadata.roles) for b in intake.router.runbooks}
    return ConsoleConfig(config.runs_dir, config.state_dir, UserStore(config.state_dir),
                         config.roles or RoleMap(), send, route_again, config.docs_url,
                         act=act,
                         roles_of=books.get)  # fmt: skip
