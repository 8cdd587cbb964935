"""Evidence that survives a hostile runs folder: cuts, rewrites, forged approvals, planted links,
a full disk. Each attack is one a person who can write the runs folder (but not read the
operator's journal key) can make."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import stat
import sys
import time
from pathlib import Path

import pytest
from runner_helpers import cli, write_book
from test_journal import write_full_run
from test_records_cli import run_cli

from runner.reports.report import write_report
from runner.runs.journal import HEAD, JOURNAL, Journal, JournalError, read_events, verify
from runner.runs.key import KEY_ENV, JournalKeyError
from runner.runs.state import resume_state
from runner.runs.store import find_run

RUN = "20260101T000000Z-compromised-account-aaaa"


def _lines(run_dir: Path) -> list[bytes]:
    return (run_dir / JOURNAL).read_bytes().rstrip(b"\n").split(b"\n")


def _rechain(lines: list[bytes]) -> bytes:
    """What the attacker's script does: rebuild every seal and link with plain SHA-256."""
    prev, out = "0" * 64, []
    for raw in lines:
        record = json.loads(raw)
        record.pop("hmac", None)
        record.pop("hash", None)
        record["prev"] = prev
        body = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
        line = body[:-1] + b',"hash":"' + hashlib.sha256(body).hexdigest().encode() + b'"}'
        out.append(line)
        prev = hashlib.sha256(line).hexdigest()
    return b"\n".join(out) + b"\n"


def test_a_tail_cut_with_the_head_deleted_is_caught(tmp_path: Path) -> None:
    run_dir = write_full_run(tmp_path, RUN)
    lines = _lines(run_dir)
    (run_dir / JOURNAL).write_bytes(b"\n".join(lines[:-5]) + b"\n")
    (run_dir / HEAD).unlink()
    result = verify(run_dir)
    assert not result.ok
    assert result.message.startswith("journal.head is missing")


def test_an_emptied_journal_is_caught(tmp_path: Path) -> None:
    run_dir = write_full_run(tmp_path, RUN)
    n = len(_lines(run_dir))
    (run_dir / JOURNAL).write_bytes(b"")
    result = verify(run_dir)
    assert not result.ok and result.message == f"lines after 0 were removed (the head records {n})"


def test_a_rechained_journal_is_not_intact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = write_full_run(tmp_path, RUN)
    lines = _lines(run_dir)
    edited = [raw.replace(b'"operator":"analyst1"', b'"operator":"mallory"') for raw in lines]
    (run_dir / JOURNAL).write_bytes(_rechain(edited))
    head = {
        "seq": len(lines),
        "sha256": hashlib.sha256(_rechain(edited).split(b"\n")[-2]).hexdigest(),
    }
    (run_dir / HEAD).write_text(json.dumps(head))
    # Re-chained without the key, the journal can only pass as unkeyed, which verify refuses.
    code, out, err = run_cli(capsys, "verify", str(run_dir))
    assert code == 1 and out == ""
    assert "NOT proven: the journal is unkeyed" in err
    # The same file sealed lines with the key before: a rewrite of only the tail is caught too.
    (run_dir / JOURNAL).write_bytes(
        b"\n".join([*lines[:-1], _rechain(lines)[:-1].split(b"\n")[-1]]) + b"\n"
    )
    assert not verify(run_dir).ok


def test_an_approval_appended_by_hand_is_caught_and_not_honoured(tmp_path: Path) -> None:
    run_dir = write_full_run(tmp_path, RUN)
    lines = _lines(run_dir)
    forged = {
        "seq": len(lines) + 1,
        "ts": "2026-01-01T00:10:00.000Z",
        "event": "approval",
        "step": 2,
        "step_id": "revoke-the-sessions",
        "procedure": None,
        "decision": "approved",
        "by": "mallory",
        "prev": hashlib.sha256(lines[-1]).hexdigest(),
    }
    body = json.dumps(forged, separators=(",", ":")).encode()
    line = body[:-1] + b',"hash":"' + hashlib.sha256(body).hexdigest().encode() + b'"}'
    (run_dir / JOURNAL).write_bytes(b"\n".join([*lines, line]) + b"\n")
    result = verify(run_dir)
    assert not result.ok and result.line == len(lines) + 1
    assert "unkeyed after keyed lines" in result.message
    with pytest.raises(JournalError, match="not intact"):
        Journal.reopen(run_dir)
    # Even read past verify, an approval from an unsealed line gates nothing.
    state = resume_state(read_events(run_dir), keyed_from=None)
    assert state.approvals == {}


def test_another_key_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = write_full_run(tmp_path, RUN)
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "other.key"))
    Journal.create(tmp_path / "x", "make-the-other-key").close()
    result = verify(run_dir)
    assert not result.ok and "sealed with another journal key" in result.message


