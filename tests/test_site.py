"""The documentation site, built by the real `mkdocs build --strict` with the runbooks plugin.

One build of a small project (two runbooks, a git history, a runs folder) is shared by the
assertions on its HTML; the failure cases build their own small projects.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from plugins.runbooks.catalog import git_dates

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "site_project"
MKDOCS = Path(sys.executable).with_name("mkdocs")
CLI_HOOK = ROOT / "docs" / "hooks" / "cli_reference.py"

pytestmark = pytest.mark.slow


def make_project(root: Path, extra_runbooks: tuple[str, ...] = (), **options: object) -> Path:
    """A project folder: mkdocs.yml, docs/ and runbooks/ copied from the fixtures."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(FIXTURES / "docs", root / "docs")
    shutil.copytree(FIXTURES / "runbooks", root / "runbooks")
    for name in extra_runbooks:
        shutil.copy(FIXTURES / name, root / "runbooks" / name)
    plugin = {"runbooks_dir": "runbooks", **options}
    config = {
        "site_name": "Plugin test",
        "theme": {
            "name": "material",
            "font": False,
            "features": ["content.code.copy", "navigation.top"],
            # Both schemes, as the project's own mkdocs.yml: the dark one's styles come with it.
            "palette": [{"scheme": "default"}, {"scheme": "slate"}],
        },
        "plugins": ["search", "tags", {"runbooks": plugin}],
        "hooks": [str(CLI_HOOK)],
        "nav": [{"Home": "index.md"}, {"Runbooks": "runbooks/index.md"}, {"CLI": "cli.md"}],
    }
    # JSON is YAML, and it needs no quoting rules of its own.
    (root / "mkdocs.yml").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return root


def build(project: Path, site: Path, strict: bool = True) -> subprocess.CompletedProcess[str]:
    args = [str(MKDOCS), "build", "-f", str(project / "mkdocs.yml"), "-d", str(site)]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [*args, "--strict"] if strict else args,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


_INLINE = re.compile(r"</?(?:a|span|code|strong|em|label)\b[^>]*>")


def text(fragment: str) -> str:
    """What a reader sees of an HTML fragment: tags dropped, entities decoded, spaces collapsed."""
    words = re.sub(r"<[^>]+>", " ", _INLINE.sub("", fragment))
    return " ".join(html.unescape(words).split())


