"""A runbook's run durations against its time limit, over time: the one chart, as SVG.

Used by the site (inline, in each runbook's page) and by `runbook report` and `runbook stats
--plot` (as a file next to the report). Plain SVG text, so it needs no plotting library, no
scripts and no network. x is when a run started, y how long it took; a dashed line marks the
time limit; each point is coloured by the run's status, drills are diamonds and runs circles,
and each point has a `<title>` so hovering names the run.

A run "within" the limit is one that *succeeded* in time: a failed or cancelled run that ended
early met no objective, so it is never called within (issue 18).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

MAX_POINTS = 200  # newest finished runs drawn; older ones would only crowd the chart
WIDTH, HEIGHT = 640, 240  # viewBox units; the SVG scales to the column's width
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 14, 58  # margins: y labels, x labels and the legend
_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
          10800, 21600, 43200, 86400, 172800, 604800)  # fmt: skip
# Presentation attributes rather than CSS, so the chart keeps its colours wherever it is shown
# (a page of the site, an <img> in a report); the hues of the status words in the runs table.
COLOURS = {"succeeded": "#2e7d32", "failed": "#c62828", "cancelled": "#757575", "other": "#ef6c00"}
_LIMIT_COLOUR = "#b71c1c"
_HIGHLIGHT = "#1565c0"
_LIMIT_LINE = f'stroke="{_LIMIT_COLOUR}" stroke-width="1.5" stroke-dasharray="6 4"'
_AXIS = 'stroke="currentColor"'
_GRID = 'stroke="currentColor" stroke-opacity="0.12"'
_SUCCESS = frozenset({"succeeded", "succeeded_with_handled_failures"})
_X_TICKS = 4  # at most this many time labels under the axis


@dataclass(frozen=True, slots=True)
class Sample:
    """One run, as the chart needs it (the site and the runner each convert their own runs)."""

    run_id: str
    started: dt.datetime | None  # None: unreadable, so the run has no place on the time axis
    duration: float | None  # seconds; None while the run has not finished
    status: str  # final status: succeeded, failed, cancelled, ...
    mode: str  # run, drill, procedure
    label: str  # how the run is named on hover, e.g. its start time


@dataclass(frozen=True, slots=True)
class Point:
    """One finished run placed on the chart."""

    sample: Sample
    started: dt.datetime  # the x value
    duration: float  # seconds (the y value)
    within: bool | None  # succeeded within the time limit; None when there is no limit


def succeeded(status: str) -> bool:
    return status in _SUCCESS


def verdict(status: str, duration: float | None, limit: float | None) -> bool | None:
    """True when the run succeeded within ``limit``, False when it did not (failed, or over),
    None when there is nothing to judge (no limit, or not finished)."""
    if limit is None or duration is None:
        return None
    return succeeded(status) and duration <= limit


def finished(samples: Sequence[Sample], limit: float | None) -> list[Point]:
    """The runs that can be drawn (a start time and a duration), oldest first."""
    points = [
        Point(s, s.started, s.duration, verdict(s.status, s.duration, limit))
        for s in samples
        if s.started is not None and s.duration is not None
    ]
    points.sort(key=lambda p: p.started.timestamp())
    return points


def duration_chart(
    samples: Sequence[Sample],
    limit: float | None,
    *,
    highlight: str | None = None,
    title: str = "",
    standalone: bool = False,
) -> str:
    """The `<svg>` of the chart, or "" when no run has finished.

    ``limit`` is the runbook's time limit in seconds (None: it sets none); ``highlight`` a run
    id to ring (a report shows where its own run sits); ``title`` a caption drawn in the SVG;
    ``standalone`` gives a file of its own an XML declaration and an opaque background.
    """
    every = finished(samples, limit)
    if not every:
        return ""
    points = every[-MAX_POINTS:]
    scale = _Scale(points, max([p.duration for p in points] + ([limit] if limit else [])))
    parts = [*_y_axis(scale), *_x_axis(scale)]
    if limit is not None:
        parts.append(_limit_line(scale, limit))
    parts += [_point(scale, p, limit, p.sample.run_id == highlight) for p in points]
    parts.append(_legend(points, limit))
    top = 0
    if title:
        top = 20
        parts.insert(0, _text(LEFT, -6, title, "start"))
    if standalone:
        parts.insert(0, f'<rect x="0" y="{-top}" width="{WIDTH}" height="{HEIGHT + top}" '
                     'fill="#fff"/>')  # fmt: skip
    colour = ' color="#333"' if standalone else ""
    svg = (
        f'<svg class="rb-chart" viewBox="0 {-top} {WIDTH} {HEIGHT + top}" role="img" '
        f'aria-label="{escape(summary(points, limit, len(every)))}" fill="currentColor"{colour} '
        f'font-family="sans-serif" font-size="11" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )
    return f'<?xml version="1.0" encoding="utf-8"?>\n{svg}\n' if standalone else svg


def summary(points: Sequence[Point], limit: float | None, total: int) -> str:
    """The chart in words, for screen readers: `3 runs, 2 succeeded within the time limit (1h)`."""
    n = len(points)
    what = f"Run durations: {n} run{'s' if n != 1 else ''}"
    if total > n:
        what += f" of {total} shown"
    if limit is None:
        return f"{what}; the runbook sets no time limit"
    within = sum(1 for p in points if p.within)
    return f"{what}, {within} succeeded within the time limit ({tick_label(limit)})"


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


def time_labels(first: dt.datetime, span: float, count: int = _X_TICKS) -> list[dt.datetime]:
    """Up to ``count`` tick times over ``span`` seconds from ``first``, none two with the same
    label: runs minutes apart once all read `04-02 09:15`, four times over."""
    fmt = time_format(span)
    ticks: list[dt.datetime] = []
    seen: set[str] = set()
    steps = 1 if span <= 0 else count
    for i in range(steps):
        offset = span * i / (steps - 1) if steps > 1 else 0.0
        when = dt.datetime.fromtimestamp(first.timestamp() + offset, tz=first.tzinfo)
        label = when.strftime(fmt)
        if label not in seen:
            seen.add(label)
            ticks.append(when)
    return ticks


def time_format(span: float) -> str:
    """The coarsest clock format that still tells ticks ``span / 3`` apart."""
    gap = span / (_X_TICKS - 1)
    if span >= 4 * 86400:
        return "%Y-%m-%d"
    if gap >= 60 or span <= 0:
        return "%m-%d %H:%M"
    return "%H:%M:%S"


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
    fmt = time_format(scale.span)
    for when in time_labels(first, scale.span):
        x = scale.x(when)
        out.append(_line(x, base, x, base + 4, _AXIS))
        out.append(_text(x, base + 16, when.strftime(fmt), "middle"))
    return out


def _limit_line(scale: _Scale, limit: float) -> str:
    y = scale.y(limit)
    label = _text(WIDTH - RIGHT - 2, y - 4, f"time limit {tick_label(limit)}", "end")
    line = _line(LEFT, y, WIDTH - RIGHT, y, _LIMIT_LINE)
    return f'<g class="rb-chart-limit" fill="{_LIMIT_COLOUR}">{line}{label}</g>'


# --- points and legend -------------------------------------------------------------------------


def point_title(sample: Sample, duration: float, limit: float | None) -> str:
    """`2025-04-02 09:15 UTC · run · succeeded · 25m (limit 1h, within)`; a run that did not
    succeed gets no "within", only "over" when it also ran past the limit."""
    took = tick_label(duration)
    text = f"{sample.label} · {sample.mode} · {sample.status.replace('_', ' ')} · {took}"
    if limit is None:
        return text
    if succeeded(sample.status):
        judged = "within" if duration <= limit else "over"
    else:
        judged = "over" if duration > limit else "not met"
    return f"{text} (limit {tick_label(limit)}, {judged})"


def _point(scale: _Scale, point: Point, limit: float | None, ringed: bool) -> str:
    sample = point.sample
    title = point_title(sample, point.duration, limit)
    x, y = scale.x(point.started), scale.y(point.duration)
    shape = _shape(x, y, sample.mode == "drill")
    ring = (
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="10" fill="none" stroke="{_HIGHLIGHT}" '
        'stroke-width="1.5"/>'
        if ringed
        else ""
    )
    status = status_class(sample.status)
    return (
        f'<g class="rb-chart-point rb-chart-point--{status}" fill="{COLOURS[status]}">'
        f"{shape}{ring}<title>{escape(title)}</title></g>"
    )


def _shape(x: float, y: float, drill: bool, size: float = 5) -> str:
    """A circle for a run, a diamond for a drill: told apart without colour."""
    if drill:
        d = size * 1.3
        return (
            f'<path d="M{x:.1f} {y - d:.1f}l{d:.1f} {d:.1f}l{-d:.1f} {d:.1f}l{-d:.1f} {-d:.1f}z"/>'
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size}"/>'


def status_class(status: str) -> str:
    """`succeeded`, `failed`, `cancelled` or `other`: the colour of a status."""
    kind = status.split("_", 1)[0]
    return kind if kind in COLOURS else "other"


def _legend(points: Sequence[Point], limit: float | None) -> str:
    items: list[tuple[str, str]] = []  # (marker drawn around the origin, label)
    for status in sorted({status_class(p.sample.status) for p in points}, key=list(COLOURS).index):
        items.append((f'<g fill="{COLOURS[status]}">{_shape(0, 0, False)}</g>', status))
    hollow = 'fill="none" stroke="currentColor"'
    if any(p.sample.mode == "drill" for p in points):
        items.append((f"<g {hollow}>{_shape(0, 0, True)}</g>", "drill"))
    if any(p.sample.mode != "drill" for p in points):
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
