"""`runbook check`, `list`, `show`, `schema` through the real console script.

Malformed, truncated, binary, huge and non-UTF-8 files must give a message naming the file and
line, the documented exit status, and never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RUNBOOK = [str(REPO / ".venv" / "bin" / "runbook")]
if not Path(RUNBOOK[0]).exists():  # an environment without the project's venv
    RUNBOOK = [sys.executable, "-m", "runner"]

GOOD = """\
---
name: Good
service: edr
objective: Contain within 1 hour
time_limit: 1h
roles:
  L1: analyst
inputs:
  host_id: {type: string, required: true, description: EDR host id}
---
# Good

## Steps

### 1. Confirm
Role: L1

```bash {id=confirm timeout=1m}
curl -s "http://127.0.0.1/alerts?host=$HOST_ID"
```

### 2. Call the owner
Role: L1

Phone them.

## Success criteria

- Confirmed
"""


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*RUNBOOK, *args], capture_output=True, text=True, cwd=cwd or REPO, timeout=60
    )
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "good.md").write_text(GOOD)
    return tmp_path


def test_check_clean_folder(folder: Path) -> None:
    proc = run("check", str(folder))
    assert (proc.returncode, proc.stdout) == (0, "")
    assert "checked 1 file(s): 0 error(s), 0 warning(s)" in proc.stderr


def test_check_reports_one_line_per_problem(folder: Path) -> None:
    bad = folder / "bad.md"
    bad.write_text(GOOD.replace("timeout=1m", "timout=1m").replace("Role: L1\n\nPhone", "Phone"))
    proc = run("check", str(folder))
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        f"{bad}:18: error RB030 unknown block attribute 'timout' (did you mean 'timeout'?)",
        f"{bad}:22: warning RB041 step 2 'Call the owner' has no role; add a first line "
        "`Role: ROLE` (declared: L1) or `role=` on its block",
    ]


def test_warnings_alone_exit_0_unless_strict(folder: Path) -> None:
    (folder / "good.md").write_text(GOOD.replace("time_limit: 1h\n", ""))
    assert run("check", str(folder)).returncode == 0
    strict = run("check", "--strict", str(folder))
    assert strict.returncode == 1 and "warning RB043" in strict.stdout


def test_check_json(folder: Path) -> None:
    (folder / "bad.md").write_text(GOOD.replace("service: edr\n", ""))
    proc = run("check", "--format", "json", str(folder))
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert {k: data[k] for k in ("version", "files", "errors", "warnings")} == {
        "version": 1,
        "files": 2,
        "errors": 1,
        "warnings": 0,
    }
    assert data["problems"] == [
        {
            "path": str(folder / "bad.md"),
            "line": 1,
            "level": "error",
            "code": "RB012",
            "message": "front matter lacks required key 'service'; add `service: ...`",
        }
    ]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    proc = run("check", str(tmp_path / "nope"))
    assert proc.returncode == 2 and "nope: no such file or folder" in proc.stderr
    proc = run("check", str(tmp_path))
    assert proc.returncode == 2 and "no runbook files" in proc.stderr
    proc = run("check", "--format", "xml", str(tmp_path))
    assert proc.returncode == 2 and "'xml' is not one of" in proc.stderr


BAD_FILES: list[tuple[str, bytes, str, str]] = [
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "RB002", ":3: error RB002 binary file"),
    ("latin-1", "---\nname: Café\n".encode("latin-1"), "RB001", ":2: error RB001 not valid UTF-8"),
    ("huge", b"# big\n" + b"x" * (1024 * 1024), "RB003", "over the 1 MiB limit"),
    ("truncated-front", b"---\nname: X\nservice: [a,\n", "RB015", ":1: error RB015 front matter"),
    ("broken-yaml", b"---\nname: X\nservice: [a,\n---\n## Steps\n", "RB010", ":4: error RB010"),
    ("truncated-fence", GOOD[: GOOD.index("curl")].encode(), "RB037", ":18: error RB037"),
    ("empty", b"", "RB005", ":1: error RB005 the file is empty"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "code", "words"), [c[1:] for c in BAD_FILES],
                         ids=[c[0] for c in BAD_FILES])  # fmt: skip
def test_bad_files_get_a_message_not_a_traceback(
    tmp_path: Path, data: bytes, code: str, words: str
) -> None:
    path = tmp_path / "bad.md"
    path.write_bytes(data)
    proc = run("check", str(path))
    assert proc.returncode == 1
    assert code in proc.stdout and words in proc.stdout
    assert proc.stdout.startswith(str(path))


@pytest.mark.parametrize("kind", ["binary", "latin-1", "huge"])
def test_show_unreadable_exits_2(tmp_path: Path, kind: str) -> None:
    data = next(c[1] for c in BAD_FILES if c[0] == kind)
    path = tmp_path / "bad.md"
    path.write_bytes(data)
    proc = run("show", str(path))
    assert proc.returncode == 2
    assert str(path) in proc.stderr and proc.stdout == ""


def test_show_invalid_exits_2_and_lists_the_errors(folder: Path) -> None:
    path = folder / "good.md"
    path.write_text(GOOD.replace("Role: L1", "Role: L7", 1))
    proc = run("show", str(path))
    assert proc.returncode == 2
    assert "RB035" in proc.stderr and "'L7' is not declared" in proc.stderr.replace("\n", " ")


def test_show_missing_runbook_exits_2(tmp_path: Path) -> None:
    proc = run("show", "no-such-runbook", cwd=tmp_path)
    assert proc.returncode == 2 and "no-such-runbook" in proc.stderr


def test_show_text(folder: Path) -> None:
    proc = run("show", str(folder / "good.md"))
    assert proc.returncode == 0
    out = proc.stdout
    for words in ("Good", "Contain within 1 hour", "host_id", "1. Confirm", "role: L1",
                  "runs in runbook-shell (bash)", "timeout 1m00s", "2. Call the owner",
                  "manual step", "Success criteria", "Confirmed"):  # fmt: skip
        assert words in out, words


def test_show_by_id_from_runbooks_folder(folder: Path) -> None:
    (folder / "runbooks").mkdir()
    (folder / "runbooks" / "good.md").write_text(GOOD)
    proc = run("show", "good", "--format", "json", cwd=folder)
    assert proc.returncode == 0 and json.loads(proc.stdout)["name"] == "Good"


def test_show_json_shape(folder: Path) -> None:
    proc = run("show", str(folder / "good.md"), "--format", "json")
    plan = json.loads(proc.stdout)
    assert plan["version"] == 1 and plan["format"] == "standard"
    assert (plan["id"], plan["name"], plan["service"], plan["time_limit"]) == (
        "good",
        "Good",
        "edr",
        "1h",
    )
    first, second = plan["steps"]
    assert {k: first[k] for k in ("number", "id", "title", "role", "manual")} == {
        "number": 1,
        "id": "confirm",
        "title": "Confirm",
        "role": "L1",
        "manual": False,
    }
    [block] = first["blocks"]
    assert block["lang"] == "bash" and block["kernel"] == "runbook-shell"
    assert block["line"] == 18 and block["attributes"] == {"id": "confirm", "timeout": "1m"}
    assert block["code"].startswith("curl -s")
    assert second["manual"] is True and second["blocks"] == []
    assert plan["procedures"] == [] and plan["success_criteria"] == ["Confirmed"]


def test_show_json_lists_documentation_blocks_with_null_kernel(tmp_path: Path) -> None:
    path = tmp_path / "d.md"
    path.write_text(GOOD.replace("Phone them.", "Phone them.\n\n```text\nsample\n```"))
    plan = json.loads(run("show", str(path), "--format", "json").stdout)
    assert plan["steps"][1]["blocks"][0]["kernel"] is None
    assert plan["steps"][1]["manual"] is True


def test_list(folder: Path) -> None:
    (folder / "other.md").write_text(GOOD.replace("name: Good", "name: Other\nseverity: high"))
    (folder / "broken.md").write_bytes(b"\x00")
    proc = run("list", "--format", "json", str(folder))
    assert proc.returncode == 0
    rows = json.loads(proc.stdout)["runbooks"]
    assert [(r["id"], r["name"], r["severity"], r["steps"], r["roles"]) for r in rows] == [
        ("good", "Good", None, 2, ["L1"]),
        ("other", "Other", "high", 2, ["L1"]),
    ]
    assert "broken.md" in proc.stderr and "binary" in proc.stderr
    text = run("list", str(folder)).stdout
    assert "Other" in text and "high" in text


def test_schema_is_json_schema() -> None:
    proc = run("schema")
    schema = json.loads(proc.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"name", "service", "inputs", "kernels"} <= set(schema["properties"])
    assert schema["required"] == ["name", "service"]
    # An editor validating with the printed schema agrees with `check`: every example's front
    # matter passes, and a typo'd key or a bad severity fails.
    validator = jsonschema.Draft202012Validator(schema)
    for book in sorted(Path("runbooks").glob("*.md")):
        front = yaml.safe_load(book.read_text(encoding="utf-8").split("---\n")[1])
        assert list(validator.iter_errors(front)) == [], book
    for bad in ({"name": "X", "service": "y", "sevrity": "high"},
                {"name": "X", "service": "y", "severity": "urgent"},
                {"name": "X", "service": "y", "inputs": {"a": {"tpye": "string"}}}):  # fmt: skip
        assert list(validator.iter_errors(bad)), bad


def test_a_runbook_cannot_send_escape_sequences_to_the_terminal(tmp_path: Path) -> None:
    # A runbook under review could clear the reader's screen, retitle the window or hide lines.
    evil = (
        GOOD.replace("name: Good", 'name: "Good \\e[2J\\e]0;pwned\\a"')
        .replace("### 1. Confirm", "### 1. Confirm \x1b[8mhidden")
        .replace('curl -s "', 'printf "\x1b[1A\x1b[2K"; curl -s "')
        .replace("roles:", 'kernels: {"ps\\e[31m": no-such-kernel}\nroles:')
    )
    book = tmp_path / "evil.md"
    book.write_text(evil, encoding="utf-8")
    # A kernel that is not installed is an error (RB039), and `show` shows no plan with errors.
    installed = tmp_path / "evil-installed.md"
    installed.write_text(evil.replace("no-such-kernel", "python3"), encoding="utf-8")
    shown, listed = run("show", str(installed)), run("list", str(book))
    checked = run("check", str(book))
    for proc in (shown, listed, checked):
        assert "\x1b" not in proc.stdout + proc.stderr
    assert "Good \\x1b[2J\\x1b]0;pwned\\x07" in shown.stdout
    assert "Confirm \\x1b[8mhidden" in shown.stdout
    assert "\\x1b[1A\\x1b[2K" in shown.stdout
    assert "\\x1b[2J" in listed.stdout
    assert "RB039" in checked.stdout and "ps\\x1b[31m" in checked.stdout
