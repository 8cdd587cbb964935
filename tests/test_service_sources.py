"""Per-source credentials: a file's mistakes named with the entry, tokens compared by digest,
HMAC signatures checked against the body, the clock and replays. Pure: no server."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path

import pytest

from runner.errors import UsageError
from runner.service.sources import Source, Verifier, load_sources

SECRET = b"shared-secret-of-the-edr"


def _signed(body: bytes, stamp: int | None = None, secret: bytes = SECRET) -> dict[str, str]:
    ts = str(stamp if stamp is not None else int(time.time()))
    mac = hmac.new(secret, ts.encode() + b"." + body, "sha256").hexdigest()
    return {"x-runbook-timestamp": ts, "x-runbook-signature": f"sha256={mac}"}


def test_a_signed_request_passes_once_and_its_replay_is_refused() -> None:
    edr = Source("edr", hmac_secret=SECRET)
    verifier = Verifier()
    body = b'{"id": "a-1"}'
    headers = _signed(body)
    assert verifier.check(edr, headers, body) is None
    assert "replay" in (verifier.check(edr, headers, body) or "")


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("unsigned", "signs its requests"),
        ("tampered", "does not match"),
        ("too-old", "replay window"),
        ("wrong-secret", "does not match"),
    ],
)
def test_a_bad_signature_is_refused_with_the_reason(case: str, why: str) -> None:
    # Signed here, as the test runs: a signature made at collection would age past the window.
    body = b"{}"
    headers = {
        "unsigned": {},
        "tampered": _signed(b'{"tampered": 1}'),
        "too-old": _signed(body, stamp=int(time.time()) - 3600),
        "wrong-secret": _signed(body, secret=b"another"),
    }[case]
    assert why in (Verifier().check(Source("edr", hmac_secret=SECRET), headers, body) or "")


def test_a_token_source_is_checked_by_its_digest() -> None:
    source = Source("am", token_sha256=hashlib.sha256(b"tok-123").digest())
    verifier = Verifier()
    assert verifier.check(source, {"authorization": "Bearer tok-123"}, b"") is None
    assert verifier.check(source, {"authorization": "Bearer nope"}, b"") is not None
    assert verifier.check(source, {}, b"") is not None


def test_the_sources_file_is_read_and_its_mistakes_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDR_SECRET", "s3cret-value")
    good = tmp_path / "sources.yaml"
    digest = hashlib.sha256(b"tok").hexdigest()
    good.write_text(
        f"sources:\n  am:\n    token_sha256: {digest}\n    format: alertmanager\n"
        "  edr:\n    hmac_secret_env: EDR_SECRET\n"
    )
    found = load_sources(good)
    assert found["am"].format == "alertmanager" and found["edr"].hmac_secret == b"s3cret-value"
    for text, said in [
        ("sources:\n  x:\n    token_sha256: abc\n", "64 lowercase hex"),
        ("sources:\n  x:\n    hmac_secret_env: NOT_SET_ANYWHERE\n", "$NOT_SET_ANYWHERE is not set"),
        (f"sources:\n  x:\n    token_sha256: {digest}\n    hmac_secret_env: EDR_SECRET\n",
         "exactly one"),
        ("sources:\n  Bad Name:\n    hmac_secret_env: EDR_SECRET\n", "lowercase letters"),
        ("nothing: here\n", "`sources:` mapping"),
    ]:  # fmt: skip
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(UsageError) as caught:
            load_sources(bad)
        assert said in str(caught.value) and str(bad) in str(caught.value), caught.value


def test_the_secrets_file_must_be_private_and_its_content_is_never_quoted(
    tmp_path: Path,
) -> None:
    from runner.service.secrets_file import load_secrets

    path = tmp_path / "secrets.yaml"
    path.write_text("api_token: tok-value-123456\n")
    path.chmod(0o600)
    assert load_secrets(path) == {"api_token": "tok-value-123456"}
    path.chmod(0o644)
    with pytest.raises(UsageError, match="chmod 600"):
        load_secrets(path)
    path.chmod(0o600)
    path.write_text("api_token: [unclosed tok-value-123456\n")
    with pytest.raises(UsageError) as caught:
        load_secrets(path)
    assert "tok-value" not in str(caught.value)  # a parse error never quotes the secret
    link = tmp_path / "link.yaml"
    link.symlink_to(path)
    with pytest.raises(UsageError, match="symbolic link"):
        load_secrets(link)
