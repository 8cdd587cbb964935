"""The response service end to end: `runbook serve` (embedded Temporal dev server, a worker, the
intake on 127.0.0.1) started as a user starts it, real alerts posted over HTTP, the lab as the
SOC's APIs. One service for the whole module: one Temporal dev server per test session."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from runner_helpers import RUNBOOK, read_events

from runner.lab.server import LabServer
from runner.runs.journal import verify as verify_run
from runner.runs.key import KEY_ENV
from runner.service.messages import Decision, RunSummary

pytest.importorskip("temporalio")

REPO = Path(__file__).resolve().parents[1]
ALERTS = REPO / "runbooks" / "alerts"
TOKEN = "service-test-token-0123456789"
EDR_SECRET = "edr-hook-secret-0123456789"
#: Upper bounds on loops that end as soon as their marker shows (never a fixed sleep).
START_BOUND = 120.0
RUN_BOUND = 180.0


@dataclass
class Service:
    process: subprocess.Popen[str]
    intake: str
    temporal: str
    runs_dir: Path
    state_dir: Path
    said: list[str]

    def post(self, payload: object, token: str = TOKEN) -> httpx.Response:
        return httpx.post(
            self.intake,
            content=json.dumps(payload),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=60,
        )


@pytest.fixture(scope="module")
def service(
    lab: LabServer, tmp_path_factory: pytest.TempPathFactory, _journal_key_path: Path
) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("service")
    env = {
        **os.environ,
        "RUNBOOK_SERVICE_TOKEN": TOKEN,
        KEY_ENV: str(_journal_key_path),
        "RUNBOOK_OPERATOR": "tester",
    }
    sources = root / "sources.yaml"
    sources.write_text("sources:\n  edr:\n    hmac_secret_env: EDR_HOOK_SECRET\n")
    env["EDR_HOOK_SECRET"] = EDR_SECRET  # a shared secret: from the service's environment
    secrets = root / "secrets.yaml"  # secret inputs: from a file only the service can read
    secrets.write_text(f"api_token: {lab.token}\n")
    secrets.chmod(0o600)
    args = ["--runbooks", "runbooks", "-i", f"base_url={lab.url}", "--sources", str(sources),
            "--secrets", str(secrets)]  # fmt: skip
    started = _serve(args, root, env)
    yield started
    _stop(started)


def _serve(args: list[str], root: Path, env: dict[str, str]) -> Service:
    """`runbook serve` as a user starts it; returns once it printed `ready`."""
    process = subprocess.Popen(
        [RUNBOOK, "serve", "--port", "0", "--runs-dir", str(root / "runs"),
         "--state-dir", str(root / "state"), *args],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    deadline = time.monotonic() + START_BOUND
    assert process.stdout is not None
    while not lines or lines[-1] != "ready":
        line = process.stdout.readline()
        assert line, f"runbook serve ended before `ready`:\n{chr(10).join(lines)}"
        lines.append(line.rstrip("\n"))
        assert time.monotonic() < deadline, lines
    said = dict(line.split(": ", 1) for line in lines if ": " in line)
    assert "token" not in said or said["token"] == "as given"  # a given token is never printed
    return Service(process, said["intake"], said["temporal"].split()[0], root / "runs",
                   root / "state", lines)  # fmt: skip


def _stop(service: Service) -> None:
    service.process.send_signal(signal.SIGTERM)
    rest = service.process.communicate(timeout=60)[0]
    assert service.process.returncode == 0, rest
    assert "stopped" in rest


def test_a_payload_over_the_limit_is_refused_even_without_a_length(service: Service) -> None:
    def chunks() -> Iterator[bytes]:  # chunked: no Content-Length to refuse it by
        for _ in range(6):
            yield b" " * (1024 * 1024)

    headers = {"Authorization": f"Bearer {TOKEN}"}
    answer = httpx.post(service.intake, content=chunks(), headers=headers, timeout=60)
    assert answer.status_code == 413 and "over" in answer.json()["error"]
    missing = httpx.get(service.intake.replace("/alerts", "/runs/no-such-run"), headers=headers)
    assert missing.status_code == 404 and str(service.runs_dir) not in missing.text


def test_a_signed_source_is_taken_and_its_replay_refused(service: Service) -> None:
    import hmac

    url = service.intake + "/edr?format=generic"
    body = json.dumps({"source": "nobody-routes-this", "id": "sig-1", "title": "signed"}).encode()
    stamp = str(int(time.time()))
    mac = hmac.new(EDR_SECRET.encode(), stamp.encode() + b"." + body, "sha256").hexdigest()
    headers = {"X-Runbook-Timestamp": stamp, "X-Runbook-Signature": f"sha256={mac}"}
    first = httpx.post(url, content=body, headers=headers, timeout=60)
    assert first.status_code == 202, first.text
    assert first.json()["alerts"][0]["outcome"] == "unrouted"
    again = httpx.post(url, content=body, headers=headers, timeout=60)
    assert again.status_code == 401 and "replay" in again.json()["error"]
    forged = httpx.post(url, content=body + b" ", headers=headers, timeout=60)
    assert forged.status_code == 401 and "does not match" in forged.json()["error"]
    unknown = httpx.post(service.intake + "/nobody", content=body, headers=headers, timeout=60)
    assert unknown.status_code == 404
    kept = (service.state_dir / "unrouted.jsonl").read_text()
    assert '"sig-1"' in kept and "no runbook" in kept  # an unrouted alert is kept, with why


def test_a_delivery_retried_with_its_idempotency_key_gets_the_first_answer(
    service: Service,
) -> None:
    alert = {"source": "nobody-routes-this", "id": "idem-1", "title": "retried"}
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "delivery-42"}
    url = service.intake + "?format=generic"
    first = httpx.post(url, json=alert, headers=headers, timeout=60)
    second = httpx.post(url, json=alert, headers=headers, timeout=60)
    assert first.status_code == second.status_code == 202
    assert second.json() == first.json() and second.headers["Idempotent-Replayed"] == "true"
    kept = (service.state_dir / "unrouted.jsonl").read_text()
    assert len([line for line in kept.splitlines() if "idem-1" in line]) == 1  # taken once
    other = httpx.post(url, json={**alert, "id": "idem-2"}, headers=headers, timeout=60)
    assert other.status_code == 422
    assert httpx.get(service.intake.replace("/api/alerts", "/ready")).json() == {"status": "ready"}


def _group_of(n: int) -> dict[str, Any]:
    """The server runbook's Alertmanager sample as a group of n alerts: n services (its dedup
    key) on n hosts."""
    payload = json.loads((ALERTS / "server-not-responding" / "alertmanager-service-down.json")
                         .read_text())  # fmt: skip
    first = payload["alerts"][0]
    payload["alerts"] = []
    for i in range(n):
        alert = copy.deepcopy(first)
        alert["labels"]["instance"] = f"srv-web-0{i + 1}:443"
        alert["labels"]["service"] = f"portal-{i + 1}"
        alert["fingerprint"] = f"{i:016x}"
        payload["alerts"].append(alert)
    return payload


def _state(service: Service, workflow_id: str) -> RunSummary | None:
    async def ask() -> RunSummary | None:
        from temporalio.client import Client

        client = await Client.connect(service.temporal)
        handle = client.get_workflow_handle(workflow_id)
        return await handle.query("state", result_type=RunSummary)  # type: ignore[no-any-return]

    return asyncio.run(ask())


def _wait_for(service: Service, workflow_id: str, status: str) -> RunSummary:
    deadline = time.monotonic() + RUN_BOUND
    while True:
        summary = _state(service, workflow_id)
        if summary is not None and summary.status == status:
            return summary
        assert time.monotonic() < deadline, f"{workflow_id}: {summary}, never {status}"
        time.sleep(0.1)  # polling the workflow's own answer, the marker


def _signal(service: Service, workflow_id: str, decision: Decision) -> None:
    async def send() -> None:
        from temporalio.client import Client

        client = await Client.connect(service.temporal)
        await client.get_workflow_handle(workflow_id).signal("decide", decision)

    asyncio.run(send())


def _result(service: Service, workflow_id: str) -> RunSummary:
    async def wait() -> RunSummary:
        from temporalio.client import Client

        client = await Client.connect(service.temporal)
        handle = client.get_workflow_handle(workflow_id, result_type=RunSummary)
        return await asyncio.wait_for(handle.result(), RUN_BOUND)

    return asyncio.run(wait())


def test_a_source_without_the_token_is_refused(service: Service) -> None:
    answer = service.post(_group_of(1), token="wrong")
    assert answer.status_code == 401
    assert not service.runs_dir.exists() or not any(service.runs_dir.iterdir())


def test_a_group_of_three_starts_three_runs_and_the_same_group_again_none(
    service: Service,
) -> None:
    answer = service.post(_group_of(3))
    assert answer.status_code == 202, answer.text
    alerts = answer.json()["alerts"]
    assert [a["outcome"] for a in alerts] == ["started"] * 3, alerts
    assert {a["runbook"] for a in alerts} == {"server-not-responding"}
    again = service.post(_group_of(3)).json()["alerts"]
    assert [a["outcome"] for a in again] == ["duplicate"] * 3
    assert [a["workflow_id"] for a in again] == [a["workflow_id"] for a in alerts]
    hosts = []
    settled = {}
    for a in alerts:
        summary = settled[a["workflow_id"]] = _wait_until_settled(service, a["workflow_id"])
        start = read_events(service.runs_dir / summary.run_id)[0]
        assert start["runbook"]["id"] == "server-not-responding"
        assert start["trigger"]["source"] == "alertmanager"  # the journal names its alert
        assert start["trigger"]["workflow_id"] == a["workflow_id"]
        assert start["inputs"]["api_token"] == "***"  # the secret came from the secrets file
        assert start["inputs"]["base_url"] == service_lab_url(service)
        hosts.append(start["inputs"]["host_id"])
    assert sorted(hosts) == ["srv-web-01", "srv-web-02", "srv-web-03"]
    listed = httpx.get(service.intake.replace("/alerts", "/runs"),
                       headers={"Authorization": f"Bearer {TOKEN}"}).json()["runs"]  # fmt: skip
    assert {r["run_id"] for r in listed} >= {_state(service, a["workflow_id"]).run_id  # type: ignore[union-attr]
                                             for a in alerts}  # fmt: skip
    assert all("run_dir" not in r for r in listed)
    figures = httpx.get(service.intake.replace("/api/alerts", "/metrics")).text
    assert 'runbook_alerts_total{outcome="started"} 3.0' in figures
    assert 'runbook_alerts_total{outcome="duplicate"} 3.0' in figures
    assert "runbook_alert_to_first_step_seconds_count 3.0" in figures
    # Every run ended (failed: the lab has no such hosts), each counted against its time limit.
    ended = sum(1 for s in settled.values() if s.status not in ("paused", "running"))
    counted = re.findall(
        r'runbook_runs_finished_total\{status="[a-z_]+",within_time_limit="[a-z]+"\} ([0-9.]+)',
        figures,
    )
    assert sum(float(n) for n in counted) >= ended

    # The group resolves: a run that still waits is told, in its journal; for a run that
    # ended there is nobody to tell.
    resolved = _group_of(3)
    resolved["status"] = "resolved"
    for alert in resolved["alerts"]:
        alert["status"] = "resolved"
    told = service.post(resolved).json()["alerts"]
    for a, t in zip(alerts, told, strict=True):
        summary = settled[a["workflow_id"]]
        waiting = summary.status in ("paused", "interrupted")
        assert t["outcome"] == ("resolved" if waiting else "resolved_no_run"), (t, summary)
        if waiting:
            deadline = time.monotonic() + RUN_BOUND
            while not any("resolved at its source" in e.get("text", "")
                          for e in read_events(service.runs_dir / summary.run_id)):  # fmt: skip
                assert time.monotonic() < deadline
                time.sleep(0.1)  # the journal's note is the marker


def _wait_until_settled(service: Service, workflow_id: str) -> RunSummary:
    deadline = time.monotonic() + RUN_BOUND
    while True:
        summary = _state(service, workflow_id)
        if summary is not None and summary.status != "running":
            return summary
        assert time.monotonic() < deadline, f"{workflow_id} never settled: {summary}"
        time.sleep(0.1)


def service_lab_url(service: Service) -> str:
    args = service.process.args
    assert isinstance(args, list)
    return str(args[args.index("-i") + 1]).split("=", 1)[1]


def test_an_edr_alert_waits_at_the_isolation_gate_until_approved(
    service: Service, lab: LabServer
) -> None:
    payload = json.loads((ALERTS / "compromised-endpoint" / "ocsf-malware-finding.json")
                         .read_text())  # fmt: skip
    httpx.post(f"{lab.url}/api/_lab/reset", headers={"Authorization": f"Bearer {lab.token}"})
    [alert] = service.post(payload).json()["alerts"]
    assert alert["outcome"] == "started" and alert["runbook"] == "compromised-endpoint", alert
    wid = alert["workflow_id"]
    paused = _wait_for(service, wid, "paused")
    assert paused.paused_step == "isolate"
    api = service.intake.replace("/api/alerts", f"/api/runs/{paused.run_id}")
    assert httpx.get(api).status_code == 401  # the runs API wants the token too
    shown = httpx.get(api, headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert shown["run"]["status"] == "paused" and shown["trigger"]["format"] == "ocsf"
    assert [w["step_id"] for w in shown["waiting"]] == ["isolate"]
    hosts = httpx.get(f"{lab.url}/api/edr/hosts/wks-0042",
                      headers={"Authorization": f"Bearer {lab.token}"}).json()  # fmt: skip
    assert hosts.get("isolated") is not True  # nothing ran past the gate
    # An approver without the gate's role is refused: nothing runs, the run still waits.
    _signal(service, wid, Decision("isolate", "approved", by="eve", role="L1"))
    deadline = time.monotonic() + RUN_BOUND
    while (refused := _state(service, wid)) is None or refused.reason is None:
        assert time.monotonic() < deadline, refused
        time.sleep(0.1)  # the workflow's answer to the decision is the marker
    assert refused.status == "paused" and refused.paused_step == "isolate"
    assert "IR-lead" in refused.reason, refused.reason
    _signal(service, wid, Decision("isolate", "approved", by="dana", role="IR-lead"))
    deadline = time.monotonic() + RUN_BOUND
    while True:  # approve each later gate as a lead would
        summary = _state(service, wid)
        if summary is not None and summary.status == "paused" and summary.paused_step != "isolate":
            _signal(service, wid, Decision(summary.paused_step or "", "approved", by="dana",
                                           role="IR-lead"))  # fmt: skip
        if summary is not None and summary.status not in ("paused", "running"):
            break
        assert time.monotonic() < deadline, summary
        time.sleep(0.2)
    events = read_events(service.runs_dir / summary.run_id)
    approvals = [e for e in events if e["event"] == "approval"]
    assert approvals[0]["step_id"] == "isolate" and approvals[0]["by"] == "dana"
    figures = httpx.get(service.intake.replace("/api/alerts", "/metrics")).text
    waits = re.search(r"runbook_approval_wait_seconds_count ([0-9.]+)", figures)
    assert waits is not None and float(waits.group(1)) >= len(approvals)
    isolated = [e for e in events if e["event"] == "step_finished" and e["step_id"] == "isolate"]
    assert isolated[-1]["status"] == "succeeded"


CRASH_BOOK = """\
---
name: Crash test
service: test
objective: Be killed mid-step
roles:
  L2: decides after a lost worker
