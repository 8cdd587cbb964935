"""The lab, through a real uvicorn server on a free loopback port: auth, each API family's main
effect, persistence across a restart, reset and fault injection."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.errors import UsageError
from runner.lab import LabServer, reset_db, serve

TOKEN = "test-token-" + "x" * 16


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    db = tmp_path_factory.mktemp("lab") / "lab.db"
    with LabServer(db, token=TOKEN) as server:
        yield server


@pytest.fixture()
def api(lab: LabServer) -> Iterator[httpx.Client]:
    """A client on a freshly reset lab."""
    with httpx.Client(
        base_url=lab.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ) as client:
        client.post("/api/_lab/reset").raise_for_status()
        yield client


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_health_needs_no_token(lab: LabServer) -> None:
    assert httpx.get(f"{lab.url}/health").json() == {"status": "ok"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}],
    ids=["no-token", "wrong-token", "no-bearer-scheme"],
)
def test_api_refuses_without_the_token(lab: LabServer, headers: dict[str, str]) -> None:
    response = httpx.get(f"{lab.url}/api/edr/hosts", headers=headers)
    assert response.status_code == 401
    assert "token" in response.json()["error"]


def test_unknown_route_and_bad_body_answer_json_errors(api: httpx.Client) -> None:
    assert "no such route" in ok(api.get("/api/nope"), 404)["error"]
    assert "not valid JSON" in ok(api.post("/api/tickets", content=b"{oops"), 400)["error"]
    assert "'title'" in ok(api.post("/api/tickets", json={"severity": "high"}), 422)["error"]


def test_edr_isolate_release_and_telemetry(api: httpx.Client) -> None:
    host = ok(api.post("/api/edr/hosts/wks-0042/isolate", json={"reason": "malware"}))
    assert host["isolated"] is True and host["changed"] is True
    assert ok(api.post("/api/edr/hosts/wks-0042/isolate"))["changed"] is False
    isolated = ok(api.get("/api/edr/hosts", params={"isolated": "true"}))["hosts"]
    assert [h["id"] for h in isolated] == ["wks-0042"]
    assert ok(api.post("/api/edr/hosts/wks-0042/release"))["isolated"] is False
    peers = ok(api.get("/api/edr/hosts/wks-0042/connections"))["connections"]
    assert "wks-0017" in {c["remote_host_id"] for c in peers}
    names = {p["name"] for p in ok(api.get("/api/edr/hosts/wks-0042/processes"))["processes"]}
    assert "invoice.exe" in names
    assert "no host 'nope'" in ok(api.get("/api/edr/hosts/nope"), 404)["error"]


def test_edr_collect_bundle_checksum_matches_content(api: httpx.Client) -> None:
    made = ok(api.post("/api/edr/hosts/wks-0042/collect", json={"artifacts": ["processes"]}), 201)
    bundle = ok(api.get(f"/api/edr/bundles/{made['bundle_id']}"))
    canonical = json.dumps(bundle["content"], sort_keys=True, separators=(",", ":"))
    assert hashlib.sha256(canonical.encode()).hexdigest() == made["sha256"] == bundle["sha256"]
    assert set(bundle["content"]) == {"host_id", "collected_at", "processes"}


def test_edr_restore_cleans_the_host_and_patch_updates_it(api: httpx.Client) -> None:
    assert ok(api.post("/api/edr/hosts/wks-0042/scan"))["result"] == "infected"
    assert ok(api.post("/api/edr/hosts/wks-0042/patch"))["pending_patches"] == []
    ok(api.post("/api/edr/hosts/wks-0042/restore", json={"image": "golden-2024-06"}))
    scan = ok(api.post("/api/edr/hosts/wks-0042/scan"))
    assert scan["result"] == "clean" and scan["detections"] == []
    names = {p["name"] for p in ok(api.get("/api/edr/hosts/wks-0042/processes"))["processes"]}
    assert "invoice.exe" not in names


def test_edr_alert_lifecycle(api: httpx.Client) -> None:
    open_alerts = ok(api.get("/api/edr/alerts", params={"status": "open"}))["alerts"]
    assert {a["id"] for a in open_alerts} == {"alrt-1001", "alrt-1002", "alrt-1003"}
    assert ok(api.post("/api/edr/alerts/alrt-1001/ack"))["status"] == "acknowledged"
    closed = ok(api.post("/api/edr/alerts/alrt-1001/close", json={"resolution": "contained"}))
    assert closed["status"] == "closed"
    assert ok(api.post("/api/edr/alerts/alrt-1001/ack"), 409)["error"].endswith("first")


def test_idp_account_actions(api: httpx.Client) -> None:
    assert (
        ok(api.post("/api/idp/users/asmith/disable", json={"reason": "phish"}))["enabled"] is False
    )
    assert ok(api.post("/api/idp/users/asmith/revoke-sessions"))["revoked"] == 3
    assert ok(api.post("/api/idp/users/asmith/reset-mfa"))["mfa_enrolled"] is False
    reset = ok(api.post("/api/idp/users/asmith/reset-password"))
    assert reset["must_change_password"] is True and "password" not in reset
    user = ok(api.get("/api/idp/users/asmith"))
    assert user["enabled"] is False and user["sessions"] == []
    assert ok(api.post("/api/idp/users/asmith/enable"))["enabled"] is True


def test_idp_signins_show_the_password_guessing(api: httpx.Client) -> None:
    query = {"user": "mlopez", "result": "failure", "since": "24h"}
    failures = ok(api.get("/api/idp/signins", params=query))
    assert failures["count"] == 30
    assert {s["ip"] for s in failures["signins"]} == {"203.0.113.77"}
    assert ok(api.get("/api/idp/signins", params={**query, "since": "bad"}), 400)["error"]


def test_firewall_block_is_idempotent_and_unblock_removes(api: httpx.Client) -> None:
    rule = {"type": "ip", "value": "203.0.113.77", "reason": "brute force"}
    made = ok(api.post("/api/firewall/rules", json=rule), 201)
    assert ok(api.post("/api/firewall/rules", json=rule))["id"] == made["id"]
    internal = {**rule, "value": "10.0.4.42"}
    assert "internal" in ok(api.post("/api/firewall/rules", json=internal), 422)["error"]
    assert ok(api.delete(f"/api/firewall/rules/{made['id']}")) == {"deleted": made["id"]}
    values = {r["value"] for r in ok(api.get("/api/firewall/rules"))["rules"]}
    assert "203.0.113.77" not in values


def test_ticket_lifecycle(api: httpx.Client) -> None:
    ticket = ok(api.post("/api/tickets", json={"title": "Emotet", "severity": "high"}), 201)
    assert ticket["id"] == "INC-1001" and ticket["status"] == "open"
    ok(api.post(f"/api/tickets/{ticket['id']}/comments", json={"text": "isolated"}), 201)
    done = ok(api.post(f"/api/tickets/{ticket['id']}/resolve", json={"resolution": "cleaned"}))
    assert done["status"] == "resolved" and done["comments"][0]["text"] == "isolated"
    ok(api.post(f"/api/tickets/{ticket['id']}/resolve", json={"resolution": "again"}), 409)


def test_intel_lookup_verdicts(api: httpx.Client) -> None:
    bad = ok(api.get("/api/intel/lookup", params={"type": "ip", "value": "203.0.113.77"}))
    assert bad["verdict"] == "malicious" and "brute-force" in bad["tags"]
    unknown = ok(api.get("/api/intel/lookup", params={"type": "domain", "value": "a.example"}))
    assert unknown["verdict"] == "unknown" and unknown["score"] == 0
    assert ok(api.get("/api/intel/lookup", params={"type": "url", "value": "x"}), 400)


def test_backups_verify_and_restore_job(api: httpx.Client) -> None:
    corrupt = ok(api.post("/api/backups/snapshots/snap-db-0603/verify"))
    assert corrupt["result"] == "corrupt"
    refused = api.post(
        "/api/backups/restore", json={"system": "db-01", "snapshot_id": "snap-db-0603"}
    )
    assert "failed verification" in ok(refused, 422)["error"]
    assert ok(api.post("/api/backups/snapshots/snap-files-0602/verify"))["result"] == "ok"
    body = {"system": "srv-files-01", "snapshot_id": "snap-files-0602"}
    job = ok(api.post("/api/backups/restore", json=body), 202)
    assert ok(api.get(f"/api/backups/jobs/{job['id']}"))["status"] == "running"
    assert ok(api.get(f"/api/backups/jobs/{job['id']}"))["status"] == "completed"
    state = ok(api.get("/api/_lab/state"))
    assert state["hosts"]["srv-files-01"]["infected"] is False


def test_service_restart_brings_it_up(api: httpx.Client) -> None:
    assert ok(api.get("/api/services/web-portal"))["status"] == "down"
    assert ok(api.post("/api/services/web-portal/restart"), 202)["status"] == "starting"
    assert ok(api.get("/api/services/web-portal"))["status"] == "up"


def test_cloud_redeploy_fixes_findings(api: httpx.Client) -> None:
    path = "/api/cloud/resources/bucket-finance-reports"
    findings = ok(api.get("/api/cloud/findings", params={"resource_id": "bucket-finance-reports"}))
    fix: dict[str, Any] = {}
    for finding in findings["findings"]:
        fix.update(finding["remediation"])
    preview = ok(api.post(f"{path}/redeploy", json={"settings": fix, "dry_run": True}))
    assert preview["findings"] == [] and ok(api.get(path))["revision"] == 3
    done = ok(api.post(f"{path}/redeploy", json={"settings": fix, "reason": "fix"}))
    assert done["findings"] == [] and done["resource"]["revision"] == 4
    bad = api.post(f"{path}/redeploy", json={"settings": {"public": False}})
    assert "unknown setting 'public'" in ok(bad, 422)["error"]


def test_fault_injection_fails_then_recovers(api: httpx.Client) -> None:
    fault = {"route": "POST /api/edr/hosts/{id}/isolate", "status": 500, "times": 1}
    ok(api.post("/api/_lab/faults", json=fault), 201)
    assert "injected fault" in ok(api.post("/api/edr/hosts/wks-0042/isolate"), 500)["error"]
    assert ok(api.post("/api/edr/hosts/wks-0042/isolate"))["isolated"] is True
    ok(api.post("/api/_lab/faults", json={"route": "/api/idp", "status": 503, "times": -1}), 201)
    ok(api.get("/api/idp/users"), 503)
    ok(api.get("/api/idp/users"), 503)
    assert ok(api.delete("/api/_lab/faults"))["cleared"] == 1
    ok(api.get("/api/idp/users"))
    log = ok(api.get("/api/_lab/requests"))["requests"]
    assert sum(1 for r in log if r["fault_id"] is not None) == 3


def test_reset_restores_the_seed(api: httpx.Client) -> None:
    ok(api.post("/api/idp/users/mlopez/disable"))
    ok(api.post("/api/tickets", json={"title": "x", "severity": "low"}), 201)
    ok(api.post("/api/_lab/reset"))
    state = ok(api.get("/api/_lab/state"))
    assert state["users"]["mlopez"]["enabled"] is True
    assert state["tickets"] == {"INC-0990": "resolved"}


def test_state_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "lab.db"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with LabServer(db, token=TOKEN) as first:
        made = httpx.post(
            f"{first.url}/api/tickets", headers=headers, json={"title": "t", "severity": "low"}
        )
        ticket_id = ok(made, 201)["id"]
        ok(httpx.post(f"{first.url}/api/edr/hosts/dc-01/isolate", headers=headers))
    with LabServer(db, token=TOKEN) as second:
        assert ok(httpx.get(f"{second.url}/api/tickets/{ticket_id}", headers=headers))["id"]
        state = ok(httpx.get(f"{second.url}/api/_lab/state", headers=headers))
        assert state["hosts"]["dc-01"]["isolated"] is True
    reset_db(db)
    with LabServer(db, token=TOKEN) as third:
        state = ok(httpx.get(f"{third.url}/api/_lab/state", headers=headers))
        assert state["hosts"]["dc-01"]["isolated"] is False and ticket_id not in state["tickets"]


def test_serve_refuses_a_non_loopback_host(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="loopback"):
        serve(host="0.0.0.0", port=0, db_path=tmp_path / "lab.db", token=TOKEN)


def test_serve_refuses_a_port_already_in_use(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=rf"127\.0\.0\.1:{port}.*--port"):
            serve(port=port, db_path=tmp_path / "lab.db", token=TOKEN)


@pytest.mark.parametrize("reset", [False, True], ids=["serve", "reset"])
def test_serve_explains_a_file_that_is_not_a_lab_database(tmp_path: Path, reset: bool) -> None:
    db = tmp_path / "notes.txt"
    db.write_text("not a database\n" * 200, encoding="utf-8")
    with pytest.raises(UsageError, match=r"notes\.txt.*not a lab database.*--db"):
        serve(port=0, db_path=db, token=TOKEN, reset=reset)


def test_etcd_defrag_shrinks_a_member_and_the_alarm_clears_only_below_the_quota(
    api: httpx.Client,
) -> None:
    members = ok(api.get("/api/etcd/members"))["members"]
    assert [m["id"] for m in members] == ["etcd-0", "etcd-1", "etcd-2"]
    assert ok(api.get("/api/etcd/alarms"))["alarms"][0]["alarm"] == "NOSPACE"
    assert ok(api.get("/api/etcd/members/etcd-1/health")) == {"member": "etcd-1", "healthy": True}
    done = ok(api.post("/api/etcd/members/etcd-0/defrag"))["member"]
    assert done["db_size_mb"] == done["db_in_use_mb"] == 3100 and done["defragmented_at"]
    # Two members still over 90 % of the quota: the alarm stays.
    assert "etcd-1, etcd-2" in ok(api.post("/api/etcd/alarms/disarm"), 409)["error"]
    for member in ("etcd-1", "etcd-2"):
        ok(api.post(f"/api/etcd/members/{member}/defrag"))
    assert ok(api.post("/api/etcd/alarms/disarm")) == {"disarmed": 1}
    assert ok(api.get("/api/etcd/alarms"))["alarms"] == []
    ok(api.get("/api/etcd/members/etcd-9/health"), 404)


def test_ec2_snapshots_quarantine_protection_and_tags(api: httpx.Client) -> None:
    volumes = ok(api.get("/api/ec2/instances/i-0badc0ffee/volumes"))["volumes"]
    assert [v["id"] for v in volumes] == ["vol-root-3", "vol-data-3"]
    snap = ok(api.post("/api/ec2/volumes/vol-data-3/snapshot", json={"description": "IR"}), 201)
    assert (snap["id"], snap["volume_id"], snap["status"]) == (
        "snap-ec2-1",
        "vol-data-3",
        "completed",
    )
    assert ok(api.get("/api/ec2/snapshots?volume_id=vol-data-3"))["snapshots"] == [snap]
    ok(api.post("/api/ec2/instances/i-0badc0ffee/security-groups", json={"groups": ["sg-x"]}), 422)
    moved = ok(
        api.post(
            "/api/ec2/instances/i-0badc0ffee/security-groups", json={"groups": ["sg-quarantine"]}
        )
    )
    assert moved["security_groups"] == ["sg-quarantine"]
    assert ok(api.post("/api/ec2/instances/i-0badc0ffee/protect"))["termination_protection"] is True
    tagged = ok(api.post("/api/ec2/instances/i-0badc0ffee/tags", json={"tags": {"ir": "INC-1"}}))
    assert tagged["tags"] == {"app": "shop", "ir": "INC-1"}
    state = ok(api.get("/api/_lab/state"))
    assert state["ec2_snapshots"] == {"snap-ec2-1": "vol-data-3"}