def code(fragment: str) -> str:
    """The text of highlighted code: the tags Pygments adds are not spaces."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def between(page: str, start: str, end: str) -> str:
    """The HTML from the first ``start`` to the next ``end`` after it."""
    assert start in page, f"{start!r} not in page"
    rest = page[page.index(start) :]
    return rest[: rest.index(end)] if end in rest else rest


@dataclass
class Site:
    root: Path
    log: str
    project: Path

    def page(self, url: str) -> str:
        return (self.root / url / "index.html").read_text(encoding="utf-8")


def _journal(runs: Path, name: str, events: list[dict[str, object]], tail: str = "") -> None:
    folder = runs / name
    folder.mkdir(parents=True)
    lines = "".join(json.dumps(e) + "\n" for e in events)
    (folder / "journal.jsonl").write_text(lines + tail, encoding="utf-8")


def _started(run_id: str, ts: str, mode: str) -> dict[str, object]:
    book = {"id": "compromised-account", "path": "runbooks/compromised-account.md",
            "name": "Compromised account", "sha256": "0" * 64, "time_limit": 3600}  # fmt: skip
    return {"event": "run_started", "run_id": run_id, "ts": ts, "runbook": book, "mode": mode}


def _write_runs(runs: Path) -> None:
    _journal(runs, "r1", [
        _started("r1", "2025-04-02T09:15:00+00:00", "run"),
        {"event": "step_finished", "step": "lookup", "status": "succeeded"},
        {"event": "run_finished", "status": "succeeded", "duration": 1500,
         "within_time_limit": True},
    ])  # fmt: skip
    _journal(runs, "r2", [
        _started("r2", "2025-03-20T14:00:00+00:00", "drill"),
        {"event": "run_finished", "status": "failed", "duration": 4000, "within_time_limit": False},
    ])  # fmt: skip
    # A runner killed mid-write: the last line is torn, the run never finished.
    _journal(runs, "r3", [_started("r3", "2025-01-05T08:00:00+00:00", "drill")], '{"event": "st')
    _journal(runs, "r4", [], "this is not json\n")


def _git_commit(project: Path, path: str, date: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True, env=env)
    subprocess.run([*git, "add", path], check=True, env=env)
    subprocess.run([*git, "commit", "-q", "-m", "add"], check=True, env=env)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    base = tmp_path_factory.mktemp("site")
    project = make_project(base / "project", runs_dir=".runbook/runs")
    _git_commit(project, "runbooks/compromised-account.md", "2024-03-05T10:00:00+00:00")
    _write_runs(project / ".runbook" / "runs")
    proc = build(project, base / "out")
    assert proc.returncode == 0, proc.stderr
    return Site(base / "out", proc.stderr, project)


# --- a runbook page ----------------------------------------------------------------------------


def test_header_band_shows_what_a_responder_needs_first(site: Site) -> None:
    page = site.page("runbooks/compromised-account")
    band = text(between(page, '<dl class="rb-band"', "</dl>")).replace(" ,", ",")
    assert band == (
        "Severity high Service identity Objective Contain within 1 hour (limit 1h) "
        "Trigger Impossible-travel alert on a user account Roles commander, analyst Notify —"
    )
    # Who each role is shows on hover, and in full under Details.
    assert '<b title="On-call incident commander">commander</b>' in page
    details = text(between(page, '<details class="rb-card">', "</details>"))
    assert details.startswith("Details: tools, inputs, source")
    for fact in (
        "Owner secops-team",
        "Roles commander On-call incident commander analyst SOC analyst on shift",
        "Tools okta-cli, jq",
        "Tags identity, containment",
        "Source runbooks/compromised-account.md",
    ):
        assert fact in details, fact
    assert "user string yes — the account to contain." in details
    assert "severity string no high One of low, medium, high, critical." in details
    assert "api_token secret string no — API token for the identity provider." in details
    # The band comes straight after the title, the details fold away, and both before step 1.
    assert page.index('class="rb-band"') < page.index("<details") < page.index('id="step-')


def test_card_facts_are_searchable_and_tags_reach_material(site: Site) -> None:
    index = json.loads((site.root / "search" / "search_index.json").read_text(encoding="utf-8"))
    pages = [d for d in index["docs"] if d["location"] == "runbooks/compromised-account/"]
    assert pages, [d["location"] for d in index["docs"]][:20]
    # Words the search splits on whitespace: "high" must be a word of its own.
    words = set(re.split(r"[\s\-]+", text(pages[0]["text"])))
    for fact in ("high", "identity", "Impossible", "travel"):
        assert fact in words, fact
    # The page's own front matter carries the tags, which Material's tags plugin shows.
    page = site.page("runbooks/compromised-account")
    assert re.findall(r'<span class="md-tag">([^<]+)</span>', page) == ["containment", "identity"]


def test_the_role_line_the_parser_recognised_shows_once(site: Site) -> None:
    from plugins.runbooks.catalog import Catalog

    loaded = Catalog().load(site.project / "runbooks", site.project)
    entry = next(e for e in loaded.entries if e.id == "compromised-account")
    step = entry.runbook.steps[0]
    assert (step.role, entry.lines[step.role_line - 1]) == ("analyst", "Role: analyst")
    page = site.page("runbooks/compromised-account")
    one = text(between(page, 'id="step-confirm-the-alert"', 'id="step-lookup"'))
    assert one.count("analyst") == 1, one  # the badge, not the line as well


def test_steps_are_numbered_with_role_and_policy_badges(site: Site) -> None:
    page = site.page("runbooks/compromised-account")
    headings = re.findall(r'<h3 class="rb-step" id="step-[^"]+">(.*?)</h3>', page)
    assert [text(h) for h in headings] == [
        "1. Confirm the alert",
        "2. Look up recent sign-ins",
        "3. Disable the account",
    ]
    one = text(between(page, 'data-step="confirm-the-alert"', 'data-step="lookup"'))
    assert "role: analyst" in one
    assert "manual" in one
    assert "Read the alert in the SIEM" in one
    assert "Role: analyst" not in one  # the badge replaces the line
    two = text(between(page, 'data-step="lookup"', 'data-step="disable"'))
    for badge in ("role: analyst", "runs python", "timeout 2m", "retries 2×", "sets count"):
        assert badge in two, badge
    assert "manual" not in two
    three = between(page, 'data-step="disable"', "</article>")
    for badge in (
        "role: commander",
        "needs approval by commander",
        "only when severity is one of high or critical",
        "on failure: Manual disable",
    ):
        assert badge in text(three), badge
    assert 'href="#procedure-manual-disable"' in three
    assert 'id="procedure-manual-disable"' in page


def test_code_is_highlighted_and_no_brace_attribute_leaks(site: Site) -> None:
    page = site.page("runbooks/compromised-account")
    assert 'class="language-python highlight"' in page
    assert 'class="language-bash highlight"' in page
    blocks = "".join(code(c) for c in re.findall(r"<pre.*?</pre>", page, re.S))
    assert 'print(f"{user}: {count} sign-ins")' in blocks
    # Left in the info string, superfences would take the braces as the block's HTML attributes.
    assert 'id="lookup"' not in page and 'id="disable"' not in page
    seen = text(between(page, "<article", "</article>"))
    for leak in ("{id=", "role=", "approve=", "timeout=", "on_failure=", "outputs=", "when="):
        assert leak not in seen, leak


def test_run_it_box_gives_placeholders_and_names_the_secret_variable(site: Site) -> None:
    page = site.page("runbooks/compromised-account")
    box = between(page, 'class="admonition example rb-run"', "</details>")
    commands = code(between(box, "<pre>", "</pre>")).splitlines()
    # Every input is a placeholder for this incident's value, never the lab's default.
    assert commands == [
        'export RUNBOOK_INPUT_API_TOKEN="$(cat …)"  # api_token: never on the command line',
        "runbook run runbooks/compromised-account.md -i user=<user> -i severity=<severity>",
    ]
    assert "api_token=" not in text(box)  # a secret never goes on a command line
    assert "Secret: api_token from RUNBOOK_INPUT_API_TOKEN" in text(box)
    assert "severity (one of low, medium, high, critical; the lab uses high)" in text(box)
    # Material adds the copy button to every code block when this feature is on.
    assert '"content.code.copy"' in page


def test_criteria_and_alternative_procedures_are_styled(site: Site) -> None:
    page = site.page("runbooks/compromised-account")
    success = text(between(page, 'class="admonition success rb-criteria"', "</div>"))
    assert "Success criteria The account is disabled The user has been told" in success
    failure = text(between(page, 'class="admonition failure rb-criteria"', "</div>"))
    assert "The account is still active after 1 hour" in failure
    procedure = text(between(page, 'id="procedure-manual-disable"', "<h2"))
    assert "Manual disable" in procedure
    assert "Alternative procedure: followed when step 3 fails" in procedure
    assert 'class="admonition failure rb-procedure"' in page
    assert "1. Call the identity team on their hotline. role: commander manual" in procedure
    assert "2. Ask them to disable the account by hand. role: commander manual" in procedure
    assert "Role: commander" not in procedure
    assert "References" in text(page)


def test_follow_along_has_a_checkbox_per_step_and_a_counter(site: Site) -> None:
    page = site.page("runbooks/compromised-account")
    boxes = re.findall(r'<input type="checkbox" class="rb-check-box" data-step="([^"]+)"', page)
    assert boxes == ["confirm-the-alert", "lookup", "disable"]
    bar = between(page, '<div class="rb-follow"', "</div>")
    assert 'data-runbook="compromised-account"' in bar
    assert 'class="rb-incident-id"' in bar  # ticks are kept per incident
    assert "0 of 3 done" in text(bar)
    assert "Copy checklist" in text(bar) and "New incident" in text(bar)


def test_list_item_steps_render_as_numbered_steps(site: Site) -> None:
    page = site.page("runbooks/phishing-triage")
    assert "1. Open the reported message." in text(page)
    step2 = between(page, 'data-step="check-the-sender-domain"', "</article>")
    assert 'class="language-bash highlight"' in step2
    assert "{role=" not in step2
    assert "0 of 2 done" in text(page)


def test_latest_runs_and_drills_from_the_journals(site: Site) -> None:
    page = site.page("runbooks/compromised-account")
    runs = between(page, 'id="latest-runs"', "</table>")
    rows = [text(r) for r in re.findall(r"<tr>(.*?)</tr>", runs, re.S)][1:]
    assert rows == [
        "2025-04-02 09:15 UTC run succeeded 25m00s 1h00m, within",
        "2025-03-20 14:00 UTC drill failed 1h06m 1h00m, over",
        "2025-01-05 08:00 UTC drill crashed — 1h00m",  # no end, and no runner holds it
    ]
    card = text(between(page, '<details class="rb-card"', "</dl>"))
    assert card.endswith("Last exercised 2025-04-02 09:15 UTC (run, succeeded)")
    assert "skipped an unreadable journal" in site.log
    assert "r4/journal.jsonl" in site.log


def _finished_in_journals(runs: Path) -> list[dict[str, object]]:
    """The run_finished events of the fixture's journals, read the plain way."""
    out = []
    for journal in sorted(runs.glob("*/journal.jsonl")):
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == "run_finished":
                out.append(event)
    return out


