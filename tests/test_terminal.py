"""Untrusted text at a terminal: each class of escape sequence is shown, none is obeyed.

The bytes a printer writes are fed to a VT emulator (pyte), and the test reads its screen, its
title and its cursor as a person would see them.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyte
import pytest
from rich.console import Console
from runner_helpers import append_event
from test_records_cli import run_cli

from runner.cli.running import RichReporter
from runner.runs.events import decode
from runner.runs.journal import Journal, Redactor

# Each class of sequence a compromised host could print: name, the bytes, what must not happen.
ATTACKS = {
    "clear screen": "\x1b[2J\x1b[H",
    "line above rewritten": "\x1b[1A\r\x1b[2K\x1b[32msucceeded\x1b[0m",
    "window title": "\x1b]0;pwned\x07",
    "clipboard write": "\x1b]52;c;ZWNobyBwd25lZA==\x07",
    "hidden link": "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "carriage return": "hidden\rshown",
    "backspace": "abc\x08\x08\x08xyz",
    "C1 CSI": "\x9b2J",
    "bidi override": "\u202eevil\u202c",
}


def _screen(data: str, lines: int = 60) -> pyte.Screen:
    screen = pyte.Screen(200, lines)
    stream = pyte.Stream(screen)
    stream.feed(data.replace("\n", "\r\n"))
    return screen


def _shown(screen: pyte.Screen) -> str:
    return "\n".join(line.rstrip() for line in screen.display)


def _assert_nothing_obeyed(screen: pyte.Screen, first_line: str) -> None:
    text = _shown(screen)
    assert screen.display[0].rstrip() == first_line  # nothing cleared or rewrote it
    assert screen.title == ""  # no title set
    assert "\\x1b[2J" in text and "\\x1b]0;pwned\\x07" in text and "\\x1b]52;c;" in text
    assert "hidden\\x0dshown" in text and "abc\\x08\\x08\\x08xyz" in text
    assert "\\x9b2J" in text and "\\u202eevil\\u202c" in text
    assert "\\x1b]8;;https://evil.example/" in text


def test_live_output_shows_every_sequence_and_keeps_colour(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200, color_system="standard")
    reporter = RichReporter(console)
    console.print("before the step")
    for name, attack in ATTACKS.items():
        reporter.on_event(
            decode(
                {
                    "event": "output",
                    "kind": "stream",
                    "stream": "stdout",
                    "text": f"{name}: {attack}\n",
                }
            )
        )
    reporter.on_event(
        decode(
            {
                "event": "output",
                "kind": "stream",
                "stream": "stdout",
                "text": "\x1b[31mred\x1b[0m\n",
            }
        )
    )
    reporter.on_event(
        decode(
            {
                "event": "step_finished",
                "step": 1,
                "step_id": "s",
                "title": "Look \x1b[2J up",
                "status": "failed",
                "duration": 1.0,
                "error": "boom \x1b]0;title\x07",
            }
        )
    )
    screen = _screen(out.getvalue())
    _assert_nothing_obeyed(screen, "before the step")
    text = _shown(screen)
    assert "Look \\x1b[2J up" in text and "boom \\x1b]0;title\\x07" in text
    red_line = next(i for i, line in enumerate(screen.display) if line.startswith("red"))
    assert screen.buffer[red_line][0].fg == "red"  # the step's own colour still shows


def test_runbook_log_shows_every_sequence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    with Journal.create(runs, "20260101T000000Z-hostile-0001", Redactor()) as j:
        append_event(
            j,
            "run_started",
            run_id=j.run_id,
            runbook={"id": "hostile", "name": "Hostile \x1b]0;t\x07", "path": "x.md"},
            operator="op",
            host="h",
            mode="run",
            inputs={"host": "web\x1b[2J01"},
        )
        append_event(j, "step_started", step=1, step_id="s", title="S", attempt=1)
        for name, attack in ATTACKS.items():
            append_event(
                j,
                "output",
                step=1,
                step_id="s",
                block_id="b",
                kind="stream",
                stream="stdout",
                text=f"{name}: {attack}\n",
            )
        append_event(
            j, "step_finished", step=1, step_id="s", title="S", status="failed", error="e\x07"
        )
        append_event(j, "run_finished", status="failed", duration=1.0)
    code, out, _ = run_cli(capsys, "log", "last", "--runs-dir", str(runs))
    assert code == 0
    screen = _screen(out, lines=80)
    _assert_nothing_obeyed(screen, "Hostile \\x1b]0;t\\x07")
    assert "web\\x1b[2J01" in _shown(screen)
