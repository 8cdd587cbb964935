"""`runbook pending RUN`: a waiting gate in full, so approving from the command line is not blind.

It shows what the approval screen at the terminal shows: the step, the exact code with the values
it uses (as the approver of a resumed run will be asked about it), the values a resume gives the
step, what off-script commands touched, and the evidence so far with each earlier step's last
lines of output; then the commands to approve or deny, ready to paste.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console, Group, RenderableType
from rich.text import Text

from runner.cli import EXIT_FAILED, EXIT_OK, cli, format_option, runs_dir_option
from runner.errors import UsageError
from runner.reports.source import runbook_at_run, runbook_step
from runner.runs import events as ev
from runner.runs.journal import read_events
from runner.runs.state import GateState, RunRecord, StepRecord
from runner.runs.store import default_runs_dir, find_run, load_run
from runner.text.gate import Evidence, evidence_view, names_used, off_script_warnings, output_tail
from runner.text.live import Where, hint_lines, paused_hints
from runner.text.step_card import first_paragraph, markdown, values_table
from runner.text.terminal import fold_lines, visible, visible_event

OUTPUT_VERSION = 1


def _values_now(record: RunRecord) -> dict[str, Any]:
    """What a resume gives the step: the recorded inputs (secrets ***) and outputs."""
    values = dict(record.inputs)
    for s in record.steps:
        values.update(s.values)
    return values


def _evidence(record: RunRecord, before: StepRecord | None) -> list[Evidence]:
    rows = []
    for s in record.steps:
        if s is before:
            break
        rows.append(
            Evidence(
                s.label,
                s.title or s.step_id,
                s.status,
                s.error or s.reason or "",
                output_tail(s.outputs),
            )
        )
    return rows


@cli.command()
@click.argument("run")
@click.argument("step", required=False)
@runs_dir_option
@format_option
@click.option("--server", metavar="URL",
              help="A run of a `runbook serve`: its gate STEP as the service shows it, read as "
              "the user whose API token is in $RUNBOOK_TOKEN.")  # fmt: skip
def pending(
    run: str, step: str | None, runs_dir: Path | None, output_format: str, server: str | None
) -> int:
    """Show a gate RUN waits on, in full: code, values, evidence, and how to decide.

    RUN is a run id, a unique prefix of one, a run folder, or `last`; STEP (a number or id)
    picks one gate when several wait. Exit 1 when nothing waits.
    """
    if server:
        from runner.cli.remote import pending_remote

        return pending_remote(server, run, step, output_format)
    folder = Path(runs_dir) if runs_dir else default_runs_dir()
    run_dir = find_run(folder, run)
    # Everything shown comes from the journal or the runbook: escaped, never obeyed.
    record = load_run(run_dir, [visible_event(e) for e in read_events(run_dir)])
    waiting = record.waiting_steps()
    asking = record.waiting_answers()
    if step is not None:
        waiting = [w for w in waiting if step in (str(w.step), str(w.step_id))]
        asking = [w for w in asking if step in (str(w.step), str(w.step_id))]
    questions = [_question(record, w) for w in asking]
    if not waiting and questions:
        return _show_questions(run_dir, questions, output_format)
    if not waiting:
        what = f"step {step} of run {run_dir.name} is" if step else f"run {run_dir.name} has"
        click.echo(f"{what} not waiting for an approval or an answer", err=True)
        return EXIT_FAILED
    where = Where(run_dir.name, run_dir.parent)
    gates = [_gate(record, w) for w in waiting]
    if output_format == "json":
        click.echo(json.dumps({"version": OUTPUT_VERSION, "run_id": run_dir.name, "gates": gates,
                               "questions": questions},
                              indent=2, ensure_ascii=False, default=str))  # fmt: skip
        return EXIT_OK
    console = Console(highlight=False)
    for gate in gates:
        console.print(_view(record, gate, max(20, console.width - 1)))
        console.print("Decide:")
        hints = paused_hints(where, str(gate["step_id"]), gate["approver_role"])[1:]
        # Commands to paste: never broken at the screen's edge (the terminal wraps them whole).
        console.print(hint_lines(hints) + "\n", soft_wrap=True, markup=False)
    if questions:
        _print_questions(console, run_dir, questions)
    return EXIT_OK


def _question(record: RunRecord, waiting: ev.StepFinished) -> dict[str, Any]:
    """One waiting decision as data: the question, what it accepts, when it was asked."""
    asked = record.question_for(waiting)
    return {
        "step": waiting.step,
        "step_id": waiting.step_id,
        "procedure": waiting.procedure,
        "title": waiting.title,
        "question": asked.question if asked else "",
        "type": asked.type if asked else "",
        "choices": list(asked.choices) if asked else [],
        "output": asked.output if asked else "",
        "asked_at": asked.ts if asked else None,
    }


def _show_questions(run_dir: Path, questions: list[dict[str, Any]], output_format: str) -> int:
    if output_format == "json":
        click.echo(json.dumps({"version": OUTPUT_VERSION, "run_id": run_dir.name, "gates": [],
                               "questions": questions},
                              indent=2, ensure_ascii=False, default=str))  # fmt: skip
        return EXIT_OK
    _print_questions(Console(highlight=False), run_dir, questions)
    return EXIT_OK


def _print_questions(console: Console, run_dir: Path, questions: list[dict[str, Any]]) -> None:
    from runner.text.live import answer_hints

    where = Where(run_dir.name, run_dir.parent)
    for q in questions:
        head = Text(f"step {q['step']} {visible(str(q['title']))}", style="bold yellow")
        head.append(" waits for an answer (recorded as output ")
        head.append(visible(str(q["output"])), style="bold")
        head.append(")")
        console.print(head)
        console.print(Text(f"? {visible(str(q['question']))}"))
        accepts = {"yesno": "yes|no", "number": "NUMBER", "text": "TEXT"}.get(
            str(q["type"]), "|".join(visible(str(c)) for c in q["choices"])
        )
        console.print("Answer:")
        hints = answer_hints(where, str(q["step_id"]), accepts)[1:]
        console.print(hint_lines(hints) + "\n", soft_wrap=True, markup=False)


def show_gate(console: Console, run_dir: Path, waiting: ev.StepFinished) -> None:
    """The gate in full, for `runbook approve` at a terminal before it asks to confirm."""
    record = load_run(run_dir, [visible_event(e) for e in read_events(run_dir)])
    console.print(_view(record, _gate(record, waiting), max(20, console.width - 1)))


def _gate(record: RunRecord, waiting: ev.StepFinished) -> dict[str, Any]:
    """One waiting gate as data; the text view is drawn from the same dict."""
    requested = record.request_for(waiting)
    key = (waiting.procedure, waiting.step_id)
    rec = next((s for s in record.steps if (s.procedure, s.step_id) == key), None)
    code = requested.code if requested else ""
    values = _values_now(record)
    used = names_used(code, values)
    distinct = bool(record.options.get("require_distinct_approver"))
    gate = record.gate_for(waiting)
    return {
        "approvals_needed": gate.needed if gate else 1,
        "approvals": [{"by": a.by, "role": a.role, "ts": a.ts} for a in gate.approvals]
        if gate
        else [],
        "expires_at": _expires(gate),
        "escalated_to": gate.escalated.role if gate and gate.escalated else None,
        "step": waiting.step,
        "step_id": waiting.step_id,
        "procedure": waiting.procedure,
        "title": waiting.title,
        "approver_role": requested.approver_role if requested else None,
        "requested_at": requested.ts if requested else None,
        "distinct_required": distinct,
        "run_operator": record.operator,
        "code": code,
        "values": {n: values[n] for n in used},
        "warnings": off_script_warnings(record.off_script, used),
        "evidence": [
            {"step": e.label, "title": e.title, "status": e.status, "why": e.why, "tail": e.tail}
            for e in _evidence(record, rec)
        ],
    }


def _expires(gate: GateState | None) -> str | None:
    """When the gate's time runs out, as an ISO time, or None."""
    import datetime as dt

    from runner.exec.policy import GateRule, gate_deadline

    if gate is None or gate.request.timeout is None:
        return None
    r = gate.request
    rule = GateRule(r.approver_role, int(r.needed or 1), r.timeout, r.escalate_role)
    at = gate_deadline(rule, gate.requested_at, gate.escalated_at)
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds") if at else None


