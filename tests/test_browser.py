"""The site in a real browser: Debian's chromium, driven by Playwright, over a real HTTP server.

Never downloads a browser: without /usr/bin/chromium the tests skip, except in CI (`CI` set),
where `.ci/run` installs it and its absence is a failure.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_site import ROOT, _write_runs, build, make_project

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The fixture site, built by mkdocs and served on 127.0.0.1 by a real HTTP server."""
    tmp = tmp_path_factory.mktemp("browser")
    project = make_project(tmp / "project", runs_dir=".runbook/runs")
    _write_runs(project / ".runbook" / "runs")
    proc = build(project, tmp / "site")
    assert proc.returncode == 0, proc.stderr
    handler = functools.partial(_QuietHandler, directory=str(tmp / "site"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs it with apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_follow_along_state_survives_a_reload_and_resets(browser: Any, base_url: str) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{base_url}runbooks/compromised-account/")
    progress = page.locator(".rb-progress")
    step = page.locator('input.rb-check-box[data-step="lookup"]')
    expect(progress).to_have_text("0 of 3 done")

    step.check()
    expect(progress).to_have_text("1 of 3 done")
    page.reload()
    expect(step).to_be_checked()
    expect(progress).to_have_text("1 of 3 done")
    expect(page.locator('input.rb-check-box[data-step="disable"]')).not_to_be_checked()

    # State is per runbook: another runbook's page starts from nothing.
    page.goto(f"{base_url}runbooks/phishing-triage/")
    expect(page.locator(".rb-progress")).to_have_text("0 of 2 done")
    page.go_back()
    expect(step).to_be_checked()
    # Material's copy button on the Run-it command.
    expect(page.locator('.rb-run button[data-md-type="copy"]')).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "runbook-page.png"), full_page=True)

    page.locator(".rb-reset").click()
    expect(step).not_to_be_checked()
    expect(progress).to_have_text("0 of 3 done")
    page.reload()
    expect(step).not_to_be_checked()
    expect(progress).to_have_text("0 of 3 done")
    # Offline: nothing but the site itself was fetched.
    assert requested and all(url.startswith(base_url) for url in requested), requested
    page.close()


def test_index_filters_by_service_and_role_kept_in_the_url(browser: Any, base_url: str) -> None:
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(f"{base_url}runbooks/")
    rows = page.locator(".rb-index tr.rb-row")
    visible = page.locator(".rb-index tr.rb-row:visible")
    nomatch = page.locator(".rb-nomatch")
    expect(rows).to_have_count(2)
    expect(visible).to_have_count(2)
    expect(nomatch).to_be_hidden()
    page.select_option('select[data-filter="service"]', "email")
    expect(visible).to_have_count(1)
    expect(visible.first).to_contain_text("Phishing triage")
    expect(page.locator(".rb-filter-count")).to_have_text("1 of 2 shown")
    # The other service's group goes, heading and all.
    expect(page.locator(".rb-group:visible")).to_have_count(1)
    assert page.url.endswith("runbooks/?service=email"), page.url
    page.select_option('select[data-filter="service"]', "")
    page.select_option('select[data-filter="role"]', "commander")
    expect(visible).to_have_count(1)
    expect(visible.first).to_contain_text("Compromised account")
    assert page.url.endswith("runbooks/?role=commander"), page.url

    # A shared link opens with its filters; one that matches nothing says so.
    page.goto(f"{base_url}runbooks/?service=email&role=commander")
    expect(page.locator('select[data-filter="service"]')).to_have_value("email")
    expect(visible).to_have_count(0)
    expect(nomatch).to_be_visible()
    expect(nomatch).to_contain_text("No runbook matches these filters.")
    nomatch.locator("button").click()
    expect(visible).to_have_count(2)
    expect(nomatch).to_be_hidden()
    assert page.url.endswith("runbooks/"), page.url
    page.close()


def test_duration_chart_reads_on_screen_and_in_print(browser: Any, base_url: str) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base_url}runbooks/compromised-account/")
    chart = page.locator("#latest-runs ~ figure svg.rb-chart")
    expect(chart).to_have_attribute("role", "img")
    expect(chart.locator(".rb-chart-point")).to_have_count(2)
    ARTIFACTS.mkdir(exist_ok=True)
    for media, name in (("screen", "runbook-chart.png"), ("print", "runbook-chart-print.png")):
        page.emulate_media(media=media)
        chart.scroll_into_view_if_needed()
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        # Material sizes figures to their content; a scalable SVG must not shrink to a sliver.
        assert box is not None and box["width"] >= 400 and box["height"] >= 140, (media, box)
        chart.screenshot(path=str(ARTIFACTS / name))
    page.close()


