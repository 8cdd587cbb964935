"""The service's users, in SQLite under the service's state folder (`users.sqlite`).

Passwords are kept as argon2id hashes (argon2-cffi's defaults); API tokens and login sessions
are random and high-entropy, so each is kept as its SHA-256 only: the database alone lets
nobody sign in. A token is shown once, when it is made. A disabled user can neither sign in
nor use a token, and their sessions end. This module is the only writer of the database.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from runner.errors import UsageError
from runner.identity.model import AuthMethod, Identity, User
from runner.identity.roles import NAME, RoleMap
from runner.private_files import private_state

DB_NAME = "users.sqlite"
TOKEN_PREFIX = "rbt_"
#: A login session lasts this long (seconds) after sign-in.
SESSION_TTL = 12 * 3600.0
MIN_PASSWORD = 12

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, password TEXT NOT NULL, "
    "groups TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tokens (sha256 TEXT PRIMARY KEY, user TEXT NOT NULL, "
    "label TEXT, created REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sessions (sha256 TEXT PRIMARY KEY, user TEXT NOT NULL, "
    "csrf TEXT NOT NULL, expires REAL NOT NULL)",
)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class LoginSession:
    """A signed-in browser: who, and the CSRF token its forms carry."""

    identity: Identity
    csrf: str


class UserStore:
    def __init__(self, state_dir: Path) -> None:
        private_state(state_dir)
        path = state_dir / DB_NAME
        if not path.exists():
            # Private from its first byte: it holds password hashes.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._lock = threading.Lock()
        self._hasher = PasswordHasher()
        # Verified against when the user is unknown, so a wrong name takes as long as a wrong
        # password (no user enumeration by timing).
        self._decoy = self._hasher.hash(secrets.token_urlsafe(16))

    # --- administration (`runbook users`) -----------------------------------------------------

    def add(self, name: str, password: str, groups: Iterable[str] = ()) -> None:
        if not NAME.fullmatch(name):
            raise UsageError(
                f"{name!r} is not a user name: lower case letters, digits, `.`, `_`, `-`, `@`"
            )
        bad = [g for g in groups if not NAME.fullmatch(g)]
        if bad:
            raise UsageError(f"{bad[0]!r} is not a group name (as for user names)")
        if len(password) < MIN_PASSWORD:
            raise UsageError(f"a password has at least {MIN_PASSWORD} characters")
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO users VALUES (?, ?, ?, 0, ?)",
                    (name, self._hasher.hash(password), json.dumps(sorted(set(groups))),
                     time.time()),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise UsageError(f"user {name} exists; `runbook users list` shows them") from None

    def users(self) -> list[User]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, groups, disabled, created, "
                "(SELECT count(*) FROM tokens t WHERE t.user = u.name) FROM users u ORDER BY name"
            ).fetchall()
        return [
            User(n, tuple(json.loads(g)), bool(d),
                 time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(c)), int(t))
            for n, g, d, c, t in rows
        ]  # fmt: skip

    def disable(self, name: str) -> None:
        with self._lock:
            found = self._db.execute("UPDATE users SET disabled = 1 WHERE name = ?", (name,))
            self._db.execute("DELETE FROM sessions WHERE user = ?", (name,))
        if found.rowcount == 0:
            raise UsageError(f"no user {name}; `runbook users list` shows them")

    def new_token(self, name: str, label: str | None = None) -> str:
        """A new API token for ``name``: returned once, kept only as its SHA-256."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._lock:
            if self._row(name) is None:
                raise UsageError(f"no user {name}; `runbook users list` shows them")
            self._db.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?)", (_sha256(token), name, label, time.time())
            )
        return token

    def revoke_tokens(self, name: str) -> int:
        with self._lock:
            return self._db.execute("DELETE FROM tokens WHERE user = ?", (name,)).rowcount

    # --- authentication -----------------------------------------------------------------------

    def _row(self, name: str) -> tuple[str, str, int] | None:
        row = self._db.execute(
            "SELECT password, groups, disabled FROM users WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), int(row[2]))

    def _identity(self, name: str, groups: str, roles: RoleMap, auth: AuthMethod) -> Identity:
        return Identity(name, roles.roles_of(name, json.loads(groups)), auth)

    def check_password(self, name: str, password: str, roles: RoleMap) -> Identity | None:
        """The user, when the password is theirs and they are not disabled; None otherwise."""
        with self._lock:
            row = self._row(name)
        stored = row[0] if row else self._decoy
        try:
            self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or row[2]:
            return None
        if self._hasher.check_needs_rehash(stored):
            with self._lock:
                self._db.execute(
                    "UPDATE users SET password = ? WHERE name = ?",
                    (self._hasher.hash(password), name),
                )
        return self._identity(name, row[1], roles, "password")

    def check_token(self, token: str, roles: RoleMap) -> Identity | None:
        with self._lock:
            found = self._db.execute(
                "SELECT u.name, u.groups, u.disabled FROM tokens t JOIN users u ON u.name = t.user "
                "WHERE t.sha256 = ?",
                (_sha256(token),),
            ).fetchone()
        if found is None or found[2]:
            return None
        return self._identity(found[0], found[1], roles, "token")

    # --- login sessions -----------------------------------------------------------------------

    def open_session(self, identity: Identity) -> tuple[str, str]:
        """A new session for a user who just signed in: (its cookie value, its CSRF token)."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE expires < ?", (time.time(),))
            self._db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?)",
                (_sha256(sid), identity.user, csrf, time.time() + SESSION_TTL),
            )
        return sid, csrf

    def session(self, sid: str, roles: RoleMap) -> LoginSession | None:
        """The session a cookie names, while it lasts and its user is enabled. The roles are
        read now, so a change to the roles file applies at the next request."""
        with self._lock:
            found = self._db.execute(
                "SELECT s.user, s.csrf, u.groups, u.disabled FROM sessions s "
                "JOIN users u ON u.name = s.user WHERE s.sha256 = ? AND s.expires >= ?",
                (_sha256(sid), time.time()),
            ).fetchone()
        if found is None or found[3]:
            return None
        return LoginSession(self._identity(found[0], found[2], roles, "password"), found[1])

    def close_session(self, sid: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE sha256 = ?", (_sha256(sid),))
