"""Sample alerts kept beside the runbooks, each with the route it must take.

    runbooks/alerts/<runbook-id>/<name>.json          the payload, as the source sends it
    runbooks/alerts/<runbook-id>/<name>.expect.yaml   optional: what routing must make of it

The expectation file (all keys optional):

    format: generic                  # the payload's format, when it cannot be detected
    given: {base_url: https://...}   # what the intake gives every triggered run
    alerts:                          # one entry per alert of the payload, in order
      - runbook: <runbook-id>        # or null: the alert must stay unrouted
        inputs: {host_id: wks-0042}  # inputs the run must start with (others unchecked)

Without one, every alert of the payload must route to the runbook the folder is named for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import yaml

from runner.routing.detect import NAMES, read_alerts
from runner.routing.envelope import Alert
from runner.routing.limits import MAX_BYTES, AlertError

FOLDER = "alerts"
_NO_INPUTS: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Expected:
    """The route one alert of a sample must take."""

    runbook: str | None  # None: it must stay unrouted
    inputs: Mapping[str, object] = field(default_factory=lambda: _NO_INPUTS)


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample payload and what is expected of it."""

    path: Path
    runbook_id: str  # the folder's name
    format: str | None
    given: Mapping[str, object]
    expected: tuple[Expected, ...] | None  # None: every alert routes to runbook_id


def sample_folder(runbook_path: Path, runbook_id: str) -> Path:
    """Where a runbook's samples are: `alerts/<id>/` beside the runbook file."""
    return runbook_path.parent / FOLDER / runbook_id


def sample_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.json") if p.is_file()) if folder.is_dir() else []


def load_sample(path: Path) -> Sample:
    """The sample at `path` with its expectations; AlertError when they are unusable."""
    expect = path.with_name(path.name.removesuffix(".json") + ".expect.yaml")
    data: object = {}
    if expect.is_file():
        try:
            data = yaml.safe_load(expect.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise AlertError(f"not valid YAML: {exc}", path=str(expect)) from None
    if not isinstance(data, dict):
        raise AlertError("expected a mapping (format:, given:, alerts:)", path=str(expect))
    unknown = sorted(set(data) - {"format", "given", "alerts"})
    if unknown:
        raise AlertError(f"unknown key {unknown[0]!r}; use format, given, alerts", path=str(expect))
    fmt = data.get("format")
    if fmt is not None and fmt not in NAMES:
        raise AlertError(f"format {fmt!r} is not one of {', '.join(NAMES)}", path=str(expect))
    given = data.get("given") or {}
    if not isinstance(given, dict):
        raise AlertError("`given:` must map input names to values", path=str(expect))
    return Sample(
        path, path.parent.name, fmt, MappingProxyType(given), _expected(data, str(expect))
    )


def _expected(data: Mapping[str, object], where: str) -> tuple[Expected, ...] | None:
    entries = data.get("alerts")
    if entries is None:
        return None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise AlertError("`alerts:` must be a list of {runbook:, inputs:}", path=where)
    out = []
    for entry in entries:
        runbook, inputs = entry.get("runbook"), entry.get("inputs") or {}
        if (runbook is not None and not isinstance(runbook, str)) or not isinstance(inputs, dict):
            raise AlertError("each alert is {runbook: ID or null, inputs: {...}}", path=where)
        out.append(Expected(runbook, MappingProxyType(inputs)))
    return tuple(out)


def sample_alerts(sample: Sample) -> list[Alert]:
    with sample.path.open("rb") as fh:
        data = fh.read(MAX_BYTES + 1)
    return read_alerts(data, str(sample.path), sample.format)
