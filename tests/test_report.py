"""Reports rebuilt from real journals: what the post-incident record says, in md, html, ipynb."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from runner_helpers import append_event
from test_journal import (
    CONTAIN_TEXT,
    PNG,
    RUNBOOK_TEXT,
    SECRET,
    all_bytes_under,
    finish,
    out,
    start,
    step,
    write_block_run,
    write_drill,
    write_full_run,
    write_short_run,
)

from runner.reports.report import write_report
from runner.runs.journal import Journal
from runner.runs.store import load_run

RUN_ID = "20260102T000000Z-compromised-account-0002"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder: the runbook under runbooks/, runs under .runbook/runs as by default."""
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "compromised-account.md").write_text(RUNBOOK_TEXT)
    return tmp_path


@pytest.fixture
def runs_dir(project: Path) -> Path:
    return project / ".runbook" / "runs"


def _row(md: str, first_cell: str) -> list[str]:
    """The cells of the Markdown table row whose first cell is ``first_cell``."""
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{md}")


def test_markdown_report_of_a_run(runs_dir: Path) -> None:
    run_dir = write_full_run(runs_dir, RUN_ID)
    written = write_report(run_dir, "md")
    assert written[0] == run_dir / "report.md"
    md = written[0].read_text()
    assert md.startswith("# Run report: Compromised account")
    assert "Contain a compromised account within 30 minutes" in md
    assert "dana on soc-ws-1" in md
    assert "| `api_token` | \\*\\*\\* |" in md
    assert _row(md, "2")[1:4] == ["Revoke the sessions", "analyst", "✓ succeeded"]
    assert _row(md, "2")[5] == "1m35s (2 attempts)"
    assert _row(md, "5")[3] == "↻ handled"
    assert _row(md, "manual-reset/1")[1] == "Ask the help desk"
    assert "Total 4m22s against a time limit of 30m00s: **met**." in md
    assert "- Step 5 *Reset MFA*: ↻ handled — RuntimeError: MFA API unavailable" in md
    # Outputs, both streams, named outputs, decisions and approvals.
    assert "stderr (attempt 1):\n\n```text\ncurl: (7) connection refused\n```" in md
    assert "stdout (attempt 2):\n\n```text\nrevoking 3 sessions\n```" in md
    assert "Outputs: `sessions` = 3" in md
    assert "- decision **done** by dana, after 42.5s: user confirmed: not them" in md
    assert "- **approved** by lee (lead) (pre-approved): go ahead" in md
    # The image output and the durations plot are files the report links to.
    assert "](outputs/output-1.png)" in md
    assert "](report-durations.svg)" in md and (run_dir / "report-durations.svg").is_file()
    assert "Drill findings" not in md


def test_long_output_is_truncated_with_a_count(runs_dir: Path) -> None:
    j = Journal.create(runs_dir, RUN_ID)
    with j:
        start(j)
        step(j, 1, "lookup", "Look up the user")
        text = "".join(f"line {i}\n" for i in range(1, 501))
        append_event(
            j,
            "output",
            step=1,
            step_id="lookup",
            block_id="lookup",
            kind="stream",
            stream="stdout",
            text=text,
        )
        finish(j, 1, "lookup", "Look up the user", "succeeded", 1.0)
    md = write_report(j.run_dir, "md")[0].read_text()
    assert "line 1\n" in md and "line 500\n" in md
    assert "line 250\n" not in md
    assert "… 460 lines omitted (the journal has them all) …" in md