def _view(record: RunRecord, gate: dict[str, Any], width: int) -> RenderableType:
    role = gate["approver_role"]
    head = Text(f"Run {visible(record.run_id)} ({visible(record.name)}) ", style="bold")
    head.append(f"step {gate['step']} {visible(str(gate['title']))}", style="bold yellow")
    head.append(" waits for an approval" + (f" by role {visible(role)}" if role else ""))
    parts: list[RenderableType] = [head]
    step = runbook_step(runbook_at_run(record), _step_record(record, gate))
    if step is not None and first_paragraph(step):
        parts.append(markdown(first_paragraph(step)))
    if gate["approvals_needed"] > 1:
        names = ", ".join(visible(a["by"]) for a in gate["approvals"]) or "none yet"
        parts.append(
            Text(
                f"Quorum: {len(gate['approvals'])} of {gate['approvals_needed']} approvals "
                f"({names}); each must be a different person."
            )
        )
    if gate["escalated_to"]:
        parts.append(Text(f"Escalated to {visible(gate['escalated_to'])}: its time ran out."))
    if gate["expires_at"]:
        parts.append(Text(f"Expires at {gate['expires_at']}; then it is denied or escalated."))
    if gate["distinct_required"]:
        parts.append(Text(f"Two-person rule: the approver may not be {visible(record.operator)}."))
    parts.append(Text("The code to approve, with the values it uses:"))
    parts.append(Text(fold_lines(visible(gate["code"].rstrip("\n")), width)))
    if gate["values"]:
        parts.append(Text("Values a resume gives it (secrets ***):"))
        parts.append(values_table(gate["values"]))
    for warning in gate["warnings"]:
        parts.append(Text(f"⚠ {visible(warning)}", style="bold yellow"))
    rows = [
        Evidence(e["step"], e["title"], e["status"], e["why"], e["tail"]) for e in gate["evidence"]
    ]
    if rows:
        parts.append(evidence_view(rows))
    return Group(*parts)


def _step_record(record: RunRecord, gate: dict[str, Any]) -> StepRecord:
    key = (gate["procedure"], gate["step_id"])
    found = next((s for s in record.steps if (s.procedure, s.step_id) == key), None)
    if found is None:
        raise UsageError(f"step {gate['step_id']} is not in the run's journal")
    return found
