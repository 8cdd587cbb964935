"""The MkDocs plugin class and its hooks. Thin by design: each hands its work to the catalog,
the runs reader or the page writers (page, cards, steps, index), and only wires their results
into MkDocs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import BasePlugin, event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.nav import Navigation
from mkdocs.structure.pages import Page
from mkdocs.utils.templates import TemplateContext

from plugins.runbooks.catalog import Catalog, Entry, Loaded
from plugins.runbooks.config import RunbooksConfig
from plugins.runbooks.index import index_markdown
from plugins.runbooks.markup import Rendered
from plugins.runbooks.page import page_markdown

if TYPE_CHECKING:
    # Only `serve` needs it, and it pulls in watchdog and an HTTP server: not for `build`.
    from mkdocs.livereload import LiveReloadServer

    from plugins.runbooks.runs import RunIndex

# MkDocs counts warnings on the `mkdocs` logger tree; `--strict` fails the build on any of them.
log = logging.getLogger("mkdocs.plugins.runbooks")

ASSETS = Path(__file__).parent / "assets"
ASSET_URI = "assets/runbooks"
# Material's offline plugin loads this shim (Web Workers for search under file://) from a CDN;
# the site ships its own copy, so a copied folder searches with no network.
WORKER_SHIM = f"{ASSET_URI}/iframe-worker.js"
# The rendered pages use these; added when `mkdocs.yml` does not list them already.
EXTENSIONS = (
    "admonition",
    "attr_list",
    "pymdownx.details",
    "tables",
    "pymdownx.highlight",
    "pymdownx.superfences",
)

NavItem = str | dict[str, Any]


# mkdocs' BasePlugin.__init_subclass__ carries no annotations.
class RunbooksPlugin(BasePlugin[RunbooksConfig]):  # type: ignore[no-untyped-call]
    """Renders every runbook of `runbooks_dir` as a page under /runbooks/, plus an index."""

    def __init__(self) -> None:
        self.catalog = Catalog()
        self.loaded = Loaded((), (), {})
        self.runs: RunIndex | None = None  # None: there is no runs folder
        self.folder = Path("runbooks")
        self.runs_dir: Path | None = None
        self.rendered: dict[str, Rendered] = {}  # src_uri -> page, for on_page_context

    def on_startup(self, *, command: Literal["build", "gh-deploy", "serve"], dirty: bool) -> None:
        """Declared so MkDocs keeps this instance (and its parse cache) across `serve` rebuilds."""

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig:
        base = Path(config.config_file_path).parent if config.config_file_path else Path.cwd()
        self.folder = base / self.config.runbooks_dir
        self.runs_dir = base / self.config.runs_dir if self.config.runs_dir else None
        self.loaded = self.catalog.load(self.folder, base)
        self.runs = _read_runs(self.runs_dir)
        for name in EXTENSIONS:
            if name not in config.markdown_extensions:
                config.markdown_extensions.append(name)
        # `language-bash` on each code block, as Material's own docs configure it.
        config.mdx_configs.setdefault("pymdownx.highlight", {}).setdefault(
            "pygments_lang_class", True
        )
        config.extra_css.append(f"{ASSET_URI}/runbooks.css")
        config.extra_javascript.append(f"{ASSET_URI}/runbooks.js")
        _local_worker_shim(config)
        if config.nav is not None:
            config.nav = with_runbooks(config.nav, self.config.nav_title, self.loaded.entries)
        return config

    def on_files(self, files: Files, *, config: MkDocsConfig) -> Files:
        self._report()
        folder = self.config.runbooks_dir.rstrip("/")
        by_runbook = self.runs.by_runbook if self.runs is not None else {}
        index = index_markdown(self.loaded, by_runbook, folder, config.use_directory_urls)
        self.rendered = {"runbooks/index.md": index}
        for entry in self.loaded.entries:
            runs = by_runbook.get(entry.id, ())
            self.rendered[entry.src_uri] = page_markdown(
                entry, runs, self.loaded.last_change[entry.id]
            )
        for uri, page in self.rendered.items():
            _replace(files, File.generated(config, uri, content=page.markdown))
        for asset in sorted(ASSETS.iterdir()):
            uri = f"{ASSET_URI}/{asset.name}"
            _replace(files, File.generated(config, uri, abs_src_path=str(asset)))
        return files

    def on_page_content(
        self, html: str, /, *, page: Page, config: MkDocsConfig, files: Files
    ) -> str:
        """The header band goes in before the search plugin reads the page: its facts
        (severity, service, trigger) are what a responder searches for."""
        rendered = self.rendered.get(page.file.src_uri)
        return rendered.fill_early(html) if rendered is not None else html

    # Late: the search plugin has indexed the page by then, without the rest of the ready-made
    # HTML (see `markup.hold` and `markup.attach`). The page's own HTML is filled, not the whole
    # output in `on_post_page`: the output is ten times longer, mostly the navigation.
    @event_priority(-50)
    def on_page_context(
        self, context: TemplateContext, /, *, page: Page, config: MkDocsConfig, nav: Navigation
    ) -> TemplateContext:
        rendered = self.rendered.get(page.file.src_uri)
        if rendered is not None and page.content is not None:
            page.content = rendered.fill(page.content)
        return context

    def on_serve(
        self, server: LiveReloadServer, /, *, config: MkDocsConfig, builder: Any
    ) -> LiveReloadServer:
        # The runbooks live outside docs/, so `serve` would not notice an edit without this.
        server.watch(str(self.folder))
        if self.runs_dir is not None and self.runs_dir.is_dir():
            server.watch(str(self.runs_dir))
        return server

    def _report(self) -> None:
        """`runbook check`'s findings as build messages, in its `file:line: CODE message` form."""
        emit = log.warning if self.config.strict_runbooks else log.info
        for p in self.loaded.problems:
            emit(f"{p.where}: {p.code} {p.message}")
        skipped = self.runs.skipped if self.runs is not None else ()
        for why in skipped:
            log.info(f"skipped an unreadable journal: {why}")