def test_drill_report_names_faults_unclear_slow_and_manual_steps(runs_dir: Path) -> None:
    run_dir = write_drill(runs_dir, RUN_ID)
    md = write_report(run_dir, "md")[0].read_text()
    assert md.startswith("# Drill report: Compromised account")
    assert "Total 11m40s against a time limit of 10m00s: **not met** (over by 1m40s)." in md
    fault = _row(md, "2. Isolate the host")
    assert fault[1:] == [
        "EDR answers 500",
        "↻ handled",
        "handled: alternative procedure manual-isolation ran (1 steps, all succeeded)",
    ]
    assert "- Step 3 *Notify the owner*: which console? — sam (analyst)" in md
    # Four steps took time against a 600 s limit: a share of 150 s each; only the cable pull
    # (400 s) went over it.
    assert "(time limit / steps that took time = 2m30s)" in md
    slow = md.split("### Slow steps")[1].split("###")[0]
    assert "Step manual-isolation/1 *Pull the cable*: 6m40s" in slow
    assert "Look up" not in slow and "Notify" not in slow
    manual = _row(md.split("### Manual steps")[1], "manual-isolation/1")
    assert manual[1:] == ["Pull the cable", "onsite", "done", "omar", "6m40s"]
    # omar's decision carries no role: he acted in the role of the step he answered.
    assert "Participants: omar (onsite), sam (analyst)" in md


def test_html_is_self_contained_and_escapes_journal_text(runs_dir: Path) -> None:
    run_dir = write_drill(runs_dir, RUN_ID)
    write_full_run(runs_dir, "20260101T000000Z-compromised-account-0001")
    page = write_report(run_dir, "html")[0].read_text()
    assert page.startswith("<!doctype html>") and "<style>" in page
    assert "<h1>Drill report: Compromised account</h1>" in page
    assert "<td>EDR answers 500</td>" in page
    assert "<strong>not met</strong>" in page
    # Output is text, never markup; nothing is fetched from the network.
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    # The plot of both runs is inlined.
    # The chart of both runs is inlined as SVG.
    assert page.count('<svg class="rb-chart"') == 1 and "<?xml" not in page
    assert page.count('class="rb-chart-point') == 2


def test_notebook_has_a_cell_per_executed_block_with_real_outputs(runs_dir: Path) -> None:
    run_dir = write_full_run(runs_dir, RUN_ID)
    path = write_report(run_dir, "ipynb")[0]
    assert path == run_dir / "report.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.metadata.language_info.version == "3.11.9"
    code = [c for c in nb.cells if c.cell_type == "code"]
    # lookup, revoke (twice: a retry), disable, reset-mfa; manual steps are markdown.
    assert [c.metadata.runbook.block_id for c in code] == [
        "lookup",
        "revoke-the-sessions",
        "revoke-the-sessions",
        "disable-the-account",
        "reset-mfa",
    ]
    assert code[0].source == 'sessions = 3\nprint(f"user {user} has {sessions} sessions")\n'
    assert code[0].outputs[0].text == "user alice@example.com has 3 sessions\ntoken in use: ***\n"
    assert code[0].outputs[1].output_type == "execute_result"
    assert code[0].outputs[1].data["text/plain"] == "3"
    assert code[1].outputs[0].name == "stderr" and code[2].outputs[0].name == "stdout"
    image = code[3].outputs[0]
    assert image.output_type == "display_data"
    assert base64.b64decode(image.data["image/png"]) == PNG
    error = code[4].outputs[0]
    assert (error.output_type, error.ename, error.evalue) == (
        "error",
        "RuntimeError",
        "MFA API unavailable",
    )
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "Call the user to confirm the sign-ins were not theirs." in markdown
    assert "> done by dana: user confirmed: not them" in markdown


def test_notebook_without_the_runbook_uses_the_journaled_code(
    runs_dir: Path, project: Path
) -> None:
    run_dir = write_full_run(runs_dir, RUN_ID)
    (project / "runbooks" / "compromised-account.md").write_text(RUNBOOK_TEXT + "\nEdited.\n")
    nb = nbformat.read(write_report(run_dir, "ipynb")[0], as_version=4)
    nbformat.validate(nb)
    assert "was not found" in nb.cells[0].source
    code = {c.metadata.runbook.block_id: c.source for c in nb.cells if c.cell_type == "code"}
    # The approval request journaled the exact code; the rest is marked as not recorded.
    assert code["disable-the-account"] == 'print("disabled")'
    assert code["lookup"] == "# code of lookup not recorded"


