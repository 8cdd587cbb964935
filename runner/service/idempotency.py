"""`Idempotency-Key`: a source that retries a delivery (a timeout, a lost answer) with the same
key gets the first answer back, and nothing is routed or started twice. Kept in SQLite beside
the service's state, so a restart between the two deliveries changes nothing; keys are kept
for a day.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

KEEP_FOR = 24 * 3600.0
MAX_KEY = 200


class Conflict(Exception):
    """The key was used before with another body."""


class IdempotencyStore:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (scope TEXT, key TEXT, body TEXT, "
            "answer TEXT, at REAL, PRIMARY KEY (scope, key))"
        )
        self._lock = threading.Lock()

    @staticmethod
    def digest(body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()

    def get(self, scope: str, key: str, body: bytes) -> dict[str, Any] | None:
        """The answer given to this key, or None; Conflict when the body differs."""
        with self._lock:
            self._db.execute("DELETE FROM answers WHERE at < ?", (time.time() - KEEP_FOR,))
            row = self._db.execute(
                "SELECT body, answer FROM answers WHERE scope = ? AND key = ?", (scope, key)
            ).fetchone()
        if row is None:
            return None
        if row[0] != self.digest(body):
            raise Conflict
        answer: dict[str, Any] = json.loads(row[1])
        return answer

    def put(self, scope: str, key: str, body: bytes, answer: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?)",
                (scope, key, self.digest(body), json.dumps(answer), time.time()),
            )
