"""Jupyter kernels: starting, running blocks, restarting, reaping; Ctrl-C as a token."""
