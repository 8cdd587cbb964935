"""Notifications: webhooks received by a real HTTP server on 127.0.0.1, from real runs: bodies,
signatures (checked with the intake's own verifier), retries, an outbox that survives a restart,
and a secret input that never reaches a body."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from runner_helpers import run_engine, write_book

from runner.errors import UsageError
from runner.notify.config import load_notify
from runner.notify.message import build
from runner.notify.outbox import Backoff, Deliverer, Outbox
from runner.runs.redact import Redactor
from runner.service.messages import RunSummary
from runner.service.notifying import notify_after
from runner.service.sources import Source, Verifier

SECRET = "s3cr3t-Token-4711"
SIGNING = "hook-signing-secret"


class Receiver:
    """Takes webhooks; answers 500 to the first ``fail`` of them."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.calls = 0
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls += 1
                ok = receiver.calls > receiver.fail
                if ok:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.got.append((self.path, headers, body))
                    receiver.arrived.set()
                self.send_response(200 if ok else 500)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail=2)
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "notify.yaml"
    path.write_text(
        "console_url: https://console.example/\n"
        "targets:\n"
        f"  soc-chat: {{url: {url}/slack, kind: slack}}\n"
        f"  siem: {{url: {url}/json, kind: json, secret_env: TEST_NOTIFY_SECRET}}\n"
    )
    return path


def _book(tmp_path: Path) -> Path:
    book = write_book(
        tmp_path,
        """
        1. Use the key.

           ```bash {id=use-key}
           echo "calling with $API_KEY"
           ```

        2. Isolate the host.

           ```bash {id=isolate approve=lead*2 approval_timeout=1h}
           echo "isolating with $API_KEY"
           ```
        """,
        inputs="api_key:\n  secret: true\n",
    )
    book.write_text(book.read_text().replace("roles:", "notify: [soc-chat, siem]\nroles:", 1))
    return book


def test_webhooks_are_signed_retried_kept_and_redacted(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_NOTIFY_SECRET", SIGNING)
    config = load_notify(_config(tmp_path, receiver.url))
    runs = tmp_path / "runs"
    result, _ = run_engine(_book(tmp_path), runs, inputs={"api_key": SECRET}, secrets=["api_key"])
    assert result.paused_step == "isolate"
    outbox = Outbox(tmp_path / "state" / "outbox.sqlite3", config, Backoff(base=0.0))
    summary = RunSummary(result.run_id, "paused", "isolate")
    notify_after(outbox, runs, summary, {"api_key": SECRET})
    notify_after(outbox, runs, summary, {"api_key": SECRET})  # an activity run twice
    assert len(outbox.pending()) == 2  # one per target, not per call

    assert outbox.deliver_due() == 0  # the receiver fails the first two deliveries
    assert outbox.deliver_due() == 2  # retried at once (the test's backoff is 0)
    rows = outbox.pending()
    assert [(r["attempts"], r["last_error"]) for r in rows] == [(2, "HTTP 500")] * 2
    assert all(r["delivered_at"] for r in rows)

    by_path = {path: (headers, body) for path, headers, body in receiver.got}
    slack = json.loads(by_path["/slack"][1])
    assert slack["text"].startswith("Approval needed: Test book") and "0 of 2" in slack["text"]
    links = slack["blocks"][1]["elements"][0]["text"]
    run_url = f"https://console.example/runs/{result.run_id}"
    assert f"<{run_url}|" in links and f"<{run_url}/steps/isolate|" in links
    assert all(b["type"] in ("section", "context") for b in slack["blocks"])  # no buttons
    headers, body = by_path["/json"]
    generic = json.loads(body)
    assert (generic["kind"], generic["step_id"], generic["role"]) == (
        "approval_needed",
        "isolate",
        "lead",
    )
    assert generic["event_id"] and generic["expires_at"]
    source = Source("siem", hmac_secret=SIGNING.encode())
    assert Verifier().check(source, headers, body) is None  # the intake's own scheme
    assert Verifier().check(source, headers, body + b" ") is not None

    # The outbox survives a restart: what was enqueued and not delivered is sent after it.
    failed = RunSummary(result.run_id, "failed")
    notify_after(outbox, runs, failed, {"api_key": SECRET})
    outbox.close()
    receiver.arrived.clear()
    again = Outbox(tmp_path / "state" / "outbox.sqlite3", config, Backoff(base=0.0))
    assert sum(1 for r in again.pending() if not r["delivered_at"]) == 2
    deliverer = Deliverer(again).start()
    try:
        while sum(1 for p, _, _ in receiver.got if p == "/json") < 2:
            assert receiver.arrived.wait(10), again.pending()
            receiver.arrived.clear()
    finally:
        deliverer.stop()
        again.close()
    kinds = [json.loads(b)["kind"] for p, _, b in receiver.got if p == "/json"]
    assert kinds == ["approval_needed", "run_failed"]
    for _, _, body in receiver.got:
        assert SECRET.encode() not in body


def test_a_secret_in_any_field_is_redacted() -> None:
    redactor = Redactor.for_inputs({"api_key": SECRET}, ["api_key"])
    note = build(
        "run_failed",
        {"run_id": "r1", "runbook": f"book {SECRET}", "status": "failed"},
        "http://127.0.0.1:8080",
        redactor,
        step="1",
        step_id="use-key",
        reason=f"curl: 401 for token {SECRET}",
    )
    assert SECRET not in note.text() and SECRET not in repr(note)


def test_a_bad_notify_file_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text("targets:\n  siem: {url: http://127.0.0.1:1/x, kind: json}\n")
    with pytest.raises(UsageError, match=r"targets\.siem: a json target's bodies are signed"):
        load_notify(path, {})
    path.write_text("targets:\n  chat: {url: ftp://x, kind: slack}\n")
    with pytest.raises(UsageError, match=r"targets\.chat: expected `url: https://"):
        load_notify(path, {})
