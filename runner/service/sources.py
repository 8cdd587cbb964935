"""Who may send alerts: per-source credentials, read from `--sources FILE`.

```yaml
sources:
  alertmanager:                # POST /api/alerts/alertmanager
    token_sha256: 9f86d08...   # a bearer token, kept only as its SHA-256 (hex)
    format: alertmanager       # optional: the payload's format, when it is not detected
  splunk:
    hmac_secret_env: SPLUNK_HOOK_SECRET   # a shared secret, from the service's environment
```

A token source sends ``Authorization: Bearer TOKEN``. An HMAC source signs each request:
``X-Runbook-Timestamp: <unix seconds>`` and ``X-Runbook-Signature: sha256=<hex>``, the
HMAC-SHA256 of ``<timestamp>.<body>`` with the shared secret. A signature older or newer than
the replay window (5 minutes) is refused, and so is one already seen inside it: a captured
request cannot be replayed. Secrets are never written anywhere by the service.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from runner.errors import UsageError

REPLAY_WINDOW = 300.0  # seconds
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Source:
    name: str
    token_sha256: bytes | None = None
    hmac_secret: bytes | None = None
    format: str | None = None


def load_sources(path: Path) -> dict[str, Source]:
    """The sources a file declares; UsageError naming the file and the entry otherwise."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the sources file: {exc.strerror}", path=str(path)) from None
    except yaml.YAMLError as exc:
        raise UsageError(f"the sources file is not valid YAML: {exc}", path=str(path)) from None
    entries = data.get("sources") if isinstance(data, Mapping) else None
    if not isinstance(entries, Mapping) or not entries:
        raise UsageError("the sources file needs a `sources:` mapping of names", path=str(path))
    found: dict[str, Source] = {}
    for name, spec in entries.items():
        where = f"source {name!r}"
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise UsageError(
                f"{where}: a name is lowercase letters, digits, - and _", path=str(path)
            )
        if not isinstance(spec, Mapping):
            raise UsageError(f"{where}: expected token_sha256 or hmac_secret_env", path=str(path))
        digest, env = spec.get("token_sha256"), spec.get("hmac_secret_env")
        if (digest is None) == (env is None):
            raise UsageError(f"{where}: give exactly one of token_sha256 and hmac_secret_env",
                             path=str(path))  # fmt: skip
        token = None
        if digest is not None:
            if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
                raise UsageError(f"{where}: token_sha256 is 64 lowercase hex digits "
                                 "(sha256sum of the token)", path=str(path))  # fmt: skip
            token = bytes.fromhex(digest)
        secret = None
        if env is not None:
            value = os.environ.get(str(env))
            if not value:
                raise UsageError(f"{where}: ${env} is not set; the shared secret comes from "
                                 "the service's environment", path=str(path))  # fmt: skip
            secret = value.encode()
        fmt = spec.get("format")
        found[name] = Source(name, token, secret, str(fmt) if fmt else None)
    return found


class Verifier:
    """Checks a request against a source's credential; remembers signatures for the window."""

    def __init__(self, window: float = REPLAY_WINDOW) -> None:
        self.window = window
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, source: Source, headers: Mapping[str, str], body: bytes) -> str | None:
        """None when the request is the source's; else why not, for the 401."""
        if source.token_sha256 is not None:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            given = hashlib.sha256(token.strip().encode()).digest()
            if scheme.lower() == "bearer" and hmac.compare_digest(given, source.token_sha256):
                return None
            return f"source {source.name} sends its bearer token (Authorization: Bearer TOKEN)"
        assert source.hmac_secret is not None
        stamp = headers.get("x-runbook-timestamp", "")
        signature = headers.get("x-runbook-signature", "")
        if not stamp.isdigit() or not signature.startswith("sha256="):
            return (f"source {source.name} signs its requests: X-Runbook-Timestamp and "
                    "X-Runbook-Signature: sha256=HMAC(secret, timestamp.body)")  # fmt: skip
        now = time.time()
        if abs(now - int(stamp)) > self.window:
            return f"the signature's timestamp is outside the {self.window:.0f} s replay window"
        expected = hmac.new(source.hmac_secret, stamp.encode() + b"." + body, "sha256")
        if not hmac.compare_digest(signature[len("sha256=") :], expected.hexdigest()):
            return "the signature does not match the body"
        with self._lock:
            self._seen = {s: t for s, t in self._seen.items() if now - t <= self.window}
            if signature in self._seen:
                return "this signed request was already received (a replay)"
            self._seen[signature] = now
        return None
