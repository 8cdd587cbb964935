"""Parse speed: 1,000 generated runbooks of about 200 lines each, on one core.

Target: at least 500 runbooks/s. Also compares PyYAML's C loader with the pure-Python one for
the front matter, since the parser picks the C loader when it is available.

    .venv/bin/python benchmarks/bench_parse.py [--count 1000] [--repeat 3] [--instructions]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from runner.parse.markdown import parse_file

FRONT = """\
---
name: Generated runbook {n}
service: edr
owner: soc
severity: high
objective: Contain and resolve the threat within 1 hour
time_limit: 1h
roles:
  L1: SOC analyst on shift
  L2: Incident responder
  IR-lead: Incident response lead
tools: [curl, jq]
trigger:
  when: The XDR raises a high-severity alert
  match: {{source: xdr, severity: high}}
inputs:
  host_id: {{type: string, required: true, pattern: "^wks-[0-9]+$", description: EDR host}}
  alert_id: {{type: string, required: true, description: XDR alert id}}
  severity: {{type: string, enum: [low, medium, high, critical], default: high}}
  base_url: {{type: string, default: "http://127.0.0.1:8900"}}
tags: [edr, malware]
notify: [soc-lead]
---
# Generated runbook {n}

An endpoint raised an alert. This runbook confirms it, contains the device and collects evidence.

## When to use

When the **XDR** reports a *high* or *critical* detection on a workstation.

## Steps
"""

STEP = """
### {i}. Step number {i}
Role: L{role}

Check the state of the device in the [console](http://edr.example/hosts) and note the result in
the ticket. Compare with the previous step's output before you continue.

```bash {{id=step-{i} timeout=2m retries=1 when="severity in ['high','critical']" outputs=out_{i}}}
curl -fsS "$base_url/api/edr/hosts/$host_id" | jq -r '.status'
out_{i}=$(curl -fsS "$base_url/api/edr/alerts/$alert_id" | jq -r '.verdict')
echo "$out_{i}"
```

Expected output:

```text
isolated
```
"""

TAIL = """
## Success criteria

- The device is isolated
- A ticket holds the evidence

## Failure criteria

- The device still talks to the network

## Alternative procedures

### Manual isolation

Role: L2

1. Ask the network on-call to shut the switch port.
2. Confirm by phone with the owner.
"""


def runbook_text(n: int) -> str:
    steps = "".join(STEP.format(i=i, role=1 + i % 2) for i in range(1, 10))
    return FRONT.format(n=n) + steps + TAIL


def bench_parse(folder: Path, count: int, repeat: int) -> tuple[float, int]:
    paths = []
    for n in range(count):
        path = folder / f"rb-{n:04d}.md"
        path.write_text(runbook_text(n), encoding="utf-8")
        paths.append(path)
    lines = runbook_text(0).count("\n")
    parse_file(paths[0])  # warm up imports and caches
    best = float("inf")
    for _ in range(repeat):
        # CPU time, not wall time: on a shared machine other processes inflate the wall clock.
        # The best of several passes, as timeit reports: noise only ever adds time.
        start = time.process_time()
        for path in paths:
            runbook = parse_file(path)
            assert len(runbook.steps) == 9 and not runbook.problems
        best = min(best, time.process_time() - start)
    return best, lines


INSTRUCTION_FILES = 50


def parse_once(count: int) -> None:
    """Write INSTRUCTION_FILES runbooks, parse the first ``count``: the body of `--instructions`."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for n in range(INSTRUCTION_FILES):
            path = Path(tmp) / f"rb-{n:04d}.md"
            path.write_text(runbook_text(n), encoding="utf-8")
            paths.append(path)
        parse_file(paths[0])  # warm up, as in the timed run
        for path in paths[:count]:
            parse_file(path)


def instructions_per_runbook() -> int:
    """Instructions the CPU executes per runbook parsed, counted by valgrind's callgrind.

    Unlike time, the count does not move when other work shares the machine, so it compares two
    versions of the parser exactly. The process is run twice, parsing none and then
    INSTRUCTION_FILES runbooks; the difference, divided, leaves out start-up and imports.
    """
    counts = []
    for count in (0, INSTRUCTION_FILES):
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
               __file__, "--parse-once", str(count)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        found = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
        if found is None:
            raise SystemExit(f"no instruction count from valgrind:\n{proc.stderr[-2000:]}")
        counts.append(int(found.group(1).replace(",", "")))
    return (counts[1] - counts[0]) // INSTRUCTION_FILES


def bench_yaml(count: int) -> tuple[float, float]:
    front = FRONT.format(n=1).split("---\n")[1]
    timings = []
    for loader in (getattr(yaml, "CSafeLoader", yaml.SafeLoader), yaml.SafeLoader):
        start = time.perf_counter()
        for _ in range(count):
            yaml.load(front, Loader=loader)  # both loaders are safe loaders
        timings.append(time.perf_counter() - start)
    return timings[0], timings[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="passes; the best is reported")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions per runbook with valgrind (about a minute)",
    )
    parser.add_argument("--parse-once", type=int, help=argparse.SUPPRESS)  # see parse_once
    args = parser.parse_args()
    if args.parse_once is not None:
        parse_once(args.parse_once)
        return
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    with tempfile.TemporaryDirectory() as tmp:
        seconds, lines = bench_parse(Path(tmp), args.count, args.repeat)
    rate = args.count / seconds
    each = seconds / args.count * 1000
    print(f"parse: {args.count} runbooks of {lines} lines in {seconds:.2f}s CPU on one core "
          f"(best of {args.repeat}): "
          f"{rate:.0f} runbooks/s ({each:.2f} ms each); target >= 500/s")  # fmt: skip
    c_time, py_time = bench_yaml(args.count)
    c_each, py_each = c_time * 1000 / args.count, py_time * 1000 / args.count
    note = "" if hasattr(yaml, "CSafeLoader") else " (libyaml missing: same as pure)"
    print(f"front matter YAML x{args.count}: C loader {c_each:.3f} ms each{note}, "
          f"pure Python {py_each:.3f} ms each ({py_time / c_time:.1f}x slower)")  # fmt: skip
    if args.instructions:
        print(f"instructions per runbook (callgrind): {instructions_per_runbook():,}")


if __name__ == "__main__":
    main()
