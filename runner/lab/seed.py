"""The seeded scenario: loads ``scenario.json`` and writes it into a fresh store.

Timestamps in the scenario are relative (``detected_minutes_ago: 35``) and become absolute at
reset time (``detected_at``), so "failures in the last hour" stays true of a freshly reset lab
whatever the date. The threat-intel feed ships beside it as ``intel_feed.json``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from runner.lab.store import Doc, Store, now_iso

_SUFFIX = "_minutes_ago"


@cache
def _load(name: str) -> Doc:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    data: Doc = json.loads(text)
    return data


def intel_feed() -> list[Doc]:
    """The shipped indicators: type, value, verdict, score, tags, first_seen."""
    return list(_load("intel_feed.json")["indicators"])


def absolutise(value: Any, now: datetime) -> Any:
    """Turn every `<name>_minutes_ago: N` into `<name>_at: <ISO time N minutes before now>`."""
    if isinstance(value, list):
        return [absolutise(v, now) for v in value]
    if not isinstance(value, dict):
        return value
    out: Doc = {}
    for key, item in value.items():
        if key.endswith(_SUFFIX) and isinstance(item, int | float):
            stem = key[: -len(_SUFFIX)]
            at = now - timedelta(minutes=float(item))
            out[stem if stem == "at" else f"{stem}_at"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            out[key] = absolutise(item, now)
    return out


def snapshot_digest(snapshot: Doc) -> str:
    """The checksum the backup catalogue recorded when the snapshot was taken."""
    text = f"{snapshot['id']}:{snapshot['system']}:{snapshot['size_bytes']}"
    return hashlib.sha256(text.encode()).hexdigest()


def _signin_series(spec: Doc, first_id: int) -> list[Doc]:
    rows = []
    for n in range(int(spec["count"])):
        rows.append(
            {
                "id": f"si-{first_id + n:04d}",
                "user_id": spec["user_id"],
                "ip": spec["ip"],
                "country": spec["country"],
                "app": spec["app"],
                "result": "failure",
                "reason": spec["reason"],
                "mfa": "",
                "user_agent": spec["user_agent"],
                "at_minutes_ago": spec["newest_minutes_ago"]
                + (int(spec["count"]) - 1 - n) * float(spec["every_minutes"]),
            }
        )
    return rows


def seed(store: Store) -> None:
    """Wipe the store and write the scenario, in one transaction."""
    scenario = _load("scenario.json")
    now = datetime.now(UTC)
    kinds: dict[str, list[Doc]] = {k: list(v) for k, v in scenario.items() if not k.startswith("_")}
    kinds["signin"] = kinds["signin"] + _signin_series(
        scenario["_signin_series"], len(kinds["signin"]) + 1
    )
    kinds["signin"].sort(key=lambda s: -float(s["at_minutes_ago"]))
    with store.transaction():
        store.wipe()
        for kind, docs in kinds.items():
            for doc in docs:
                item = absolutise(doc, now)
                if kind == "snapshot":
                    item["sha256"] = snapshot_digest(item)
                store.put(kind, item)
        store.set_meta("seeded_at", now_iso())
