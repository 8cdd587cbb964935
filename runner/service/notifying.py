"""From where a run stands (after an activity) to the notifications its runbook's `notify:`
asks for, enqueued in the outbox (runner.notify); the deliverer sends them."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from runner.exec.session import gate_deadline_of, open_run
from runner.format.model import Runbook
from runner.notify.message import build
from runner.notify.outbox import Outbox
from runner.parse.markdown import parse_text
from runner.runs import events as ev
from runner.runs.redact import Redactor
from runner.runs.store import kept_runbook
from runner.service.messages import RunSummary

log = logging.getLogger(__name__)


def notify_after(
    outbox: Outbox | None,
    runs_dir: Path,
    summary: RunSummary,
    secrets: dict[str, str],
    expired: ev.ApprovalEscalated | ev.ApprovalExpired | None = None,
) -> None:
    """Enqueue what ``summary`` (and a gate's expiry) is worth telling; never raises: a
    notification that cannot be built must not fail the run's attempt."""
    if outbox is None:
        return
    try:
        _notify(outbox, runs_dir, summary, secrets, expired)
    except Exception:  # logged: the run's own state is in its journal, whatever happens here
        log.exception("notifications for run %s not enqueued", summary.run_id)


def _notify(
    outbox: Outbox,
    runs_dir: Path,
    summary: RunSummary,
    secrets: dict[str, str],
    expired: ev.ApprovalEscalated | ev.ApprovalExpired | None,
) -> None:
    run = open_run(runs_dir, summary.run_id)
    record = run.record
    text = kept_runbook(run.run_dir, run.state.sha256)
    book: Runbook | None = parse_text(text, run.run_dir / "runbook.md") if text else None
    targets = book.metadata.notify if book else ()
    if not targets:
        return
    names = [s.name for s in book.metadata.inputs if s.secret] if book else []
    redactor = Redactor.for_inputs({n: secrets[n] for n in names if n in secrets}, names)
    base = {
        "run_id": record.run_id,
        "runbook": record.name,
        "status": summary.status,
        "seq": record.events,
    }
    url = outbox.config.console_url
    notes = []
    if expired is not None:
        if isinstance(expired, ev.ApprovalEscalated):
            was, why = expired.from_role, f"escalated to {expired.role}"
        else:
            was, why = expired.role, expired.reason
        notes.append(
            build(
                "approval_expired",
                {**base, "seq": expired.seq},
                url,
                redactor,
                step=str(expired.step),
                step_id=expired.step_id,
                role=was,
                reason=why,
            )
        )
    if summary.status == "paused" and summary.paused_step:
        waiting = record.waiting(summary.paused_step)
        gate = record.gate_for(waiting) if waiting else None
        deadline = gate_deadline_of(run, waiting) if waiting else None
        notes.append(
            build(
                "approval_needed",
                base,
                url,
                redactor,
                step=str(waiting.step) if waiting else summary.paused_step,
                step_id=str(waiting.step_id) if waiting else summary.paused_step,
                step_title=waiting.title if waiting else None,
                role=gate.role if gate else None,
                approvals=f"{len(gate.approvals)} of {gate.needed}"
                if gate and gate.needed > 1
                else None,
                expires_at=dt.datetime.fromtimestamp(deadline, dt.UTC).isoformat(timespec="seconds")
                if deadline
                else None,
            )
        )
    elif summary.status == "interrupted":
        notes.append(build("decision_needed", base, url, redactor, reason=summary.reason))
    elif summary.status in ("failed", "cancelled", "not_started"):
        failed = next(
            (s for s in record.steps if s.status in ("failed", "timed_out", "denied")), None
        )
        notes.append(
            build(
                "run_failed",
                base,
                url,
                redactor,
                step=str(failed.number) if failed else None,
                step_id=failed.step_id if failed else None,
                step_title=failed.title if failed else None,
                reason=(failed.error or failed.reason) if failed else summary.reason,
            )
        )
    elif summary.status.startswith("succeeded"):
        notes.append(build("run_finished", base, url, redactor))
    for note in notes:
        unknown = outbox.enqueue(note, tuple(targets))
        if unknown:
            log.warning("run %s: notify names no target in notify.yaml: %s", record.run_id,
                        ", ".join(unknown))  # fmt: skip
