"""At an 80-column terminal (a real tmux pane) nothing is cut or re-wrapped: a long line of code
is folded with a visible mark and every character is there; a long output line is printed as
the command wrote it, in one piece, on screen and when piped."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from runner_helpers import RUNBOOK, cli, write_book

from runner.text.terminal import FOLD_MARK

HASH = "9f" * 100  # a 200-character IOC that must survive copying from the screen
URL = "https://intel.example/ioc/" + "a1b2c3d4" * 20


def _book(tmp_path: Path) -> Path:
    return write_book(
        tmp_path,
        f"""
        1. Print a long IOC.

           ```bash {{approve=true}}
           echo "{URL}" >/dev/null; echo "{HASH}"
           ```
        """,
    )


def _tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", *args], check=True, capture_output=True, text=True, timeout=30
    ).stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_code_and_output_are_whole_at_80_columns(tmp_path: Path) -> None:
    book = _book(tmp_path)
    session = f"rb-{os.getpid()}-{time.monotonic_ns()}"
    env = f"TMPDIR={tmp_path} RUNBOOK_OPERATOR=carol NO_COLOR=1"
    command = f"cd {tmp_path} && {env} {RUNBOOK} run {book.name}; echo RUN-ENDED; sleep 600"
    _tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "50", command)
    try:
        for prompt, key in (("help >", "Enter"), ("leave for later (l) >", "a")):
            screen = _wait_for(session, prompt)
            # The step card, then the approval screen: the code folded, every character there.
            shown = screen.rsplit("Print a long IOC", 1)[-1]
            joined = shown.replace(FOLD_MARK + "\n", "")
            assert URL in joined and HASH in joined
            assert FOLD_MARK in shown
            _tmux("send-keys", "-t", session, key, "Enter" if key != "Enter" else "")
        screen = _wait_for(session, "RUN-ENDED", answer=True)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False, timeout=30)
    # -J joins the lines the terminal itself wrapped: the output is one line, as written.
    assert f"\n{HASH}\n" in screen


def _wait_for(session: str, text: str, *, answer: bool = False) -> str:
    """The screen once ``text`` is on it; with ``answer``, Enter at any other prompt."""
    until = time.monotonic() + 60
    while True:
        screen = _tmux("capture-pane", "-p", "-J", "-t", session, "-S", "-200")
        if text.lower() in screen.lower():
            return screen
        if answer and screen.rstrip().endswith(">"):
            _tmux("send-keys", "-t", session, "Enter")
        assert time.monotonic() < until, f"never saw {text!r}:\n{screen}"
        time.sleep(0.05)  # polling the screen for a marker, not guessing a delay


def test_output_piped_is_never_re_wrapped(tmp_path: Path) -> None:
    book = write_book(tmp_path, f'1. Print.\n\n   ```bash\n   echo "{HASH}"\n   ```\n')
    ran = cli(["run", book.name, "--yes"], tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert f"{HASH}\n" in ran.stdout