def test_follow_along_is_kept_per_incident_with_times_and_copies_as_markdown(
    browser: Any, base_url: str
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base_url}runbooks/compromised-account/")
    incident = page.locator(".rb-incident-id")
    progress = page.locator(".rb-progress")
    lookup = page.locator('input.rb-check-box[data-step="lookup"]')
    expect(page.locator(".rb-started")).to_have_text("not started")
    incident.fill("DRILL-7")
    incident.dispatch_event("change")
    lookup.check()
    expect(progress).to_have_text("1 of 3 done")
    started = page.locator(".rb-started").inner_text()
    assert re.fullmatch(r"started \d{4}-\d\d-\d\d \d\d:\d\d", started), started
    tick = page.locator('label:has(input[data-step="lookup"]) time.rb-tick')
    expect(tick).to_have_text(re.compile(r"^\d\d:\d\d$"))
    assert tick.get_attribute("datetime")

    # Tonight's incident starts empty; the drill's ticks stay under the drill's id.
    page.locator(".rb-reset").click()
    expect(progress).to_have_text("0 of 3 done")
    expect(lookup).not_to_be_checked()
    incident.fill("INC-1234")
    incident.dispatch_event("change")
    page.locator('input.rb-check-box[data-step="confirm-the-alert"]').check()
    page.reload()
    expect(incident).to_have_value("INC-1234")
    expect(progress).to_have_text("1 of 3 done")
    expect(lookup).not_to_be_checked()
    page.goto(f"{base_url}runbooks/compromised-account/?incident=DRILL-7")
    expect(lookup).to_be_checked()
    expect(progress).to_have_text("1 of 3 done")

    page.locator(".rb-copy").click()
    expect(page.locator(".rb-follow")).to_have_attribute("data-checklist", re.compile("DRILL-7"))
    checklist = page.locator(".rb-follow").get_attribute("data-checklist") or ""
    lines = checklist.splitlines()
    assert re.fullmatch(r"# Compromised account — DRILL-7 \(started [\d: -]+\)", lines[0]), lines
    assert lines[2] == "- [ ] 1. Confirm the alert"
    assert re.fullmatch(
        r"- \[x\] 2\. Look up recent sign-ins \(\d{4}-\d\d-\d\d \d\d:\d\d\)", lines[3]
    )
    assert lines[4] == "- [ ] 3. Disable the account"
    context.close()


def test_sticky_bar_leaves_back_to_top_and_code_copy_buttons_clear(
    browser: Any, base_url: str
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 500})
    page.goto(f"{base_url}runbooks/compromised-account/")
    bar = page.locator(".rb-follow")
    code = page.locator("#step-lookup ~ .highlight pre").first
    # Scroll a code block under the stuck bar: the bar covers its copy button, not the reverse.
    code.scroll_into_view_if_needed()
    page.mouse.wheel(0, 200)
    page.mouse.wheel(0, -60)  # scrolling up is what brings Material's back-to-top button
    page.wait_for_function("() => !document.querySelector('.md-top').hidden")
    top = page.locator(".md-top").bounding_box()
    stuck = bar.bounding_box()
    assert top is not None and stuck is not None
    assert top["y"] >= stuck["y"] + stuck["height"], (top, stuck)
    # A code block's top (where Material puts its copy button) just under the bar's top edge.
    page.evaluate(
        """() => {
          const bar = document.querySelector('.rb-follow').getBoundingClientRect();
          const pre = document.querySelector('#step-lookup ~ .highlight pre');
          window.scrollBy(0, pre.getBoundingClientRect().top - bar.top - 4);
        }"""
    )
    hit = page.evaluate(
        """() => {
          const bar = document.querySelector('.rb-follow').getBoundingClientRect();
          const out = [];
          for (const b of document.querySelectorAll('button[data-md-type="copy"]')) {
            const r = b.getBoundingClientRect();
            const x = r.x + r.width / 2, y = r.y + r.height / 2;
            if (y >= bar.top && y <= bar.bottom && x >= bar.left && x <= bar.right) {
              out.push(document.elementFromPoint(x, y).closest('.rb-follow') !== null);
            }
          }
          return out;
        }"""
    )
    # A copy button is under the bar, and wherever one is, the bar is on top.
    assert hit and all(hit), hit
    page.close()
