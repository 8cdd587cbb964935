"""Fixtures shared by the whole suite: one lab per test session (reset by the tests that need a
known state), started on a free loopback port with its own token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runner.lab import LabServer


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    with LabServer(tmp_path_factory.mktemp("lab") / "lab.db", reset=True) as server:
        yield server
