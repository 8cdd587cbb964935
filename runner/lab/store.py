"""The lab's state: a small document store, a fault table and an audit log in one SQLite file.

Each simulated object (a host, a user, a ticket...) is a JSON document keyed by ``(kind, id)``.
A document store keeps each API family a few lines long while the file stays inspectable with
the ``sqlite3`` shell. Every write commits at once, so state survives a restart of the server.

The server runs every handler on one event-loop thread, but :class:`LabServer` creates the app
on another thread, hence ``check_same_thread=False`` plus a lock for the odd concurrent caller.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Doc = dict[str, Any]

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    method TEXT NOT NULL,
    pattern TEXT NOT NULL,
    status INTEGER NOT NULL,
    remaining INTEGER NOT NULL,
    delay REAL NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    query TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    fault_id INTEGER
);
"""


def now_iso() -> str:
    """The current UTC time as `2024-06-01T12:00:00Z`: one format for every timestamp."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    """The lab database. One instance per app; close it when the server stops."""

    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.path = db_path
        self._lock = threading.RLock()
        # isolation_level=None: autocommit; `transaction()` groups writes that belong together.
        self._db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- meta -----------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # --- documents ------------------------------------------------------------------------

    def get(self, kind: str, id_: str) -> Doc | None:
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM objects WHERE kind = ? AND id = ?", (kind, id_)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def all(self, kind: str) -> list[Doc]:
        """Every document of a kind, in insertion order (an upsert keeps the original place)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM objects WHERE kind = ? ORDER BY rowid", (kind,)
            ).fetchall()
        return [dict(json.loads(r[0])) for r in rows]

    def put(self, kind: str, doc: Doc) -> Doc:
        with self._lock:
            self._db.execute(
                "INSERT INTO objects (kind, id, data) VALUES (?, ?, ?) "
                "ON CONFLICT(kind, id) DO UPDATE SET data = excluded.data",
                (kind, str(doc["id"]), json.dumps(doc, sort_keys=True)),
            )
        return doc

    def delete(self, kind: str, id_: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM objects WHERE kind = ? AND id = ?", (kind, id_))
        return cur.rowcount > 0

    def next_number(self, name: str, start: int) -> int:
        """A per-name sequence (ticket numbers, rule ids) that survives restarts."""
        with self._lock:
            row = self._db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
                (name, start),
            ).fetchone()
        return int(row[0])

    # --- faults ---------------------------------------------------------------------------

    def add_fault(self, method: str, pattern: str, status: int, times: int, delay: float) -> Doc:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO faults (method, pattern, status, remaining, delay, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (method, pattern, status, times, delay, now_iso()),
            )
            fault_id = cur.lastrowid
        return {
            "id": fault_id,
            "method": method,
            "route": pattern,
            "status": status,
            "remaining": times,
            "delay": delay,
        }

    def faults(self) -> list[Doc]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, method, pattern, status, remaining, delay, created_at "
                "FROM faults ORDER BY id"
            ).fetchall()
        keys = ("id", "method", "route", "status", "remaining", "delay", "created_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def consume_fault(self, fault_id: int) -> None:
        """Count one firing; a fault with `remaining` -1 fires until cleared."""
        with self._lock:
            self._db.execute(
                "UPDATE faults SET remaining = remaining - 1 WHERE id = ? AND remaining > 0",
                (fault_id,),
            )
            self._db.execute("DELETE FROM faults WHERE remaining = 0")

    def clear_faults(self) -> int:
        with self._lock:
            return self._db.execute("DELETE FROM faults").rowcount

    # --- audit ----------------------------------------------------------------------------

    def record_request(
        self, method: str, path: str, query: str, status: int, body: str, fault_id: int | None
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO requests (at, method, path, query, status, body, fault_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now_iso(), method, path, query, status, body, fault_id),
            )

    def requests(self, after_id: int, limit: int) -> list[Doc]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, at, method, path, query, status, body, fault_id FROM requests "
                "WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        keys = ("id", "at", "method", "path", "query", "status", "body", "fault_id")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def request_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM requests").fetchone()[0])

    # --- reset ----------------------------------------------------------------------------

    def wipe(self) -> None:
        """Forget every document, counter, fault and recorded request (before re-seeding)."""
        with self._lock:
            for table in ("objects", "counters", "faults", "requests", "meta"):
                self._db.execute(f"DELETE FROM {table}")
            self._db.execute("DELETE FROM sqlite_sequence")
