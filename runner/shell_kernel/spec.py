"""The ``runbook-shell`` kernelspec: what Jupyter needs to find and start the kernel."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any

#: The kernelspec name the runner asks jupyter_client for.
KERNEL_NAME = "runbook-shell"
#: What Jupyter front ends show for the kernel.
DISPLAY_NAME = "Shell (runbook)"


def kernel_json() -> dict[str, Any]:
    """The kernelspec for this interpreter."""
    return {
        "argv": [sys.executable, "-m", "runner.shell_kernel", "-f", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "bash",
        # An interrupt_request reaches the kernel even when the client cannot signal
        # its process (remote provisioners); the kernel relays it to bash as SIGINT.
        "interrupt_mode": "message",
        "metadata": {"debugger": False},
    }


def install_kernelspec(prefix: str | None = None, user: bool = False) -> str:
    """Install the kernelspec under ``prefix`` (default ``sys.prefix``) or for the user.

    Returns the directory it was installed into.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory(prefix="runbook-shell-spec-") as source:
        with open(os.path.join(source, "kernel.json"), "w", encoding="utf-8") as handle:
            json.dump(kernel_json(), handle, indent=2)
        target: str = KernelSpecManager().install_kernel_spec(
            source,
            KERNEL_NAME,
            user=user,
            prefix=None if user else (prefix or sys.prefix),
        )
    return target


def installed_path(prefix: str | None = None) -> str:
    """Where ``install_kernelspec(prefix)`` puts ``kernel.json``."""
    base = prefix or sys.prefix
    return os.path.join(base, "share", "jupyter", "kernels", KERNEL_NAME, "kernel.json")


def ensure_kernelspec() -> None:
    """Install the kernelspec into ``sys.prefix`` unless an up-to-date one is there.

    "Up to date" means it starts this interpreter: a venv that was moved or rebuilt
    leaves a spec pointing at a Python that no longer exists.
    """
    try:
        with open(installed_path(), encoding="utf-8") as handle:
            current = json.load(handle)
    except (OSError, ValueError):
        current = None
    if current != kernel_json():
        install_kernelspec()
