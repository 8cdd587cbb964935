"""A runbook's run durations against its time limit, over time, as an inline SVG.

Drawn here rather than with the runner's matplotlib plot: the plugin must not import the runner,
and the site works offline with no scripts to draw charts. x is when a run started, y how long
it took; a dashed line marks the time limit; each point is coloured by the run's status, drills
are diamonds and runs circles, and each point has a `<title>` so hovering names the run.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from .runs import Run

MAX_POINTS = 200  # newest finished runs drawn; older ones would only crowd the chart
WIDTH, HEIGHT = 640, 240  # viewBox units; the SVG scales to the column's width
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 14, 58  # margins: y labels, x labels and the legend
_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
          10800, 21600, 43200, 86400, 172800, 604800)  # fmt: skip
# Presentation attributes rather than CSS, so the chart keeps its colours wherever it is shown;
# the same hues as the status words in the runs table (runbooks.css).
COLOURS = {"succeeded": "#2e7d32", "failed": "#c62828", "cancelled": "#757575", "other": "#ef6c00"}
_LIMIT_COLOUR = "#b71c1c"
_LIMIT_LINE = f'stroke="{_LIMIT_COLOUR}" stroke-width="1.5" stroke-dasharray="6 4"'
_AXIS = 'stroke="currentColor"'
_GRID = 'stroke="currentColor" stroke-opacity="0.12"'


@dataclass(frozen=True, slots=True)
class Point:
    """One finished run placed on the chart."""

    run: Run
    started: dt.datetime  # when it started (the x value)
    duration: float  # seconds (the y value)
    within: bool | None  # within the time limit; None when there is no limit


def finished(runs: Sequence[Run], limit: float | None) -> list[Point]:
    """The runs that can be drawn (a start time and a duration), oldest first. Unfinished runs
    have no duration; a run whose start time is unreadable has no place on the time axis."""
    points = []
    for run in runs:
        if run.started is None or run.duration is None:
            continue
        within = run.within_time_limit
        if within is None and limit is not None:
            within = run.duration <= limit
        points.append(Point(run, run.started, run.duration, within))
    points.sort(key=lambda p: p.started.timestamp())
    return points


def duration_chart(runs: Sequence[Run], limit: float | None) -> str:
    """The `<figure>` with the chart, or "" when no run has finished.

    ``limit`` is the runbook's time limit in seconds (None: the runbook sets none).
    """
    every = finished(runs, limit)
    if not every:
        return ""
    points = every[-MAX_POINTS:]
    scale = _Scale(points, max([p.duration for p in points] + ([limit] if limit else [])))
    parts = [*_y_axis(scale), *_x_axis(scale)]
    if limit is not None:
        parts.append(_limit_line(scale, limit))
    parts += [_point(scale, p, limit) for p in points]
    parts.append(_legend(points, limit))
    svg = (
        f'<svg class="rb-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(summary(points, limit, len(every)))}" fill="currentColor" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )
    return f'<figure class="rb-chart-figure">{svg}</figure>'


def summary(points: Sequence[Point], limit: float | None, total: int) -> str:
    """The chart in words, for screen readers: `3 runs, 2 within the time limit (1h)`."""
    n = len(points)
    what = f"Run durations: {n} run{'s' if n != 1 else ''}"
    if total > n:
        what += f" of {total} shown"
    if limit is None:
        return f"{what}; the runbook sets no time limit"
    within = sum(1 for p in points if p.within)
    return f"{what}, {within} within the time limit ({tick_label(limit)})"


# --- scales and axes ---------------------------------------------------------------------------


class _Scale:
    """Maps a start time and a duration to viewBox coordinates."""

    def __init__(self, points: Sequence[Point], largest: float) -> None:
        self.first = points[0].started.timestamp()
        self.span = points[-1].started.timestamp() - self.first
        self.points = points
        # A whole number of round ticks, with a tenth of room above the largest value.
        self.step = tick_step(largest * 1.1)
        self.top = max(1, math.ceil(largest * 1.1 / self.step)) * self.step

    def x(self, when: dt.datetime) -> float:
        inner = WIDTH - LEFT - RIGHT
        if self.span <= 0:
            return LEFT + inner / 2  # one run (or all at once): in the middle
        pad = inner * 0.04  # keep the first and last points off the axes
        return LEFT + pad + (when.timestamp() - self.first) / self.span * (inner - 2 * pad)

    def y(self, seconds: float) -> float:
        inner = HEIGHT - TOP - BOTTOM
        return TOP + inner - min(seconds, self.top) / self.top * inner


def tick_step(top: float) -> float:
    """The smallest round duration that divides ``top`` into at most 5 ticks."""
    weeks = _STEPS[-1]
    return next((s for s in _STEPS if top / s <= 5), weeks * math.ceil(top / weeks / 5))


def tick_label(seconds: float) -> str:
    """`0`, `500ms`, `45s`, `5m`, `1h30m`, `2d`: round durations, short as on a clock."""
    if seconds <= 0:
        return "0"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    left = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, left = divmod(left, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts[:2])


def _y_axis(scale: _Scale) -> list[str]:
    out = [_line(LEFT, TOP, LEFT, HEIGHT - BOTTOM, _AXIS)]
    for i in range(round(scale.top / scale.step) + 1):
        value = i * scale.step
        y = scale.y(value)
        out.append(_line(LEFT, y, WIDTH - RIGHT, y, _GRID))
        out.append(_text(LEFT - 6, y + 4, tick_label(value), "end"))
    out.append(
        f'<text class="rb-chart-label" transform="translate(14 {(HEIGHT - BOTTOM + TOP) / 2}) '
        'rotate(-90)" text-anchor="middle">duration</text>'
    )
    return out


def _x_axis(scale: _Scale) -> list[str]:
    base = HEIGHT - BOTTOM
    out = [_line(LEFT, base, WIDTH - RIGHT, base, _AXIS)]
    first = scale.points[0].started
    # From timestamps: start times may mix offsets, and an aware and a naive one do not subtract.
    count = 1 if scale.span <= 0 else 4
    ticks = [
        dt.datetime.fromtimestamp(scale.first + scale.span * i / 3, tz=first.tzinfo)
        for i in range(count)
    ]
    short = scale.span >= 4 * 86400  # dates alone once the ticks are a day or more apart
    for when in ticks:
        x = scale.x(when)
        label = when.strftime("%Y-%m-%d" if short else "%m-%d %H:%M")
        out.append(_line(x, base, x, base + 4, _AXIS))
        out.append(_text(x, base + 16, label, "middle"))
    return out


def _limit_line(scale: _Scale, limit: float) -> str:
    y = scale.y(limit)
    label = _text(WIDTH - RIGHT - 2, y - 4, f"time limit {tick_label(limit)}", "end")
    line = _line(LEFT, y, WIDTH - RIGHT, y, _LIMIT_LINE)
    return f'<g class="rb-chart-limit" fill="{_LIMIT_COLOUR}">{line}{label}</g>'


# --- points and legend -------------------------------------------------------------------------


def _point(scale: _Scale, point: Point, limit: float | None) -> str:
    run = point.run
    verdict = "" if point.within is None else (", within" if point.within else ", over")
    limit_text = f" (limit {tick_label(limit)}{verdict})" if limit is not None else ""
    took = tick_label(point.duration)
    title = f"{run.started_text} · {run.mode} · {run.status.replace('_', ' ')} · {took}{limit_text}"
    shape = _shape(scale.x(point.started), scale.y(point.duration), run.mode == "drill")
    status = _status_class(run.status)
    return (
        f'<g class="rb-chart-point rb-chart-point--{status}" fill="{COLOURS[status]}">'
        f"{shape}<title>{escape(title)}</title></g>"
    )


def _shape(x: float, y: float, drill: bool, size: float = 5) -> str:
    """A circle for a run, a diamond for a drill: told apart without colour."""
    if drill:
        d = size * 1.3
        return (
            f'<path d="M{x:.1f} {y - d:.1f}l{d:.1f} {d:.1f}l{-d:.1f} {d:.1f}l{-d:.1f} {-d:.1f}z"/>'
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size}"/>'


def _status_class(status: str) -> str:
    kind = status.split("_", 1)[0]
    return kind if kind in COLOURS else "other"


def _legend(points: Sequence[Point], limit: float | None) -> str:
    items: list[tuple[str, str]] = []  # (marker drawn around the origin, label)
    for status in sorted({_status_class(p.run.status) for p in points}, key=list(COLOURS).index):
        items.append((f'<g fill="{COLOURS[status]}">{_shape(0, 0, False)}</g>', status))
    hollow = 'fill="none" stroke="currentColor"'
    if any(p.run.mode == "drill" for p in points):
        items.append((f"<g {hollow}>{_shape(0, 0, True)}</g>", "drill"))
    if any(p.run.mode != "drill" for p in points):
        items.append((f"<g {hollow}>{_shape(0, 0, False)}</g>", "run"))
    if limit is not None:
        items.append((_line(-9, 0, 9, 0, _LIMIT_LINE), "time limit"))
    out, x, y = [], float(LEFT), HEIGHT - 12
    for marker, label in items:
        out.append(f'<g transform="translate({x + 8:.1f} {y - 4})">{marker}</g>')
        out.append(_text(x + 20, y, label, "start"))
        x += 32 + 6.5 * len(label)
    return f'<g class="rb-chart-legend">{"".join(out)}</g>'


def _line(x1: float, y1: float, x2: float, y2: float, attrs: str = "") -> str:
    extra = f" {attrs}" if attrs else ""
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"{extra}/>'


def _text(x: float, y: float, text: str, anchor: str) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{escape(text)}</text>'
