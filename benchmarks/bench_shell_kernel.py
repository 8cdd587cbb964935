"""How fast the runbook-shell kernel starts, runs steps and shuts down, via jupyter_client.

    python benchmarks/bench_shell_kernel.py [--cells 200] [--starts 10]
        [--bash-kernel DIR]   # also measure stock bash_kernel, importable from DIR

Stock bash_kernel is not a project dependency; to compare, install it somewhere apart,
``pip install --target DIR --no-deps bash_kernel filetype`` (pexpect comes with the
project's environment), and pass ``--bash-kernel DIR``.
Targets: trivial step <= 5 ms, 10-line step <= 10 ms, start <= 0.8 s, no shutdown stall.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_client import BlockingKernelClient, KernelManager
from jupyter_client.kernelspec import KernelSpecManager

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.shell_kernel.spec import KERNEL_NAME, ensure_kernelspec

TIMEOUT = 60
TRIVIAL = "true"
TEN_LINES = "\n".join(f'step_{n}="value {n}"; echo "line {n}: $step_{n}"' for n in range(10))

ManagerFactory = Callable[[], KernelManager]


def run_cell(kc: BlockingKernelClient, code: str) -> dict[str, Any]:
    """One round trip as a client sees it: request, iopub until idle, then the reply."""
    msg_id = kc.execute(code)
    while True:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
        ):
            break
    while True:
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        if reply["parent_header"].get("msg_id") == msg_id:
            content: dict[str, Any] = reply["content"]
            return content


def start(factory: ManagerFactory) -> tuple[KernelManager, BlockingKernelClient, float, float]:
    """Start a kernel: (seconds to its first kernel_info_reply, to wait_for_ready returning).

    wait_for_ready ends by draining iopub until 0.2 s pass in silence, so it is always
    0.2 s behind the moment the kernel could take a step.
    """
    began = time.perf_counter()
    km = factory()
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    replied = None
    while replied is None:
        if not km.is_alive():
            raise RuntimeError("the kernel died while starting")
        msg_id = kc.kernel_info()
        with contextlib.suppress(queue.Empty):
            while True:
                reply = kc.get_shell_msg(timeout=1)
                if reply["parent_header"].get("msg_id") == msg_id:
                    replied = time.perf_counter() - began
                    break
    kc.wait_for_ready(timeout=TIMEOUT)
    return km, kc, replied, time.perf_counter() - began


def exited(pid: int) -> bool:
    """Whether the kernel process has finished (a zombie not yet reaped counts)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def shutdown(km: KernelManager, kc: BlockingKernelClient) -> tuple[float, float]:
    """(until the kernel process is gone, until KernelManager.shutdown_kernel returns)."""
    kc.stop_channels()
    pid = km.provisioner.process.pid
    gone: list[float] = []

    def watch() -> None:
        while not exited(pid):
            time.sleep(0.001)
        gone.append(time.perf_counter())

    watcher = threading.Thread(target=watch, daemon=True)
    began = time.perf_counter()
    watcher.start()
    km.shutdown_kernel()
    total = time.perf_counter() - began
    watcher.join(timeout=TIMEOUT)
    return gone[0] - began, total


def measure(factory: ManagerFactory, cells: int, starts: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {
        "start to first kernel_info_reply (s)": [],
        "start to wait_for_ready() return (s)": [],
        "trivial step (ms)": [],
        "10-line step (ms)": [],
        "kernel process gone (s)": [],
        "shutdown_kernel() (s)": [],
    }
    for index in range(starts):
        km, kc, replied, ready = start(factory)
        figures["start to first kernel_info_reply (s)"].append(replied)
        figures["start to wait_for_ready() return (s)"].append(ready)
        if index == 0:
            for code, key in ((TRIVIAL, "trivial step (ms)"), (TEN_LINES, "10-line step (ms)")):
                run_cell(kc, code)  # warm-up
                for _ in range(cells):
                    began = time.perf_counter()
                    reply = run_cell(kc, code)
                    figures[key].append((time.perf_counter() - began) * 1000)
                    assert reply["status"] == "ok", reply
        exited, total = shutdown(km, kc)
        figures["kernel process gone (s)"].append(exited)
        figures["shutdown_kernel() (s)"].append(total)
    return figures


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def bash_kernel_factory(site_dir: str, spec_root: str) -> ManagerFactory:
    """A kernelspec for stock bash_kernel under ``spec_root``, importable from ``site_dir``."""
    spec_dir = Path(spec_root) / "bash"
    spec_dir.mkdir()
    pythonpath = os.pathsep.join(filter(None, [site_dir, os.environ.get("PYTHONPATH")]))
    spec = {
        "argv": [sys.executable, "-m", "bash_kernel", "-f", "{connection_file}"],
        "display_name": "Bash",
        "language": "bash",
        "env": {"PYTHONPATH": pythonpath},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    manager = KernelSpecManager(kernel_dirs=[spec_root])
    return lambda: KernelManager(kernel_name="bash", kernel_spec_manager=manager)


def table(results: dict[str, dict[str, list[float]]]) -> str:
    names = list(results)
    header = ["metric", *(f"{name} median / p95" for name in names)]
    rows = [header]
    for metric in next(iter(results.values())):
        row = [metric]
        for name in names:
            values = results[name][metric]
            digits = 1 if "(ms)" in metric else 3
            row.append(
                f"{statistics.median(values):.{digits}f} / {percentile(values, 0.95):.{digits}f}"
            )
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=200, help="round trips per cell kind")
    parser.add_argument("--starts", type=int, default=10, help="kernel starts and shutdowns")
    parser.add_argument("--bash-kernel", metavar="DIR", help="compare with bash_kernel from DIR")
    args = parser.parse_args()
    ensure_kernelspec()
    results = {
        KERNEL_NAME: measure(
            lambda: KernelManager(kernel_name=KERNEL_NAME), args.cells, args.starts
        )
    }
    if args.bash_kernel:
        with tempfile.TemporaryDirectory(prefix="bench-bash-kernel-") as spec_root:
            factory = bash_kernel_factory(args.bash_kernel, spec_root)
            results["bash_kernel"] = measure(factory, args.cells, args.starts)
    print(f"{args.cells} round trips per step kind, {args.starts} starts; {os.cpu_count()} CPUs")
    print(table(results))


if __name__ == "__main__":
    main()
