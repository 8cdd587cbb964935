"""A fast Jupyter kernel for shell steps: one persistent bash per kernel, no pseudo-terminal.

``python -m runner.shell_kernel -f CONNECTION_FILE`` runs the kernel;
``python -m runner.shell_kernel install`` installs its kernelspec (see ``spec``).
This package file stays import-light: the kernel itself lives in ``kernel``.
"""
