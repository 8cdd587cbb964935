"""`runbook runs|log|verify|report|stats` through the real entry point, as a person sees them."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from test_journal import (
    CONTAIN_TEXT,
    RUNBOOK_TEXT,
    SECRET,
    all_bytes_under,
    write_block_run,
    write_drill,
    write_full_run,
    write_short_run,
)

from runner.cli import main
from runner.runs.journal import JOURNAL

FULL = "20260102T000000Z-compromised-account-0002"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `runbook ARGS` in process through the console-script entry point."""
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "compromised-account.md").write_text(RUNBOOK_TEXT)
    runs = tmp_path / ".runbook" / "runs"
    write_short_run(
        runs, "20260101T000000Z-compromised-account-0001", status="failed", duration=2000.0
    )
    write_full_run(runs, FULL)
    write_short_run(
        runs,
        "20260103T000000Z-phishing-triage-0003",
        runbook_id="phishing-triage",
        duration=12.0,
        time_limit=None,
    )
    return runs


def test_runs_lists_newest_first_with_duration_against_limit(
    capsys: pytest.CaptureFixture[str], runs_dir: Path
) -> None:
    code, out, _ = run_cli(capsys, "runs", "--runs-dir", str(runs_dir))
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert rows[0][:3] == ["run", "runbook", "mode"]
    assert rows[1] == [
        "20260103T000000Z-phishing-triage-0003",
        "phishing-triage",
        "run",
        "✓",
        "succeeded",
        *rows[1][5:7],
        "12.0s",
    ]
    assert rows[2][:5] == [
        FULL,
        "compromised-account",
        "run",
        "✓",
        "succeeded_with_handled_failures",
    ]
    assert rows[2][-4:] == ["4m22s", "/", "30m00s", "✓"]
    assert rows[3][-5:] == ["33m20s", "/", "30m00s", "✗", "over"]


