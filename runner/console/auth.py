"""Sign-in for the console: sessions, CSRF tokens, and a rate limit on failed logins.

A session is a random cookie (kept server-side as its SHA-256 by the user store): HttpOnly,
SameSite=Strict, and Secure when the console is reached over https (directly or through a proxy
that says so). Every form carries the session's CSRF token and every POST is checked against it
(the sign-in form, before a session exists, by a double-submit cookie). Five failed sign-ins for
one user from one address in a minute make the next ones wait (429), whatever the password.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import defaultdict, deque

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "rb_session"
LOGIN_COOKIE = "rb_login"  # the sign-in form's CSRF token (double submit)
MAX_FAILURES = 5
WINDOW = 60.0  # seconds


def secure(request: Request) -> bool:
    return (
        request.url.scheme == "https"
        or request.headers.get("x-forwarded-proto", "").lower() == "https"
    )


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="strict", secure=secure(request),
        path="/",
    )  # fmt: skip


def same(given: str | None, expected: str | None) -> bool:
    return bool(given and expected) and hmac.compare_digest(str(given), str(expected))


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


class LoginLimiter:
    """Failed sign-ins per (user, address) in the last minute."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = WINDOW) -> None:
        self.limit, self.window = limit, window
        self._failures: defaultdict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        seen = self._failures[key]
        while seen and seen[0] < now - self.window:
            seen.popleft()
        return seen

    def blocked(self, user: str, address: str) -> float | None:
        """Seconds until the next try is allowed, or None."""
        now = time.monotonic()
        with self._lock:
            seen = self._recent((user, address), now)
            if len(seen) < self.limit:
                if not seen:  # names tried once and never again do not pile up
                    self._failures.pop((user, address), None)
                return None
            return max(1.0, seen[0] + self.window - now)

    def failed(self, user: str, address: str) -> None:
        with self._lock:
            self._recent((user, address), time.monotonic()).append(time.monotonic())

    def succeeded(self, user: str, address: str) -> None:
        with self._lock:
            self._failures.pop((user, address), None)