def test_chart_of_run_durations_against_the_time_limit(site: Site) -> None:
    page = site.page("runbooks/compromised-account")
    section = between(page, 'id="latest-runs"', "</table>")
    svg = between(section, "<svg", "</svg>")
    assert 'role="img"' in svg
    finished = _finished_in_journals(site.project / ".runbook" / "runs")
    within = sum(1 for e in finished if e.get("within_time_limit"))
    label = f"Run durations: {len(finished)} runs, {within} succeeded within the time limit"
    assert f'aria-label="{label}' in svg
    points = re.findall(r'<g class="rb-chart-point rb-chart-point--(\w+)"[^>]*>(.*?)</g>', svg)
    assert len(points) == len(finished) == 2
    # Oldest first; the drill is a diamond, the run a circle; hovering names the run.
    (drill_status, drill), (run_status, run) = points
    assert (drill_status, run_status) == ("failed", "succeeded")
    assert drill.startswith("<path") and run.startswith("<circle")
    assert "<title>2025-03-20 14:00 UTC · drill · failed · 1h6m (limit 1h, over)</title>" in drill
    assert "<title>2025-04-02 09:15 UTC · run · succeeded · 25m (limit 1h, within)</title>" in run
    # The dashed limit line sits exactly at the y axis' "1h" tick, and the drill over it is above.
    limit = re.search(r'<g class="rb-chart-limit"[^>]*><line [^>]*y1="([\d.]+)"[^>]*>', svg)
    assert limit and "stroke-dasharray" in limit.group(0)
    tick = re.search(r'<text x="[\d.]+" y="([\d.]+)" text-anchor="end">1h</text>', svg)
    assert tick and float(tick.group(1)) - 4 == float(limit.group(1))
    drill_y = float(re.findall(r"M[\d.]+ ([\d.]+)", drill)[0])
    run_y = float(re.findall(r'cy="([\d.]+)"', run)[0])
    assert drill_y < float(limit.group(1)) < run_y  # SVG's y grows downwards
    assert "time limit 1h" in text(svg)
    assert section.index('<svg class="rb-chart"') < section.index("<table")


