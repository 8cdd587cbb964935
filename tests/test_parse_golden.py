"""Golden plans: `runbook show --format json` of every example runbook, compared with
tests/golden/<name>.json. After an intended change, regenerate with UPDATE_GOLDEN=1 and review
the diff like code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"
RUNBOOKS = sorted((REPO / "runbooks").glob("*.md"))
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _show_json(path: Path) -> str:
    runbook = REPO / ".venv" / "bin" / "runbook"
    cmd = [str(runbook)] if runbook.exists() else [sys.executable, "-m", "runner"]
    rel = path.relative_to(REPO).as_posix()
    proc = subprocess.run(
        [*cmd, "show", "--format", "json", rel], cwd=REPO, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("path", RUNBOOKS, ids=[p.stem for p in RUNBOOKS])
def test_plan_matches_golden(path: Path) -> None:
    actual = _show_json(path)
    golden = GOLDEN / f"{path.stem}.json"
    if UPDATE:
        golden.write_text(actual, encoding="utf-8")
    assert golden.exists(), f"no golden plan for {path.name}; run with UPDATE_GOLDEN=1"
    assert json.loads(actual) == json.loads(golden.read_text(encoding="utf-8"))


def test_no_stale_goldens() -> None:
    stems = {p.stem for p in RUNBOOKS}
    stale = sorted(p.name for p in GOLDEN.glob("*.json") if p.stem not in stems)
    assert stale == [], f"golden plans without a runbook: {stale}; delete them"