trigger:
  when: a crash-test alert
  match:
    source: crash-test
  dedup_key: [id]
---
# Crash test

## Steps

1. Start, then wait to be killed.

   ```bash {{id=long}}
   touch {marker}
   sleep 600
   ```

2. Reached once a person skipped the cut-off step.

   ```bash {{id=after}}
   echo after-the-skip
   ```
"""


IDEMPOTENT_BOOK = """\
---
name: Idempotent crash test
service: test
objective: Be killed mid-step, and go on by itself
trigger:
  when: a crash-idem alert
  match:
    source: crash-idem
  dedup_key: [id]
---
# Idempotent crash test

## Steps

1. Start; the first time, wait to be killed.

   ```bash {{id=long idempotent=true}}
   if [ -e {marker} ]; then echo "again"; else touch {marker}; sleep 600; fi
   ```

2. Reached after the service came back.

   ```bash {{id=after}}
   echo after
   ```
"""


def test_a_service_killed_mid_step_loses_nothing_and_never_reruns_the_step(
    service: Service, tmp_path: Path, _journal_key_path: Path
) -> None:
    books = tmp_path / "books"
    books.mkdir()
    marker = tmp_path / "in-the-step"
    (books / "crash.md").write_text(CRASH_BOOK.format(marker=marker))
    idem_marker = tmp_path / "in-the-idempotent-step"
    (books / "idem.md").write_text(IDEMPOTENT_BOOK.format(marker=idem_marker))
    env = {**os.environ, "RUNBOOK_SERVICE_TOKEN": TOKEN, KEY_ENV: str(_journal_key_path)}
    roles = tmp_path / "roles.yaml"
    roles.write_text("L2: [carol]\n")
    tokens = {}
    for user in ("carol", "dave"):  # dave holds none of the runbook's roles
        state = ["--state-dir", str(tmp_path / "state")]
        subprocess.run([RUNBOOK, "users", "add", user, "--password-stdin", *state],
                       input="a-long-enough-password\n", text=True, check=True)  # fmt: skip
        made = subprocess.run([RUNBOOK, "users", "token", user, *state], capture_output=True,
                              text=True, check=True)  # fmt: skip
        tokens[user] = made.stdout.strip()
    # Its own queue on the module's Temporal: only its own worker runs its runs.
    args = ["--temporal", service.temporal, "--task-queue", "crash-test", "--runbooks",
            str(books), "--heartbeat-timeout", "2", "--roles", str(roles)]  # fmt: skip
    first = _serve(args, tmp_path, env)
    alert = {"source": "crash-test", "id": "c-1", "title": "crash the service"}
    [answer] = _post_generic(first, alert)
    assert answer["outcome"] == "started", answer
    [idem] = _post_generic(first, {"source": "crash-idem", "id": "i-1", "title": "again"})
    deadline = time.monotonic() + RUN_BOUND
    while not (marker.exists() and idem_marker.exists()):
        assert first.process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)  # waiting for the step's own marker
    first.process.kill()  # kill -9, mid-step
    first.process.wait()
    second = _serve(args, tmp_path, env)
    try:
        wid = answer["workflow_id"]
        summary = _wait_for(second, wid, "interrupted")
        events = read_events(second.runs_dir / summary.run_id)
        started = [e["step_id"] for e in events if e["event"] == "step_started"]
        assert started == ["long"]  # run once, never again on its own
        assert not [e for e in events if e["event"] == "step_finished"]
        # The alert was accepted before the kill: re-sent, it is the same run.
        [again] = _post_generic(second, alert)
        assert again["outcome"] == "duplicate" and again["workflow_id"] == wid
        # It waits for a person once the service has looked at it: the step is not idempotent.
        deadline = time.monotonic() + RUN_BOUND
        while "not marked idempotent" not in ((_state(second, wid) or summary).reason or ""):
            assert time.monotonic() < deadline, _state(second, wid)
            time.sleep(0.1)  # the workflow's own answer is the marker
        # A person who checked by hand what the cut-off step did skips it, with their own token.
        actions = second.intake.replace("/alerts", f"/runs/{summary.run_id}/actions")

        def act(user: str, action: str) -> httpx.Response:
            body = {"action": action, "comment": "checked the host by hand"}
            auth = {"Authorization": f"Bearer {tokens[user]}"}
            return httpx.post(actions, json=body, headers=auth, timeout=60)

        refused = act("dave", "skip")
        assert refused.status_code == 403 and "L2" in refused.json()["error"], refused.text
        skipped = subprocess.run(
            [RUNBOOK, "resume", summary.run_id, "--server", actions.split("/api/")[0], "--skip",
             "--comment", "checked the host by hand"],
            env={**os.environ, "RUNBOOK_TOKEN": tokens["carol"]}, capture_output=True, text=True,
        )  # fmt: skip
        assert skipped.returncode == 0, skipped.stdout + skipped.stderr
        # The step marked idempotent ran again by itself, and the run went on to its end.
        again_run = _result(second, idem["workflow_id"])
        assert again_run.status == "succeeded", again_run
        idem_events = read_events(second.runs_dir / again_run.run_id)
        assert [e["step_id"] for e in idem_events if e["event"] == "step_started"] == [
            "long", "long", "after"]  # fmt: skip
        assert any("resumed by itself" in e.get("text", "") for e in idem_events)
        ended = _result(second, wid)
        assert ended.status == "succeeded", ended
        events = read_events(second.runs_dir / summary.run_id)
        [note] = [e for e in events if e["event"] == "note" and "skipped by" in e["text"]]
        assert (note["by"], note["role"], note["auth"]) == ("carol", "L2", "token")
        [long] = [e for e in events if e["event"] == "step_finished" and e["step_id"] == "long"]
        assert long["status"] == "skipped" and "skipped by carol" in long["reason"]
        assert [e["step_id"] for e in events if e["event"] == "step_started"] == ["long", "after"]
        assert any("after-the-skip" in str(e.get("text", "")) for e in events)
        assert act("carol", "resume").status_code == 409  # it ended: nothing to resume
    finally:
        _stop(second)


def _post_generic(service: Service, alert: dict[str, str]) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answer = httpx.post(service.intake + "?format=generic", json=alert, headers=headers, timeout=60)
    assert answer.status_code == 202, answer.text
    return list(answer.json()["alerts"])


def _signal_name(service: Service, workflow_id: str, name: str) -> None:
    async def send() -> None:
        from temporalio.client import Client

        client = await Client.connect(service.temporal)
        await client.get_workflow_handle(workflow_id).signal(name)

    asyncio.run(send())


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("the service's process hygiene is Linux's")


LIMITED_BOOK = """\
---
name: One containment per host
service: test
objective: Hold a host while a person decides
concurrency:
  target: host
  per_target: 1
