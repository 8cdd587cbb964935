"""`notify.yaml`: where a runbook's `notify:` names send, and where the console is.

    console_url: https://soc.example.org        # deep links: {console_url}/runs/{run_id}
    targets:
      soc-chat: {url: https://hooks.example/T000/B000, kind: slack}
      siem:     {url: https://siem.example/hook, kind: json, secret_env: NOTIFY_SIEM_SECRET}

A `json` target's bodies are signed (HMAC-SHA256, the intake's own scheme) with the secret in
the named environment variable; the secret itself is never in the file under version control.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from runner.errors import UsageError

KINDS = ("slack", "json")


@dataclass(frozen=True, slots=True)
class Target:
    """One webhook receiver."""

    name: str
    url: str
    kind: str  # slack | json
    secret: bytes | None = field(default=None, repr=False)  # signs a json target's bodies


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    console_url: str
    targets: Mapping[str, Target]


def load_notify(path: Path, environ: Mapping[str, str] | None = None) -> NotifyConfig:
    """The file read and checked; UsageError naming the file, the entry and the fix."""
    env = os.environ if environ is None else environ
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read the notification targets: {exc}", path=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("targets", {}), dict):
        raise UsageError("expected `console_url:` and a `targets:` mapping", path=str(path))
    console = str(data.get("console_url") or "http://127.0.0.1:8080").rstrip("/")
    targets: dict[str, Target] = {}
    for name, spec in (data.get("targets") or {}).items():
        where = f"targets.{name}"
        if not isinstance(spec, dict) or not str(spec.get("url", "")).startswith(
            ("http://", "https://")
        ):
            raise UsageError(f"{where}: expected `url: https://...`", path=str(path))
        kind = str(spec.get("kind", "json"))
        if kind not in KINDS:
            raise UsageError(
                f"{where}: kind {kind!r}; use one of {', '.join(KINDS)}", path=str(path)
            )
        secret = None
        if spec.get("secret_env"):
            value = env.get(str(spec["secret_env"]))
            if not value:
                raise UsageError(
                    f"{where}: the environment variable {spec['secret_env']} is not set; "
                    "export the shared secret before `runbook serve`",
                    path=str(path),
                )
            secret = value.encode()
        elif kind == "json":
            raise UsageError(
                f"{where}: a json target's bodies are signed; add `secret_env: VARIABLE`",
                path=str(path),
            )
        targets[str(name)] = Target(str(name), str(spec["url"]), kind, secret)
    return NotifyConfig(console, targets)