def test_runs_filters_limits_and_speaks_json(
    capsys: pytest.CaptureFixture[str], runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNBOOK_RUNS_DIR", str(runs_dir))
    _, out, _ = run_cli(capsys, "runs", "--runbook", "compromised-account", "--limit", "1")
    assert FULL in out and "0001" not in out and "phishing" not in out
    code, out, _ = run_cli(capsys, "runs", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["version"] == 1
    assert [r["run_id"][-4:] for r in data["runs"]] == ["0003", "0002", "0001"]
    assert data["runs"][1]["within_time_limit"] is True
    assert data["runs"][1]["duration"] == 262.4


def test_runs_with_no_runs_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / ("none-" + "x" * 90)  # longer than a line: still one line, whole
    code, out, _ = run_cli(capsys, "runs", "--runs-dir", str(folder))
    assert code == 0 and out.strip() == f"no runs in {folder}"


def test_log_replays_the_run(capsys: pytest.CaptureFixture[str], runs_dir: Path) -> None:
    code, out, _ = run_cli(capsys, "log", "20260102", "--runs-dir", str(runs_dir))
    assert code == 0
    lines = [line.rstrip() for line in out.splitlines()]
    assert lines[0] == "Compromised account"
    assert "operator         dana on soc-ws-1" in lines
    assert "input api_token  ***" in lines
    expected_in_order = [
        "[1/5] Look up the user  role analyst · kernel python3",
        "  ? run — by dana after 1.5s",
        "      │ user alice@example.com has 3 sessions",
        "      │ token in use: ***",
        "   out│ 3",
        "  outputs: sessions=3",
        "  → ✓ succeeded in 840ms",
        "[2/5] Revoke the sessions  role analyst · kernel runbook-shell",
        "stderr│ curl: (7) connection refused",
        "  → ✗ failed in 5.0s · retrying · exit status 7",
        "  attempt 2 of 2",
        "      │ revoking 3 sessions",
        "  → ✓ succeeded in 1m30s (attempt 2)",
        # A manual step has no step_started; its heading comes from the runbook.
        "[3/5] Call the user  manual step",
        "  ? done — by dana after 42.5s: user confirmed: not them",
        "[4/5] Disable the account  kernel python3",
        "  ⚑ approval requested from role lead",
        "  ⚑ approved by lee (lead) (pre-approved): go ahead",
        "   out│ [image outputs/output-1.png]",
        "      │ disabled",
        "[5/5] Reset MFA  kernel python3",
        " error│ RuntimeError: MFA API unavailable",
        "  → ✗ failed in 310ms · RuntimeError: MFA API unavailable",
        "[manual-reset 1] Ask the help desk  manual step",
        "  ? done — by dana after 2m00s",
        "[5/5] Reset MFA  kernel python3",
        "  → ↻ handled · failed; handled by procedure manual-reset",
        "run ✓ succeeded_with_handled_failures · Total 4m22s against a time limit of 30m00s: met.",
    ]
    at = 0
    for line in expected_in_order:  # each after the one before
        at = lines.index(line, at) + 1


def test_log_names_each_block_and_who_decided_in_which_role(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "contain-host.md").write_text(CONTAIN_TEXT)
    runs = tmp_path / ".runbook" / "runs"
    write_block_run(runs, "20260105T000000Z-contain-host-0001")
    code, out, _ = run_cli(capsys, "log", "last", "--runs-dir", str(runs))
    assert code == 0
    lines = [line.rstrip() for line in out.splitlines()]
    expected_in_order = [
        "[1/3] Collect evidence  role analyst · kernel python3",
        "  ? run — by dana (analyst) after 1.5s",
        "  ▸ block snapshot in python3",
        "      │ snapshot",
        "  ▸ block hash in runbook-shell",
        "stderr│ no such",
        "  → ✗ failed in 1.0s · retrying · exit status 1",
        "  attempt 2 of 2",
        "  ▸ block upload in python3",
        "  → ✓ succeeded in 2.0s (attempt 2)",
        # Denied, then handled by procedure manual-isolation: not a manual step itself.
        "[2/3] Isolate the host  role analyst",
        "  ⚑ denied by lee (lead): not during business hours",
        "  ? on_failure — by dana (analyst) after 1.5s: the runbook's policy applies",
        "[manual-isolation 1/1] Pull the cable  role onsite · manual step",
        "  ? done — by omar (onsite) after 5m00s",
        "[3/3] Tell the owner  manual step",
    ]
    at = [lines.index(line) for line in expected_in_order]
    assert at == sorted(at), "\n".join(lines)


def test_log_json_has_every_event(capsys: pytest.CaptureFixture[str], runs_dir: Path) -> None:
    code, out, _ = run_cli(capsys, "log", "last", "--runs-dir", str(runs_dir), "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["version"] == 1
    assert data["run"]["run_id"] == "20260103T000000Z-phishing-triage-0003"
    assert data["events"][0]["event"] == "run_started"
    assert len(data["events"]) == len(
        (runs_dir / data["run"]["run_id"] / JOURNAL).read_text().splitlines()
    )


def test_log_of_an_unknown_run_exits_2(capsys: pytest.CaptureFixture[str], runs_dir: Path) -> None:
    code, out, err = run_cli(capsys, "log", "nope", "--runs-dir", str(runs_dir))
    assert code == 2 and out == ""
    assert f"no run 'nope' in {runs_dir}; `runbook runs` lists them" in err
    assert "Traceback" not in err


def test_verify_intact_then_a_one_byte_edit(
    capsys: pytest.CaptureFixture[str], runs_dir: Path
) -> None:
    code, out, _ = run_cli(capsys, "verify", FULL, "--runs-dir", str(runs_dir))
    journal = runs_dir / FULL / JOURNAL
    n = len(journal.read_text().splitlines())
    assert (code, out.strip()) == (0, f"intact ({n} events, keyed)")
    data = bytearray(journal.read_bytes())
    at = data.index(b"revoking 3")
    data[at + len("revoking ")] = ord("4")  # one byte, on some line k
    journal.write_bytes(bytes(data))
    k = data[:at].count(b"\n") + 1
    code, out, err = run_cli(capsys, "verify", FULL, "--runs-dir", str(runs_dir))
    assert code == 1 and out == ""
    assert err.strip() == (
        f"{journal}:{k}: NOT intact: line {k} was edited: it does not match its own hash"
    )


def test_verify_catches_a_deleted_last_line(
    capsys: pytest.CaptureFixture[str], runs_dir: Path
) -> None:
    journal = runs_dir / FULL / JOURNAL
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-1]))
    code, _, err = run_cli(capsys, "verify", str(runs_dir / FULL))
    assert code == 1
    n = len(lines)
    assert (
        err.strip()
        == f"{journal}:{n}: NOT intact: lines after {n - 1} were removed (the head records {n})"
    )