trigger:
  when: a limit-test alert
  match:
    source: limit-test
  dedup_key: [id]
inputs:
  host:
    type: string
    from: entities.hosts[0]
    required: true
roles:
  IR-lead: approves
---
# One containment per host

## Steps

1. Look at the host.

   ```bash {id=look role=IR-lead}
   echo "looking at $HOST"
   ```

2. Contain it.

   ```bash {id=contain approve=IR-lead role=IR-lead}
   echo "contained $HOST"
   ```
"""


def _api(service: Service, path: str, method: str = "GET", **kw: Any) -> httpx.Response:
    url = service.intake.replace("/api/alerts", path)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return httpx.request(method, url, headers=headers, timeout=60, **kw)


def _queued(service: Service) -> dict[str, Any]:
    [queue] = [q for q in _api(service, "/api/queues").json()["queues"]
               if q["key"].endswith(":host=h-1")]  # fmt: skip
    return dict(queue)


SLOW_BOOK = """\
---
name: Slow
service: test
objective: Be cancelled mid-step
trigger:
  when: a slow-test alert
  match:
    source: slow-test
  dedup_key: [id]
---
# Slow

## Steps

1. Take long.

   ```bash {{id=long}}
   touch {marker}
   sleep 600
   ```

2. Never reached.

   ```bash {{id=after}}
   echo after
   ```
