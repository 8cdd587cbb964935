"""What a notification says: one :class:`Notification`, and its two bodies.

The facts come from the run's journal (already redacted there) and pass the run's redactor
once more, so a secret input's value cannot reach a receiver even through a step's title or an
alert field. Links point at the console, which asks for a login; no body carries an approve
link or button.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from runner.runs.redact import Redactor

#: The kinds a receiver may get.
KINDS = ("approval_needed", "decision_needed", "run_failed", "run_finished", "approval_expired")

_HEADLINES = {
    "approval_needed": "Approval needed",
    "decision_needed": "A person must decide",
    "run_failed": "Run failed",
    "run_finished": "Run finished",
    "approval_expired": "Approval expired",
}


@dataclass(frozen=True, slots=True)
class Notification:
    """One thing worth telling people about a run."""

    event_id: str  # stable for this event: receivers deduplicate redeliveries on it
    kind: str  # one of KINDS
    run_id: str
    runbook: str  # the runbook's name
    status: str  # the run's status
    step: str | None = None  # the step's number, when it is about one
    step_id: str | None = None
    step_title: str | None = None
    role: str | None = None  # who is asked (approval_needed), or was (approval_expired)
    approvals: str | None = None  # a quorum: "1 of 2"
    expires_at: str | None = None  # ISO time the gate expires
    reason: str | None = None  # why it failed, expired or escalated
    run_url: str = ""
    step_url: str | None = None

    def text(self) -> str:
        """One line, plain: the Slack fallback text and the JSON body's `text`."""
        head = f"{_HEADLINES.get(self.kind, self.kind)}: {self.runbook} (run {self.run_id})"
        if self.step:
            head += f", step {self.step} {self.step_title or self.step_id or ''}".rstrip()
        extra = [
            f"role {self.role}" if self.role else "",
            f"{self.approvals} approvals" if self.approvals else "",
            f"expires {self.expires_at}" if self.expires_at else "",
            self.reason or "",
        ]
        tail = "; ".join(e for e in extra if e)
        return f"{head}" + (f" — {tail}" if tail else "")


def build(
    kind: str,
    run: Mapping[str, Any],
    console_url: str,
    redactor: Redactor | None = None,
    **facts: Any,
) -> Notification:
    """A notification for ``run`` (run_id, runbook, status, seq: the journal's last event),
    every text value redacted."""
    redact = (redactor or Redactor.for_inputs({}, ())).text
    clean = {k: redact(str(v)) if isinstance(v, str) else v for k, v in facts.items()}
    run_id = str(run["run_id"])
    step_id = clean.get("step_id")
    base = console_url.rstrip("/")
    return Notification(
        event_id=f"{run_id}:{kind}:{step_id or '-'}:{run.get('seq', 0)}",
        kind=kind,
        run_id=run_id,
        runbook=redact(str(run.get("runbook") or "")),
        status=str(run.get("status") or ""),
        run_url=f"{base}/runs/{run_id}",
        step_url=f"{base}/runs/{run_id}/steps/{step_id}" if step_id else None,
        **clean,
    )


def json_body(note: Notification) -> bytes:
    """The generic body: every field, plus `text` (signed by the outbox)."""
    return json.dumps({**asdict(note), "text": note.text()}, ensure_ascii=False).encode()


def _mrkdwn(text: str) -> str:
    """Slack's own escaping: `&`, `<` and `>` would otherwise make links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(note: Notification) -> bytes:
    """A Slack-compatible incoming-webhook body: `text` and `blocks`, links only (no buttons:
    an approval is made behind the console's login, never from a chat message)."""
    links = [f"<{note.run_url}|Open the run in the console>"]
    if note.step_url:
        links.append(f"<{note.step_url}|Open step {_mrkdwn(str(note.step))}>")
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(note.text())}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(links)}]},
    ]
    return json.dumps({"text": note.text(), "blocks": blocks}, ensure_ascii=False).encode()