def _read_runs(runs_dir: Path | None) -> RunIndex | None:
    """The runs in ``runs_dir``; None when there is no such folder, as on a fresh clone or in CI
    (runs stay on the machines that ran them). runs.py is imported only when the folder exists,
    and chart.py only for a page with runs: defining their dataclasses alone took 2 ms, in
    builds that show no run."""
    if runs_dir is None or not runs_dir.is_dir():
        return None
    from plugins.runbooks.runs import read_runs

    return read_runs(runs_dir)


def _local_worker_shim(config: MkDocsConfig) -> None:
    """With Material's offline plugin on, the worker shim is the site's own copy, never the CDN's.
    Set before the offline plugin looks (it adds the CDN's only when no shim is listed) and
    swapped in after it, whichever order the plugins run in."""
    if "material/offline" not in config.plugins and "offline" not in config.plugins:
        return
    polyfills = [p for p in config.extra.get("polyfills", []) if "iframe-worker" not in str(p)]
    config.extra["polyfills"] = [*polyfills, WORKER_SHIM]


def _replace(files: Files, new: File) -> None:
    old = files.get_file_from_path(new.src_uri)
    if old is not None:
        log.warning(
            f"docs/{new.src_uri} is replaced by the page the runbooks plugin generates; "
            "remove it or rename it"
        )
        files.remove(old)
    files.append(new)


def with_runbooks(nav: list[NavItem], title: str, entries: tuple[Entry, ...]) -> list[NavItem]:
    """The configured nav with the runbooks section, grouped by service, in place of ``title``."""
    groups: dict[str, list[NavItem]] = {}
    for entry in entries:
        service = entry.runbook.metadata.service or "Other"
        groups.setdefault(service, []).append({entry.runbook.metadata.name: entry.src_uri})
    section: NavItem = {
        title: ["runbooks/index.md", *({svc: items} for svc, items in groups.items())]
    }
    out = [section if isinstance(item, dict) and title in item else item for item in nav]
    return out if section in out else [*out, section]