"""


@pytest.fixture(scope="module")
def own_queue(
    service: Service, tmp_path_factory: pytest.TempPathFactory, _journal_key_path: Path
) -> Iterator[Service]:
    """A second `runbook serve` on the module's Temporal, with its own queue and runbooks."""
    root = tmp_path_factory.mktemp("own-queue")
    books = root / "books"
    books.mkdir()
    (books / "limited.md").write_text(LIMITED_BOOK)
    # `check` fails it: served, its alerts would start runs that are refused at once.
    (books / "broken.md").write_text(LIMITED_BOOK.replace("$HOST", "$host").replace(
        "limit-test", "broken-test"))  # fmt: skip
    (books / "slow.md").write_text(SLOW_BOOK.format(marker=root / "in-the-step"))
    env = {**os.environ, "RUNBOOK_SERVICE_TOKEN": TOKEN, KEY_ENV: str(_journal_key_path)}
    args = ["--temporal", service.temporal, "--task-queue", "limit-test", "--runbooks",
            str(books)]  # fmt: skip
    started = _serve(args, root, env)
    yield started
    _stop(started)


def test_a_per_host_limit_queues_runs_by_severity_and_cancel_frees_the_place(
    own_queue: Service,
) -> None:
    limited = own_queue
    assert any("skipped" in line and "broken.md" in line and "RB062" in line
               for line in limited.said), limited.said  # fmt: skip

    def alert(n: int, severity: str, host: str = "h-1") -> dict[str, Any]:
        sent = {"source": "limit-test", "id": f"l-{n}", "title": f"alert {n}",
                "severity": severity, "host": host}  # fmt: skip
        [answer] = _post_generic(limited, sent)
        assert answer["outcome"] == "started", answer
        return answer

    first = alert(1, "high")
    holder = _wait_for(limited, first["workflow_id"], "paused")  # holds h-1 at its gate
    # Its alert resolves while it waits: the journal says so, the run still waits for a person.
    resolved = {"source": "limit-test", "id": "l-1", "title": "alert 1", "status": "resolved",
                "host": "h-1"}  # fmt: skip
    assert _post_generic(limited, resolved)[0]["outcome"] == "resolved"
    deadline = time.monotonic() + RUN_BOUND
    while not any("resolved at its source" in e.get("text", "")
                  for e in read_events(limited.runs_dir / holder.run_id)):  # fmt: skip
        assert time.monotonic() < deadline
        time.sleep(0.1)  # the journal's note is the marker
    assert _wait_for(limited, first["workflow_id"], "paused").paused_step == "contain"
    later, urgent = alert(2, "high"), alert(3, "critical")
    other = alert(4, "low", host="h-2")  # another host is not held up
    assert _wait_for(limited, other["workflow_id"], "paused").paused_step == "contain"
    for queued in (later, urgent):
        state = _wait_for(limited, queued["workflow_id"], "queued")
        assert "host=h-1" in (state.reason or "")
    queue = _queued(limited)
    assert queue["running"] == [holder.run_id]
    urgent_run = _state(limited, urgent["workflow_id"])
    later_run = _state(limited, later["workflow_id"])
    assert urgent_run is not None and later_run is not None
    # The critical alert came in last and waits first.
    assert [w["run_id"] for w in queue["waiting"]] == [urgent_run.run_id, later_run.run_id]
    assert not (limited.runs_dir / urgent_run.run_id).exists()  # nothing ran for it yet

    cancelled = _api(limited, f"/api/runs/{holder.run_id}/cancel", "POST")
    assert cancelled.status_code == 202, cancelled.text
    assert _result(limited, first["workflow_id"]).status == "cancelled"
    events = read_events(limited.runs_dir / holder.run_id)
    assert events[-1]["event"] == "run_finished" and events[-1]["status"] == "cancelled"
    assert not [e for e in events if e.get("step_id") == "contain"
                and e["event"] == "step_finished" and e["status"] == "succeeded"]  # fmt: skip
    # The place went to the critical run; the other still waits, now first in line.
    assert _wait_for(limited, urgent["workflow_id"], "paused").paused_step == "contain"
    assert [w["position"] for w in _queued(limited)["waiting"]] == [1]
    gone = _api(limited, f"/api/runs/{later_run.run_id}/cancel", "POST")
    assert gone.status_code == 202, gone.text
    never = _result(limited, later["workflow_id"])
    assert never.status == "not_started" and "queued" in (never.reason or "")
    for wid in (urgent["workflow_id"], other["workflow_id"]):
        _signal_name(limited, wid, "abort")
        assert _result(limited, wid).status == "cancelled"

    by_hand = _api(limited, "/api/runs", "POST",
                   json={"runbook": "limited", "inputs": {"host": "h-3"}})  # fmt: skip
    assert by_hand.status_code == 202, by_hand.text
    paused = _wait_for(limited, by_hand.json()["workflow_id"], "paused")
    started = read_events(limited.runs_dir / paused.run_id)[0]
    assert started["operator"] == "service-api" and not started.get("trigger")
    assert _api(limited, f"/api/runs/{paused.run_id}/cancel", "POST").status_code == 202
    assert _result(limited, by_hand.json()["workflow_id"]).status == "cancelled"


