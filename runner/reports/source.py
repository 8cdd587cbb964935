"""A run rebuilt from its journal: :class:`RunRecord`, one :class:`StepRecord` per step.

:func:`load_run` folds the journal's events (see the schema in docs) into a record: the run's
header, then one step record per step in the order the steps were first touched, with
everything that happened to it. Reports, notebooks and ``runbook log`` read only that record,
so what they say is exactly what the journal says; secrets were redacted before the journal
was written, and nothing here reads a secret from anywhere else.

Which blocks ran: journals that have ``block_started`` events say it exactly (block id, the
code as run, its kernel, and ``block_finished`` its verdict). Older journals only name the
block of each output; :func:`block_runs` then infers the silent ones from the runbook.

Slow steps: a step is *slow* when it took more than its share of the time limit, its share
being ``time_limit / n`` where ``n`` counts the steps that ran or were performed by a person
(skipped steps take no time, so they get no share). Without a time limit the share is twice the
mean duration of those steps, so a step that took more than double the average stands out.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from runner.format.model import Runbook, Step
from runner.runs.state import BlockRun, Event, RunRecord, StepRecord
from runner.runs.store import kept_runbook

# --- the runbook as it was -------------------------------------------------------------------


def runbook_at_run(record: RunRecord) -> Runbook | None:
    """The runbook exactly as it was run: the copy the run kept beside its journal (the latest
    attempt's, then the first's); for runs from before copies were kept, the file at the path
    it was run from when its SHA-256 still matches. Else None."""
    from runner.parse.markdown import (
        parse_text,  # the parser is only needed for notebooks and replays
    )

    path, first = str(record.runbook.get("path") or ""), str(record.runbook.get("sha256") or "")
    for sha in dict.fromkeys((record.sha256, first)):
        text = kept_runbook(record.run_dir, sha) if sha else None
        if text is not None:
            return parse_text(text, path=path or "runbook.md", sha256=sha)
    if not path or not first:
        return None
    # The journal stores the path as given at run time, usually relative to the folder the
    # runner started in; the runs folder is normally `<that folder>/.runbook/runs`.
    places = [Path(path)]
    if not places[0].is_absolute():
        places.append(record.run_dir.resolve().parent.parent.parent / path)
    for place in places:
        try:
            data = place.read_bytes()
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest() == first:
            try:
                return parse_text(data.decode("utf-8-sig"), path=path, sha256=first)
            except UnicodeDecodeError:
                return None
    return None


def fill_from_runbook(record: RunRecord, runbook: Runbook) -> None:
    """What the journal left out comes from the runbook as it was run: titles and roles (an
    old journal has no step_started for a manual step), and whether each step is manual."""
    for s in record.steps:
        step = runbook_step(runbook, s)
        if step is not None:
            s.title = s.title or step.title
            s.role = s.role or step.role
            s.is_manual = step.manual


def runbook_step(runbook: Runbook | None, s: StepRecord) -> Step | None:
    """The runbook's step a record is about, in the right list: by id, or by number when the
    journal named no id (a number alone could be another step of an edited runbook)."""
    if runbook is None:
        return None
    steps = runbook.steps
    if s.procedure:
        proc = runbook.procedure(s.procedure)
        steps = proc.steps if proc else ()
    if s.step_id:
        return next((x for x in steps if x.id == s.step_id), None)
    return next((x for x in steps if x.number == s.number), None)


# --- which blocks ran ------------------------------------------------------------------------


def block_runs(s: StepRecord, runbook: Runbook | None) -> list[BlockRun]:
    """Each block execution of a step, in order: exact from block_started when the journal has
    it, otherwise inferred from the outputs and the runbook (see :func:`_inferred_runs`)."""
    if s.blocks:
        return list(s.blocks)
    return _inferred_runs(s, runbook)


def _inferred_runs(s: StepRecord, runbook: Runbook | None) -> list[BlockRun]:
    """For journals without block_started. Blocks with output are known to have run. From the
    runbook we also know the blocks that ran silently: all of them when the step succeeded,
    and when it failed, every block up to the one that failed (the one after the last block
    with output, unless that one errored)."""
    step = runbook_step(runbook, s)
    order = [b.id for b in step.executable_blocks] if step is not None else []
    by_attempt: dict[int, dict[str, list[Event]]] = {}
    for o in s.outputs:
        bid = str(o.get("block_id") or (order[0] if order else s.step_id))
        by_attempt.setdefault(int(o.get("attempt") or 1), {}).setdefault(bid, []).append(o)
    if not s.started or (s.kernel is None and not s.outputs):
        return []
    out: list[BlockRun] = []
    for attempt in range(1, max(s.attempts, 1) + 1):
        seen = by_attempt.get(attempt, {})
        last = attempt == max(s.attempts, 1)
        ran = _blocks_run(order, seen, s.status if last else "failed")
        out += [BlockRun(bid, attempt, outputs=seen.get(bid, []), journaled=False) for bid in ran]
    return out


def _blocks_run(order: list[str], seen: dict[str, list[Event]], status: str) -> list[str]:
    if not order:
        return list(seen)
    extra = [b for b in seen if b not in order]
    if status in ("succeeded", "handled") and not any(
        o.get("kind") == "error" for v in seen.values() for o in v
    ):
        return order + extra
    touched = [i for i, b in enumerate(order) if b in seen]
    if not touched:
        return order[:1] + extra
    last = touched[-1]
    errored = any(o.get("kind") == "error" for o in seen[order[last]])
    end = last + 1 if errored or last + 1 >= len(order) else last + 2
    return order[:end] + extra
