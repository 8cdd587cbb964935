"""The service as a SOC feels it, measured in one run (see docs/performance.md).

    .venv/bin/python benchmarks/bench_service.py [--alerts 1000] [--first 20] [--concurrent 20]

Starts `runbook serve` (embedded Temporal dev server, one worker) on generated runbooks, then:

1. intake: ``--alerts`` single-alert requests, one in five a duplicate of an earlier one, posted
   one after another; per-request latency p50/p99 and requests per second. The runbook they
   route to has manual steps only, so the runs they start cost no kernel and do not compete.
2. alert to first step: ``--first`` alerts of a one-step bash runbook, one at a time; from the
   POST to the run's `step_started` in its journal (p50/p99), cold kernels (no warm pool).
3. runs at once: ``--concurrent`` alerts of a runbook whose step sleeps 2 s, posted together with
   as many slots; the wall time until all are done, and the memory of the service's process
   tree at its peak.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

TOKEN = "bench-service-token-0123456789"
BOOK = """\
---
name: Bench {name}
service: bench
objective: Measure the service
trigger:
  when: a bench alert
  match:
    source: bench-{name}
  dedup_key: [id]
---
# Bench {name}

## Steps

{steps}
"""
MANUAL = "1. Look at the alert.\n\n2. Write it down.\n"
ONE_STEP = "1. Say hello.\n\n   ```bash\n   echo hello\n   ```\n"
SLEEPY = "1. Work for two seconds.\n\n   ```bash\n   sleep 2\n   ```\n"


def _books(folder: Path) -> None:
    for name, steps in (("intake", MANUAL), ("first", ONE_STEP), ("sleepy", SLEEPY)):
        (folder / f"bench-{name}.md").write_text(BOOK.format(name=name, steps=steps))


def _serve(root: Path, slots: int) -> tuple[subprocess.Popen[str], str]:
    books = root / "books"
    books.mkdir()
    _books(books)
    env = {**os.environ, "RUNBOOK_SERVICE_TOKEN": TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "serve", "--port", "0", "--runbooks", str(books),
         "--runs-dir", str(root / "runs"), "--state-dir", str(root / "state"),
         "--slots", str(slots)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or lines[-1] != "ready":
        line = process.stdout.readline()
        if not line:
            sys.exit("runbook serve ended before `ready`:\n" + "".join(lines))
        lines.append(line.rstrip("\n"))
    said = dict(line.split(": ", 1) for line in lines if ": " in line)
    return process, said["intake"]


def _post(client: httpx.Client, url: str, alert: dict[str, str]) -> dict[str, str]:
    answer = client.post(url + "?format=generic", json=alert)
    answer.raise_for_status()
    return dict(answer.json()["alerts"][0])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _runs_done(runs: Path, prefix: str) -> list[Path]:
    done = []
    for journal in runs.glob(f"*-bench-{prefix}-*/journal.jsonl"):
        text = journal.read_text()
        if '"run_finished"' in text or '"run_paused"' in text:
            done.append(journal.parent)
    return done


def _settle(runs: Path, prefix: str, expected: int, bound: float = 600.0) -> None:
    """Wait until the started runs are done (the next measurement must not compete with them);
    say so when some never are."""
    deadline = time.monotonic() + bound
    while len(_runs_done(runs, prefix)) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
    done = len(_runs_done(runs, prefix))
    if done < expected:
        print(f"  {expected - done} of {expected} {prefix} runs never finished", flush=True)


def _first_step_at(run_dir: Path) -> float | None:
    for line in (run_dir / "journal.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "step_started":
            return dt.datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp()
    return None


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and everything below it."""
    total = 0
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        me = int(entry.name)
        children.setdefault(int(fields["PPid"]), []).append(me)
        rss[me] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    todo = [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--first", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        root = Path(tmp)
        process, url = _serve(root, slots=args.concurrent)
        runs = root / "runs"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        try:
            with httpx.Client(headers=headers, timeout=60) as client:
                # 1. intake
                latencies: list[float] = []
                outcomes: dict[str, int] = {}
                start = time.perf_counter()
                for n in range(args.alerts):
                    ident = f"a-{n - 1 if n % 5 == 4 else n}"  # one in five repeats the last
                    alert = {"source": "bench-intake", "id": ident, "title": "intake"}
                    t0 = time.perf_counter()
                    outcome = _post(client, url, alert)["outcome"]
                    latencies.append(time.perf_counter() - t0)
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                took = time.perf_counter() - start
                print(flush=True)
                print(f"intake: {args.alerts} requests in {took:.1f} s = "
                      f"{args.alerts / took:.0f}/s; latency p50 {_pct(latencies, 0.5) * 1000:.1f} "
                      f"ms, p99 {_pct(latencies, 0.99) * 1000:.1f} ms; {outcomes}")  # fmt: skip
                _settle(runs, "intake", outcomes.get("started", 0))
                # 2. alert to first step
                waits: list[float] = []
                for n in range(args.first):
                    posted = time.time()
                    _post(client, url, {"source": "bench-first", "id": f"f-{n}", "title": "f"})
                    while len(_runs_done(runs, "first")) <= n:
                        time.sleep(0.01)
                    [run] = [r for r in _runs_done(runs, "first") if r.name not in _seen]
                    _seen.add(run.name)
                    at = _first_step_at(run)
                    if at is not None:
                        waits.append(at - posted)
                print(f"alert to first step ({len(waits)} runs, one at a time, cold kernels): "
                      f"p50 {_pct(waits, 0.5) * 1000:.0f} ms, p99 {_pct(waits, 0.99) * 1000:.0f} "
                      "ms")  # fmt: skip
                # 3. runs at once
                peak = 0
                stop = threading.Event()

                def sample() -> None:
                    nonlocal peak
                    while not stop.wait(0.1):
                        peak = max(peak, _tree_rss(process.pid))

                idle = _tree_rss(process.pid)
                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                start = time.perf_counter()
                for n in range(args.concurrent):
                    _post(client, url, {"source": "bench-sleepy", "id": f"s-{n}", "title": "s"})
                deadline = time.monotonic() + 300
                while len(_runs_done(runs, "sleepy")) < args.concurrent:
                    assert time.monotonic() < deadline, "the concurrent runs never finished"
                    time.sleep(0.05)
                took = time.perf_counter() - start
                stop.set()
                sampler.join()
                per_run = (peak - idle) / args.concurrent
                print(f"{args.concurrent} runs at once (each one 2 s bash step): all done in "
                      f"{took:.1f} s; service tree {idle / 2**20:.0f} MiB idle, "
                      f"{peak / 2**20:.0f} MiB at peak, {per_run / 2**20:.0f} MiB per running "
                      "run")  # fmt: skip
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(120)


_seen: set[str] = set()

if __name__ == "__main__":
    main()
