"""Readiness figures computed from journals written in the test."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_journal import start, step, write_short_run

from runner.reports.stats import all_stats, percentile, plot_durations, runbook_stats
from runner.runs.journal import Journal
from runner.runs.store import list_runs


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 90, 5.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 90, 5.0),  # rank ceil(4.5) = 5
        ([float(i) for i in range(1, 11)], 90, 9.0),  # rank 9 of 10
        ([float(i) for i in range(1, 21)], 90, 18.0),
        ([float(i) for i in range(1, 11)], 50, 5.0),
        ([], 90, None),
    ],
    ids=["one", "five", "ten", "twenty", "p50-nearest-rank", "empty"],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def _history(runs_dir: Path) -> None:
    """Seven exercises of compromised-account and one of another runbook.

    Finished: 300, 600, 900, 1200 (runs), 1500 failed (run), 2400 (drill, over the 30 m limit);
    one cancelled after 60 s, one crashed, one dry run that must not count.
    """
    specs = [
        ("succeeded", 600.0, "run"),
        ("succeeded", 300.0, "drill"),
        ("failed", 1500.0, "run"),
        ("succeeded_with_handled_failures", 1200.0, "run"),
        ("succeeded", 2400.0, "drill"),
        ("cancelled", 60.0, "run"),
        ("succeeded", 900.0, "run"),
        ("succeeded", 10.0, "dry_run"),
    ]
    for i, (status, duration, mode) in enumerate(specs, 1):
        write_short_run(
            runs_dir, f"2026010{i}T000000Z-ca-{i:04d}", status=status, duration=duration, mode=mode
        )
    with Journal.create(runs_dir, "20260109T000000Z-ca-0009") as j:  # the runner died
        start(j)
        step(j, 1, "lookup", "Look up the user")
    write_short_run(
        runs_dir,
        "20260110T000000Z-pt-0010",
        runbook_id="phishing-triage",
        duration=100.0,
        time_limit=None,
    )


def test_figures_of_one_runbook(tmp_path: Path) -> None:
    _history(tmp_path)
    s = runbook_stats("compromised-account", list_runs(tmp_path))
    assert (s.runs, s.drills) == (6, 2)
    # Completed: 7 finished + 1 crashed; succeeded: 5 (handled failures count as success).
    assert (s.completed, s.succeeded) == (8, 5)
    assert s.success_rate == pytest.approx(5 / 8)
    # Finished durations: 60 300 600 900 1200 1500 2400 -> median 900, p90 rank 7 = 2400.
    assert s.median_duration == 900.0
    assert s.p90_duration == 2400.0
    # 6 of the 7 finished runs were within 1800 s.
    assert s.within_time_limit == pytest.approx(6 / 7)
    assert s.time_limit == 1800.0
    assert s.last_exercised is not None


def test_every_runbook_gets_a_row_and_no_limit_means_no_share(tmp_path: Path) -> None:
    _history(tmp_path)
    rows = {s.runbook_id: s for s in all_stats(list_runs(tmp_path))}
    assert sorted(rows) == ["compromised-account", "phishing-triage"]
    pt = rows["phishing-triage"]
    assert (pt.runs, pt.success_rate, pt.median_duration, pt.p90_duration) == (1, 1.0, 100.0, 100.0)
    assert pt.within_time_limit is None and pt.time_limit is None


def test_a_runbook_never_exercised(tmp_path: Path) -> None:
    s = runbook_stats("ransomware", [], name="Ransomware")
    assert (s.runs, s.drills, s.success_rate, s.median_duration, s.last_exercised) == (
        0,
        0,
        None,
        None,
        None,
    )


def test_plot_of_durations_against_the_limit(tmp_path: Path) -> None:
    _history(tmp_path)
    runs = list_runs(tmp_path, "compromised-account")
    done = next(r for r in runs if r.duration is not None)
    out = plot_durations(runs, 1800.0, tmp_path / "plots" / "ca.svg", highlight=done.run_id)
    assert out == tmp_path / "plots" / "ca.svg"
    svg = out.read_text(encoding="utf-8")
    assert (
        svg.startswith('<?xml version="1.0"') and "<svg" in svg and svg.rstrip().endswith("</svg>")
    )
    assert "time limit 30m" in svg and "run durations" in svg
    # The highlighted run is ringed: exactly one ring.
    assert svg.count('r="10" fill="none"') == 1
    assert plot_durations([], 1800.0, tmp_path / "none.svg") is None
    assert not (tmp_path / "none.svg").exists()
