"""The journal as written by runner.runs.journal.Journal and read back: chain, head, redaction,
runs.

The helpers at the top write realistic journals (the event schema of docs, in the order the
runner writes them); test_report, test_records_cli and test_stats reuse them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import append_event

from runner.runs.journal import (
    HEAD,
    JOURNAL,
    Journal,
    JournalError,
    Redactor,
    read_events,
    verify,
)
from runner.runs.store import find_run, list_runs, summary

SECRET = "tok-9f8e7d6c5b4a-SECRET"
RUNBOOK_TEXT = """\
---
name: Compromised account
objective: Contain a compromised account within 30 minutes
time_limit: 30m
roles:
  analyst: SOC analyst
  lead: Incident lead
inputs:
  user: {type: string, required: true}
  api_token: {type: string, secret: true}
---
# Compromised account

## Steps

1. Look up the user {role=analyst}

   ```python {id=lookup outputs=sessions}
   sessions = 3
   print(f"user {user} has {sessions} sessions")
   ```

2. Revoke the sessions

   ```bash {role=analyst}
   echo "revoking $SESSIONS sessions"
   ```

3. Call the user to confirm the sign-ins were not theirs.

4. Disable the account

   ```python {approve=lead}
   print("disabled")
   ```

5. Reset MFA

   ```python {on_failure=procedure:manual-reset}
   raise RuntimeError("MFA API unavailable")
   ```

## Alternative procedures

### Manual reset

