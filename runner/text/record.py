"""A run record's pieces as text: durations, times, statuses, the time-limit verdict, outputs.

Shared by the Markdown/HTML report, the notebook and ``runbook log``, so all three word a
status or an output the same way.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from runner.format.syntax import error_headline, format_duration
from runner.runs import events as ev
from runner.runs.journal import Event
from runner.runs.state import RunRecord

MAX_OUTPUT_LINES = 40  # per output in md/html; the notebook keeps everything
MAX_OUTPUT_CHARS = 6000
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
_SYMBOL = {
    "succeeded": "✓",
    "succeeded_with_handled_failures": "✓",
    "handled": "↻",
    "failed": "✗",
    "timed_out": "⏱",
    "cancelled": "■",
    "denied": "⊘",
    "skipped": "–",
    "waiting_approval": "…",
    "waiting_answer": "?",
    "paused": "…",
    "running": "…",
    "crashed": "✗",
}


#: The one palette of statuses, for every command that colours one (run, runs, log, report).
#: Cancelled is yellow: a person stopped it, which is not the same as a command failing.
STATUS_STYLE = {
    "succeeded": "green",
    "succeeded_with_handled_failures": "green",
    "handled": "yellow",
    "failed": "red",
    "timed_out": "red",
    "cancelled": "yellow",
    "denied": "red",
    "crashed": "red",
    "skipped": "dim",
    "waiting_approval": "yellow",
    "waiting_answer": "yellow",
    "paused": "cyan",
    "running": "cyan",
}


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def fmt_duration(seconds: float | None) -> str:
    return "—" if seconds is None else format_duration(float(seconds))


def fmt_time(iso: str | None) -> str:
    """`19:51:44` (UTC) from an ISO timestamp."""
    if not iso:
        return "—"
    try:
        return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%H:%M:%S")
    except ValueError:
        return iso


def fmt_status(status: str) -> str:
    symbol = _SYMBOL.get(status, "")
    return f"{symbol} {status}".strip()


def wall_seconds(record: RunRecord) -> float | None:
    """Wall time of a finished run: first line to `run_finished`, pauses included."""
    start, end = _epoch(record.started), _epoch(record.finished)
    if start is None or end is None:
        return None
    return max(end - start, record.duration or 0.0)


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def time_limit_verdict(record: RunRecord) -> str:
    """One sentence: the total against the time limit and whether it was met. A run that
    paused for an approval is judged on wall time, the incident's clock, and says both."""
    wall = wall_seconds(record) if any(isinstance(p, ev.RunPaused) for p in record.pauses) else None
    if wall is not None:
        return _wall_verdict(record, wall)
    total = fmt_duration(record.duration)
    limit = record.time_limit
    if limit is None:
        return f"Total {total}; the runbook sets no time limit."
    met = record.met_time_limit
    if met is None:
        return (
            f"Time limit {fmt_duration(limit)}; the run has not finished, so it is not judged yet."
        )
    if met:
        return f"Total {total} against a time limit of {fmt_duration(limit)}: **met**."
    over = (record.duration or 0.0) - limit
    return (
        f"Total {total} against a time limit of {fmt_duration(limit)}: "
        f"**not met** (over by {fmt_duration(over)})."
    )


def _wall_verdict(record: RunRecord, wall: float) -> str:
    active = record.duration or 0.0
    both = (
        f"Wall time {fmt_duration(wall)} (active {fmt_duration(active)}, "
        f"{fmt_duration(wall - active)} waiting for approvals)"
    )
    limit = record.time_limit
    if limit is None:
        return f"{both}; the runbook sets no time limit."
    if wall <= limit:
        return f"{both} against a time limit of {fmt_duration(limit)}: **met**."
    return (
        f"{both} against a time limit of {fmt_duration(limit)}: "
        f"**not met** (over by {fmt_duration(wall - limit)})."
    )


def truncate(text: str) -> str:
    """Keep the head and tail of a long output, saying how much was left out."""
    lines = text.splitlines()
    if len(lines) > MAX_OUTPUT_LINES:
        head, tail = lines[: MAX_OUTPUT_LINES - 10], lines[-10:]
        left = len(lines) - len(head) - len(tail)
        lines = [*head, f"… {left} lines omitted (the journal has them all) …", *tail]
    text = "\n".join(lines)
    if len(text) > MAX_OUTPUT_CHARS:
        left = len(text) - MAX_OUTPUT_CHARS
        text = (
            text[: MAX_OUTPUT_CHARS // 2]
            + f"\n… {left} characters omitted …\n"
            + text[-MAX_OUTPUT_CHARS // 2 :]
        )
    return text


def output_text(out: Event) -> str:
    """The text a person would read for one output event (images are shown separately)."""
    kind = out.get("kind")
    if kind == "stream":
        return str(out.get("text") or "")
    if kind == "error":
        tb = out.get("traceback") or []
        body = "\n".join(strip_ansi(str(t)) for t in tb) if tb else ""
        head = error_headline(out.get("ename"), out.get("evalue"))
        return body if head in body else (f"{body}\n{head}" if body else head)
    data = out.get("data") or {}
    if "text/plain" in data:
        return joined(data["text/plain"])
    if out.get("text"):
        return str(out["text"])
    return ""


def joined(value: Any) -> str:
    """A mime value as one string (notebooks and kernels may send a list of lines)."""
    return "".join(value) if isinstance(value, list) else str(value)


def output_images(out: Event) -> list[str]:
    """Paths (relative to the run folder) of the images an output refers to."""
    data = out.get("data") or {}
    return [
        str(v)
        for k, v in data.items()
        if k.startswith("image/") and isinstance(v, str) and k != "image/svg+xml"
    ]


def merge_streams(outputs: Sequence[Event]) -> list[Event]:
    """Consecutive chunks of one stream read as one block, as a terminal shows them."""
    merged: list[Event] = []
    for o in outputs:
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and o.get("kind") == "stream" == prev.get("kind")
            and o.get("stream") == prev.get("stream")
            and o.get("block_id") == prev.get("block_id")
            and o.get("attempt") == prev.get("attempt")
        ):
            merged[-1] = {**prev, "text": str(prev.get("text") or "") + str(o.get("text") or "")}
        else:
            merged.append(o)
    return merged