def test_a_cancel_mid_step_interrupts_the_step_and_ends_the_run_cancelled(
    own_queue: Service,
) -> None:
    marker = own_queue.state_dir.parent / "in-the-step"
    [answer] = _post_generic(own_queue, {"source": "slow-test", "id": "s-1", "title": "slow"})
    deadline = time.monotonic() + RUN_BOUND
    while not marker.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)  # waiting for the step's own marker
    run_id = _wait_for(own_queue, answer["workflow_id"], "running").run_id
    listed = _api(own_queue, "/api/runs").json()["runs"]
    assert [r["status"] for r in listed if r["run_id"] == run_id] == ["running"]
    assert _api(own_queue, f"/api/runs/{run_id}/cancel", "POST").status_code == 202
    ended = _result(own_queue, answer["workflow_id"])
    assert ended.status == "cancelled", ended
    events = read_events(own_queue.runs_dir / run_id)
    long = [e for e in events if e["event"] == "step_finished" and e["step_id"] == "long"]
    assert long and long[-1]["status"] == "cancelled"
    assert not [e for e in events if e.get("step_id") == "after"]
    # The engine ends the run; the workflow then journals who asked (the engine cannot know).
    finished, note = events[-2:]
    assert finished["event"] == "run_finished" and finished["status"] == "cancelled"
    assert note["event"] == "note" and note["by"] == "service-api" and "mid-step" in note["text"]
    assert verify_run(own_queue.runs_dir / run_id).ok


