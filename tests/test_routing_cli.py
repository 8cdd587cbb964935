"""`runbook route` and `runbook drill --alert` through the real console script: what a user sees,
the documented exit statuses, and bad payloads refused with a message, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUNBOOK = [str(REPO / ".venv" / "bin" / "runbook")]
if not Path(RUNBOOK[0]).exists():
    RUNBOOK = [sys.executable, "-m", "runner"]
ALERTS = REPO / "runbooks" / "alerts"
SERVER = ALERTS / "server-not-responding" / "alertmanager-service-down.json"
TOKEN = "s3cr3t-token-value-never-shown"


def route(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*RUNBOOK, "route", *args],
        input=stdin.decode("utf-8", "replace") if stdin is not None else None,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


def test_route_prints_the_runbook_and_its_inputs() -> None:
    proc = route(str(SERVER), "-i", "base_url=https://soc.example", env={
        "RUNBOOK_INPUT_API_TOKEN": TOKEN})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "routed: server-not-responding starts" in out
    assert "host_id      = 'srv-web-01'  (alert: entities.hosts[0])" in out
    assert "api_token    = ***" in out
    assert TOKEN not in out + proc.stderr
    assert "1 alert(s): 1 routed, 0 unrouted" in proc.stderr


def test_the_intake_values_come_from_the_environment_too() -> None:
    proc = route(str(SERVER), env={"RUNBOOK_INPUT_BASE_URL": "https://soc.example"})
    assert proc.returncode == 0, proc.stdout
    assert "base_url     = 'https://soc.example'  (given)" in proc.stdout


def test_unrouted_exits_1_with_the_reason_and_explain_names_the_failing_condition() -> None:
    proc = route(str(SERVER), "--explain")
    assert proc.returncode == 1
    assert "unrouted: server-not-responding matches, but input 'base_url'" in proc.stdout
    assert "✓ server-not-responding: matches (priority 0)" in proc.stdout
    assert "✗ ransomware: format equals 'ecs': found 'alertmanager'" in proc.stdout
    assert "✗ restore-backup: source equals 'service-desk': found 'alertmanager'" in proc.stdout


def test_json_from_stdin_with_every_alert_of_a_group() -> None:
    group = json.loads(SERVER.read_text())
    second = json.loads(json.dumps(group["alerts"][0]))
    second["labels"]["service"] = "billing-api"
    second["labels"]["instance"] = "srv-bill-02:8443"
    second["status"] = "resolved"
    second["fingerprint"] = "ffff0000ffff0000"
    group["alerts"].append(second)
    proc = route("-", "--format", "json", "-i", "base_url=https://soc.example",
                 stdin=json.dumps(group).encode())  # fmt: skip
    assert proc.returncode == 0, proc.stdout
    data = json.loads(proc.stdout)
    assert data["version"] == 1
    first, resolved = data["alerts"]
    assert first["runbook"] == "server-not-responding"
    assert first["inputs"]["api_token"] == {"value": "***", "origin": "run time"}
    assert resolved["alert"]["status"] == "resolved"
    assert resolved["reason"].startswith("server-not-responding resolves its run")
    assert resolved["inputs"]["host_id"]["value"] == "srv-bill-02"


def test_a_secret_is_never_given_on_the_command_line() -> None:
    proc = route(str(SERVER), "-i", f"api_token={TOKEN}")
    assert proc.returncode == 2
    assert "secret" in proc.stderr and TOKEN not in proc.stdout + proc.stderr


def test_alert_text_is_escaped_for_the_terminal() -> None:
    body = {"id": "x1", "source": "service-desk", "category": "restore-request",
            "title": "evil \x1b]8;;http://x\x1b\\link\x1b[2J", "system": "db-01",
            "service": "postgres-db"}  # fmt: skip
    proc = route("-", "--alert-format", "generic", "-i", "base_url=https://s.example",
                 stdin=json.dumps(body).encode())  # fmt: skip
    assert proc.returncode == 0, proc.stdout
    assert "\x1b" not in proc.stdout
    assert "evil \\x1b]8;;http://x" in proc.stdout


def test_cloudevents_in_binary_mode() -> None:
    fixtures = REPO / "tests" / "fixtures" / "alerts"
    headers = [h for line in (fixtures / "cloudevents-binary.headers").read_text().splitlines()
               for h in ("-H", line)]  # fmt: skip
    proc = route(str(fixtures / "cloudevents-binary.body.json"), *headers, "--format", "json")
    assert proc.returncode == 1  # no example runbook handles DLP violations
    alert = json.loads(proc.stdout)["alerts"][0]["alert"]
    assert (alert["source"], alert["id"], alert["format"]) == (
        "/dlp/gateway",
        "dlp-4411",
        "cloudevents",
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"version": "4", "alerts": [', "the payload is not JSON: Expecting value at line 1"),
        (b"\xff\xfe{}", "the payload is not UTF-8 (byte 0"),
        (b"[" * 5000 + b"]" * 5000, "nested more than 32 levels deep"),
        (json.dumps({"alerts": [1] * 10_001}).encode(), "has 10,001 items, over the limit"),
        (b" " * (5 * 1024 * 1024 + 10), "over the limit of 5,242,880"),
        (b'{"hello": "world"}', "cannot tell the alert's format (its keys: hello)"),
        (b"", "the payload is empty"),
        (b'{"specversion": "1.0", "id": "1", "source": "s", "type": ""}', "lacks type"),
        (b'[{"specversion": "1.0", "id": "1", "source": "s", "type": "t"}, {"x": 1}]',
         "<stdin>[1]: cannot tell the alert's format"),
    ],
    ids=["malformed", "not-utf8", "deep", "huge-array", "oversize", "unknown", "empty",
         "bad-cloudevent", "one-bad-in-a-batch"],
)  # fmt: skip
def test_unusable_payload_exits_2_and_routes_nothing(payload: bytes, message: str) -> None:
    proc = subprocess.run(
        [*RUNBOOK, "route", "-"], input=payload, capture_output=True, cwd=REPO, timeout=60
    )
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert "Traceback" not in out + err
    assert proc.returncode == 2
    assert message in err
    assert "(nothing was routed)" in err
    assert out == ""  # never a partial route


def test_unknown_alert_format_is_a_usage_error() -> None:
    proc = route(str(SERVER), "--alert-format", "pagerduty")
    assert proc.returncode == 2 and "'pagerduty' is not one of" in proc.stderr


def test_drill_rehearses_a_real_alert(tmp_path: Path) -> None:
    alert = ALERTS / "compromised-endpoint" / "ocsf-malware-finding.json"
    proc = subprocess.run(
        [*RUNBOOK, "drill", "runbooks/compromised-endpoint.md", "--yes", "--alert", str(alert),
         "--runs-dir", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert (
        "Alert: [ocsf] Emotet loader executed from a mail attachment (high) → "
        "compromised-endpoint; from the alert: alert_id='alrt-1001', host_id='wks-0042'"
    ) in proc.stdout
    assert "✓ hosts.wks-0042.isolated equals true" in proc.stdout
    journal = next(tmp_path.glob("*/journal.jsonl")).read_text()
    started = json.loads(journal.splitlines()[0])
    assert started["inputs"]["alert_id"] == "alrt-1001"


def test_drill_refuses_an_alert_that_routes_elsewhere(tmp_path: Path) -> None:
    alert = ALERTS / "ransomware" / "elastic-defend-ransomware.json"
    proc = subprocess.run(
        [*RUNBOOK, "drill", "runbooks/compromised-endpoint.md", "--yes", "--alert", str(alert),
         "--runs-dir", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "no alert in it routes to compromised-endpoint (alert 1: routes to ransomware)" in (
        proc.stderr
    )
    assert not list(tmp_path.iterdir())