1. Ask the help desk to reset MFA by phone.
"""

# A 1x1 PNG, as a kernel would send in a display_data message.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def runbook_info(path: str = "runbooks/compromised-account.md", **extra: Any) -> dict[str, Any]:
    return {
        "path": path,
        "id": "compromised-account",
        "name": "Compromised account",
        "sha256": hashlib.sha256(RUNBOOK_TEXT.encode()).hexdigest(),
        "time_limit": 1800.0,
        "objective": "Contain a compromised account within 30 minutes",
        **extra,
    }


def start(
    j: Journal, mode: str = "run", runbook: dict[str, Any] | None = None, total_steps: int = 5
) -> None:
    append_event(
        j,
        "run_started",
        run_id=j.run_id,
        runbook=runbook or runbook_info(),
        git_commit=None,
        inputs={"user": "alice@example.com", "api_token": "***"},
        operator="dana",
        host="soc-ws-1",
        mode=mode,
        attempt=1,
        interactive=True,
        options={"yes": False, "only": None, "from": None, "approve": ["4"]},
        total_steps=total_steps,
    )
    append_event(
        j,
        "kernel_started",
        kernel="python3",
        language="python",
        implementation="ipython",
        version="8.20.0",
        language_version="3.11.9",
    )


def step(j: Journal, n: int, sid: str, title: str, **f: Any) -> None:
    """step_started, as the engine writes it before each attempt of an executable step."""
    append_event(
        j,
        "step_started",
        step=n,
        step_id=sid,
        title=title,
        role=f.get("role"),
        procedure=f.get("procedure"),
        attempt=f.get("attempt", 1),
        attempts=f.get("attempts", 1),
        kernel=f.get("kernel", "python3"),
        index=n,
        total=f.get("total", 5),
    )


def out(j: Journal, n: int, sid: str, kind: str, **f: Any) -> None:
    """An output event of block ``sid`` (each step here has one block, named like the step)."""
    append_event(j, "output", step=n, step_id=sid, block_id=f.pop("block_id", sid), kind=kind, **f)


def finish(
    j: Journal, n: int, sid: str, title: str, status: str, duration: float, **f: Any
) -> None:
    append_event(
        j,
        "step_finished",
        step=n,
        step_id=sid,
        title=title,
        procedure=f.get("procedure"),
        status=status,
        duration=duration,
        attempt=f.get("attempt", 1),
        attempts=f.get("attempts", 1),
        exit_status=f.get("exit_status"),
        error=f.get("error"),
        reason=f.get("reason"),
        **({"retry_in": f["retry_in"]} if "retry_in" in f else {}),
    )


def decide(j: Journal, n: int, sid: str, decision: str, by: str = "dana", **f: Any) -> None:
    append_event(
        j,
        "decision",
        step=n,
        step_id=sid,
        procedure=f.get("procedure"),  # the engine always says which list the step is in
        decision=decision,
        by=by,
        note=f.get("note"),
        waited=f.get("waited", 1.5),
        **({"role": f["role"]} if "role" in f else {}),
    )


def write_full_run(runs_dir: Path, run_id: str, mode: str = "run") -> Path:
    """An interactive run of the runbook above, shaped as the engine writes it: outputs in both
    kernels, an automatic retry, a manual step (no step_started: a person did it), an approval,
    an image, an error handled by an alternative procedure; the secret is printed."""
    j = Journal.create(runs_dir, run_id, Redactor([SECRET]))
    with j:
        start(j, mode)
        j.sync()
        decide(j, 1, "lookup", "run")
        step(j, 1, "lookup", "Look up the user", role="analyst")
        out(
            j,
            1,
            "lookup",
            "stream",
            stream="stdout",
            text="user alice@example.com has 3 sessions\n",
        )
        out(j, 1, "lookup", "stream", stream="stdout", text=f"token in use: {SECRET}\n")
        out(j, 1, "lookup", "result", text="3", data={"text/plain": "3"})
        append_event(j, "outputs", step=1, step_id="lookup", values={"sessions": 3})
        finish(j, 1, "lookup", "Look up the user", "succeeded", 0.84)
        j.sync()
        revoke = (2, "revoke-the-sessions", "Revoke the sessions")
        append_event(
            j,
            "kernel_started",
            kernel="runbook-shell",
            language="bash",
            implementation="runbook-shell",
            version="0.1",
            language_version="5.2",
        )
        decide(j, *revoke[:2], "run")
        step(j, *revoke, role="analyst", kernel="runbook-shell", attempts=2)
        out(j, *revoke[:2], "stream", stream="stderr", text="curl: (7) connection refused\n")
        finish(
            j,
            *revoke,
            "failed",
            5.0,
            attempts=2,
            exit_status=7,
            error="exit status 7",
            retry_in=0.0,
        )
        step(j, *revoke, role="analyst", kernel="runbook-shell", attempt=2, attempts=2)
        out(j, *revoke[:2], "stream", stream="stdout", text="revoking 3 sessions\n")
        finish(j, *revoke, "succeeded", 90.0, attempt=2, attempts=2, exit_status=0)
        j.sync()
        # Step ids as the parser makes them (the slug of the step's first line).
        call = "call-the-user-to-confirm-the-sign-ins-were-not-theirs"
        decide(j, 3, call, "done", note="user confirmed: not them", waited=42.5)
        finish(
            j,
            3,
            call,
            "Call the user",
            "succeeded",
            42.5,
            reason="user confirmed: not them",
        )
        disable = (4, "disable-the-account", "Disable the account")
        decide(j, *disable[:2], "run")
        append_event(
            j,
            "approval_requested",
            step=4,
            step_id=disable[1],
            procedure=None,
            approver_role="lead",
            code='print("disabled")',
        )
        append_event(
            j,
            "approval",
            step=4,
            step_id=disable[1],
            procedure=None,
            decision="approved",
            by="lee",
            role="lead",
            comment="go ahead",
            preapproved=True,
            distinct_required=True,
        )
        step(j, *disable)
        (j.run_dir / "outputs").mkdir()
        (j.run_dir / "outputs" / "output-1.png").write_bytes(PNG)
        out(
            j,
            *disable[:2],
            "display",
            text="<Figure>",
            data={"image/png": "outputs/output-1.png", "text/plain": "<Figure>"},
        )
        out(j, *disable[:2], "stream", stream="stdout", text="disabled\n")
        finish(j, *disable, "succeeded", 1.25)
        j.sync()
        decide(j, 5, "reset-mfa", "run")
        step(j, 5, "reset-mfa", "Reset MFA")
        out(
            j,
            5,
            "reset-mfa",
            "error",
            text="",
            ename="RuntimeError",
            evalue="MFA API unavailable",
            traceback=["\x1b[0;31mRuntimeError\x1b[0m: MFA API unavailable"],
        )
        finish(
            j,
            5,
            "reset-mfa",
            "Reset MFA",
            "failed",
            0.31,
            error="RuntimeError: MFA API unavailable",
        )
        help_desk = "ask-the-help-desk-to-reset-mfa-by-phone"
        decide(j, 1, help_desk, "done", waited=120.0)
        finish(
            j,
            1,
            help_desk,
            "Ask the help desk",
            "succeeded",
            120.0,
            procedure="manual-reset",
        )
        finish(
            j,
            5,
            "reset-mfa",
            "Reset MFA",
            "handled",
            0.0,
            attempt=0,
            attempts=0,
            reason="failed; handled by procedure manual-reset",
        )
        append_event(
            j,
            "run_finished",
            status="succeeded_with_handled_failures",
            duration=262.4,
            time_limit=1800.0,
            within_time_limit=True,
            counts={"succeeded": 4, "handled": 1},
            aborted=False,
        )
    return j.run_dir


def write_short_run(
    runs_dir: Path,
    run_id: str,
    *,
    status: str = "succeeded",
    duration: float = 60.0,
    mode: str = "run",
    time_limit: float | None = 1800.0,
    runbook_id: str = "compromised-account",
) -> Path:
    """A one-step run that ended with ``status`` after ``duration`` seconds."""
    j = Journal.create(runs_dir, run_id)
    with j:
        start(j, mode, runbook_info(id=runbook_id, name=runbook_id.title(), time_limit=time_limit))
        step(j, 1, "lookup", "Look up the user")
        step_status = "succeeded" if status.startswith("succeeded") else "failed"
        finish(j, 1, "lookup", "Look up the user", step_status, duration)
        within = None if time_limit is None else duration <= time_limit
        append_event(
            j,
            "run_finished",
            status=status,
            duration=duration,
            time_limit=time_limit,
            within_time_limit=within,
            counts={step_status: 1},
        )
    return j.run_dir


def all_bytes_under(folder: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()]


# --- tests -----------------------------------------------------------------------------------


def test_a_written_journal_is_intact_and_reads_back_in_order(tmp_path: Path) -> None:
    run_dir = write_full_run(tmp_path, "20260101T000000Z-compromised-account-aaaa")
    events = read_events(run_dir)
    result = verify(run_dir)
    assert result.ok, result.message
    assert result.lines == len(events)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["event"] == "run_started" and events[-1]["event"] == "run_finished"


def test_the_secret_is_redacted_in_the_journal(tmp_path: Path) -> None:
    run_dir = write_full_run(tmp_path, "20260101T000000Z-compromised-account-aaaa")
    for path, data in all_bytes_under(run_dir):
        assert SECRET.encode() not in data, path
    texts = [e.get("text", "") for e in read_events(run_dir)]
    assert "token in use: ***\n" in texts


def test_a_one_byte_edit_is_named_at_the_edited_line(tmp_path: Path) -> None:
    run_dir = write_full_run(tmp_path, "20260101T000000Z-compromised-account-aaaa")
    path = run_dir / JOURNAL
    lines = path.read_bytes().split(b"\n")
    edited = next(i for i, line in enumerate(lines) if b"has 3 sessions" in line)
    lines[edited] = lines[edited].replace(b"has 3", b"has 4")
    path.write_bytes(b"\n".join(lines))
    result = verify(run_dir)
    assert not result.ok
    # The edited line still parses and still follows its predecessor; its own hash gives it away.
    assert result.line == edited + 1
    assert result.message == f"line {edited + 1} was edited: it does not match its own hash"


def test_an_inserted_line_breaks_the_chain_where_it_stands(tmp_path: Path) -> None:
    run_dir = write_full_run(tmp_path, "20260101T000000Z-compromised-account-aaaa")
    path = run_dir / JOURNAL
    lines = path.read_bytes().split(b"\n")
    # A well-formed copy of line 3, sealed with its own correct hash, inserted after line 4.
    lines.insert(4, lines[2])
    path.write_bytes(b"\n".join(lines))
    result = verify(run_dir)
    assert not result.ok
    assert result.line == 5
    assert result.message.startswith("line 5 does not follow line 4")


def test_deleting_the_last_line_is_caught_by_the_head(tmp_path: Path) -> None:
    run_dir = write_full_run(tmp_path, "20260101T000000Z-compromised-account-aaaa")
    path = run_dir / JOURNAL
    lines = path.read_bytes().rstrip(b"\n").split(b"\n")
    path.write_bytes(b"\n".join(lines[:-1]) + b"\n")
    result = verify(run_dir)
    assert not result.ok
    assert "removed" in result.message
    assert json.loads((run_dir / HEAD).read_text())["seq"] == len(lines)


def test_summary_and_listing(tmp_path: Path) -> None:
    write_short_run(tmp_path, "20260101T000000Z-a-0001", status="failed", duration=30.0)
    write_full_run(tmp_path, "20260102T000000Z-compromised-account-0002")
    write_short_run(tmp_path, "20260103T000000Z-b-0003", runbook_id="phishing-triage")
    runs = list_runs(tmp_path)
    assert [r.run_id for r in runs] == [
        "20260103T000000Z-b-0003",
        "20260102T000000Z-compromised-account-0002",
        "20260101T000000Z-a-0001",
    ]
    full = runs[1]
    assert (full.status, full.duration, full.within_time_limit) == (
        "succeeded_with_handled_failures",
        262.4,
        True,
    )
    assert [r.run_id for r in list_runs(tmp_path, "phishing-triage")] == ["20260103T000000Z-b-0003"]


def test_a_run_without_run_finished_and_no_writer_is_crashed(tmp_path: Path) -> None:
    j = Journal.create(tmp_path, "20260101T000000Z-x-0001")
    start(j)
    step(j, 1, "lookup", "Look up the user")
    live = summary(j.run_dir)
    assert live is not None and live.status == "running"
    j.close()
    info = summary(j.run_dir)
    assert info is not None and info.status == "crashed"


def test_find_run_by_prefix_last_and_path(tmp_path: Path) -> None:
    a = write_short_run(tmp_path, "20260101T000000Z-a-0001")
    b = write_short_run(tmp_path, "20260102T000000Z-b-0002")
    assert find_run(tmp_path, "last") == b
    assert find_run(tmp_path, "20260101") == a
    assert find_run(tmp_path, str(a)) == a
    with pytest.raises(JournalError, match="matches 2 runs"):
        find_run(tmp_path, "2026")
    with pytest.raises(JournalError, match="no run 'nope'"):
        find_run(tmp_path, "nope")


def write_drill(runs_dir: Path, run_id: str) -> Path:
    """A drill with a 10-minute limit: a fault at step 2 handled by an alternative procedure
    whose manual step is slow, a note marking step 3 unclear; the run goes over its limit.
    Its manual step is journaled as the schema describes (step_started with no kernel)."""
    j = Journal.create(runs_dir, run_id)
    with j:
        start(j, "drill", runbook_info(time_limit=600.0))
        step(j, 1, "lookup", "Look up the user", role="analyst", total=3)
        out(j, 1, "lookup", "stream", stream="stdout", text="<script>alert(1)</script>\n")
        finish(j, 1, "lookup", "Look up the user", "succeeded", 30.0)
        append_event(j, "fault", step=2, step_id="isolate", description="EDR answers 500")
        step(j, 2, "isolate", "Isolate the host", role="analyst", total=3)
        out(
            j,
            2,
            "isolate",
            "error",
            ename="HTTPError",
            evalue="500 Server Error",
            traceback=["HTTPError: 500"],
        )
        finish(j, 2, "isolate", "Isolate the host", "failed", 5.0, error="HTTPError: 500")
        cable = (1, "pull-the-cable", "Pull the cable")
        step(j, *cable, procedure="manual-isolation", kernel=None, role="onsite", total=1)
        decide(
            j,
            *cable[:2],
            "done",
            by="omar",
            note="took a while to find the rack",
            waited=400.0,
            procedure="manual-isolation",
        )
        finish(j, *cable, "succeeded", 400.0, procedure="manual-isolation")
        finish(
            j,
            2,
            "isolate",
            "Isolate the host",
            "handled",
            0.0,
            reason="failed; handled by procedure manual-isolation",
        )
        step(j, 3, "notify", "Notify the owner", role="analyst", total=3)
        append_event(
            j,
            "note",
            step=3,
            step_id="notify",
            by="sam",
            role="analyst",
            text="which console?",
            unclear=True,
        )
        finish(j, 3, "notify", "Notify the owner", "succeeded", 20.0)
        append_event(
            j,
            "run_finished",
            status="succeeded_with_handled_failures",
            duration=700.0,
            time_limit=600.0,
            within_time_limit=False,
            counts={"succeeded": 3, "handled": 1},
            aborted=False,
        )
    return j.run_dir


CONTAIN_TEXT = """\
---
name: Contain host
service: endpoints
objective: Isolate a compromised host
time_limit: 10m
roles:
  analyst: SOC analyst
  lead: Incident lead
  onsite: Onsite technician