def test_a_run_started_by_hand_through_the_api_checks_its_inputs_first(service: Service) -> None:
    refused = _api(service, "/api/runs", "POST", json={"runbook": "compromised-endpoint",
                   "inputs": {"host_id": "BAD HOST", "hots": 1}})  # fmt: skip
    assert refused.status_code == 422
    assert "hots" in refused.json()["error"] and "host_id" in refused.json()["error"]
    secret = _api(service, "/api/runs", "POST", json={"runbook": "compromised-endpoint",
                  "inputs": {"api_token": "x"}})  # fmt: skip
    assert secret.status_code == 422 and "secret" in secret.json()["error"]
    unknown = _api(service, "/api/runs", "POST", json={"runbook": "no-such"})
    assert unknown.status_code == 404


def test_sigterm_drains_a_running_attempt_to_its_end_before_the_service_stops(
    service: Service, tmp_path: Path, _journal_key_path: Path
) -> None:
    books = tmp_path / "books"
    books.mkdir()
    marker = tmp_path / "in-the-step"
    draining = SLOW_BOOK.replace("slow-test", "drain-test").replace("sleep 600", "sleep 2")
    (books / "drain.md").write_text(draining.format(marker=marker))
    env = {**os.environ, "RUNBOOK_SERVICE_TOKEN": TOKEN, KEY_ENV: str(_journal_key_path)}
    args = ["--temporal", service.temporal, "--task-queue", "drain-test", "--runbooks",
            str(books)]  # fmt: skip
    draining_service = _serve(args, tmp_path, env)
    [_answer] = _post_generic(draining_service, {"source": "drain-test", "id": "d-1", "title": "d"})
    deadline = time.monotonic() + RUN_BOUND
    while not marker.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)  # waiting for the step's own marker
    draining_service.process.send_signal(signal.SIGTERM)  # mid-step
    rest = draining_service.process.communicate(timeout=RUN_BOUND)[0]
    assert draining_service.process.returncode == 0, rest
    assert "stopping" in rest and "stopped" in rest
    [run_dir] = draining_service.runs_dir.iterdir()
    events = read_events(run_dir)
    # The step that was running finished, and so did the attempt; nothing was cut off.
    finished = {e["step_id"]: e["status"] for e in events if e["event"] == "step_finished"}
    assert finished == {"long": "succeeded", "after": "succeeded"}
    assert events[-1]["event"] == "run_finished" and events[-1]["status"] == "succeeded"


