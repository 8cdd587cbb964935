"""The plan as JSON: the stable, documented shape of `runbook show --format json`.

`runbook show`, the runner's `--dry-run` and reports all describe a plan the same way, so the
conversion lives here, once. The shape is versioned (``PLAN_VERSION``); fields are only ever
added. docs/format.md documents every field.
"""

from __future__ import annotations

from typing import Any

from runner.format.expr import describe
from runner.format.model import Block, InputSpec, Procedure, Runbook, RunEnd, Step

PLAN_VERSION = 1

JSONObject = dict[str, Any]


def plan_json(runbook: Runbook) -> JSONObject:
    """The whole plan: metadata at the top level, then steps, procedures and criteria."""
    meta = runbook.metadata
    return {
        "version": PLAN_VERSION,
        "path": str(runbook.path),
        "sha256": runbook.sha256,
        "format": "standard" if meta.has_front_matter else "markdown",
        "id": meta.id,
        "name": meta.name,
        "service": meta.service,
        "owner": meta.owner,
        "severity": meta.severity.value if meta.severity else None,
        "objective": meta.objective,
        "time_limit": meta.time_limit_text or None,
        "time_limit_seconds": meta.time_limit,
        "roles": dict(meta.roles),
        "tools": list(meta.tools),
        "trigger": {"when": meta.trigger.when, "match": dict(meta.trigger.match)},
        "inputs": [input_json(spec) for spec in meta.inputs],
        "tags": list(meta.tags),
        "notify": list(meta.notify),
        "kernels": dict(meta.kernels),
        "description": runbook.description,
        "steps": [step_json(step) for step in runbook.steps],
        "procedures": [procedure_json(proc) for proc in runbook.procedures],
        "success_criteria": list(runbook.success_criteria),
        "failure_criteria": list(runbook.failure_criteria),
        "sections": [{"title": s.title, "line": s.line} for s in runbook.sections],
        "doc_blocks": [block_json(block) for block in runbook.doc_blocks],
    }


def input_json(spec: InputSpec) -> JSONObject:
    # A secret's default would be a secret too: it never leaves the file through a plan.
    default = "***" if spec.secret and spec.default is not None else spec.default
    return {
        "name": spec.name,
        "type": spec.type,
        "description": spec.description,
        "required": spec.required,
        "default": list(default) if isinstance(default, tuple) else default,
        "enum": list(spec.enum),
        "pattern": spec.pattern,
        "secret": spec.secret,
    }


def step_json(step: Step) -> JSONObject:
    return {**_step_json(step), **_flow_json(step)}


def _flow_json(step: Step) -> JSONObject:
    """`foreach` and `runbook`, on a loop or call step only (plans without them are unchanged)."""
    out: JSONObject = {}
    if step.loop is not None:
        out["foreach"] = {
            "source": step.loop.source,
            "items": None if step.loop.items is None else list(step.loop.items),
            "as": step.loop.var,
            "approve_each": step.loop.approve_each,
            "on_item_failure": step.loop.on_item_failure,
        }
    if step.call is not None:
        out["runbook"] = {"id": step.call.runbook, "with": dict(step.call.inputs)}
    return out


def _step_json(step: Step) -> JSONObject:
    out: JSONObject = {
        "number": step.number,
        "id": step.id,
        "title": step.title,
        "line": step.line,
        "role": step.role,
        "manual": step.manual,
        "approve": step.approve,
        "approver_role": step.approver_role,
        "timeout_seconds": step.timeout,
        "retries": step.retries,
        "on_failure": step.on_failure,
        "when": step.when,
        "condition": describe(step.condition) if step.condition else None,
        "outputs": list(step.outputs),
        "output_types": {n: t for b in step.blocks for n, t in b.output_types.items()},
        "ends": end_json(step.end),
        "blocks": [block_json(block) for block in step.blocks],
    }
    # Only when the step has them, so plans written before these keys read the same.
    if step.informed or step.consulted:
        out["informed"], out["consulted"] = list(step.informed), list(step.consulted)
    question = step.question
    if question is not None:
        out["question"] = {
            "text": question.text,
            "type": question.type,
            "choices": list(question.choices),
            "output": question.output,
        }
    return out


def end_json(end: RunEnd | None) -> JSONObject | None:
    return None if end is None else {"status": end.status, "reason": end.reason}


def block_json(block: Block) -> JSONObject:
    return {
        "id": block.id or None,
        "lang": block.lang,
        "kernel": block.kernel,
        "executable": block.executable,
        "line": block.line,
        "code": block.code,
        "errexit": block.errexit,
        "attributes": dict(block.attributes),
    }


def procedure_json(proc: Procedure) -> JSONObject:
    return {
        "id": proc.id,
        "title": proc.title,
        "line": proc.line,
        "ends": end_json(proc.ends),
        "steps": [step_json(step) for step in proc.steps],
    }
