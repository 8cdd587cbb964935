"""The project's own site (this repository's mkdocs.yml and runbooks) in a real Chromium: what a
responder sees at 1400x1000 and on a phone, the index at 1400 px, a copied folder opened from
file://, the contrast of every badge in both palettes, and the printed page count.

Debian's chromium driven by Playwright, as tests/test_browser.py does; never a downloaded browser.
"""

from __future__ import annotations

import functools
import os
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
