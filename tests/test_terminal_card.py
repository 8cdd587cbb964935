"""What a responder reads at an 80-column terminal (a real tmux pane, a real shell kernel): the
run header with the resolved inputs, the step card before Enter, a long code line folded and a
long output line whole, the clock against the time limit with its warning, a manual step as
reflowing text, and the summary's wall and active time."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from runner_helpers import RUNBOOK

from runner.text.live import crossed
from runner.text.terminal import FOLD_MARK

HASH = "5e" * 90  # a 180-character IOC: wider than the pane, it must come out in one line
URL = "https://intel.example/ioc/" + "c0ffee42" * 15
SECRET = "s3cret-token-value"

BOOK = f"""---
name: Card book
service: test
objective: Show everything before Enter
time_limit: 2s
roles:
  lead: Incident lead
inputs:
  host_id:
    type: string
    default: wks-0042
  api_token:
    type: string
    secret: true
---
# Card book

## Steps

### 1. Look the hash up

Role: lead

Check the hash against the intel feed. This first paragraph is long enough that the terminal
must reflow it rather than keep the line breaks of the source file it came from.

A second paragraph the card leaves out.

```bash {{timeout=1m retries=2 when="host_id != 'none'"}}
echo "{URL}" "$API_TOKEN" >/dev/null; echo "{HASH}"; echo "host $HOST_ID"; sleep 2
```

### 2. Call the owner

Role: lead

Phone the person who uses the device and ask whether they opened an attachment around the
time of the alert; then:

- tell them the laptop is cut off
- ask them not to reboot it

### 3. Isolate the device

