"""What the console's pages show, read from the runs folder and the service's state (the fold
of each journal, never its raw lines); the templates only lay it out."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.exec.policy import GateRule, gate_deadline
from runner.identity.model import Identity
from runner.reports.progress import current_step, wall_time
from runner.runs import events as ev
from runner.runs.state import GateState, RunRecord, StepRecord
from runner.runs.store import RunStore, iter_run_dirs, load_run
from runner.text.gate import names_used, off_script_warnings, output_tail
from runner.text.record import output_text

#: Runs a list reads (newest first).
LIST_LIMIT = 100
#: Characters of a step's output the run page shows (the journal and the report keep it all).
OUTPUT_LIMIT = 20_000


@dataclass(frozen=True, slots=True)
class Gate:
    run_id: str
    runbook: str
    step: int | None
    step_id: str
    title: str
    role: str | None  # who it asks now (the escalation's role once it escalated)
    waiting_since: str | None  # ISO time of the approval request
    needed: int = 1  # distinct approvals the gate needs (a quorum) ...
    approved_by: tuple[str, ...] = ()  # ... and who gave one so far
    expires: str | None = None  # ISO time it escalates or is denied (`approval_timeout=`)
    escalated_from: str | None = None  # the role it asked first, once it escalated
    on_expiry: str = ""  # what happens at ``expires``: "escalates to ROLE" or "is denied"
    code: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Question:
    """A decision step waiting for an answer (``decision`` blocks: docs/format.md)."""

    run_id: str
    runbook: str
    step: int | None
    step_id: str
    title: str
    role: str | None
    waiting_since: str | None  # ISO time the question was asked
    question: str
    type: str  # yesno | choice | number | text
    choices: tuple[str, ...] = ()

    @property
    def options(self) -> tuple[str, ...]:
        """What the answer form offers as buttons (none: a text field)."""
        return ("yes", "no") if self.type == "yesno" else self.choices


def _iso(epoch_seconds: float) -> str:
    at = dt.datetime.fromtimestamp(epoch_seconds, dt.UTC)
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def records(runs_dir: Path) -> list[RunRecord]:
    """The runs, newest first (their folders are named by start time)."""
    dirs = sorted(iter_run_dirs(runs_dir), key=lambda d: d.name, reverse=True)
    found = []
    for d in dirs:
        try:
            found.append(load_run(d))
        except Exception:  # a torn or foreign folder: `runbook verify` is the tool for it
            continue
        if len(found) >= LIST_LIMIT:
            break
    found.sort(key=lambda r: r.started, reverse=True)
    return found


def elapsed(record: RunRecord) -> float | None:
    going = record.status in ("running", "paused")
    return wall_time(record.started, record.last_event, going)


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def gates(record: RunRecord, full: bool = False) -> list[Gate]:
    out = []
    for waiting in record.waiting_steps():
        requested = record.request_for(waiting)
        state = record.gate_for(waiting)
        key = (waiting.procedure, waiting.step_id)
        rec = next((s for s in record.steps if (s.procedure, s.step_id) == key), None)
        deadline = None
        if state is not None and state.expired is None:
            deadline = gate_deadline(
                GateRule(timeout=state.request.timeout), state.requested_at, state.escalated_at
            )
        gate = Gate(
            record.run_id,
            record.name,
            waiting.step,
            str(waiting.step_id or ""),
            waiting.title or str(waiting.step_id or ""),
            state.role if state else requested.approver_role if requested else None,
            requested.ts if requested else None,
            state.needed if state else 1,
            tuple(a.by for a in state.approvals) if state else (),
            _iso(deadline) if deadline else None,
            state.escalated.from_role if state and state.escalated else None,
            _on_expiry(state) if deadline else "",
        )
        if full:
            code = requested.code if requested else ""
            values = _values_now(record)
            used = names_used(code, values)
            gate = Gate(
                **{**_fields(gate), "code": code,
                   "values": {n: values[n] for n in used},
                   "warnings": off_script_warnings(record.off_script, used),
                   "evidence": _evidence(record, rec),
                   "refusals": [{"by": a.by, "role": a.role, "reason": a.reason, "ts": a.ts}
                                for a in (rec.approvals if rec else [])
                                if isinstance(a, ev.ApprovalRefused)]},
            )  # fmt: skip
        out.append(gate)
    return out


def gate_named(record: RunRecord, step: str) -> Gate | None:
    """The waiting gate ``step`` (number or id) names, in full (the approval page's)."""
    return next((g for g in gates(record, full=True) if step in (str(g.step), g.step_id)), None)


def _on_expiry(state: GateState | None) -> str:
    if state is not None and state.escalated is None and state.request.escalate_role:
        return f"escalates to {state.request.escalate_role}"
    return "is denied"


def _fields(gate: Gate) -> dict[str, Any]:
    return {name: getattr(gate, name) for name in Gate.__slots__}


def _values_now(record: RunRecord) -> dict[str, Any]:
    """What a resume gives the step: the recorded inputs (secrets ***) and the outputs so far,
    as `runbook pending` shows them."""
    values = dict(record.inputs)
    for s in record.steps:
        values.update(s.values)
    return values


def _evidence(record: RunRecord, before: StepRecord | None) -> list[dict[str, Any]]:
    rows = []
    for s in record.steps:
        if s is before:
            break
        rows.append({"step": s.label, "title": s.title or s.step_id, "status": s.status,
                     "why": s.error or s.reason or "", "tail": output_tail(s.outputs)})  # fmt: skip
    return rows


def questions(record: RunRecord) -> list[Question]:
    out = []
    for waiting in record.waiting_answers():
        asked = record.question_for(waiting)
        if asked is None:
            continue
        key = (waiting.procedure, waiting.step_id)
        role = next((s.role for s in record.steps if (s.procedure, s.step_id) == key), None)
        out.append(Question(record.run_id, record.name, waiting.step, str(waiting.step_id or ""),
                            waiting.title or str(waiting.step_id or ""), role, asked.ts,
                            asked.question, asked.type, tuple(asked.choices)))  # fmt: skip
    return out


def inbox(runs_dir: Path, who: Identity) -> list[Gate | Question]:
    """Every gate and question waiting for one of ``who``'s roles (or for anyone), oldest
    first. A gate ``who`` already approved (a quorum waiting for others) is not theirs."""
    found: list[Gate | Question] = []
    for r in records(runs_dir):
        if r.status != "paused":
            continue
        found += [g for g in gates(r) if who.holds(g.role) and who.user not in g.approved_by]
        found += [q for q in questions(r) if who.holds(q.role)]
    return sorted(found, key=lambda g: g.waiting_since or "")


def waiting_on(record: RunRecord) -> str:
    """Who the run waits on, in words (`IR-lead, step 3 isolate`)."""
    waits = [f"{g.role or 'any approver'} at step {g.step} ({g.step_id})"
             + (f", {len(g.approved_by)} of {g.needed} approvals" if g.needed > 1 else "")
             for g in gates(record)]  # fmt: skip
    waits += [f"{q.role or 'anyone'} to answer step {q.step} ({q.step_id})"
              for q in questions(record)]  # fmt: skip
    return "; ".join(waits)


def run_row(record: RunRecord) -> dict[str, Any]:
    trigger = record.start.get("trigger") or {}
    spent = elapsed(record)
    limit = record.time_limit
    return {
        "run_id": record.run_id,
        "runbook": record.name,
        "status": record.status,
        "current": current_step(record) or "",
        "elapsed": duration_text(spent),
        "limit": duration_text(limit) if limit else "",
        "over": bool(limit and spent and spent > limit),
        "waiting_on": waiting_on(record) if record.status == "paused" else "",
        "alert": trigger.get("title") or "",
        "started": record.started,
    }


def step_rows(record: RunRecord) -> list[dict[str, Any]]:
    rows = []
    for s in record.steps:
        latest = max((int(str(o.get("attempt") or 1)) for o in s.outputs), default=1)
        text = "".join(output_text(dict(o)) for o in s.outputs
                       if int(str(o.get("attempt") or 1)) == latest)  # fmt: skip
        rows.append({"key": f"{s.procedure or ''}:{s.step_id}", "label": s.label,
                     "title": s.title or s.step_id, "status": s.status,
                     "why": s.error or s.reason or "", "output": text[-OUTPUT_LIMIT:]})  # fmt: skip
    return rows


def snapshot(record: RunRecord) -> dict[str, Any]:
    """The run page's live part, as the Server-Sent Events stream sends it."""
    return {**run_row(record), "steps": step_rows(record),
            "finished": record.status not in ("running", "paused")}  # fmt: skip


def journal_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The journal as typed events: time, kind and the event's own fields (no output text)."""
    rows = []
    for e in RunStore().events(run_dir):
        fields = {k: v for k, v in e.record().items()
                  if k not in ("seq", "ts", "event", "text", "data", "traceback", "prev", "hmac",
                               "hash") and v not in (None, "", [], {})}  # fmt: skip
        shown = json.dumps(fields, ensure_ascii=False, default=str)[:400]
        rows.append({"seq": e.seq, "ts": e.ts, "kind": e.KIND, "fields": shown})
    return rows


@dataclass(frozen=True, slots=True)
class AlertRow:
    at: str
    source: str
    title: str
    runbook: str
    outcome: str  # started | duplicate (attached to a run) | resolved | resolved_no_run | unrouted
    run_id: str | None = None
    reason: str = ""
    index: int | None = None  # line of unrouted.jsonl, for "route again"
    severity: str = ""


#: The newest part of ``alerts.jsonl`` the Alerts page reads (the file itself is kept whole).
ALERTS_TAIL = 2 * 1024 * 1024
#: What each outcome is called on the page.
OUTCOMES = {"started": "started a run", "duplicate": "attached to a run",
            "resolved": "resolved: told to its run", "resolved_no_run": "resolved: no open run",
            "unrouted": "unrouted"}  # fmt: skip


def alerts(state_dir: Path) -> list[AlertRow]:
    """Alerts received, newest first: what became of each (``alerts.jsonl``, the intake's
    record), a duplicate linked to the run it was attached to, and those no runbook took
    (``unrouted.jsonl``, with the reason, to route again)."""
    rows = []
    run_of: dict[str, str] = {}  # workflow id -> the run its first alert started
    for item in _jsonl(state_dir / "alerts.jsonl", ALERTS_TAIL):
        outcome = str(item.get("outcome") or "")
        wid = str(item.get("workflow_id") or "")
        if outcome == "started" and item.get("run_id"):
            run_of.setdefault(wid, str(item["run_id"]))
        if outcome in ("unrouted", ""):
            continue  # listed from unrouted.jsonl, where "route again" finds them
        rows.append(AlertRow(str(item.get("at") or ""), str(item.get("source") or ""),
                             str(item.get("title") or ""), str(item.get("runbook") or ""),
                             outcome, run_of.get(wid), str(item.get("reason") or ""),
                             severity=str(item.get("severity") or "")))  # fmt: skip
    for i, item in enumerate(unrouted(state_dir)):
        rows.append(AlertRow(str(item.get("at") or ""), str(item.get("source") or ""),
                             str(item.get("title") or ""), "", "unrouted", None,
                             str(item.get("reason") or ""), i))  # fmt: skip
    return sorted(rows, key=lambda a: a.at, reverse=True)


def _jsonl(path: Path, tail: int | None = None) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (its last ``tail`` bytes), skipping a torn line."""
    try:
        with path.open("rb") as fh:
            if tail is not None and fh.seek(0, 2) > tail:
                fh.seek(-tail, 2)
                fh.readline()  # the first line is cut
            else:
                fh.seek(0)
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            out.append(item)
    return out


def unrouted(state_dir: Path) -> list[dict[str, Any]]:
    """Every alert no runbook took, in order (its index is its line, for "route again")."""
    return _jsonl(state_dir / "unrouted.jsonl")
