"""``python -m runner.shell_kernel -f FILE`` runs the kernel; ``... install`` installs its spec."""

from __future__ import annotations

import argparse
import sys


def _install(argv: list[str]) -> None:
    from runner.shell_kernel.spec import install_kernelspec

    parser = argparse.ArgumentParser(
        prog="python -m runner.shell_kernel install",
        description="Install the runbook-shell kernelspec (default: into sys.prefix).",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--sys-prefix", action="store_true", help="install into sys.prefix (default)"
    )
    where.add_argument("--user", action="store_true", help="install for the current user")
    where.add_argument("--prefix", help="install under this prefix instead of sys.prefix")
    args = parser.parse_args(argv)
    path = install_kernelspec(prefix=args.prefix, user=args.user)
    print(f"installed kernelspec runbook-shell in {path}")


def main() -> None:
    if sys.argv[1:2] == ["install"]:
        _install(sys.argv[2:])
        return
    from runner.shell_kernel.kernel import launch

    launch()


if __name__ == "__main__":
    main()