```bash {{approve=lead}}
echo "isolating $HOST_ID"
```
"""


def _tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", *args], check=True, capture_output=True, text=True, timeout=30
    ).stdout


def _screen(session: str) -> str:
    # -J joins the lines the terminal itself wrapped, as a copy from the screen would; the
    # pane's empty lines below the cursor are dropped, so a length marks how far it got.
    return _tmux("capture-pane", "-p", "-J", "-t", session, "-S", "-300").rstrip()


def _wait_for(session: str, text: str, after: int = 0) -> str:
    """The screen once ``text`` appears in it past character ``after``."""
    until = time.monotonic() + 60
    while True:
        screen = _screen(session)
        if text in screen[after:]:
            return screen
        assert time.monotonic() < until, f"never saw {text!r}:\n{screen}"
        time.sleep(0.05)  # polling the screen for a marker, not guessing a delay


def _wait_count(session: str, text: str, count: int) -> str:
    """The screen once ``text`` is on it ``count`` times."""
    until = time.monotonic() + 60
    while True:
        screen = _screen(session)
        if screen.count(text) >= count:
            return screen
        assert time.monotonic() < until, f"never saw {text!r} {count} times:\n{screen}"
        time.sleep(0.05)  # polling the screen for a marker, not guessing a delay


def _send(session: str, *keys: str) -> None:
    _tmux("send-keys", "-t", session, *keys)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_header_card_fold_output_and_clock_at_80_columns(tmp_path: Path) -> None:
    (tmp_path / "book.md").write_text(BOOK)
    session = f"rb-card-{os.getpid()}-{time.monotonic_ns()}"
    env = f"TMPDIR={tmp_path} RUNBOOK_OPERATOR=carol NO_COLOR=1 RUNBOOK_INPUT_API_TOKEN={SECRET}"
    command = (
        f"cd {tmp_path} && {env} {RUNBOOK} run book.md --runs-dir runs; echo RUN-ENDED; sleep 600"
    )
    _tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "50", command)
    try:
        first = _wait_for(session, "help >")
        _send(session, "Enter")
        manual = _wait_for(session, "done (d)", len(first))
        _send(session, "d", "Enter")
        _wait_for(session, "note (optional) >", len(manual))
        _send(session, "Enter")
        gated = _wait_for(session, "help >", len(manual))
        _send(session, "Enter")
        approval = _wait_for(session, "leave for later (l) >", len(manual))
        _send(session, "a", "Enter")
        _wait_for(session, "approver's name", len(approval))
        _send(session, "Enter")
        _wait_for(session, "approver's role", len(approval))
        _send(session, "Enter")
        _wait_for(session, "comment (optional) >", len(approval))
        _send(session, "Enter")
        end = _wait_for(session, "RUN-ENDED", len(approval))
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False, timeout=30)

    assert SECRET not in end
    # The run header, before step 1: every resolved input, the secret as ***.
    header = first.split("[1/3]")[0]
    assert "Card book" in header and "time limit" in header
    assert re.search(r"input +host_id += wks-0042", header)
    assert re.search(r"input +api_token += \*\*\*", header)
    # The step card: the header with its clock, the first paragraph reflowed (its source
    # line break is gone), the policies, the values the code uses; then the code.
    card = first.split("[1/3]")[1]
    assert re.search(r"Look the hash up \(lead\) +\S+ of 2\.0s", card)
    assert "the terminal must reflow it" in card.replace("\n", " ")
    assert "terminal\nmust" not in card
    assert "A second paragraph" not in card
    assert "timeout 1m00s · retries 2 · only when host_id is not none" in card
    assert re.search(r"host_id += wks-0042", card) and re.search(r"api_token += \*\*\*", card)
    # The code is folded with a visible mark, never cut: every character is there.
    assert FOLD_MARK in card and URL in card.replace(FOLD_MARK + "\n", "")
    # The output is one line, exactly as the command wrote it.
    assert f"\n{HASH}\n" in manual
    # Step 2 starts past the limit: its header says so, once.
    assert re.search(r"\[2/3\] Call the owner \(lead\) +\S+ of 2\.0s", manual)
    assert "⚠ over the 2.0s time limit" in manual
    # A manual step reads as text: no `###` heading or Role line, lines reflowed, list kept.
    instructions = manual.split("[2/3]")[1]
    assert "###" not in instructions and "Role:" not in instructions
    assert "around the time of the alert; then:" in instructions
    assert "• tell them the laptop is cut off" in instructions
    assert end.count("⚠ over the 2.0s time limit") == 1
    # The gate on the card, then the approval screen.
    assert "needs approval by lead" in gated.split("[3/3]")[1]
    assert "export HOST_ID=wks-0042" in approval
    # The summary: wall and active time against the limit.
    assert re.search(r"wall \S+, active \S+, of the 2\.0s time limit \(over by", end)


def test_each_warning_once_and_only_the_highest_mark_passed() -> None:
    warned: set[float] = set()
    assert crossed(50, 100, warned) is None
    assert crossed(85, 100, warned) == "80% of the 1m40s time limit used"
    assert crossed(90, 100, warned) is None
    assert crossed(101, 100, warned) == "over the 1m40s time limit (by 1.0s)"
    assert crossed(200, 100, warned) is None
    assert crossed(500, None, set()) is None
    assert crossed(120, 100, set()) == "over the 1m40s time limit (by 20.0s)"


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_prompt_edits_lines_and_recalls_history(tmp_path: Path) -> None:
    (tmp_path / "book.md").write_text(
        BOOK.split("## Steps")[0] + '## Steps\n\n### 1. Say it\n\n```bash\necho "said it"\n```\n'
    )
    session = f"rb-edit-{os.getpid()}-{time.monotonic_ns()}"
    env = f"TMPDIR={tmp_path} RUNBOOK_OPERATOR=carol NO_COLOR=1 RUNBOOK_INPUT_API_TOKEN={SECRET}"
    command = f"cd {tmp_path} && {env} {RUNBOOK} run book.md; echo RUN-ENDED; sleep 600"
    _tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "50", command)
    try:
        _wait_count(session, "help >", 1)
        # Typed with a mistake, mended with the arrow keys and backspace, as in a shell.
        _send(session, "-l", "!echo abXd")
        _send(session, "Left", "BSpace", "c", "Enter")
        _wait_count(session, "\nabcd\n", 1)
        _wait_count(session, "help >", 2)
        _send(session, "Up", "Enter")  # the line from history, run again
        _wait_count(session, "\nabcd\n", 2)
        _wait_count(session, "help >", 3)
        _send(session, "Enter")
        _wait_count(session, "RUN-ENDED", 1)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False, timeout=30)
