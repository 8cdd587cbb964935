"""The lab trap, closed: a lab on another port prints exactly what to export, and pasting it makes
a runbook target that lab; a run that went to the wrong base URL is corrected with a journaled
`resume --set`. A real `runbook lab` process, real kernels, real HTTP on 127.0.0.1."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_helpers import RUNBOOK, cli, write_book

from runner.runs.journal import read_events
from runner.runs.store import find_run

INPUTS = """
base_url:
  type: string
  default: "http://127.0.0.1:9"
api_token:
  type: string
  secret: true
  required: true
"""

STEPS = """
1. Read the alert.

   ```bash
   curl -fsS -H "Authorization: Bearer $API_TOKEN" "$BASE_URL/api/edr/alerts/alrt-1001" |
     jq -r '"alert \\(.id)"'
   ```
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def lab_banner(tmp_path: Path) -> Iterator[list[str]]:
    """The lines a `runbook lab` on a free, non-default port printed, once it serves."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("RUNBOOK_LAB_TOKEN", None)
    port = _free_port()
    lab = subprocess.Popen(
        [RUNBOOK, "lab", "--port", str(port), "--db", str(tmp_path / "lab" / "lab.db")],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert lab.stderr is not None
        lines = [lab.stderr.readline() for _ in range(6)]  # blocks until the banner is out
        assert f"serving http://127.0.0.1:{port}" in lines[0], lines
        yield lines
    finally:
        lab.terminate()
        lab.wait(timeout=30)


def _exports(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if line.strip().startswith("export RUNBOOK_INPUT_")]


def test_pasting_the_lab_banner_targets_that_lab(tmp_path: Path, lab_banner: list[str]) -> None:
    write_book(tmp_path, STEPS, inputs=INPUTS)
    exports = _exports(lab_banner)
    assert [e.split("=", 1)[0] for e in exports] == [
        "export RUNBOOK_INPUT_BASE_URL",
        "export RUNBOOK_INPUT_API_TOKEN",
    ]
    assert not any("token" in e and "$(cat" not in e for e in exports[1:])  # never the token
    # Pasted as printed, from another folder: the runbook reaches the lab on its port.
    other = tmp_path / "other"
    other.mkdir()
    script = "\n".join([*exports, f"{RUNBOOK} run ../book.md --yes --runs-dir ../runs"])
    ran = subprocess.run(
        ["bash", "-c", script], cwd=other, capture_output=True, text=True, timeout=120, check=False
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "alert alrt-1001" in ran.stdout


def test_resume_set_corrects_a_wrong_base_url_and_journals_it(
    tmp_path: Path, lab_banner: list[str]
) -> None:
    write_book(tmp_path, STEPS, inputs=INPUTS)
    exports = dict(e.removeprefix("export ").split("=", 1) for e in _exports(lab_banner))
    token_file = exports["RUNBOOK_INPUT_API_TOKEN"].split("cat ", 1)[1].rstrip(')"')
    env = {"RUNBOOK_INPUT_API_TOKEN": Path(token_file).read_text().strip()}
    first = cli(["run", "book.md", "--yes"], tmp_path, env)
    assert first.returncode == 1  # the default base URL: nothing listens there
    url = exports["RUNBOOK_INPUT_BASE_URL"]
    refused = cli(["resume", "last", "--yes", "--set", "api_token=x"], tmp_path, env)
    assert refused.returncode == 2 and "secret input" in refused.stderr
    fixed = cli(["resume", "last", "--yes", "--set", f"base_url={url}"], tmp_path, env)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "alert alrt-1001" in fixed.stdout
    assert re.search(rf"input +base_url += {re.escape(url)}\n", fixed.stdout)  # the header
    events = read_events(find_run(tmp_path / ".runbook" / "runs", "last"))
    (changed,) = [e for e in events if e["event"] == "inputs_changed"]
    assert changed["inputs"] == {"base_url": url}
    assert changed["previous"] == {"base_url": "http://127.0.0.1:9"}
    log = cli(["log", "last"], tmp_path).stdout
    assert f"input corrected by tester for the resume: base_url={url}" in log