def test_report_formats_default_beside_the_journal(
    capsys: pytest.CaptureFixture[str], runs_dir: Path
) -> None:
    run_dir = runs_dir / FULL
    for fmt in ("md", "html", "ipynb"):
        code, out, _ = run_cli(capsys, "report", FULL, "--runs-dir", str(runs_dir), "--format", fmt)
        assert code == 0
        assert out.splitlines()[0] == f"wrote {run_dir / ('report.' + fmt)}"
    assert "| 5 | Reset MFA | — | ↻ handled |" in (run_dir / "report.md").read_text()
    assert "<strong>met</strong>" in (run_dir / "report.html").read_text()
    nbformat.validate(nbformat.read(run_dir / "report.ipynb", as_version=4))
    for path, data in all_bytes_under(runs_dir):
        assert SECRET.encode() not in data, path


def test_report_to_a_chosen_file_and_a_bad_format(
    capsys: pytest.CaptureFixture[str], runs_dir: Path, tmp_path: Path
) -> None:
    drill = write_drill(runs_dir, "20260104T000000Z-compromised-account-0004")
    out_file = tmp_path / "out" / "drill.md"
    code, out, _ = run_cli(
        capsys, "report", "last", "--runs-dir", str(runs_dir), "-o", str(out_file)
    )
    assert code == 0 and out.splitlines()[0] == f"wrote {out_file}"
    text = out_file.read_text()
    assert "### Faults injected" in text and "which console?" in text
    assert drill.name in text
    code, _, err = run_cli(capsys, "report", "last", "--runs-dir", str(runs_dir), "--format", "pdf")
    assert code == 2 and "'pdf' is not one of 'md', 'html', 'ipynb'" in err


def test_stats_table_and_json(capsys: pytest.CaptureFixture[str], runs_dir: Path) -> None:
    write_drill(runs_dir, "20260104T000000Z-compromised-account-0004")
    code, out, _ = run_cli(capsys, "stats", "--runs-dir", str(runs_dir))
    assert code == 0
    assert "last exercised (UTC)" in out.splitlines()[0]  # journals are stamped in UTC
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    # compromised-account: 2000 s failed, 262.4 s, 700 s drill -> median 700 s, p90 2000 s.
    assert rows["compromised-account"][1:9] == [
        "2",
        "1",
        "67%",
        "(2/3)",
        "11m40s",
        "33m20s",
        "33%",
        "(limit",
    ]
    code, out, _ = run_cli(
        capsys, "stats", "compromised-account", "--runs-dir", str(runs_dir), "--format", "json"
    )
    data = json.loads(out)
    assert code == 0 and data["version"] == 1
    [row] = data["runbooks"]
    assert (row["runs"], row["drills"], row["median_duration"], row["p90_duration"]) == (
        2,
        1,
        700.0,
        2000.0,
    )
    assert row["within_time_limit"] == pytest.approx(1 / 3)


def test_stats_of_a_runbook_file_never_run(
    capsys: pytest.CaptureFixture[str], runs_dir: Path, tmp_path: Path
) -> None:
    book = tmp_path / "runbooks" / "ransomware.md"
    book.write_text("---\nname: Ransomware\n---\n# Ransomware\n\n## Steps\n\n1. Isolate.\n")
    plot = tmp_path / "ca.svg"
    code, out, _ = run_cli(
        capsys, "stats", str(book), "--runs-dir", str(runs_dir), "--format", "json"
    )
    [row] = json.loads(out)["runbooks"]
    assert code == 0 and row["runbook"]["id"] == "ransomware"
    assert (row["runs"], row["drills"], row["last_exercised"]) == (0, 0, None)
    code, _, _ = run_cli(
        capsys, "stats", "compromised-account", "--runs-dir", str(runs_dir), "--plot", str(plot)
    )
    assert code == 0 and plot.read_text().lstrip().startswith(("<svg", "<?xml"))
    assert "<svg" in plot.read_text() and "time limit" in plot.read_text()
