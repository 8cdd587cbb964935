"""The project's own site (this repository's mkdocs.yml and runbooks) in a real Chromium: what a
responder sees at 1400x1000 and on a phone, the index at 1400 px, a copied folder opened from
file://, the contrast of every badge in both palettes, and the printed page count.

Debian's chromium driven by Playwright, as tests/test_browser.py does; never a downloaded browser.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_browser import ARGS, ARTIFACTS, CHROMIUM, _QuietHandler
from test_site import MKDOCS, ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}  # a common phone's CSS viewport
MAX_PRINT_PAGES = 5  # issue 18: compromised-endpoint on paper
AA = 4.5  # WCAG 2 AA for normal text


@dataclass(frozen=True)
class Built:
    root: Path  # the built site, also served over HTTP
    url: str  # http://127.0.0.1:PORT/


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """`mkdocs build --strict` of the repository itself, served on 127.0.0.1."""
    root = tmp_path_factory.mktemp("real-site") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [str(MKDOCS), "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(root)],
        capture_output=True, text=True, timeout=300, env=env, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Built(root, f"http://127.0.0.1:{server.server_port}/")
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


def _first_step_bottom(page: Any, badges: bool) -> float:
    """Where step 1's heading (and, with ``badges``, its line of badges and checkbox) ends, in
    CSS pixels from the top of the page as loaded."""
    box = page.locator("h3.rb-step").first.bounding_box()
    meta = page.locator(".rb-step-meta").first.bounding_box()
    assert box is not None and meta is not None
    bottom = box["y"] + box["height"]
    return float(max(bottom, meta["y"] + meta["height"]) if badges else bottom)


RUNBOOKS = sorted(p.stem for p in (ROOT / "runbooks").glob("*.md"))


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop-1400x1000", "phone-390x844"])
def test_step_one_is_on_the_first_screen(
    browser: Any, built: Built, viewport: dict[str, int]
) -> None:
    page = browser.new_page(viewport=viewport)
    places = {}
    for name in RUNBOOKS:
        page.goto(f"{built.url}runbooks/{name}.html")
        # On a desktop the whole first step's head is in view; on a phone at least its title.
        places[name] = _first_step_bottom(page, badges=viewport is DESKTOP)
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{built.url}runbooks/ransomware.html")
    page.screenshot(path=str(ARTIFACTS / f"first-screen-{viewport['width']}.png"))
    page.close()
    below = {name: y for name, y in places.items() if y > viewport["height"]}
    assert below == {}, places


def test_index_columns_are_visible_at_1400_px_in_one_scroll_container(
    browser: Any, built: Built
) -> None:
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f"{built.url}runbooks/index.html")
    heads = page.locator(".rb-index thead th")
    names = [h.strip() for h in heads.all_inner_texts()]
    assert names[-2:] == ["Last change", "Last exercised"], names
    for name in names:
        box = page.locator(".rb-index thead th", has_text=name).first.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= DESKTOP["width"], (
            name,
            box,
        )
    # Nothing between the table and the page scrolls sideways: the one container fits.
    scrolling = page.evaluate(
        """() => {
          const out = [];
          for (let el = document.querySelector('.rb-index table'); el; el = el.parentElement) {
            const style = getComputedStyle(el);
            if (/(auto|scroll)/.test(style.overflowX)) {
              out.push([el.className, el.scrollWidth > el.clientWidth]);
            }
          }
          return out;
        }"""
    )
    assert scrolling == [["rb-index", False]], scrolling
    page.close()


def test_a_copied_folder_navigates_and_searches_from_file_urls(
    browser: Any, built: Built, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    copy = tmp_path / "copied site"
    shutil.copytree(built.root, copy)
    page = browser.new_page(viewport=DESKTOP)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto((copy / "index.html").as_uri())
    page.locator(".md-nav--primary a", has_text="Runbooks").first.click()
    # A page, not a directory listing.
    expect(page.locator("table.rb-index-table")).to_be_visible()
    assert page.url.endswith("/runbooks/index.html"), page.url
    page.locator("table.rb-index-table a", has_text="Ransomware").click()
    expect(page.locator("h1")).to_have_text(re.compile("Ransomware encrypting a server"))
    # Search runs in the browser from the inlined index; a card fact finds its runbook.
    page.locator("label.md-search__icon, .md-search__input").first.click()
    # Typed, as a person does: Material searches on key presses.
    page.locator(".md-search__input").press_sequentially("critical", delay=20)
    results = page.locator(".md-search-result__item")
    expect(results.first).to_be_visible(timeout=15000)
    expect(page.locator(".md-search-result")).to_contain_text("Ransomware encrypting a server")
    assert requested and all(u.startswith("file://") for u in requested), [
        u for u in requested if not u.startswith("file://")
    ]
    page.close()


# Colours as the browser computed them, composited over whatever shows through (Material's
# translucent greys), then the WCAG 2 contrast ratio of text against its background.
_CONTRAST_JS = """(selector) => {
  const parse = (c) => {
    const m = c.match(/[\\d.]+/g) || [];
    return [+m[0] || 0, +m[1] || 0, +m[2] || 0, m.length > 3 ? +m[3] : 1];
  };
  const over = (top, bottom) =>
    [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let out = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) out = over(layers[i], out);
    return out;
  };
  const lum = (c) => {
    const f = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const shown = Array.from(document.querySelectorAll(selector))
    .filter(e => e.getClientRects().length);
  return shown.map((el) => {
    const bg = background(el);
    const fg = over(parse(getComputedStyle(el).color), bg);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    return [el.className + ": " + el.textContent.trim().slice(0, 30), (a + 0.05) / (b + 0.05)];
  });
}"""
BADGES = (
    ".rb-badge, .rb-sev, .rb-status, .rb-follow, .rb-progress, .rb-tick, .rb-band dt, .rb-band dd"
)


def contrast(page: Any, selector: str = BADGES) -> list[tuple[str, float]]:
    return [(name, float(ratio)) for name, ratio in page.evaluate(_CONTRAST_JS, selector)]


def set_scheme(page: Any, scheme: str) -> None:
    """What Material's palette toggle does: the scheme is an attribute of <body>. Transitions
    are switched off first: Material fades link colours, and a colour read mid-fade is neither
    palette's."""
    page.add_style_tag(content="*, *::before, *::after { transition: none !important; }")
    page.evaluate("(s) => document.body.setAttribute('data-md-color-scheme', s)", scheme)