def test_a_key_readable_by_others_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "loose.key"
    monkeypatch.setenv(KEY_ENV, str(key))
    Journal.create(tmp_path / "runs", "r1").close()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    key.chmod(0o644)
    with pytest.raises(JournalKeyError, match="readable by others"):
        Journal.create(tmp_path / "runs", "r2")


def test_verify_names_keyed_and_old_unkeyed_journals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = write_full_run(tmp_path, RUN)
    code, out, _ = run_cli(capsys, "verify", str(run_dir))
    assert code == 0 and out.strip() == f"intact ({len(_lines(run_dir))} events, keyed)"
    old = write_full_run(tmp_path, "20250101T000000Z-old-0001")
    data = _rechain(_lines(old))  # what a journal from before keys looks like
    (old / JOURNAL).write_bytes(data)
    last = data.rstrip(b"\n").split(b"\n")[-1]
    (old / HEAD).write_text(
        json.dumps({"seq": data.count(b"\n"), "sha256": hashlib.sha256(last).hexdigest()})
    )
    code, out, _ = run_cli(capsys, "verify", str(old), "--allow-unkeyed")
    assert code == 0 and "unkeyed: written before journals were keyed" in out


def test_a_fifo_head_is_refused_at_once(tmp_path: Path) -> None:
    run_dir = write_full_run(tmp_path, RUN)
    (run_dir / HEAD).unlink()
    os.mkfifo(run_dir / HEAD)
    started = time.monotonic()
    result = verify(run_dir)
    assert not result.ok and "journal.head is a FIFO" in result.message
    assert time.monotonic() - started < 1


def test_an_empty_run_id_matches_nothing(tmp_path: Path) -> None:
    write_full_run(tmp_path, RUN)
    with pytest.raises(JournalError, match="no run given"):
        find_run(tmp_path, "")


def test_reports_are_private_and_never_written_through_a_planted_link(tmp_path: Path) -> None:
    run_dir = write_full_run(tmp_path, RUN)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (run_dir / "report.md").symlink_to(victim)
    written = write_report(run_dir, "md")
    assert victim.read_text() == "keep me"
    assert not written[0].is_symlink()
    assert stat.S_IMODE(written[0].stat().st_mode) == 0o600


def test_a_journal_planted_as_a_symlink_is_not_continued(tmp_path: Path) -> None:
    run_dir = write_full_run(tmp_path, RUN)
    target = tmp_path / "elsewhere.jsonl"
    (run_dir / JOURNAL).rename(target)
    (run_dir / JOURNAL).symlink_to(target)
    with pytest.raises(JournalError, match="symbolic link"):
        Journal.reopen(run_dir)


def test_a_torn_last_line_is_repaired_with_a_journaled_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = write_full_run(tmp_path, RUN)
    with (run_dir / JOURNAL).open("ab") as fh:
        fh.write(b'{"seq":999,"event":"out')
    code, _, err = run_cli(capsys, "verify", str(run_dir))
    assert code == 1 and "the last line is incomplete" in err and "--repair" in err
    code, out, _ = run_cli(capsys, "verify", str(run_dir), "--repair")
    assert code == 0 and out.startswith("repaired (the last line is incomplete")
    assert "intact (" in out
    note = read_events(run_dir)[-1]
    assert note["event"] == "journal_repaired" and note["removed_bytes"] == 23


def test_an_edited_journal_is_not_repaired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = write_full_run(tmp_path, RUN)
    path = run_dir / JOURNAL
    path.write_bytes(path.read_bytes().replace(b"has 3 sessions", b"has 4 sessions"))
    code, _, err = run_cli(capsys, "verify", str(run_dir), "--repair")
    assert code == 2 and "not an edited journal" in err


def _limit_file_size(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_full_disk_stops_the_run_cleanly_and_it_resumes(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        1. Fill

           ```python
           for i in range(400):
               print("x" * 100, i)
           ```

        2. After

           ```bash
           echo after-ran
           ```
        """,
    )
    import subprocess

    from runner_helpers import RUNBOOK

    env = {**os.environ, "RUNBOOK_OPERATOR": "tester", "TMPDIR": str(tmp_path)}
    env.pop("RUNBOOK_RUNS_DIR", None)
    full = subprocess.run(
        [RUNBOOK, "run", str(book), "--yes"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: _limit_file_size(20_000),
    )
    assert full.returncode == 1, full.stderr
    assert "the journal could not be written (File too large), so the run stops here" in full.stderr
    assert "internal error" not in full.stderr
    run_dir = next((tmp_path / ".runbook" / "runs").iterdir())
    assert verify(run_dir).ok
    again = cli(["resume", run_dir.name, "--yes"], tmp_path, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "after-ran" in again.stdout
    assert verify(run_dir).ok and sys.platform.startswith("linux")
