"""Alerts start runbooks: normalisers into one envelope, the match language, input mapping,
routing and the dedup rules. Pure: nothing here runs a kernel, opens a socket or writes a file.

Imports stay one way: ``routing`` reads ``runner.format.model`` (and ``inputs``, ``errors``,
``parse``), never the engine, the kernels or the CLI. The package itself imports nothing, so that
the parser can load :mod:`runner.format.match` without paying for the normalisers.
"""
