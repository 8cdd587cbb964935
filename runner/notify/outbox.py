"""The outbox: notifications kept in SQLite until their receiver took them.

Enqueued before anything is sent (one row per event and target, so an activity that runs twice
enqueues once), then delivered by a background thread: a receiver that fails or cannot be
reached is tried again after ``base * 2**attempts`` seconds (capped), up to ``max_attempts``,
and a restarted service carries on with what the file holds. At-least-once: a receiver that
took a body but did not answer gets it again, with the same ``event_id`` to deduplicate on.

A json target's body is signed as the intake's own sources sign theirs (runner.service.sources):
``X-Runbook-Timestamp: <unix seconds>`` and ``X-Runbook-Signature: sha256=<hex>``, the
HMAC-SHA256 of ``<timestamp>.<body>``.
"""

from __future__ import annotations

import hmac
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runner.notify.config import NotifyConfig, Target
from runner.notify.message import Notification, json_body, slack_body

SCHEMA = """
create table if not exists outbox (
    id integer primary key,
    event_id text not null,
    target text not null,
    kind text not null,
    body blob not null,
    attempts integer not null default 0,
    next_at real not null,
    delivered_at real,
    given_up integer not null default 0,
    last_error text,
    unique (event_id, target)
)
"""


def signature(secret: bytes, stamp: str, body: bytes) -> str:
    """`sha256=<hex>` over `<timestamp>.<body>`: the scheme the intake checks on its sources."""
    return "sha256=" + hmac.new(secret, stamp.encode() + b"." + body, "sha256").hexdigest()


@dataclass(frozen=True, slots=True)
class Backoff:
    base: float = 2.0  # seconds before the first retry; tests set it near 0
    cap: float = 600.0
    max_attempts: int = 10

    def delay(self, attempts: int) -> float:
        return float(min(self.cap, self.base * 2 ** max(0, attempts - 1)))


class Outbox:
    """The SQLite file under the service's state folder; safe across threads."""

    def __init__(self, path: Path, config: NotifyConfig, backoff: Backoff | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.config = config
        self.backoff = backoff or Backoff()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute(SCHEMA)
        self.wake = threading.Event()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def enqueue(self, note: Notification, targets: tuple[str, ...]) -> list[str]:
        """One row per known target the runbook's `notify:` names; the unknown ones are
        returned (the caller logs them: a typo in `notify:` must not pass silently)."""
        unknown = [t for t in targets if t not in self.config.targets]
        with self._lock:
            for name in targets:
                target = self.config.targets.get(name)
                if target is None:
                    continue
                body = slack_body(note) if target.kind == "slack" else json_body(note)
                self._db.execute(
                    "insert or ignore into outbox (event_id, target, kind, body, next_at) "
                    "values (?, ?, ?, ?, ?)",
                    (note.event_id, name, note.kind, body, time.time()),
                )
        self.wake.set()
        return unknown

    def pending(self) -> list[Mapping[str, object]]:
        with self._lock:
            cur = self._db.execute(
                "select id, event_id, target, attempts, next_at, delivered_at, given_up, "
                "last_error from outbox order by id"
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def deliver_due(self, timeout: float = 10.0) -> int:
        """Send every row that is due; the number delivered."""
        with self._lock:
            rows = self._db.execute(
                "select id, target, body, attempts from outbox where delivered_at is null "
                "and given_up = 0 and next_at <= ? order by id",
                (time.time(),),
            ).fetchall()
        sent = 0
        for row_id, name, body, attempts in rows:
            target = self.config.targets.get(name)
            error = _post(target, body, timeout) if target else f"no target {name!r} any more"
            with self._lock:
                if error is None:
                    self._db.execute(
                        "update outbox set delivered_at = ?, attempts = ? where id = ?",
                        (time.time(), attempts + 1, row_id),
                    )
                    sent += 1
                    continue
                tries = attempts + 1
                self._db.execute(
                    "update outbox set attempts = ?, next_at = ?, last_error = ?, given_up = ? "
                    "where id = ?",
                    (
                        tries,
                        time.time() + self.backoff.delay(tries),
                        error,
                        int(tries >= self.backoff.max_attempts),
                        row_id,
                    ),
                )
        return sent

    def next_due(self) -> float | None:
        with self._lock:
            row = self._db.execute(
                "select min(next_at) from outbox where delivered_at is null and given_up = 0"
            ).fetchone()
        return float(row[0]) if row and row[0] is not None else None


def _post(target: Target, body: bytes, timeout: float) -> str | None:
    """None when the receiver answered 2xx; else what went wrong (kept for the operator)."""
    headers = {"Content-Type": "application/json", "User-Agent": "runbook-notify"}
    if target.secret is not None:
        stamp = str(int(time.time()))
        headers["X-Runbook-Timestamp"] = stamp
        headers["X-Runbook-Signature"] = signature(target.secret, stamp, body)
    request = urllib.request.Request(target.url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return None if 200 <= answer.status < 300 else f"HTTP {answer.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"


class Deliverer:
    """The background thread that empties the outbox; stopped with the service."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="notify", daemon=True)

    def start(self) -> Deliverer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.outbox.wake.set()
        self._thread.join(timeout=15)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.outbox.wake.clear()  # before delivering: a row enqueued meanwhile wakes us
            self.outbox.deliver_due()
            due = self.outbox.next_due()
            wait = 60.0 if due is None else max(0.0, due - time.time())
            self.outbox.wake.wait(min(wait, 60.0))
