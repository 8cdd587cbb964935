"""Journal durability: the cost per step of keeping every event on disk before the next step.

    .venv/bin/python benchmarks/bench_journal.py [--steps 300] [--json]

A step writes what the engine writes for one (step_started, block_started, two outputs,
step_finished), then `sync()`, as the engine does before the next step. Measured: fsync calls
per step (counted by wrapping os.fsync) and the wall time per step, beside the scheme before
keyed heads (fsync of the journal, then journal.head written to a temporary file, fsynced and
renamed: two fsyncs and a rename per step), replayed here on the same disk.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from runner.runs.journal import Journal, Redactor
from runner.runs.key import KEY_ENV

_fsyncs = 0
_real_fsync = os.fsync


def _counting_fsync(fd: int) -> None:
    global _fsyncs
    _fsyncs += 1
    _real_fsync(fd)


def _step(journal: Journal, i: int) -> None:
    journal.append("step_started", step=i, step_id=f"s{i}", attempt=1)
    journal.append("block_started", step=i, step_id=f"s{i}", block_id="b", kernel="bash")
    for n in range(2):
        journal.append("output", step=i, kind="stream", stream="stdout", text=f"line {n}\n")
    journal.append("step_finished", step=i, step_id=f"s{i}", status="succeeded", duration=0.01)


def _old_head(journal: Journal, i: int) -> None:
    """What sync() did before: a head file written beside, fsynced and renamed."""
    head = journal.run_dir / "journal.head.old"
    tmp = head.with_suffix(".tmp")
    tmp.write_text(json.dumps({"seq": i, "sha256": "0" * 64}) + "\n")
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, head)


def measure(
    folder: Path, steps: int, extra: Callable[[Journal, int], None] | None
) -> dict[str, float]:
    global _fsyncs
    journal = Journal.create(folder, f"bench-{time.monotonic_ns()}", Redactor())
    times = []
    _fsyncs = 0
    for i in range(1, steps + 1):
        start = time.perf_counter()
        _step(journal, i)
        journal.sync()
        if extra is not None:
            extra(journal, i)
        times.append(time.perf_counter() - start)
    fsyncs = _fsyncs
    journal.close()
    return {
        "fsyncs_per_step": fsyncs / steps,
        "median_ms": statistics.median(times) * 1000,
        "p90_ms": sorted(times)[int(0.9 * len(times))] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.fsync = _counting_fsync
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        folder = Path(tmp)
        os.environ[KEY_ENV] = str(folder / "journal.key")  # never the user's own key
        now = measure(folder / "runs", args.steps, None)
        before = measure(folder / "runs", args.steps, _old_head)
    result = {"keyed_head_in_place": now, "before_two_fsyncs_and_rename": before}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, r in result.items():
        print(
            f"{name:32} {r['fsyncs_per_step']:.2f} fsync/step  "
            f"median {r['median_ms']:.2f} ms  p90 {r['p90_ms']:.2f} ms per step"
        )


if __name__ == "__main__":
    main()
