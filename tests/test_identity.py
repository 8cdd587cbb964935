"""The service's users: a real SQLite store, real argon2 hashes, the roles file as written."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest
from runner_helpers import RUNBOOK

from runner.errors import UsageError
from runner.identity.roles import load_roles
from runner.identity.store import DB_NAME, UserStore

pytest.importorskip("argon2")

PASSWORD = "correct horse battery"


@pytest.fixture
def roles(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "roles.yaml"
    path.write_text("IR-lead: [alice, group:ir]\nL1: [group:soc]\n")
    return load_roles(path)


def test_a_password_is_kept_hashed_and_checked(tmp_path: Path, roles) -> None:  # type: ignore[no-untyped-def]
    store = UserStore(tmp_path)
    store.add("alice", PASSWORD)
    store.add("bob", PASSWORD, ["ir", "soc"])
    raw = (tmp_path / DB_NAME).read_bytes()
    assert PASSWORD.encode() not in raw
    [stored] = (
        sqlite3.connect(tmp_path / DB_NAME)
        .execute("SELECT password FROM users WHERE name = 'alice'")
        .fetchone()
    )
    assert stored.startswith("$argon2id$")
    assert (tmp_path / DB_NAME).stat().st_mode & 0o077 == 0  # private to the service's user
    alice = store.check_password("alice", PASSWORD, roles)
    assert alice is not None and alice.user == "alice" and alice.auth == "password"
    assert alice.roles == {"IR-lead"}
    bob = store.check_password("bob", PASSWORD, roles)
    assert bob is not None and bob.roles == {"IR-lead", "L1"}  # both through groups
    assert store.check_password("alice", PASSWORD + "x", roles) is None
    assert store.check_password("nobody", PASSWORD, roles) is None


def test_a_token_is_shown_once_and_kept_as_its_digest(tmp_path: Path, roles) -> None:  # type: ignore[no-untyped-def]
    store = UserStore(tmp_path)
    store.add("alice", PASSWORD)
    token = store.new_token("alice", "laptop")
    assert token.startswith("rbt_") and len(token) > 40
    assert token.encode() not in (tmp_path / DB_NAME).read_bytes()
    assert store.new_token("alice") != token  # a new one each time, never the old one again
    who = store.check_token(token, roles)
    assert who is not None and who.user == "alice" and who.auth == "token"
    assert store.check_token(token[:-1] + "x", roles) is None
    assert [u.tokens for u in store.users()] == [2]
    assert store.revoke_tokens("alice") == 2 and store.check_token(token, roles) is None


def test_a_disabled_user_can_neither_sign_in_nor_use_a_token(tmp_path: Path, roles) -> None:  # type: ignore[no-untyped-def]
    store = UserStore(tmp_path)
    store.add("alice", PASSWORD)
    token = store.new_token("alice")
    who = store.check_password("alice", PASSWORD, roles)
    assert who is not None
    sid, _ = store.open_session(who)
    assert store.session(sid, roles) is not None
    store.disable("alice")
    assert store.check_password("alice", PASSWORD, roles) is None
    assert store.check_token(token, roles) is None
    assert store.session(sid, roles) is None  # signed out at once
    assert store.users()[0].disabled


def test_bad_users_and_passwords_are_refused_with_a_reason(tmp_path: Path) -> None:
    store = UserStore(tmp_path)
    with pytest.raises(UsageError, match="at least 12"):
        store.add("alice", "short")
    with pytest.raises(UsageError, match="not a user name"):
        store.add("Alice <script>", PASSWORD)
    store.add("alice", PASSWORD)
    with pytest.raises(UsageError, match="exists"):
        store.add("alice", PASSWORD)
    with pytest.raises(UsageError, match="no user bob"):
        store.new_token("bob")


def test_a_roles_file_mistake_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text("IR-lead: [alice]\nL1: alice\n")
    with pytest.raises(UsageError, match="role L1 maps to a list") as caught:
        load_roles(path)
    assert caught.value.line == 2
    path.write_text("IR-lead: [alice, 'group:']\n")
    with pytest.raises(UsageError, match="not a user or `group:NAME`"):
        load_roles(path)


def test_users_commands_show_a_token_once(tmp_path: Path) -> None:
    state = ["--state-dir", str(tmp_path)]
    added = subprocess.run(
        [RUNBOOK, "users", "add", "carol", "--group", "ir", "--password-stdin", *state],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
    )
    assert added.returncode == 0, added.stderr
    made = subprocess.run(
        [RUNBOOK, "users", "token", "carol", *state], capture_output=True, text=True
    )
    assert made.returncode == 0 and made.stdout.startswith("rbt_") and "once" in made.stderr
    listed = subprocess.run([RUNBOOK, "users", "list", *state], capture_output=True, text=True)
    assert "carol" in listed.stdout and "tokens=1" in listed.stdout
    assert made.stdout.strip() not in listed.stdout
    short = subprocess.run(
        [RUNBOOK, "users", "add", "dave", "--password-stdin", *state],
        input="short\n",
        capture_output=True,
        text=True,
    )
    assert short.returncode == 2 and "at least 12" in short.stderr
