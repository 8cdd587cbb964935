"""The layout's contracts, read from the source: imports go one way down the pipeline, only the
run store writes or folds journal events, the plugin never reaches into execution, and a long
module says why it is long. docs/architecture.md describes the same tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(REPO / "runner").rglob("*.py"), *(REPO / "plugins").rglob("*.py")])

# Lower layers never import higher ones. Same rank: independent (neither imports the other).
RANK: dict[str, float] = {
    # The model is pure data at the bottom; the exceptions carry its Problem.
    "runner.format.model": 0,
    "runner.errors": 0.5,
    "runner.private_files": 0.6,
    "runner.format": 1,
    "runner.parse": 2,
    "runner.shell_kernel": 2,
    "runner.routing": 3,
    "runner.runs": 3,
    "runner.identity": 3,
    "runner.check": 4,
    "runner.text": 4,
    "runner.kernels": 4,
    "runner.exec": 5,
    "runner.reports": 6,
    "runner.lab": 6,
    "runner.drills": 7,
    "runner.console": 7.5,
    "runner.notify": 7.5,
    "runner.service": 8,
    "runner.cli": 9,
    "runner.__main__": 10,
    "plugins": 7,
}
# The site reads plans and runs; it never runs anything.
PLUGIN_MAY_NOT = ("runner.exec", "runner.kernels", "runner.cli", "runner.drills", "runner.service")
LONG_REASON = "Long on purpose"
MAX_LINES = 400


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer(module: str) -> str | None:
    return next(
        (
            k
            for k in sorted(RANK, key=len, reverse=True)
            if module == k or module.startswith(k + ".")
        ),
        None,
    )


def _type_only(tree: ast.Module) -> set[int]:
    """Lines of imports under ``if TYPE_CHECKING:`` (names for annotations, not a dependency)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            lines |= {
                n.lineno for stmt in node.body for n in ast.walk(stmt) if hasattr(n, "lineno")
            }
    return lines


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    # Inside one package, a name imported only for annotations is no layering edge (the model
    # names the parsed condition types whose modules import the model).
    here = _package(_module(path))
    type_only = _type_only(tree)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.lineno in type_only and _package(node.module) == here:
                continue
            out += [(node.lineno, node.module)]
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


def test_every_module_belongs_to_a_layer() -> None:
    unplaced = [
        _module(p) for p in SOURCES if _layer(_module(p)) is None and _module(p) != "runner"
    ]
    assert unplaced == [], f"add them to RANK and to docs/architecture.md: {unplaced}"


def test_no_relative_imports_across_the_layout() -> None:
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 1:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_imports_go_down_the_pipeline(path: Path) -> None:
    me = _layer(_module(path))
    if me is None:
        return
    wrong = []
    for line, target in _imports(path):
        other = _layer(target)
        if other is None or other == me:
            continue
        if RANK[other] >= RANK[me]:
            wrong.append(f"line {line}: {target} ({other}, rank {RANK[other]} >= {RANK[me]})")
        if me == "plugins" and target.startswith(PLUGIN_MAY_NOT):
            wrong.append(f"line {line}: the plugin imports {target}")
    assert wrong == [], f"{_module(path)} ({me}) imports upward:\n" + "\n".join(wrong)


def test_only_the_run_store_writes_or_folds_events() -> None:
    """Outside runner.runs nobody opens a journal writer or reads an event's kind from a
    record: they get a RunWriter from the RunStore, and typed events or the fold's state."""
    found = []
    for path in SOURCES:
        if _module(path).startswith("runner.runs"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            name = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
            if (
                isinstance(node, ast.ImportFrom)
                and node.module == "runner.runs.journal"
                and any(a.name == "Journal" for a in node.names)
            ):
                found.append(f"{name}: imports the journal writer")
            key = None
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                key = node.slice.value
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                key = node.args[0].value
            if key == "event":
                found.append(f"{name}: reads an event's kind from its record")
    assert found == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_a_long_module_says_why(path: Path) -> None:
    text = path.read_text()
    if text.count("\n") <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse(text)) or ""
    assert LONG_REASON in doc, (
        f"{path.relative_to(REPO)} has {text.count(chr(10))} lines: split it, or say at its top "
        f"why it is one module ('{LONG_REASON}: ...')"
    )


def test_architecture_doc_names_every_package() -> None:
    doc = (REPO / "docs" / "architecture.md").read_text()
    packages = sorted(
        {_module(p) for p in SOURCES if p.name == "__init__.py"} - {"runner", "plugins"}
    )
    missing = [p for p in packages if f"`{p.replace('.', '/')}/`" not in doc]
    assert missing == [], f"docs/architecture.md does not describe {missing}"


@pytest.mark.parametrize(
    "path", sorted((REPO / "benchmarks").glob("bench_*.py")), ids=lambda p: p.name
)
def test_every_benchmark_imports_what_exists(path: Path) -> None:
    """Benchmarks run by hand, so nothing else notices when a module they use moves."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))  # main() is not called


def test_every_journal_event_kind_is_documented() -> None:
    """The journal is a format others read: a kind missing from docs/running.md's table is a
    record nobody can interpret."""
    import dataclasses

    from runner.runs import events as ev

    kinds = {
        c.KIND
        for c in vars(ev).values()
        if isinstance(c, type)
        and dataclasses.is_dataclass(c)
        and c.__dict__.get("KIND")  # the bases have none
    }
    doc = (REPO / "docs" / "running.md").read_text()
    missing = sorted(k for k in kinds if f"| `{k}` |" not in doc)
    assert len(kinds) > 20, kinds
    assert not missing, f"docs/running.md's event table lacks: {', '.join(missing)}"