inputs:
  host: {type: string, required: true}
---
# Contain host

## Steps

1. Collect evidence

   Role: analyst

   ```python {id=snapshot}
   print("snapshot of", host)
   ```

   ```bash {id=hash}
   sha256sum /evidence/*
   ```

   ```python {id=upload}
   uploaded = True
   ```

2. Isolate the host

   Role: analyst

   ```bash {id=isolate approve=lead on_failure=procedure:manual-isolation}
   edr isolate "$HOST"
   ```

3. Tell the owner.

## Alternative procedures

### Manual isolation

1. Pull the cable

   Role: onsite
"""


def block(j: Journal, n: int, sid: str, bid: str, code: str, **f: Any) -> None:
    """block_started, as the runner writes it before each block of each attempt."""
    append_event(
        j,
        "block_started",
        step=n,
        step_id=sid,
        procedure=f.get("procedure"),
        block_id=bid,
        lang=f.get("lang", "python"),
        kernel=f.get("kernel", "python3"),
        code=code,
        attempt=f.get("attempt", 1),
    )


def block_end(j: Journal, bid: str, status: str, duration: float, exit_status: Any = None) -> None:
    append_event(
        j,
        "block_finished",
        block_id=bid,
        status=status,
        exit_status=exit_status,
        duration=duration,
    )


def write_block_run(runs_dir: Path, run_id: str, mode: str = "run") -> Path:
    """A run of CONTAIN_TEXT in the journal shape with block_started/block_finished, manual
    steps' step_started (kernel null) and decisions with a role. Step 1 has three blocks; its
    first attempt fails in the second block (output on stderr, no error event), its second
    runs all three, the last one silently. Step 2's approval is denied and the procedure
    `manual-isolation` handles it."""
    collect = (1, "snapshot", "Collect evidence")  # a step takes its first block's id
    sha = hashlib.sha256(CONTAIN_TEXT.encode()).hexdigest()
    info = runbook_info("runbooks/contain-host.md", id="contain-host", name="Contain host")
    info.update(sha256=sha, time_limit=600.0, objective="Isolate a compromised host")
    snapshot = 'print("snapshot of", host)\n'
    hash_code = "sha256sum /evidence/*\n"
    j = Journal.create(runs_dir, run_id)
    with j:
        start(j, mode, runbook=info, total_steps=3)
        append_event(
            j,
            "kernel_started",
            kernel="runbook-shell",
            language="bash",
            implementation="runbook-shell",
            version="0.1",
            language_version="5.2",
        )
        decide(j, *collect[:2], "run", role="analyst")
        for attempt in (1, 2):
            step(j, *collect, role="analyst", attempt=attempt, attempts=2, total=3)
            block(j, *collect[:2], "snapshot", snapshot, attempt=attempt)
            out(j, *collect[:2], "stream", block_id="snapshot", stream="stdout", text="snapshot\n")
            block_end(j, "snapshot", "succeeded", 0.5)
            shell = {"lang": "bash", "kernel": "runbook-shell", "attempt": attempt}
            block(j, *collect[:2], "hash", hash_code, **shell)
            if attempt == 1:
                out(j, *collect[:2], "stream", block_id="hash", stream="stderr", text="no such\n")
                block_end(j, "hash", "failed", 0.25, exit_status=1)
                finish(j, *collect, "failed", 1.0, attempts=2, exit_status=1, retry_in=0.0)
                continue
            out(j, *collect[:2], "stream", block_id="hash", stream="stdout", text="abc123\n")
            block_end(j, "hash", "succeeded", 0.25, exit_status=0)
            block(j, *collect[:2], "upload", "uploaded = True\n", attempt=2)
            block_end(j, "upload", "succeeded", 0.125)
            finish(j, *collect, "succeeded", 2.0, attempt=2, attempts=2, exit_status=0)
        _denied_and_handled(j)
        tell = (3, "tell-the-owner", "Tell the owner")
        step(j, *tell, kernel=None, total=3)
        decide(j, *tell[:2], "done", by="dana", waited=30.0)
        finish(j, *tell, "succeeded", 30.0)
        append_event(
            j,
            "run_finished",
            status="succeeded_with_handled_failures",
            duration=400.0,
            time_limit=600.0,
            within_time_limit=True,
            counts={"succeeded": 3, "handled": 1},
        )
    return j.run_dir


def _denied_and_handled(j: Journal) -> None:
    isolate = (2, "isolate", "Isolate the host")
    decide(j, *isolate[:2], "run", role="analyst")
    append_event(
        j,
        "approval_requested",
        step=2,
        step_id=isolate[1],
        procedure=None,
        approver_role="lead",
        code='edr isolate "web-1"',
    )
    append_event(
        j,
        "approval",
        step=2,
        step_id=isolate[1],
        procedure=None,
        decision="denied",
        by="lee",
        role="lead",
        comment="not during business hours",
        preapproved=False,
        distinct_required=True,
    )
    finish(j, *isolate, "denied", 0.0, reason="approval denied")
    decide(j, *isolate[:2], "on_failure", role="analyst", note="the runbook's policy applies")
    cable = (1, "pull-the-cable", "Pull the cable")
    step(j, *cable, procedure="manual-isolation", kernel=None, role="onsite", total=1)
    decide(
        j, *cable[:2], "done", by="omar", role="onsite", waited=300.0, procedure="manual-isolation"
    )
    finish(j, *cable, "succeeded", 300.0, procedure="manual-isolation")
    finish(
        j,
        *isolate,
        "handled",
        0.0,
        attempt=0,
        attempts=0,
        reason="denied; handled by procedure manual-isolation",
    )