def test_a_runbook_without_journals_says_never(site: Site) -> None:
    page = site.page("runbooks/phishing-triage")
    assert "Last exercised never" in text(page)
    assert 'id="latest-runs"' not in page
    assert "rb-chart" not in page


def test_no_chart_without_a_finished_run() -> None:
    from plugins.runbooks.runs import Run, duration_figure

    started = dt.datetime(2025, 1, 5, 8, tzinfo=dt.UTC)
    unfinished = Run("r3", "x", started, "drill", "unfinished", None, 3600, None)
    undated = Run("r5", "x", None, "run", "succeeded", 60.0, 3600, True)
    assert duration_figure([unfinished, undated], 3600) == ""
    chart = duration_figure([unfinished, undated, replace(unfinished, duration=10.0)], None)
    assert 'aria-label="Run durations: 1 run; the runbook sets no time limit"' in chart
    assert "rb-chart-limit" not in chart


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(0, "0"), (0.5, "500ms"), (45, "45s"), (300, "5m"), (5400, "1h30m"), (172800, "2d")],
    ids=["zero", "ms", "s", "m", "h-m", "d"],
)
def test_chart_durations_read_like_a_clock(seconds: float, label: str) -> None:
    from runner.reports.chart import tick_label

    assert tick_label(seconds) == label


