"""`runbook check` on routing: inputs an alert can never fill, paths no sample has, and sample
alerts that no longer route as their expectations say (RB083-RB087)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNBOOK = [str(REPO / ".venv" / "bin" / "runbook")]
if not Path(RUNBOOK[0]).exists():
    RUNBOOK = [sys.executable, "-m", "runner"]

BOOK = """\
---
name: {name}
service: edr
objective: Contain it
time_limit: 1h
trigger:
  match: {match}
  priority: {priority}
inputs:
  host_id:
    type: string
    required: true
    from: {path}
  owner:
    type: string
    required: true
{owner_from}---
# {name}

## Steps

### 1. Look
Look at it.

## Success criteria

- Seen
"""


def book(
    folder: Path,
    name: str,
    match: str,
    *,
    priority: int = 0,
    path: str = "labels.host",
    owner: bool = True,
) -> None:
    owner_from = "    from: labels.owner\n" if owner else ""
    text = BOOK.format(name=name, match=match, priority=priority, path=path, owner_from=owner_from)
    (folder / f"{name}.md").write_text(text)


def sample(folder: Path, runbook: str, name: str, body: object, expect: str | None = None) -> Path:
    where = folder / "alerts" / runbook
    where.mkdir(parents=True, exist_ok=True)
    (where / f"{name}.json").write_text(json.dumps(body))
    if expect is not None:
        (where / f"{name}.expect.yaml").write_text(textwrap.dedent(expect))
    return where / f"{name}.json"


def check(folder: Path, *paths: str) -> tuple[int, list[dict[str, object]]]:
    proc = subprocess.run(
        [*RUNBOOK, "check", "--format", "json", *(paths or [str(folder)])],
        capture_output=True, text=True, cwd=folder, timeout=60,
    )  # fmt: skip
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout)["problems"]


def codes(problems: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(p["code"], Path(str(p["path"])).name) for p in problems]


ALERT = {"id": "a1", "source": "xdr", "host": "wks-1", "owner": "jdoe", "kind": "malware"}
EXPECT = """\
    format: generic
    alerts:
      - runbook: {runbook}
        inputs: {inputs}
    """


def test_a_required_input_nothing_fills_is_a_warning(tmp_path: Path) -> None:
    book(tmp_path, "endpoint", "{source: xdr}", owner=False)
    status, problems = check(tmp_path)
    [problem] = [p for p in problems if p["code"] == "RB083"]
    assert problem["line"] == 14 and "'owner' is required" in str(problem["message"])
    assert status == 0  # a warning: the runbook still runs by hand


def test_a_mapping_path_no_sample_has(tmp_path: Path) -> None:
    book(tmp_path, "endpoint", "{source: xdr}", path="labels.hostname")
    sample(tmp_path, "endpoint", "one", ALERT, EXPECT.format(runbook="endpoint", inputs="{}"))
    _, problems = check(tmp_path)
    messages = [str(p["message"]) for p in problems if p["code"] == "RB084"]
    assert messages and "alerts/endpoint has labels.hostname" in messages[0]


def test_samples_that_route_as_expected_are_clean(tmp_path: Path) -> None:
    book(tmp_path, "endpoint", "{source: xdr}")
    expect = EXPECT.format(runbook="endpoint", inputs="{host_id: wks-1}")
    sample(tmp_path, "endpoint", "one", ALERT, expect)
    status, problems = check(tmp_path)
    assert codes(problems) == []
    assert status == 0


def test_a_sample_that_routes_elsewhere_or_maps_other_inputs_is_an_error(tmp_path: Path) -> None:
    book(tmp_path, "endpoint", "{source: xdr}")
    book(tmp_path, "malware", "{source: xdr, kind: malware}", priority=5)
    sample(tmp_path, "endpoint", "one", ALERT, EXPECT.format(runbook="endpoint", inputs="{}"))
    wrong_input = EXPECT.format(runbook="malware", inputs="{host_id: wks-2}")
    sample(tmp_path, "malware", "two", ALERT, wrong_input)
    status, problems = check(tmp_path)
    found = {str(p["message"]) for p in problems if p["code"] == "RB085"}
    assert "alert 1 (a1) routes to malware; expected endpoint" in found
    assert "alert 1 (a1): input 'host_id' is 'wks-1'; expected 'wks-2'" in found
    assert status == 1


def test_two_runbooks_matching_a_sample_at_one_priority(tmp_path: Path) -> None:
    book(tmp_path, "endpoint", "{source: xdr}")
    book(tmp_path, "malware", "{source: xdr, kind: malware}")
    sample(tmp_path, "malware", "one", ALERT, EXPECT.format(runbook="malware", inputs="{}"))
    status, problems = check(tmp_path)
    [tie] = [p for p in problems if p["code"] == "RB086"]
    assert "endpoint, malware all match at the same priority" in str(tie["message"])
    assert status == 1


def test_samples_are_checked_even_when_one_runbook_is_named(tmp_path: Path) -> None:
    book(tmp_path, "endpoint", "{source: xdr}")
    book(tmp_path, "malware", "{source: xdr, kind: malware}", priority=5)
    sample(tmp_path, "endpoint", "one", ALERT, EXPECT.format(runbook="endpoint", inputs="{}"))
    # Routed among the whole folder, not only the file named: malware still wins.
    _, problems = check(tmp_path, "endpoint.md")
    assert ("RB085", "one.json") in codes(problems)


def test_unusable_samples_and_stray_folders(tmp_path: Path) -> None:
    book(tmp_path, "endpoint", "{source: xdr}")
    where = tmp_path / "alerts" / "endpoint"
    where.mkdir(parents=True)
    (where / "bad.json").write_bytes(b"{not json")
    (where / "unknown.json").write_text('{"hello": 1}')
    sample(tmp_path, "endpint", "x", ALERT)
    status, problems = check(tmp_path)
    assert ("RB087", "bad.json") in codes(problems)
    assert ("RB087", "unknown.json") in codes(problems)
    assert ("RB087", "endpint") in codes(problems)
    assert status == 1


def test_a_secret_from_an_alert_is_an_error(tmp_path: Path) -> None:
    text = BOOK.format(name="e", match="{source: xdr}", priority=0, path="labels.host",
                       owner_from="")  # fmt: skip
    text = text.replace("  owner:\n", "  token:\n    type: string\n    secret: true\n"
                        "    from: labels.token\n  owner:\n")  # fmt: skip
    (tmp_path / "e.md").write_text(text)
    status, problems = check(tmp_path)
    [secret] = [p for p in problems if p["code"] == "RB082"]
    assert secret["line"] == 17 and "secrets never come from an alert" in str(secret["message"])
    assert status == 1
