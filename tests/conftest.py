"""Fixtures shared by the whole suite.

Every test seals its journals with a key of its own session, never the user's real one; and
one lab serves the session (reset by the tests that need a known state), on a free loopback
port with its own token.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.lab import LabServer
from runner.runs.key import KEY_ENV


@pytest.fixture(scope="session")
def _journal_key_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("journal-key") / "journal.key"


@pytest.fixture(autouse=True)
def _journal_key(_journal_key_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Set in the environment, so runners started as subprocesses use the same key.
    monkeypatch.setenv(KEY_ENV, str(_journal_key_path))
    return _journal_key_path


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    with LabServer(tmp_path_factory.mktemp("lab") / "lab.db", reset=True) as server:
        yield server
