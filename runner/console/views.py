"""What the console's pages show, read from the runs folder and the service's state (the fold
of each journal, never its raw lines); the templates only lay it out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.identity.model import Identity
from runner.reports.progress import current_step, wall_time
from runner.runs import events as ev
from runner.runs.state import RunRecord, StepRecord
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
    role: str | None
    waiting_since: str | None  # ISO time of the approval request
    code: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)


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
        key = (waiting.procedure, waiting.step_id)
        rec = next((s for s in record.steps if (s.procedure, s.step_id) == key), None)
        gate = Gate(
            record.run_id,
            record.name,
            waiting.step,
            str(waiting.step_id or ""),
            waiting.title or str(waiting.step_id or ""),
            requested.approver_role if requested else None,
            requested.ts if requested else None,
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


def inbox(runs_dir: Path, who: Identity) -> list[Gate]:
    """Every gate waiting for one of ``who``'s roles (or for anyone), oldest first."""
    found = [
        g for r in records(runs_dir) if r.status == "paused" for g in gates(r) if who.holds(g.role)
    ]
    return sorted(found, key=lambda g: g.waiting_since or "")


def waiting_on(record: RunRecord) -> str:
    """Who the run waits on, in words (`IR-lead, step 3 isolate`)."""
    return "; ".join(
        f"{g.role or 'any approver'} at step {g.step} ({g.step_id})" for g in gates(record)
    )


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
    outcome: str  # attached to a run | unrouted
    run_id: str | None = None
    reason: str = ""
    index: int | None = None  # line of unrouted.jsonl, for "route again"


def alerts(runs_dir: Path, state_dir: Path) -> list[AlertRow]:
    """Alerts received: those that started a run (from the run's journal) and those no runbook
    took (``unrouted.jsonl``, with the reason), newest first."""
    rows = []
    for r in records(runs_dir):
        trigger = r.start.get("trigger")
        if isinstance(trigger, dict):
            rows.append(AlertRow(r.started, str(trigger.get("source") or ""),
                                 str(trigger.get("title") or ""), r.name, "routed: run",
                                 r.run_id))  # fmt: skip
    for i, item in enumerate(unrouted(state_dir)):
        rows.append(AlertRow(str(item.get("at") or ""), str(item.get("source") or ""),
                             str(item.get("title") or ""), "", "unrouted", None,
                             str(item.get("reason") or ""), i))  # fmt: skip
    return sorted(rows, key=lambda a: (a.outcome != "unrouted", a.at), reverse=True)


def unrouted(state_dir: Path) -> list[dict[str, Any]]:
    path = state_dir / "unrouted.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
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
