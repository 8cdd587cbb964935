"""Nothing a run starts outlives it: not when it ends cleanly, not when its runner is SIGKILLed
at any point. Every kernel runs under runner.kernels.reaper, a subreaper that dies with the
runner."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from runner_helpers import RUNBOOK, write_book

#: How long the survivors get to be cleaned up after the runner's death (an upper bound on
#: a loop that ends as soon as none is left; the cleanup itself takes well under a second).
CLEANUP_BOUND = 20.0


def _book(tmp_path: Path, tag: int, marker: Path) -> Path:
    return write_book(
        tmp_path,
        f"""
        1. Leave processes behind from the shell.

           ```bash
           sleep {tag}1 &
           (setsid sleep {tag}2 &)
           (setsid env -i sleep {tag}3 &)
           nohup sleep {tag}4 >/dev/null 2>&1 &
           ```

        2. And from Python.

           ```python
           import subprocess
           subprocess.Popen(["sleep", "{tag}5"], start_new_session=True)
           subprocess.Popen(["sh", "-c", "(sleep {tag}6 &)"], start_new_session=True)
           ```

        3. Wait to be killed.

           ```bash
           touch {marker}
           sleep {tag}7
           ```
        """,
    )


def _survivors(tag: int) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if f"sleep {tag}" in cmd and state != "Z":
            found.append(cmd.strip())
    return found


def _leftover_folders(tmp_path: Path) -> list[str]:
    return [
        p.name
        for p in tmp_path.iterdir()
        if p.name.startswith(("runbook-kernels-", "runbook-shell-"))
    ]


def _start(tmp_path: Path, book: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TMPDIR": str(tmp_path), "RUNBOOK_OPERATOR": "tester"}
    return subprocess.Popen(
        [RUNBOOK, "run", str(book), "--yes"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_until_clean(
    tmp_path: Path, tag: int, folders_too: bool = True
) -> tuple[list[str], list[str]]:
    """What is left once the reapers are done (or the bound passed). ``folders_too`` false:
    only processes are waited for (a folder the next run removes would wait out the bound)."""
    until = time.monotonic() + CLEANUP_BOUND
    while time.monotonic() < until:
        survivors, folders = _survivors(tag), _leftover_folders(tmp_path)
        if not survivors and (not folders or not folders_too):
            break
        time.sleep(0.05)
    return _survivors(tag), _leftover_folders(tmp_path)


@pytest.mark.slow
def test_a_runner_killed_mid_step_leaves_no_process_and_no_temp_folder(tmp_path: Path) -> None:
    tag = random.randrange(100000, 999999)
    marker = tmp_path / "in-step-3"
    runner = _start(tmp_path, _book(tmp_path, tag, marker))
    until = time.monotonic() + 120
    while not marker.exists():
        assert runner.poll() is None, "the run ended before step 3"
        assert time.monotonic() < until, "step 3 never started"
        time.sleep(0.02)
    # Every one of them is running before the kill (the last ones start asynchronously).
    while len(_survivors(tag)) < 7:
        assert time.monotonic() < until, f"only {_survivors(tag)} started"
        time.sleep(0.02)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    assert _wait_until_clean(tmp_path, tag) == ([], [])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_runner_killed_at_a_random_point_leaves_nothing(tmp_path: Path, seed: int) -> None:
    tag = random.randrange(100000, 999999)
    runner = _start(tmp_path, _book(tmp_path, tag, tmp_path / "marker"))
    time.sleep(random.Random(seed).uniform(0.2, 3.0))  # the point of the kill, not a wait
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    survivors, _ = _wait_until_clean(tmp_path, tag, folders_too=False)
    assert survivors == []
    # Killed before a kernel's reaper started, a runner leaves that kernel's folder (its
    # connection file), which the next run removes: no folder older than a run survives it.
    follow = write_book(tmp_path, "1. Next.\n\n   ```bash\n   true\n   ```\n", name="next.md")
    assert _start(tmp_path, follow).wait(timeout=120) == 0
    assert _leftover_folders(tmp_path) == []


def test_a_clean_run_stops_even_what_left_its_session_and_environment(tmp_path: Path) -> None:
    tag = random.randrange(100000, 999999)
    book = write_book(
        tmp_path,
        f"1. Escape.\n\n   ```bash\n   (setsid env -i sleep {tag}1 &)\n   ```\n",
    )
    runner = _start(tmp_path, book)
    assert runner.wait(timeout=120) == 0
    assert _survivors(tag) == []
    assert _leftover_folders(tmp_path) == []
