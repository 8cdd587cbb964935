"""Runner benchmarks, all measured in one run on one machine (see docs/performance.md).

    .venv/bin/python benchmarks/bench_runner.py [--json] [--only overhead,process,shutdown,death]

1. runner overhead per step vs a bare jupyter_client execute loop on the same kernel
2. shell kernel round trip: trivial and 10-line steps
3. a one-step Python runbook as a whole `runbook run --yes` process, beside papermill for one cell
4. shutdown of a kernel pool (worst of 30)
5. kernel death noticed (p95 of 20)
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat

from runner.check.lint import load_for_run
from runner.exec.engine import RunContext, RunOptions
from runner.exec.operator import UnattendedOperator
from runner.exec.session import Session, execute
from runner.kernels.pool import ExecStatus, KernelPool
from runner.runs.journal import Journal
from runner.runs.redact import Redactor

BIN = Path(sys.executable).parent
HEAD = "---\nname: Bench\nservice: bench\n---\n# Bench\n\n## Steps\n\n"


def bare_loop(pool: KernelPool, n: int) -> list[float]:
    """jupyter_client's own minimal loop: execute, read iopub to idle, read the reply."""
    kc = pool.get("python3").kc
    assert kc is not None
    times = []
    for _ in range(n):
        start = time.perf_counter()
        msg_id = kc.execute("pass")
        while True:
            msg = kc.get_iopub_msg(timeout=10)
            if (
                msg["parent_header"].get("msg_id") == msg_id
                and msg["content"].get("execution_state") == "idle"
            ):
                break
        kc.get_shell_msg(timeout=10)
        times.append(time.perf_counter() - start)
    return times


def runner_steps(folder: Path, pool: KernelPool, n: int) -> float:
    """Seconds per step of the engine running n trivial Python steps (journal fsync included)."""
    steps = "".join(f"{i}. Step {i}.\n\n   ```python\n   pass\n   ```\n\n" for i in range(1, n + 1))
    path = folder / "steps.md"
    path.write_text(HEAD + steps)
    book = load_for_run(path)
    journal = Journal.create(folder / "runs", f"bench-{time.monotonic_ns()}", Redactor())
    operator = UnattendedOperator("bench")
    context = RunContext(str(path), "bench", "bench", None, False)
    session = Session(book, {}, (), operator, context, RunOptions())
    start = time.perf_counter()
    execute(session, pool, journal)  # closes the journal
    return (time.perf_counter() - start) / n


def shell_round_trips(pool: KernelPool, code: str, n: int) -> list[float]:
    session = pool.get("runbook-shell")
    times = []
    for _ in range(n):
        start = time.perf_counter()
        session.execute(code)
        times.append(time.perf_counter() - start)
    return times


def whole_process(folder: Path, n: int) -> list[float]:
    path = folder / "one.md"
    path.write_text(HEAD + "1. Say hello.\n\n   ```python\n   print('hello')\n   ```\n")
    env = {**os.environ, "RUNBOOK_RUNS_DIR": str(folder / "runs-cli")}
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(
            [BIN / "runbook", "run", str(path), "--yes"],
            env=env,
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - start)
    return times


def papermill(folder: Path, n: int) -> list[float]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('hello')")]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    src = folder / "one.ipynb"
    nbformat.write(nb, src)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(
            [BIN / "papermill", str(src), str(folder / "out.ipynb"), "--log-level", "ERROR"],
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - start)
    return times


def shutdowns(n: int) -> list[float]:
    times = []
    for _ in range(n):
        pool = KernelPool()
        pool.get("python3")
        start = time.perf_counter()
        pool.shutdown()
        times.append(time.perf_counter() - start)
    return times


def death_noticed(n: int) -> list[float]:
    times = []
    with KernelPool() as pool:
        for _ in range(n):
            session = pool.get("python3")
            pid = session.pid()
            assert pid is not None
            killed: list[float] = []

            def kill(pid: int = pid, killed: list[float] = killed) -> None:
                killed.append(time.perf_counter())
                os.kill(pid, signal.SIGKILL)

            timer = threading.Timer(0.2, kill)
            timer.start()
            result = session.execute("import time; time.sleep(30)")
            noticed = time.perf_counter()
            timer.join()
            assert result.status is ExecStatus.DIED
            times.append(noticed - killed[0])
    return times


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _sections() -> set[str]:
    """`--only process,shutdown` runs just those sections (all by default)."""
    names = {"overhead", "process", "shutdown", "death"}
    if "--only" in sys.argv:
        chosen = set(sys.argv[sys.argv.index("--only") + 1].split(","))
        unknown = chosen - names
        if unknown:
            raise SystemExit(f"--only: unknown sections {sorted(unknown)}; known: {sorted(names)}")
        return chosen
    return names


def main() -> None:
    ms = 1000.0
    results: dict[str, object] = {}
    sections = _sections()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "overhead" in sections:
            with KernelPool() as pool:
                pool.get("python3")
                bare_loop(pool, 50)  # warm up
                bare = statistics.median(bare_loop(pool, 300))
                per_step = statistics.median(runner_steps(folder, pool, 200) for _ in range(3))
                results["bare_loop_ms"] = bare * ms
                results["runner_step_ms"] = per_step * ms
                results["runner_overhead_ms"] = (per_step - bare) * ms
                trivial = shell_round_trips(pool, "true", 300)
                ten = shell_round_trips(
                    pool, "\n".join(f"X{i}=$(( {i} + 1 ))" for i in range(10)), 300
                )
                results["shell_trivial_ms_median"] = statistics.median(trivial) * ms
                results["shell_10_lines_ms_median"] = statistics.median(ten) * ms
        if "process" in sections:
            # Interleaved, so a machine that gets busier half-way weighs on both alike.
            whole: list[float] = []
            paper: list[float] = []
            for _ in range(7):
                whole += whole_process(folder, 1)
                paper += papermill(folder, 1)
            results["one_step_runbook_process_s_median"] = statistics.median(whole)
            results["one_step_runbook_process_s_best"] = min(whole)
            results["papermill_one_cell_s_median"] = statistics.median(paper)
            results["papermill_one_cell_s_best"] = min(paper)
        if "shutdown" in sections:
            down = shutdowns(30)
            results["shutdown_s_worst_of_30"] = max(down)
            results["shutdown_s_median"] = statistics.median(down)
        if "death" in sections:
            death = death_noticed(20)
            results["kernel_death_noticed_ms_p95"] = p(death, 0.95) * ms
            results["kernel_death_noticed_ms_median"] = statistics.median(death) * ms
    if "--json" in sys.argv:
        print(json.dumps(results, indent=2))
        return
    for key, value in results.items():
        print(f"{key:40s} {value:10.3f}")


if __name__ == "__main__":
    main()