# --- the index and the navigation ---------------------------------------------------------------


def test_index_lists_every_runbook_with_its_facts(site: Site) -> None:
    page = site.page("runbooks")
    table = between(page, '<div class="rb-index">', "</table>")
    # One class on the table: Material wraps only bare tables in its own scroll areas.
    assert '<table class="rb-index-table">' in table and "md-typeset__scrollwrap" not in page
    rows = re.findall(r'<tr class="rb-row" (data-[^>]*)>(.*?)</tr>', table, re.S)
    assert len(rows) == 2
    # Real groups: one <tbody> per service, under a heading row that names it.
    groups = re.findall(r'<tbody class="rb-group" data-service="([^"]+)"><tr[^>]*><th[^>]*>'
                        r"([^<]+)</th>", table)  # fmt: skip
    assert groups == [("email", "email"), ("identity", "identity")]
    mtime = (site.project / "runbooks" / "phishing-triage.md").stat().st_mtime
    assert [text(cells) for _, cells in rows] == [
        "Phishing triage medium Decide within 30 minutes whether a reported mail is "
        f"phishing analyst 2 {dt.date.fromtimestamp(mtime).isoformat()} never",
        "Compromised account high Contain within 1 hour commander analyst 3 "
        "2024-03-05 2025-04-02 09:15 UTC (run, succeeded)",
    ]
    assert "No runbook matches these filters." in text(between(table, "rb-nomatch", "</tbody>"))
    attrs = rows[1][0]
    assert 'data-service="identity"' in attrs
    assert 'data-severity="high"' in attrs
    assert 'data-role="|commander|analyst|"' in attrs
    assert '<a href="compromised-account/">Compromised account</a>' in table


def test_index_offers_filters_by_service_severity_and_role(site: Site) -> None:
    page = site.page("runbooks")
    filters = between(page, '<div class="rb-filters"', "</div>")
    options = dict(
        (key, re.findall(r'<option value="([^"]*)"', body))
        for key, body in re.findall(r'data-filter="(\w+)">(.*?)</select>', filters, re.S)
    )
    assert options == {
        "service": ["", "email", "identity"],
        "severity": ["", "high", "medium"],
        "role": ["", "analyst", "commander"],
    }


def test_navigation_groups_runbooks_by_service(site: Site) -> None:
    page = site.page("runbooks/phishing-triage")
    nav = text(between(page, '<nav class="md-nav md-nav--primary"', 'class="md-content"'))
    order = ["Runbooks", "email", "Phishing triage", "identity", "Compromised account", "CLI"]
    places = [nav.find(label) for label in order]
    assert -1 not in places and places == sorted(places), list(zip(order, places, strict=True))


# --- the site as a whole ------------------------------------------------------------------------


def test_site_works_offline(site: Site) -> None:
    external = re.compile(
        r"<(?:script|img|iframe)[^>]+src=[\"']?(?:https?:)?//|<link[^>]+href=[\"']?(?:https?:)?//"
        r"|@import\s+url\([\"']?(?:https?:)?//",
        re.I,
    )
    pages = list(site.root.rglob("*.html"))
    assert len(pages) >= 5
    for page in pages:
        found = external.search(page.read_text(encoding="utf-8"))
        assert found is None, f"{page}: {found.group(0) if found else ''}"
    assert not any("fonts.googleapis" in p.read_text(encoding="utf-8") for p in pages)