def test_every_history_the_service_wrote_replays_without_nondeterminism(service: Service) -> None:
    """Temporal's own check of workflow code: every history this module's runs left (gates,
    decisions, queues, cancels, a lost worker, a skipped cut-off step) is replayed against the
    workflow code as it is now. A workflow that does not make the same commands again would,
    after a worker restart, be stuck retrying its task forever. Last in the module: it reads
    what the tests above made."""
    count, failures = replay_all(service.temporal)
    if count == 0:
        pytest.skip("run alone: the module's other tests make the histories it replays")
    assert failures == {}, failures


def replay_all(temporal: str) -> tuple[int, dict[str, str]]:
    """How many workflows a Temporal server holds, and those whose history does not replay
    against the current workflow code (id -> why)."""

    async def replay() -> tuple[int, dict[str, str]]:
        from temporalio.client import Client
        from temporalio.worker import Replayer

        from runner.service.queues import RunQueue
        from runner.service.workflow import RunbookRun

        client = await Client.connect(temporal)
        count = 0
        async for _ in client.list_workflows():
            count += 1
        results = await Replayer(workflows=[RunbookRun, RunQueue]).replay_workflows(
            client.list_workflows().map_histories(), raise_on_replay_failure=False
        )
        return count, {k: repr(v) for k, v in results.replay_failures.items()}

    # In a thread of its own: a module that drives a browser has an event loop running here.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, replay()).result()
