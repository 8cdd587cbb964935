"""docs/format.md's complete example runs as written: extracted from the page, checked, and run
against the lab with its gate pre-approved, as a reader following the page would."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from runner_helpers import cli

from runner.lab import LabServer

REPO = Path(__file__).resolve().parent.parent


def docs_example() -> str:
    page = (REPO / "docs" / "format.md").read_text()
    section = page.split("## A complete example", 1)[1]
    match = re.search(r"^````markdown\n(.*?)^````$", section, re.S | re.M)
    assert match, "docs/format.md has no ````markdown block under 'A complete example'"
    return match.group(1)


def test_the_docs_example_is_clean_and_runs_against_the_lab(lab: LabServer, tmp_path: Path) -> None:
    book = tmp_path / "compromised-laptop.md"
    book.write_text(docs_example())
    checked = cli(["check", str(book)], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    headers = {"Authorization": f"Bearer {lab.token}"}
    with httpx.Client(base_url=lab.url, headers=headers, timeout=15) as api:
        api.post("/api/_lab/reset").raise_for_status()
        args = ["run", str(book), "--yes", "--approve", "isolate"]
        args += ["-i", "host_id=wks-0042", "-i", f"base_url={lab.url}"]
        done = cli(args, tmp_path, env={"RUNBOOK_INPUT_API_TOKEN": lab.token}, timeout=120)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr
        assert "verdict: malicious" in done.stdout
        assert ": succeeded" in done.stdout
        host = api.get("/api/edr/hosts/wks-0042").json()
    assert host["isolated"] is True