def test_assets_ship_with_the_site_and_print_cleanly(site: Site) -> None:
    page = site.page("runbooks/compromised-account")
    assert 'href="../../assets/runbooks/runbooks.css"' in page
    assert 'src="../../assets/runbooks/runbooks.js"' in page
    css = (site.root / "assets" / "runbooks" / "runbooks.css").read_text(encoding="utf-8")
    print_rules = css[css.index("@media print") :]
    assert ".rb-follow" in print_rules
    assert ".rb-check" in print_rules
    assert "display: none" in print_rules


def test_cli_reference_comes_from_the_commands_own_help(site: Site) -> None:
    page = text(site.page("cli"))
    assert "runbook check" in page
    assert "Usage: runbook check [OPTIONS]" in page
    assert "Usage: runbook [OPTIONS] COMMAND [ARGS]..." in page


# --- diagnostics --------------------------------------------------------------------------------


def test_a_failing_runbook_fails_the_strict_build_with_file_and_line(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", extra_runbooks=("broken.md",))
    proc = build(project, tmp_path / "out")
    assert proc.returncode == 1
    assert "WARNING -  runbooks/broken.md:16: RB030 unknown block attribute 'aprove'" in proc.stderr
    assert "(did you mean 'approve'?)" in proc.stderr
    assert "Aborted with 1 warnings in strict mode!" in proc.stdout


def test_strict_runbooks_false_reports_problems_as_info(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p", extra_runbooks=("broken.md", "legacy.md"), strict_runbooks=False
    )
    proc = build(project, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert "INFO    -  runbooks/broken.md:16: RB030 unknown block attribute" in proc.stderr
    broken = (tmp_path / "out" / "runbooks" / "broken" / "index.html").read_text(encoding="utf-8")
    assert "finds 1 problem(s) in this runbook" in text(broken)
    assert "line 16: error RB030" in text(broken)
    # Plain Markdown without `## Steps` still gets a checkbox above each runnable block.
    legacy = (tmp_path / "out" / "runbooks" / "legacy" / "index.html").read_text(encoding="utf-8")
    assert re.search(r'class="rb-check-box" data-step="[^"]+"', legacy)
    assert "systemctl restart thing" in text(legacy)
    assert len(re.findall(r"<h1[^>]*>Legacy notes", legacy)) == 1  # the file's H1 is the title
    # A fence that Markdown reads as an indented code block keeps its text, and no marker of
    # the plugin's shows in it.
    assert "oc get storageclass standard" in text(legacy)
    assert "rb:" not in text(legacy)


def test_linked_runbooks_show_their_target_and_a_dangling_link_is_reported(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "p", strict_runbooks=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(FIXTURES / "legacy.md", elsewhere / "legacy.md")
    (project / "runbooks" / "legacy.md").symlink_to(elsewhere / "legacy.md")
    (project / "runbooks" / "gone.md").symlink_to(project / "runbooks" / "deleted.md")
    proc = build(project, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "INFO    -  runbooks/deleted.md: RB004 no such file" in proc.stderr
    legacy = (tmp_path / "out" / "runbooks" / "legacy" / "index.html").read_text(encoding="utf-8")
    # A link may point anywhere: the page names the file that is really read.
    target = (elsewhere / "legacy.md").resolve().as_posix()
    assert f"Source {target}" in text(legacy)
    assert f"runbook run {target}" in text(legacy)
    plain = (tmp_path / "out" / "runbooks" / "phishing-triage" / "index.html").read_text("utf-8")
    assert "Source runbooks/phishing-triage.md" in text(plain)


BRACES = """---
id: braces
name: Restore {tenant} backups
service: backup
objective: Restore the tenant's data within 4 hours
time_limit: 4h
---
# Restore {tenant} backups

## Steps

1. Find the {{snapshot}} to restore {.latest}

2. Restore it.

   ```bash
   echo restore
   ```

## Success criteria

- The data is back
"""


def test_braces_in_a_name_or_step_title_stay_text(tmp_path: Path) -> None:
    """The plugin ends these headings with `{ #id ... }`: the title's own braces must not stop
    Markdown from reading those attributes (nor show up as attributes themselves)."""
    project = make_project(tmp_path / "p")
    (project / "runbooks" / "braces.md").write_text(BRACES, encoding="utf-8")
    proc = build(project, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "out" / "runbooks" / "braces" / "index.html").read_text(encoding="utf-8")
    assert re.search(r"<h1[^>]*>Restore \{tenant\} backups</h1>", page)
    title = re.escape("1. Find the {{snapshot}} to restore {.latest}")
    step = rf'<h3 class="rb-step" id="step-[\w-]+">{title}</h3>\s*<div class="rb-step-meta'
    assert re.search(step, page)  # the heading keeps its class and id, then the step's checkbox
    assert len(re.findall(r'class="rb-check-box"', page)) == 2
    assert "data-rb" not in page and "rb-step }" not in page


@pytest.mark.parametrize(
    ("line", "lang", "expected"),
    [
        ("```bash {id=x approve=true}", "bash", "```bash"),
        ("   ````python {timeout=5m}", "python", "   ````python"),
        ("> ~~~sh {role=L1}", "sh", "> ~~~sh"),
        ("```{exec=false}", "", "```"),
        ("no fence here", "bash", "no fence here"),
    ],
    ids=["plain", "indented-long", "quoted-tilde", "no-language", "not-a-fence"],
)
def test_bare_fence_keeps_only_the_language(line: str, lang: str, expected: str) -> None:
    from plugins.runbooks.markup import bare_fence

    assert bare_fence(line, lang) == expected


def test_last_change_dates_read_non_ascii_file_names_from_git(tmp_path: Path) -> None:
    # git quotes and escapes such names by default ("r\303\251seau.md"), which matched no file,
    # so the index showed the file's time instead of its last commit.
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "réseau-coupé.md").write_text("# Réseau\n", encoding="utf-8")
    _git_commit(tmp_path, "runbooks/réseau-coupé.md", "2023-07-14T12:00:00+00:00")
    with git_dates(folder) as dates:
        pass
    assert dates == {"réseau-coupé.md": "2023-07-14"}


DECISION = """---
name: Decide <the> case
service: test
objective: Test decisions
time_limit: 5m
roles: {L1: "analyst & co", IR-lead: "the <lead>", Legal: counsel}
---
# Decide <the> case

## Steps

### 1. Ask the owner

Role: L1 (informed: IR-lead; consulted: Legal)

Call them.

```decision {id=owner outputs=legit}
Was it <script>alert(1)</script> yours & planned?
```

### 2. Pick a route

Role: L1
Informed: IR-lead

```decision {id=route choices="close,<escalate>" when="legit == 'no'" approve=IR-lead}
Which route?
```

### 3. Close

Role: L1

```bash {when="route == 'close'"}
echo close
```

## Success criteria

- Decided.
"""


def test_a_decision_step_and_its_roles_render_escaped(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    (project / "runbooks" / "decide.md").write_text(DECISION, encoding="utf-8")
    proc = build(project, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "out" / "runbooks" / "decide" / "index.html").read_text(encoding="utf-8")
    one = between(page, 'data-step="owner"', 'data-step="route"')
    assert "<script>alert(1)" not in page  # the question is text, never markup
    assert "Was it &lt;script&gt;alert(1)&lt;/script&gt; yours &amp; planned?" in one
    seen = text(one)
    for shown in (
        "role: L1",
        "informed: IR-lead",
        "consulted: Legal",
        "decision: yes/no",
        "Decision: Was it <script>alert(1)</script> yours & planned?",
        "Answer: yes / no · recorded as legit",
        "Call them.",
    ):
        assert shown in seen, shown
    assert "Role: L1" not in seen  # the badges replace the line
    assert "```decision" not in seen and "outputs=" not in seen
    assert 'class="rb-decision"' in one
    two = text(between(page, 'data-step="route"', 'data-step="close"'))
    for shown in (
        "informed: IR-lead",
        "decision: close/<escalate>",
        "needs approval by IR-lead",
        "Answer: close / <escalate> · recorded as route",
    ):
        assert shown in two, shown
    assert "Informed: IR-lead" in two  # a line of its own stays as the author wrote it
    assert "&lt;escalate&gt;" in page and "<escalate>" not in page