@pytest.mark.parametrize("scheme", ["default", "slate"], ids=["light", "dark"])
def test_every_badge_reads_at_wcag_aa_in_both_palettes(
    browser: Any, built: Built, fixture_site: str, scheme: str
) -> None:
    page = browser.new_page(viewport=DESKTOP)
    seen: dict[str, float] = {}
    pages = [
        f"{built.url}runbooks/ransomware.html",
        f"{built.url}runbooks/compromised-endpoint.html",
        f"{built.url}runbooks/index.html",
        f"{fixture_site}runbooks/compromised-account/",  # with runs: status words, chart
    ]
    for url in pages:
        page.goto(url)
        set_scheme(page, scheme)
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        seen.update(contrast(page))
        if page.locator("input.rb-check-box").count():
            # The completed follow-along bar, and each tick's time.
            for box in page.locator("input.rb-check-box").all():
                box.check()
            assert page.locator(".rb-follow--complete").count() == 1
            seen.update({f"complete {k}": v for k, v in contrast(page)})
    page.close()
    kinds = {name.split(":")[0] for name in seen}
    for kind in (
        "rb-badge rb-badge--on-failure",
        "rb-sev rb-sev--critical",
        "rb-follow rb-follow--ready rb-follow--complete",
    ):
        assert any(kind in k for k in kinds), (kind, sorted(kinds))
    poor = {name: round(ratio, 3) for name, ratio in seen.items() if ratio < AA}
    assert poor == {}, poor


@pytest.fixture(scope="module")
def fixture_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test project of tests/test_site.py (with runs), served on 127.0.0.1."""
    from test_site import _write_runs, build, make_project

    tmp = tmp_path_factory.mktemp("fixture-site")
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


def test_compromised_endpoint_prints_on_at_most_five_pages(browser: Any, built: Built) -> None:
    page = browser.new_page(viewport={"width": 794, "height": 1123})  # A4 at 96 dpi
    page.goto(f"{built.url}runbooks/compromised-endpoint.html")
    page.emulate_media(media="print")
    # Page 1 is not the title alone: the band and step 1 start on it.
    step = page.locator("h3.rb-step").first.bounding_box()
    assert step is not None and step["y"] < 1000, step
    # Boxes to tick on paper.
    box = page.locator("input.rb-check-box").first
    assert box.is_visible()
    assert box.evaluate("(e) => getComputedStyle(e).borderTopStyle") == "solid"
    pdf = page.pdf(format="A4", print_background=True)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "compromised-endpoint.pdf").write_bytes(pdf)
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 1 <= pages <= MAX_PRINT_PAGES, pages
    page.close()