def test_no_secret_in_any_file_of_the_run_or_its_reports(runs_dir: Path, tmp_path: Path) -> None:
    run_dir = write_full_run(runs_dir, RUN_ID)
    for fmt in ("md", "html", "ipynb"):
        write_report(run_dir, fmt)
        write_report(run_dir, fmt, tmp_path / "elsewhere" / f"r.{fmt}")
    files = all_bytes_under(tmp_path)
    assert len(files) >= 10
    for path, data in files:
        if path.suffix != ".md" or path.parent.name != "runbooks":
            assert SECRET.encode() not in data, path


def test_a_crashed_run_is_reported_as_crashed(runs_dir: Path) -> None:
    with Journal.create(runs_dir, RUN_ID) as j:
        start(j)
        step(j, 1, "lookup", "Look up the user")
    record = load_run(j.run_dir)
    assert record.status == "crashed"
    assert [s.status for s in record.steps] == ["running"]
    md = write_report(j.run_dir, "md")[0].read_text()
    assert "**✗ crashed**" in md
    assert "the run has not finished, so it is not judged yet" in md


def test_report_written_elsewhere_links_images_relative_to_it(
    runs_dir: Path, tmp_path: Path
) -> None:
    run_dir = write_full_run(runs_dir, RUN_ID)
    write_short_run(runs_dir, "20260101T000000Z-compromised-account-0001")
    out = tmp_path / "reports" / "incident-42.md"
    written = write_report(run_dir, "md", out)
    assert written == [out, tmp_path / "reports" / "incident-42-durations.svg"]
    md = out.read_text()
    assert f"](../.runbook/runs/{RUN_ID}/outputs/output-1.png)" in md
    assert "](incident-42-durations.svg)" in md


TINY = """\
---
name: Tiny
service: demo
objective: Show that a run is recorded
time_limit: 5m
inputs:
  token: {type: string, secret: true}
---
# Tiny

## Steps

1. Count

   ```python {outputs=total}
   total = 6 * 7
   print("total is", total)
   print("token", token)
   total
   ```

2. Shell

   ```bash
   echo "shell sees $TOTAL and $TOKEN"
   echo "oops" >&2
   ```

3. Image

   ```python
   from IPython.display import display
   display({"image/png": "PNG_BASE64", "text/plain": "<1x1 image>"}, raw=True)
   ```

4. Phone the owner.
""".replace("PNG_BASE64", base64.b64encode(PNG).decode())


