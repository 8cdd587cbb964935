"""Every example runbook, run with `runbook run --yes` and its gates pre-approved, succeeds
against the lab, and the lab's state shows the effect. One lab for the module, reset per test.

The expected end states are written here, independently of the drill scenarios, from the lab's
seeded story (docs/lab.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from runner_helpers import cli

from runner.lab import LabServer
from runner.parse.markdown import parse_file

REPO = Path(__file__).resolve().parent.parent


def _api(lab: LabServer) -> httpx.Client:
    return httpx.Client(
        base_url=lab.url, headers={"Authorization": f"Bearer {lab.token}"}, timeout=15
    )


def _rules(state: dict[str, Any]) -> set[tuple[str, str]]:
    return {(r["type"], r["value"]) for r in state["firewall_rules"]}


def _compromised_endpoint(s: dict[str, Any]) -> None:
    host = s["hosts"]["wks-0042"]
    assert host["isolated"] is True
    assert host["infected"] is False
    assert host["restored_from"] == "golden-2024-06"
    assert s["alerts"]["alrt-1001"] == "closed"


def _ransomware(s: dict[str, Any]) -> None:
    host = s["hosts"]["srv-files-01"]
    assert (host["isolated"], host["infected"]) == (True, False)
    assert host["restored_from"] == "snap-files-0602"
    assert {("ip", "45.137.21.9"), ("domain", "decrypt-files-now.top")} <= _rules(s)
    assert s["users"]["svc-backup"]["enabled"] is False
    assert s["alerts"]["alrt-1002"] == "closed"


def _server_not_responding(s: dict[str, Any]) -> None:
    assert s["services"]["web-portal"] == "up"


def _restore_backup(s: dict[str, Any]) -> None:
    assert s["snapshots"]["snap-db-0603"] == "corrupt"
    assert list(s["restore_jobs"].values()) == ["completed"]
    assert s["services"]["postgres-db"] == "up"


def _cloud_misconfiguration(s: dict[str, Any]) -> None:
    bucket = s["cloud"]["bucket-finance-reports"]
    assert (bucket["revision"], bucket["findings"]) == (4, [])


def _phishing(s: dict[str, Any]) -> None:
    user = s["users"]["asmith"]
    assert user == {
        "enabled": False,
        "sessions": 0,
        "mfa_enrolled": False,
        "must_change_password": True,
    }
    assert {("domain", "login-micros0ft-support.com"), ("ip", "198.51.100.23")} <= _rules(s)


def _pass_the_hash(s: dict[str, Any]) -> None:
    # Answered "no" (not the owner's work): the account is locked, the machines it reached cut
    # off, and the ticket stays open for the cleanup.
    assert s["users"]["jdoe"]["enabled"] is False
    assert s["users"]["jdoe"]["must_change_password"] is True
    assert s["hosts"]["wks-0042"]["isolated"] is True
    assert s["hosts"]["wks-0017"]["isolated"] is True


def _repeated_auth_failures(s: dict[str, Any]) -> None:
    assert ("ip", "203.0.113.77") in _rules(s)
    assert s["users"]["mlopez"]["enabled"] is True


def _etcd_quota(s: dict[str, Any]) -> None:
    assert all(m["defragmented"] and m["healthy"] for m in s["etcd"].values())
    assert s["etcd_alarms"] == []


def _ec2_malware(s: dict[str, Any]) -> None:
    assert sorted(s["ec2_snapshots"].values()) == ["vol-data-3", "vol-root-3"]
    instance = s["ec2"]["i-0badc0ffee"]
    assert instance["security_groups"] == ["sg-quarantine"]
    assert instance["termination_protection"] is True


EFFECTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "compromised-endpoint": _compromised_endpoint,
    "ransomware": _ransomware,
    "server-not-responding": _server_not_responding,
    "restore-backup": _restore_backup,
    "cloud-misconfiguration": _cloud_misconfiguration,
    "phishing-compromised-credentials": _phishing,
    "repeated-auth-failures": _repeated_auth_failures,
    "pass-the-hash": _pass_the_hash,
    "etcd-quota-low-space": _etcd_quota,
    "ec2-malware-finding": _ec2_malware,
}
#: Decision steps answered on the command line, by runbook, and the runs that leave their
#: ticket open (the response goes on in another runbook).
ANSWERS: dict[str, list[str]] = {"pass-the-hash": ["owner-confirms=no"]}
TICKET_LEFT_OPEN = {"pass-the-hash"}


def test_every_example_runbook_has_an_expected_effect() -> None:
    assert sorted(EFFECTS) == sorted(p.stem for p in (REPO / "runbooks").glob("*.md"))


@pytest.mark.slow
@pytest.mark.parametrize("runbook", sorted(EFFECTS))
def test_example_runbook_succeeds_against_the_lab(
    lab: LabServer, tmp_path: Path, runbook: str
) -> None:
    with _api(lab) as api:
        api.post("/api/_lab/reset").raise_for_status()
        before = api.get("/api/_lab/state").json()
        path = REPO / "runbooks" / f"{runbook}.md"
        gated = [s.id for s in parse_file(path).steps if s.approve]
        args = ["run", str(path), "--yes", "-i", f"base_url={lab.url}"]
        args += [a for step in gated for a in ("--approve", step)]
        args += [a for pair in ANSWERS.get(runbook, []) for a in ("--answer", pair)]
        result = cli(args, tmp_path, env={"RUNBOOK_INPUT_API_TOKEN": lab.token}, timeout=120)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        assert ": succeeded" in result.stdout
        assert lab.token not in result.stdout + result.stderr
        state = api.get("/api/_lab/state").json()
    opened = {t: st for t, st in state["tickets"].items() if t not in before["tickets"]}
    end = "open" if runbook in TICKET_LEFT_OPEN else "resolved"
    assert list(opened.values()) == [end], f"one ticket opened by the run, and {end}"
    EFFECTS[runbook](state)


@pytest.mark.slow
def test_phished_credentials_disable_the_account_at_any_severity(
    lab: LabServer, tmp_path: Path
) -> None:
    # Credentials typed into a phishing page are compromised whatever the report's severity.
    with _api(lab) as api:
        api.post("/api/_lab/reset").raise_for_status()
        path = REPO / "runbooks" / "phishing-compromised-credentials.md"
        gated = [s.id for s in parse_file(path).steps if s.approve]
        args = ["run", str(path), "--yes", "-i", f"base_url={lab.url}", "-i", "severity=medium"]
        args += [a for step in gated for a in ("--approve", step)]
        result = cli(args, tmp_path, env={"RUNBOOK_INPUT_API_TOKEN": lab.token}, timeout=120)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        assert api.get("/api/_lab/state").json()["users"]["asmith"]["enabled"] is False


@pytest.mark.slow
def test_a_false_positive_ends_the_endpoint_run_and_leaves_the_device_alone(
    lab: LabServer, tmp_path: Path
) -> None:
    """alrt-1003's file is benign in the intel feed: the run closes the alert and stops there;
    nothing isolates wks-0017, however the later steps are approved."""
    with _api(lab) as api:
        api.post("/api/_lab/reset").raise_for_status()
        path = REPO / "runbooks" / "compromised-endpoint.md"
        gated = [s.id for s in parse_file(path).steps if s.approve]
        args = ["run", str(path), "--yes", "-i", f"base_url={lab.url}"]
        args += ["-i", "alert_id=alrt-1003", "-i", "host_id=wks-0017"]
        args += [a for step in gated for a in ("--approve", step)]
        result = cli(args, tmp_path, env={"RUNBOOK_INPUT_API_TOKEN": lab.token}, timeout=120)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        assert "ended by step 3: closed as a false positive" in result.stdout
        state = api.get("/api/_lab/state").json()
        isolations = [
            r for r in api.get("/api/_lab/requests").json()["requests"] if "/isolate" in r["path"]
        ]
    assert state["alerts"]["alrt-1003"] == "closed"
    assert state["hosts"]["wks-0017"]["isolated"] is False
    assert isolations == []


@pytest.mark.slow
def test_a_failed_snapshot_fails_the_step_and_resume_takes_only_the_missing_one(
    lab: LabServer, tmp_path: Path
) -> None:
    """The root volume's snapshot fails twice (its attempt and its retry): the data volume is
    still snapshotted, the step fails and the instance is not contained. Resumed once EBS
    answers again, the run snapshots the root volume only, then contains the instance."""
    env = {"RUNBOOK_INPUT_API_TOKEN": lab.token}
    path = REPO / "runbooks" / "ec2-malware-finding.md"
    with _api(lab) as api:
        api.post("/api/_lab/reset").raise_for_status()
        fault = {"route": "POST /api/ec2/volumes/{id}/snapshot", "status": 500, "times": 2}
        api.post("/api/_lab/faults", json=fault).raise_for_status()
        args = ["run", str(path), "--yes", "-i", f"base_url={lab.url}", "--approve", "contain"]
        first = cli(args, tmp_path, env=env, timeout=120)
        assert first.returncode == 1, first.stdout[-3000:] + first.stderr
        assert "1 of 2 items failed; item 1 (vol-root-3)" in first.stdout
        state = api.get("/api/_lab/state").json()
        assert list(state["ec2_snapshots"].values()) == ["vol-data-3"]
        assert state["ec2"]["i-0badc0ffee"]["security_groups"] == ["sg-web"]
        # The new attempt asks for the containment gate again: pre-approvals do not carry over.
        paused = cli(["resume", "last", "--yes"], tmp_path, env=env, timeout=120)
        assert paused.returncode == 3, paused.stdout[-3000:] + paused.stderr
        approve = ["approve", "last", "contain", "--by", "priya", "--role", "IR-lead"]
        assert cli(approve, tmp_path, env=env).returncode == 0
        resumed = cli(["resume", "last", "--yes"], tmp_path, env=env, timeout=120)
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr
        state = api.get("/api/_lab/state").json()
    assert sorted(state["ec2_snapshots"].values()) == ["vol-data-3", "vol-root-3"]
    assert state["ec2"]["i-0badc0ffee"]["security_groups"] == ["sg-quarantine"]
