"""A kernel's sockets are Unix socket files, whose path holds at most 107 bytes: a long TMPDIR
(a deep CI workspace, a pytest folder) must not turn a run into "File name too long"."""

from __future__ import annotations

from pathlib import Path

from runner_helpers import cli, finished, read_events, write_book

STEP = """
1. Say hello.

   ```bash
   echo "hello from a kernel"
   ```
"""


def test_a_run_works_under_a_temporary_directory_too_long_for_sockets(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 40)  # with the pool's folders, well over 107 bytes
    deep.mkdir(parents=True)
    assert len(str(deep)) + len("/runbook-kernels-99999-abcdefgh/k0-1/k-4") > 107
    book = write_book(deep, STEP)
    runs = deep / "runs"
    done = cli(["run", str(book), "--yes", "--runs-dir", str(runs)], deep)  # TMPDIR=deep
    assert done.returncode == 0, done.stderr
    assert "hello from a kernel" in done.stdout
    [run_dir] = runs.iterdir()
    assert finished(read_events(run_dir)) == {"say-hello": "succeeded"}