def test_end_to_end_run_then_notebook_and_report(tmp_path: Path) -> None:
    """`runbook run --yes` through real kernels, then the reports of that run."""
    (tmp_path / "tiny.md").write_text(TINY)
    env = {**os.environ, "RUNBOOK_RUNS_DIR": str(tmp_path / "runs"), "RUNBOOK_INPUT_TOKEN": SECRET}
    cli = [sys.executable, "-m", "runner"]
    done = subprocess.run(
        [*cli, "run", "tiny.md", "--yes"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    for fmt in ("ipynb", "md"):
        made = subprocess.run(
            [*cli, "report", "last", "--format", fmt],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
    [run_dir] = (tmp_path / "runs").iterdir()
    nb = nbformat.read(run_dir / "report.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.metadata.runbook.kernel for c in code] == ["python3", "runbook-shell", "python3"]
    assert code[0].source.startswith("total = 6 * 7\n")
    assert code[0].outputs[0].text == "total is 42\ntoken ***\n"
    assert code[0].outputs[1].data["text/plain"] == "42"
    assert [(o.name, o.text) for o in code[1].outputs] == [
        ("stdout", "shell sees 42 and ***\n"),
        ("stderr", "oops\n"),
    ]
    assert base64.b64decode(code[2].outputs[0].data["image/png"]) == PNG
    assert nb.metadata.kernelspec.name == "python3"
    md = (run_dir / "report.md").read_text()
    assert _row(md, "2")[1:4] == ["Shell", "—", "✓ succeeded"]
    assert _row(md, "4")[3] == "– skipped"
    assert "against a time limit of 5m00s: **met**." in md
    for path, data in all_bytes_under(tmp_path):
        assert SECRET.encode() not in data, path


def test_a_paused_run_is_not_judged_against_its_limit(runs_dir: Path) -> None:
    with Journal.create(runs_dir, RUN_ID) as j:
        start(j)
        append_event(
            j,
            "approval_requested",
            step=4,
            step_id="disable-the-account",
            procedure=None,
            approver_role="lead",
            code='print("disabled")',
        )
        finish(
            j,
            4,
            "disable-the-account",
            "Disable the account",
            "waiting_approval",
            0.0,
            reason="waiting for an approval",
        )
        append_event(
            j,
            "run_paused",
            status="paused",
            reason="step 4 needs an approval",
            step=4,
            step_id="disable-the-account",
            procedure=None,
            duration=12.0,
        )
    md = write_report(j.run_dir, "md")[0].read_text()
    assert "| **Status** | **… paused** |" in md
    assert "the run has not finished, so it is not judged yet" in md
    assert "paused: step 4 needs an approval" in md
    assert _row(md, "4")[3] == "… waiting_approval"


# --- journals with block_started, manual steps' step_started and decision roles ---------------

CONTAIN_ID = "20260105T000000Z-contain-host-0001"


def _with_runbook(project: Path) -> None:
    (project / "runbooks" / "contain-host.md").write_text(CONTAIN_TEXT)


def _section(md: str, heading: str) -> str:
    """The text of a `### heading` section, up to the next heading."""
    return md.split(f"### {heading}\n", 1)[1].split("\n#", 1)[0]


def test_report_shows_each_block_that_ran_with_its_code_and_output(
    runs_dir: Path, project: Path
) -> None:
    _with_runbook(project)
    md = write_report(write_block_run(runs_dir, CONTAIN_ID), "md")[0].read_text()
    collect = _section(md, "1. Collect evidence")
    heads = [line for line in collect.splitlines() if line.startswith("Block ")]
    # The first attempt stopped at `hash` (it printed to stderr, no error): `upload` never ran.
    # The second ran all three; `upload` printed nothing, yet the journal says it ran.
    assert heads == [
        "Block `snapshot` in `python3` · attempt 1 · ✓ succeeded · 500ms:",
        "Block `hash` in `runbook-shell` · attempt 1 · ✗ failed · 250ms · exit status 1:",
        "Block `snapshot` in `python3` · attempt 2 · ✓ succeeded · 500ms:",
        "Block `hash` in `runbook-shell` · attempt 2 · ✓ succeeded · 250ms:",
        "Block `upload` in `python3` · attempt 2 · ✓ succeeded · 125ms:",
    ]
    failed_hash = collect.split(heads[1], 1)[1].split(heads[2], 1)[0]
    assert "```bash\nsha256sum /evidence/*\n```" in failed_hash
    assert "stderr:\n\n```text\nno such\n```" in failed_hash
    upload = collect.split(heads[4], 1)[1]
    assert upload.strip() == "```python\nuploaded = True\n```"
    isolate = _section(md, "2. Isolate the host")
    assert "- decision **on\\_failure** by dana (analyst), after 1.5s" in isolate
    cable = _section(
        md, "manual-isolation/1. Pull the cable (alternative procedure `manual-isolation`)"
    )
    assert "- decision **done** by omar (onsite), after 5m00s" in cable


@pytest.mark.parametrize("have_runbook", [True, False], ids=["runbook", "no-runbook"])
def test_manual_steps_are_those_the_runbook_or_step_started_says(
    runs_dir: Path, project: Path, have_runbook: bool
) -> None:
    """A denied step handled by procedure `manual-isolation` is not manual, whatever its reason
    says; the procedure's step and step 3 are (the runbook, or step_started with no kernel)."""
    if have_runbook:
        _with_runbook(project)
    run_dir = write_block_run(runs_dir, CONTAIN_ID, mode="drill")
    record = load_run(run_dir)
    assert [s.label for s in record.steps if s.manual] == ["manual-isolation/1", "3"]
    md = write_report(run_dir, "md")[0].read_text()
    facts = _section(md, "2. Isolate the host").strip().splitlines()[0]
    assert facts == ("↻ handled · role analyst · 0ms" if have_runbook else "↻ handled · 0ms")
    manual = md.split("### Manual steps", 1)[1].split("\n#", 1)[0]
    rows = [line.split("|")[1].strip() for line in manual.splitlines() if line.startswith("| ")]
    assert rows == ["step", "manual-isolation/1", "3"]
    assert "Participants: dana (analyst), lee (lead), omar (onsite)" in md


def test_notebook_takes_blocks_and_code_from_block_started_without_the_runbook(
    runs_dir: Path,
) -> None:
    nb = nbformat.read(write_report(write_block_run(runs_dir, CONTAIN_ID), "ipynb")[0], 4)
    nbformat.validate(nb)
    assert "was not found" in nb.cells[0].source
    code = [c for c in nb.cells if c.cell_type == "code"]
    meta = [c.metadata.runbook for c in code]
    assert [(m.block_id, m.attempt, m.block_status) for m in meta] == [
        ("snapshot", 1, "succeeded"),
        ("hash", 1, "failed"),
        ("snapshot", 2, "succeeded"),
        ("hash", 2, "succeeded"),
        ("upload", 2, "succeeded"),
    ]
    assert all(m.journaled for m in meta)
    assert [c.source for c in code[:2]] == [
        'print("snapshot of", host)\n',
        "sha256sum /evidence/*\n",
    ]
    assert (meta[1].kernel, meta[1].language, meta[1].exit_status) == ("runbook-shell", "bash", 1)
    assert [(o.name, o.text) for o in code[1].outputs] == [("stderr", "no such\n")]
    assert [(o.name, o.text) for o in code[3].outputs] == [("stdout", "abc123\n")]
    assert code[4].outputs == []
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "> done by omar (onsite)" in markdown
    assert "> done by dana\n" in markdown + "\n"


def test_notebook_without_block_started_marks_its_cells_inferred(runs_dir: Path) -> None:
    nb = nbformat.read(write_report(write_full_run(runs_dir, RUN_ID), "ipynb")[0], 4)
    meta = [c.metadata.runbook for c in nb.cells if c.cell_type == "code"]
    assert meta and not any(m.journaled for m in meta)
    assert not any("block_status" in m for m in meta)


def test_output_of_a_block_never_started_is_still_reported(runs_dir: Path) -> None:
    with Journal.create(runs_dir, RUN_ID) as j:
        start(j)
        step(j, 1, "lookup", "Look up the user")
        append_event(
            j,
            "block_started",
            step=1,
            step_id="lookup",
            procedure=None,
            block_id="lookup",
            lang="python",
            kernel="python3",
            code="print('a')\n",
            attempt=1,
        )
        out(j, 1, "lookup", "stream", stream="stdout", text="from a\n")
        out(j, 1, "lookup", "stream", block_id="other", stream="stdout", text="from b\n")
        finish(j, 1, "lookup", "Look up the user", "cancelled", 1.0)
    md = write_report(j.run_dir, "md")[0].read_text()
    # Cut short: no block_finished, so the block is marked unfinished; both outputs are there.
    assert "Block `lookup` in `python3` · did not finish:" in md
    assert md.index("from a") < md.index("from b")
