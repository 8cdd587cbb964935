"""How much the runbooks plugin adds to `mkdocs build`, against the same files as plain pages.

    python benchmarks/bench_site.py [--sizes 100 500] [--repeat 5] [--keep DIR]

For each size it generates that many runbooks, then builds two projects with the same theme,
extensions and navigation shape (one section per service):

* plugin: the runbooks are read from `runbooks/` and rendered by the plugin;
* plain:  the same files copied into `docs/runbooks/` as ordinary Markdown pages.

It reports the best of ``--repeat`` builds of each and their ratio. Targets: <= 1.10x at 100
runbooks, <= 1.05x at 500. Results also go to benchmarks/out/site.json.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = Path(sys.executable).with_name("mkdocs")
SERVICES = ["identity", "email", "endpoint", "network", "cloud", "backup", "web", "database"]
TARGETS = {100: 1.10, 500: 1.05}
EXTENSIONS = ["admonition", "attr_list", "tables", "pymdownx.details",
              "pymdownx.highlight", "pymdownx.superfences"]  # fmt: skip

RUNBOOK = """---
id: {id}
name: Runbook {n:04d} for {service}
service: {service}
owner: secops
severity: {severity}
objective: Contain incident type {n} within 1 hour
time_limit: 1h
roles:
  L1: SOC analyst
  L2: Incident responder
tools: [curl, jq]
trigger: Alert {n} fires
inputs:
  host_id:
    type: string
    required: true
    description: the host concerned
---
# Runbook {n:04d} for {service}

What to do when alert {n} fires on a {service} system.

## Steps

### 1. Confirm the alert

Role: L1

Read the alert and confirm it concerns `{{host_id}}`.

### 2. Collect facts

```bash {{id=collect role=L1 timeout=2m retries=1}}
echo "collecting from $host_id"
curl -fsS "http://127.0.0.1:8765/api/hosts/$host_id" | jq .
```

### 3. Contain

```python {{id=contain role=L2 approve=L2 when="host_id != 'none'" on_failure=procedure:manual}}
import json
print(json.dumps({{"host": host_id, "action": "isolate"}}))
```

### 4. Tell the owner

Role: L2

Call the owner and record the call in the ticket.

## Success criteria

- The host is contained
- The ticket is updated

## Failure criteria

- The host is still reachable after 1 hour

## Alternative procedures

### Manual

1. Ask the network team to block the host.

   Role: L2

2. Record who did it and when.

   Role: L2
"""


def generate(folder: Path, count: int) -> list[tuple[str, str, str]]:
    """``count`` runbooks in ``folder``; returns (file name, service, title) for each."""
    folder.mkdir(parents=True)
    made = []
    for n in range(count):
        service = SERVICES[n % len(SERVICES)]
        severity = ("low", "medium", "high", "critical")[n % 4]
        rb_id = f"runbook-{n:04d}"
        text = RUNBOOK.format(id=rb_id, n=n, service=service, severity=severity)
        (folder / f"{rb_id}.md").write_text(text, encoding="utf-8")
        made.append((f"{rb_id}.md", service, f"Runbook {n:04d} for {service}"))
    return made


def config(plugin: bool, nav: list[object]) -> dict[str, object]:
    plugins: list[object] = ["search"]
    if plugin:
        plugins.append({"runbooks": {"runbooks_dir": "runbooks"}})
    return {
        "site_name": "bench",
        "theme": {"name": "material", "font": False, "features": ["content.code.copy"]},
        "plugins": plugins,
        "markdown_extensions": EXTENSIONS,
        "nav": nav,
    }


def make_projects(base: Path, count: int) -> tuple[Path, Path]:
    plugin, plain = base / "plugin", base / "plain"
    made = generate(plugin / "runbooks", count)
    for project in (plugin, plain):
        (project / "docs").mkdir(parents=True, exist_ok=True)
        (project / "docs" / "index.md").write_text("# Bench\n\nHome.\n", encoding="utf-8")
    shutil.copytree(plugin / "runbooks", plain / "docs" / "runbooks")
    groups: dict[str, list[object]] = {}
    for name, service, title in sorted(made, key=lambda m: (m[1], m[2])):
        groups.setdefault(service, []).append({title: f"runbooks/{name}"})
    plain_nav = [{"Home": "index.md"}, {"Runbooks": [{s: p} for s, p in groups.items()]}]
    plugin_nav = [{"Home": "index.md"}, {"Runbooks": "runbooks/index.md"}]
    (plugin / "mkdocs.yml").write_text(json.dumps(config(True, plugin_nav)), encoding="utf-8")
    (plain / "mkdocs.yml").write_text(json.dumps(config(False, plain_nav)), encoding="utf-8")
    return plugin, plain


def build_seconds(project: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one `mkdocs build` (CPU: the build and what it waited for,
    such as the plugin's `git log`; less moved than the wall clock by other work)."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cmd = [str(MKDOCS), "build", "-q", "-f", str(project / "mkdocs.yml"), "-d",
           str(project / "site")]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"mkdocs build failed in {project}:\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def measure(count: int, repeat: int, keep: Path | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        base = (keep / str(count)) if keep else Path(tmp)
        if base.exists():
            shutil.rmtree(base)
        plugin, plain = make_projects(base, count)
        times: dict[str, list[tuple[float, float]]] = {"plugin": [], "plain": []}
        for _ in range(repeat):
            # Alternate the two so that a slow moment of the machine hits both alike.
            times["plain"].append(build_seconds(plain))
            times["plugin"].append(build_seconds(plugin))
    best = {k: min(wall for wall, _ in v) for k, v in times.items()}
    cpu = {f"{k}_cpu": min(c for _, c in v) for k, v in times.items()}
    return {
        "runbooks": count,
        **best,
        "ratio": best["plugin"] / best["plain"],
        **cpu,
        "cpu_ratio": cpu["plugin_cpu"] / cpu["plain_cpu"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--repeat", type=int, default=5, help="builds of each; the best counts")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = parser.parse_args()
    # MkDocs, Material and the other site-packages were byte-compiled by pip at install; this
    # project's modules are an editable install, compiled on first import, and not at all when
    # PYTHONDONTWRITEBYTECODE is set (as on the benchmark machine). Compile them now, as a
    # regular `pip install` would, so that both builds import compiled code.
    for package in ("runner", "plugins"):
        compileall.compile_dir(ROOT / package, quiet=1)
    results = []
    print(f"{'runbooks':>8}  {'plain (s)':>9}  {'plugin (s)':>10}  {'ratio':>6}  target")
    for count in args.sizes:
        r = measure(count, args.repeat, args.keep)
        target = TARGETS.get(count)
        verdict = (
            ""
            if target is None
            else f"<= {target:.2f}  {'ok' if r['ratio'] <= target else 'MISSED'}"
        )
        print(
            f"{count:>8}  {r['plain']:>9.2f}  {r['plugin']:>10.2f}  {r['ratio']:>5.3f}x  {verdict}"
            f"   (CPU: {r['plain_cpu']:.2f} s, {r['plugin_cpu']:.2f} s, {r['cpu_ratio']:.3f}x)"
        )
        results.append(r)
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "site.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
