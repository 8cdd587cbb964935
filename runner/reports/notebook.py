"""A run as a Jupyter notebook (nbformat v4): one code cell per block execution, real outputs.

Cells follow the record: a Markdown cell per step (manual steps carry the runbook's
instructions and who answered), then a code cell for each block that ran, with the outputs the
kernel sent. The code is the one ``block_started`` journaled (exactly what ran); for older
journals, the block's code from the runbook as it was run (same SHA-256), else the code an
approval request recorded.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from runner.format.model import Block, Runbook
from runner.private_files import write_private
from runner.reports.source import block_runs, runbook_step
from runner.runs import events as ev
from runner.runs.journal import Event
from runner.runs.state import BlockRun, RunRecord, StepRecord
from runner.text.record import fmt_duration, fmt_status, joined, merge_streams, time_limit_verdict


def _nbformat() -> Any:
    # nbformat is untyped and takes ~0.1 s to import; only notebook reports need it.
    import nbformat

    return nbformat


def write_notebook(record: RunRecord, runbook: Runbook | None, path: str) -> None:
    """Render and write the notebook (validated against the nbformat v4 schema)."""
    text = _nbformat().writes(render_notebook(record, runbook))
    write_private(Path(path), (text + "\n").encode("utf-8"))


def render_notebook(record: RunRecord, runbook: Runbook | None = None) -> Any:
    """An nbformat v4 notebook: one code cell per executed block, with its real outputs."""
    nbformat = _nbformat()
    v4 = nbformat.v4
    blocks: dict[str, Block] = {b.id: b for b in runbook.all_blocks()} if runbook else {}
    cells = [v4.new_markdown_cell(_intro(record, runbook is not None))]
    count = 0
    for s in record.steps:
        cells.append(v4.new_markdown_cell(_step_heading(s, runbook)))
        for action in record.off_script:
            if record.owners.get(int(action.get("seq") or 0)) is s:
                count += 1
                cells.append(_off_script_cell(record, action, count))
        for run in block_runs(s, runbook):
            count += 1
            cells.append(_code_cell(record, s, blocks.get(run.block_id), run, count))
    cells.append(
        v4.new_markdown_cell(f"**{fmt_status(record.status)}** — {time_limit_verdict(record)}")
    )
    nb = v4.new_notebook(cells=cells, metadata=_metadata(record))
    nbformat.validate(nb)
    return nb


def _metadata(r: RunRecord) -> dict[str, Any]:
    k = next(
        (k for k in r.kernels if k.get("language") == "python"), r.kernels[0] if r.kernels else None
    )
    meta: dict[str, Any] = {
        "runbook": {"run_id": r.run_id, "mode": r.mode, "status": r.status, **r.runbook},
    }
    if k is not None:
        meta["kernelspec"] = {
            "name": str(k.get("kernel") or ""),
            "display_name": f"{k.get('kernel')} ({k.get('implementation') or k.get('language')})",
            "language": str(k.get("language") or ""),
        }
        meta["language_info"] = {
            "name": str(k.get("language") or ""),
            "version": str(k.get("language_version") or ""),
        }
    return meta


def _intro(r: RunRecord, have_source: bool) -> str:
    book = r.runbook
    lines = [
        f"# {'Drill' if r.drill else 'Run'} of {r.name}",
        "",
        f"- Runbook `{book.get('path', '')}` (SHA-256 `{str(book.get('sha256', ''))[:16]}`)",
        f"- Objective: {book.get('objective') or '—'}",
        f"- Run `{r.run_id}` by {r.operator} on {r.host}, started {r.started}",
    ]
    if r.inputs:
        lines.append("- Inputs: " + ", ".join(f"`{k}` = `{v}`" for k, v in r.inputs.items()))
    if not have_source:
        lines.append(
            "\n*The runbook file at this version was not found; the code shown is what the "
            "journal recorded.*"
        )
    return "\n".join(lines)


def _step_heading(s: StepRecord, runbook: Runbook | None) -> str:
    where = f" (procedure `{s.procedure}`)" if s.procedure else ""
    head = f"## {s.label}. {s.title}{where}\n\n{fmt_status(s.status)} · {fmt_duration(s.duration)}"
    if s.role:
        head += f" · role {s.role}"
    if s.reason:
        head += f"\n\nReason: {s.reason}"
    if s.manual:
        step = runbook_step(runbook, s)
        if step is not None and step.text:
            head += "\n\n" + step.text
        for d in s.decisions:
            head += f"\n\n> {_decision(d)}"
    for n in s.notes:
        flag = " (unclear)" if n.unclear else ""
        head += f"\n\n> note by {n.by}{flag}: {n.text}"
    return head


def _decision(d: ev.DecisionEvent) -> str:
    """`done by dana (analyst): the note`; the role only when the journal has one."""
    role = f" ({d.role})" if d.role else ""
    note = f": {d.note}" if d.note else ""
    return f"{d.decision} by {d.by}{role}{note}"


def _source(s: StepRecord, block: Block | None, run: BlockRun) -> str:
    """What ran: the journaled code, else the runbook's block, else the approval's record."""
    if run.code is not None:
        return run.code
    if block is not None:
        return block.code
    return s.code or f"# code of {run.block_id} not recorded"


def _code_cell(r: RunRecord, s: StepRecord, block: Block | None, run: BlockRun, count: int) -> Any:
    outputs = [x for o in merge_streams(run.outputs) if (x := _output(r, o, count)) is not None]
    cell = _nbformat().v4.new_code_cell(
        source=_source(s, block, run), execution_count=count, outputs=outputs
    )
    meta: dict[str, Any] = {
        "step": s.number,
        "step_id": s.step_id,
        "procedure": s.procedure,
        "block_id": run.block_id,
        "kernel": run.kernel or (block.kernel if block else None) or s.kernel,
        "attempt": run.attempt,
        "status": s.status,
        "journaled": run.journaled,  # False: inferred from outputs and the runbook
    }
    if run.status is not None:
        meta.update(block_status=run.status, exit_status=run.exit_status, duration=run.duration)
    language = run.lang or (block.lang if block is not None and s.kernel else None)
    if language:
        meta["language"] = language
    cell.metadata["runbook"] = meta
    return cell


def _off_script_cell(r: RunRecord, action: Event, count: int) -> Any:
    outs = action.get("outputs") or []
    outputs = [x for o in merge_streams(outs) if (x := _output(r, o, count)) is not None]
    cell = _nbformat().v4.new_code_cell(
        source=str(action.get("code") or ""), execution_count=count, outputs=outputs
    )
    cell.metadata["runbook"] = {
        "off_script": True,
        "kernel": action.get("kernel"),
        "by": action.get("by"),
        "status": action.get("status"),
    }
    return cell


def _output(r: RunRecord, o: Event, count: int) -> Any:
    new_output = _nbformat().v4.new_output
    kind = o.get("kind")
    if kind == "stream":
        return new_output(
            "stream", name=str(o.get("stream") or "stdout"), text=str(o.get("text") or "")
        )
    if kind == "error":
        return new_output(
            "error",
            ename=str(o.get("ename") or "Error"),
            evalue=str(o.get("evalue") or ""),
            traceback=[str(t) for t in o.get("traceback") or []],
        )
    data = _data(r, o.get("data") or {}) or {"text/plain": str(o.get("text") or "")}
    if kind == "result":
        return new_output("execute_result", data=data, execution_count=count)
    return new_output("display_data", data=data)


def _data(r: RunRecord, data: dict[str, Any]) -> dict[str, Any]:
    """Journal mime bundle -> notebook mime bundle: image files are read back and base64-encoded."""
    out: dict[str, Any] = {}
    for mime, value in data.items():
        if mime.startswith("image/") and mime != "image/svg+xml" and isinstance(value, str):
            path = r.run_dir / value
            if path.is_file():
                out[mime] = base64.b64encode(path.read_bytes()).decode()
        elif mime == "application/json" or mime.endswith("+json"):
            out[mime] = value if isinstance(value, dict | list) else {"value": value}
        else:
            out[mime] = joined(value)
    return out
