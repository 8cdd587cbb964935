"""The console in a real browser (Debian's chromium, through Playwright) against a real
`runbook serve`: its embedded Temporal, real HTTP on 127.0.0.1, real users in SQLite. One
service for the module; its runbook is small (bash) and its gated step waits for a marker the
test makes, so "the output arrives live" is seen between two lines of one step."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from runner_helpers import RUNBOOK, read_events
from test_browser import browser  # noqa: F401 (the module's Chromium)
from test_service import RUN_BOUND, TOKEN, Service, _serve, _stop, replay_all

from runner.runs.key import KEY_ENV

pytest.importorskip("temporalio")
pytest.importorskip("argon2")
pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "console-test-password"
DOCS = "http://127.0.0.1:9/site"  # the docs site the console links runbooks to (never fetched)
XSS = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
BOOK = """\
---
name: Console test
service: test
objective: Be approved in the console
time_limit: 1h
roles:
  IR-lead: approves containment
trigger:
  when: a console-test alert
  match:
    source: console-test
  dedup_key: [id]
---
# Console test

## Steps

1. Look at the host.

   ```bash {{id=look}}
   echo looked-at-host
   ```

2. Contain it.

   ```bash {{id=contain approve=IR-lead}}
   echo first-line
   while [ ! -e {marker} ]; do sleep 0.05; done
   echo second-line
   ```
"""


QUESTION_BOOK = """\
---
name: Question test
service: test
objective: Be answered through the service
time_limit: 1h
roles:
  L1: answers
trigger:
  when: a question-test alert
  match:
    source: question-test
  dedup_key: [id]
---
# Question test

## Steps

1. Ask the user.

   Role: L1

   ```decision {id=legit outputs=legit}
   Did the user confirm the sign-in was theirs?
   ```

2. Contain when it was not.

   ```bash {id=contain when="legit == 'no'" role=L1}
   echo contained-after-answer
   ```
"""


QUORUM_BOOK = """\
---
name: Quorum test
service: test
objective: Need two people to approve
time_limit: 1h
roles:
  IR-lead: approves containment
trigger:
  when: a quorum-test alert
  match:
    source: quorum-test
  dedup_key: [id]
---
# Quorum test

## Steps

1. Wipe the host.

   ```bash {id=wipe approve=IR-lead*2}
   echo wiped-after-two
   ```
"""

#: Seconds a gate of ESCALATE_BOOK waits, for IR-lead, then for L1 once it escalated. The test
#: waits on the journal's events, never for this long; it only needs the second wait to outlast
#: one page reload.
ESCALATE_AFTER = 3
ESCALATE_BOOK = f"""\
---
name: Escalation test
service: test
objective: Pass an unanswered gate on, then deny it
time_limit: 1h
roles:
  IR-lead: approves first
  L1: approves once it escalated
trigger:
  when: an escalate-test alert
  match:
    source: escalate-test
  dedup_key: [id]
---
# Escalation test

## Steps

1. Disable the account.

   ```bash {{id=disable approve=IR-lead approval_timeout={ESCALATE_AFTER}s escalate=L1}}
   echo disabled-account
   ```
"""


@dataclass
class Console:
    service: Service
    base: str  # http://127.0.0.1:PORT
    marker: Path
    tokens: dict[str, str]
    runs: dict[str, tuple[str, str]]  # alert id -> (workflow id, run id)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, _journal_key_path: Path) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("console")
    books = root / "books"
    books.mkdir()
    marker = root / "go"
    (books / "console.md").write_text(BOOK.format(marker=marker))
    (books / "question.md").write_text(QUESTION_BOOK)
    (books / "quorum.md").write_text(QUORUM_BOOK)
    (books / "escalate.md").write_text(ESCALATE_BOOK)
    roles = root / "roles.yaml"
    roles.write_text("IR-lead: [group:ir]\nL1: [eve]\n")
    state = ["--state-dir", str(root / "state")]
    tokens = {}
    users = (("alice", ["--group", "ir"]), ("bob", ["--group", "ir"]), ("eve", []),
             ("frank", []))  # fmt: skip
    for name, groups in users:
        added = subprocess.run(
            [RUNBOOK, "users", "add", name, *groups, "--password-stdin", *state],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
        )
        assert added.returncode == 0, added.stderr
        made = subprocess.run(
            [RUNBOOK, "users", "token", name, *state], capture_output=True, text=True, check=True
        )
        tokens[name] = made.stdout.strip()
    env = {**os.environ, "RUNBOOK_SERVICE_TOKEN": TOKEN, KEY_ENV: str(_journal_key_path)}
    service = _serve(["--runbooks", str(books), "--roles", str(roles), "--docs-url", DOCS], root,
                     env)  # fmt: skip
    base = service.intake.removesuffix("/api/alerts")
    runs = {}
    for alert_id in ("first", "second"):
        answer = httpx.post(
            f"{service.intake}?format=generic",
            timeout=60,
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={"source": "console-test", "id": alert_id, "title": XSS},
        )
        [taken] = answer.json()["alerts"]
        assert taken["outcome"] == "started", taken
        runs[alert_id] = (taken["workflow_id"], _paused(service, taken["workflow_id"]))
    try:
        yield Console(service, base, marker, tokens, runs)
    finally:
        _stop(service)


def _paused(service: Service, workflow_id: str) -> str:
    """The run of this workflow, once its journal says it paused (read from the journal: the
    browser's event loop rules out a Temporal client here)."""
    deadline = time.monotonic() + RUN_BOUND
    while True:
        for run_dir in service.runs_dir.glob("*") if service.runs_dir.exists() else []:
            events = read_events(run_dir)
            ours = bool(events) and (events[0].get("trigger") or {}).get("workflow_id")
            if ours == workflow_id and any(e["event"] == "run_paused" for e in events):
                return run_dir.name
        assert time.monotonic() < deadline, f"{workflow_id} never paused"
        time.sleep(0.1)  # the journal's run_paused is the marker


def _sign_in(
    chromium: Any, console: Console, user: str, start: str = "/console/inbox", **options: Any
) -> Any:
    page = chromium.new_page(**{"viewport": {"width": 1000, "height": 1400}, **options})
    page.goto(console.base + start)
    assert "/console/login" in page.url  # not signed in: sent to the sign-in page
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")  # the keyboard is enough
    page.wait_for_url(re.compile("^" + re.escape(console.base + start) + "$"))
    return page


def _events(console: Console, run_id: str) -> list[dict[str, Any]]:
    return read_events(console.service.runs_dir / run_id)


def test_an_approver_signs_in_approves_and_watches_the_step_run(
    browser: Any,  # noqa: F811
    console: Console,
) -> None:
    from playwright.sync_api import expect

    _, run_id = console.runs["first"]
    page = _sign_in(browser, console, "alice")
    gate = page.locator(f"a.gate-link[href='/console/runs/{run_id}/gates/contain']")
    expect(gate).to_contain_text("step 2 Contain it.")
    gate.click()
    # The approval page: the exact code, the evidence with its output, the alert.
    expect(page.locator("#gate-code")).to_contain_text("echo first-line")
    expect(page.locator(".evidence")).to_contain_text("looked-at-host")
    expect(page.locator("dd.alert-title")).to_have_text(XSS)
    page.fill("textarea[name=comment]", "host confirmed compromised")
    page.click("button.approve")
    page.wait_for_url(re.compile(f"/console/runs/{run_id}$"))
    step = page.locator("article.step[data-key=':contain']")
    # Live: the first line shows while the step still runs (it waits for the marker).
    expect(step.locator("pre.output")).to_contain_text("first-line", timeout=RUN_BOUND * 1000)
    expect(step.locator(".status")).to_have_text("running")
    assert "second-line" not in step.locator("pre.output").inner_text()
    console.marker.touch()
    expect(step.locator("pre.output")).to_contain_text("second-line", timeout=RUN_BOUND * 1000)
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=RUN_BOUND * 1000)
    [approval] = [e for e in _events(console, run_id) if e["event"] == "approval"]
    assert (approval["by"], approval["role"], approval["auth"]) == ("alice", "IR-lead", "password")
    assert approval["comment"] == "host confirmed compromised"
    # Bound to what the page showed: the digest of the code the gate asked about.
    [asked] = [e for e in _events(console, run_id) if e["event"] == "approval_requested"]
    assert approval["code_sha256"] == hashlib.sha256(asked["code"].encode()).hexdigest()
    page.close()


def test_a_user_without_the_role_is_refused_and_the_refusal_journaled(
    browser: Any,  # noqa: F811
    console: Console,
) -> None:
    _, run_id = console.runs["second"]
    page = _sign_in(browser, console, "eve", f"/console/runs/{run_id}/gates/contain")
    answer = None

    def seen(response: Any) -> None:
        nonlocal answer
        if response.request.method == "POST":
            answer = response

    page.on("response", seen)
    page.click("button.approve")
    page.wait_for_load_state()
    assert answer is not None and answer.status == 403
    assert "eve does not hold role IR-lead" in page.locator(".error").inner_text()
    page.close()
    api = f"{console.base}/api/runs/{run_id}/decisions"
    body = {"step": "contain", "decision": "approved"}
    assert httpx.post(api, json=body).status_code == 401  # no token
    as_eve = httpx.post(
        api, json=body, headers={"Authorization": f"Bearer {console.tokens['eve']}"}
    )
    assert as_eve.status_code == 403, as_eve.text
    refused = [e for e in _events(console, run_id) if e["event"] == "approval_refused"]
    assert [(e["by"], e["role"]) for e in refused] == [("eve", "IR-lead")] * 2
    assert not [e for e in _events(console, run_id) if e["event"] == "approval"]
    # On the service's own machine, a typed name is no identity: the local CLI refuses.
    for local in (["approve", run_id, "contain", "--by", "alice"], ["resume", run_id, "--yes"]):
        typed = subprocess.run([RUNBOOK, *local, "--runs-dir", str(console.service.runs_dir)],
                               capture_output=True, text=True)  # fmt: skip
        assert typed.returncode == 2 and "started by the service" in typed.stderr, typed.stderr
    assert not [e for e in _events(console, run_id) if e["event"] == "approval"]
    # The CLI, with the approver's token, reads the gate as the page shows it, then decides.
    console.marker.touch()
    env = {**os.environ, "RUNBOOK_TOKEN": console.tokens["alice"]}
    shown = subprocess.run([RUNBOOK, "pending", run_id, "contain", "--server", console.base],
                           env=env, capture_output=True, text=True)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "needs IR-lead" in shown.stdout and "echo first-line" in shown.stdout
    assert "looked-at-host" in shown.stdout  # the evidence
    assert "\x1b" not in shown.stdout and "<script>" in shown.stdout  # the alert, as text
    cli = subprocess.run(
        [
            RUNBOOK,
            "approve",
            run_id,
            "contain",
            "--server",
            console.base,
            "--comment",
            "from the CLI",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0, cli.stderr
    no_token = subprocess.run(
        [RUNBOOK, "approve", run_id, "contain", "--server", console.base],
        env={k: v for k, v in env.items() if k != "RUNBOOK_TOKEN"},
        capture_output=True,
        text=True,
    )
    assert no_token.returncode == 2 and "RUNBOOK_TOKEN" in no_token.stderr
    deadline = time.monotonic() + RUN_BOUND
    while not (done := [e for e in _events(console, run_id) if e["event"] == "run_finished"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)  # the journal's end is the marker
    [approval] = [e for e in _events(console, run_id) if e["event"] == "approval"]
    assert (approval["by"], approval["auth"]) == ("alice", "token")
    assert done[0]["status"] == "succeeded"


def _session(console: Console, user: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=console.base, timeout=60)
    login = client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
    assert csrf is not None
    signed = client.post(
        "/console/login", data={"csrf": csrf[1], "user": user, "password": PASSWORD}
    )
    assert signed.status_code == 303, signed.text
    inbox = client.get("/console/inbox")
    mine = re.search(r'name="csrf" value="([^"]+)"', inbox.text)
    assert mine is not None
    return client, mine[1]


def test_a_post_without_the_csrf_token_is_refused(console: Console) -> None:
    _, run_id = console.runs["second"]
    client, csrf = _session(console, "alice")
    cookie = client.cookies.jar
    assert any(c.name == "rb_session" and c.has_nonstandard_attr("HttpOnly") for c in cookie)
    url = f"/console/runs/{run_id}/gates/contain"
    for data in ({"decision": "approve"}, {"decision": "approve", "csrf": csrf + "x"}):
        assert client.post(url, data=data).status_code == 403
    assert client.post("/console/logout", data={}).status_code == 403
    # The sign-in form too: a login without its token is refused before the password is read.
    bare = httpx.post(f"{console.base}/console/login", data={"user": "alice", "password": PASSWORD})
    assert bare.status_code == 403
    signed_out = client.post("/console/logout", data={"csrf": csrf})
    assert signed_out.status_code == 303
    assert client.get("/console/inbox").status_code == 303  # the session ended


def test_an_unrouted_alert_is_listed_with_its_reason_and_can_be_routed_again(
    console: Console,
) -> None:
    alert = {"source": "nobody-routes-this", "id": "lost-1", "title": "a lost alert"}
    posted = httpx.post(
        f"{console.service.intake}?format=generic",
        json=alert,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )
    assert posted.json()["alerts"][0]["outcome"] == "unrouted"
    client, csrf = _session(console, "eve")
    listed = client.get("/console/alerts").text
    assert "a lost alert" in listed and "no runbook" in listed
    index = re.search(r'action="/console/alerts/(\d+)/route"', listed)
    assert index is not None
    again = client.post(f"/console/alerts/{index[1]}/route", data={"csrf": csrf})
    assert again.status_code == 303 and "said=unrouted" in again.headers["location"]
    kept = (console.service.state_dir / "unrouted.jsonl").read_text()
    # Routed again through the intake's own writer: still unrouted, so kept a second time.
    assert len([line for line in kept.splitlines() if '"lost-1"' in line]) == 2


def test_failed_sign_ins_are_rate_limited(console: Console) -> None:
    client = httpx.Client(base_url=console.base, timeout=60)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text)
    assert csrf is not None
    tries = [
        client.post(
            "/console/login", data={"csrf": csrf[1], "user": "frank", "password": "wrong"}
        ).status_code
        for _ in range(5)
    ]
    assert tries == [401] * 5
    right = client.post(
        "/console/login", data={"csrf": csrf[1], "user": "frank", "password": PASSWORD}
    )
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0
    # Another user from the same address is not locked out by frank's failures.
    assert _session(console, "alice")[1]


def test_an_alert_title_that_is_a_script_shows_as_text(
    browser: Any,  # noqa: F811
    console: Console,
) -> None:
    from playwright.sync_api import expect

    _, run_id = console.runs["first"]
    again = httpx.post(f"{console.service.intake}?format=generic", timeout=60,
                       headers={"Authorization": f"Bearer {TOKEN}"},
                       json={"source": "console-test", "id": "first", "title": XSS})  # fmt: skip
    assert again.json()["alerts"][0]["outcome"] == "duplicate"
    page = _sign_in(browser, console, "alice", "/console/alerts")
    # The same alert twice: it started the run, then was attached to it; both link to it.
    ours = page.locator("tr.alert", has=page.locator(f"a[href='/console/runs/{run_id}']"))
    expect(ours).to_have_count(2)
    expect(ours.nth(0)).to_contain_text("attached to a run")
    expect(ours.nth(1)).to_contain_text("started a run")
    expect(ours.nth(0).locator("td.alert-title")).to_have_text(XSS)
    # What the service keeps of alerts is its own: the folder 0700, the records 0600.
    state = console.service.state_dir
    assert state.stat().st_mode & 0o777 == 0o700
    modes = {p.name: p.stat().st_mode & 0o777 for p in state.glob("*.jsonl")}
    assert modes.get("alerts.jsonl") == 0o600 and set(modes.values()) == {0o600}, modes
    for path, where in (
        ("/console/runs", "td.alert-title"),
        (f"/console/runs/{run_id}", "strong.alert-title"),
    ):
        page.goto(console.base + path)
        expect(page.locator(where).first).to_have_text(XSS)
    book = _events(console, run_id)[0]["runbook"]["id"]
    link = page.locator("a.runbook-page").get_attribute("href")
    assert link == f"{DOCS}/runbooks/{book}/", link
    assert page.evaluate("window.pwned") is None  # nothing of it ran
    assert page.locator("script:not([src])").count() == 0
    page.close()


def test_the_approval_page_reads_on_a_phone_in_dark_mode(
    browser: Any,  # noqa: F811
    console: Console,
) -> None:
    _, run_id = console.runs["first"]
    page = _sign_in(browser, console, "alice", f"/console/runs/{run_id}",
                    viewport={"width": 375, "height": 740}, color_scheme="dark")  # fmt: skip
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 375, f"the page is {wide}px wide on a 375px phone"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(30, 33, 41)"  # the dark palette, from prefers-color-scheme
    page.close()


def test_a_decision_step_is_answered_through_the_service_by_a_user_with_its_role(
    console: Console,
) -> None:
    taken = httpx.post(
        f"{console.service.intake}?format=generic",
        timeout=60,
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={"source": "question-test", "id": "q-1", "title": "was it you?"},
    ).json()["alerts"][0]
    assert taken["outcome"] == "started", taken
    run_id = _paused(console.service, taken["workflow_id"])
    api = f"{console.base}/api/runs/{run_id}/answers"

    def send(user: str, value: str) -> httpx.Response:
        auth = {"Authorization": f"Bearer {console.tokens[user]}"}
        return httpx.post(api, json={"step": "legit", "answer": value}, headers=auth, timeout=60)

    assert httpx.post(api, json={"step": "legit", "answer": "no"}).status_code == 401
    refused = send("alice", "no")  # IR-lead, not L1
    assert refused.status_code == 403 and "L1" in refused.json()["error"]
    unfit = send("eve", "perhaps")
    assert unfit.status_code == 400 and "yes" in unfit.json()["error"]
    # The CLI answers through the service as the token's user.
    env = {**os.environ, "RUNBOOK_TOKEN": console.tokens["eve"]}
    cli = subprocess.run([RUNBOOK, "answer", run_id, "legit", "no", "--server", console.base],
                         env=env, capture_output=True, text=True)  # fmt: skip
    assert cli.returncode == 0 and "answered by eve" in cli.stdout, cli.stderr
    deadline = time.monotonic() + RUN_BOUND
    while (events := _events(console, run_id))[-1]["event"] != "run_finished":
        assert time.monotonic() < deadline
        time.sleep(0.1)  # the journal's run_finished is the marker
    [answered] = [e for e in events if e["event"] == "answer"]
    assert (answered["value"], answered["by"]) == ("no", "eve")
    assert events[-1]["status"] == "succeeded"
    assert any("contained-after-answer" in str(e.get("text", "")) for e in events)


def _alert(console: Console, source: str, alert_id: str, title: str = "an alert") -> str:
    """Post an alert; the run it started, once it paused."""
    taken = httpx.post(
        f"{console.service.intake}?format=generic",
        timeout=60,
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={"source": source, "id": alert_id, "title": title},
    ).json()["alerts"][0]
    assert taken["outcome"] == "started", taken
    return _paused(console.service, taken["workflow_id"])


def _until(console: Console, run_id: str, done: Any, what: str) -> list[dict[str, Any]]:
    """The run's journal once ``done(events)`` holds (the journal is the marker)."""
    deadline = time.monotonic() + RUN_BOUND
    while not done(events := _events(console, run_id)):
        assert time.monotonic() < deadline, f"{what} never happened: {events[-3:]}"
        time.sleep(0.05)
    return events


def _kinds(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == kind]


def test_a_quorum_of_two_needs_a_second_person_and_refuses_the_first_twice(
    browser: Any,  # noqa: F811
    console: Console,
) -> None:
    from playwright.sync_api import expect

    run_id = _alert(console, "quorum-test", "quorum-1")
    gate_url = f"/console/runs/{run_id}/gates/wipe"
    alice = _sign_in(browser, console, "alice", gate_url)
    expect(alice.locator("#quorum")).to_contain_text("Needs 2 distinct approvers: 0 so far")
    alice.click("button.approve")
    alice.wait_for_url(re.compile(f"/console/runs/{run_id}$"))
    # One approval of two: the gate asks again, and the run waits for the second person.
    _until(console, run_id, lambda ev: len(_kinds(ev, "run_paused")) == 2, "the second pause")
    alice.goto(console.base + gate_url)
    expect(alice.locator("#quorum")).to_contain_text("1 so far (alice)")
    answers: list[int] = []
    alice.on("response", lambda r: answers.append(r.status) if r.request.method == "POST" else 0)
    alice.click("button.approve")  # the same person's second click
    alice.wait_for_load_state()
    assert answers == [403]
    expect(alice.locator(".error")).to_contain_text("alice already approved step 1")
    alice.goto(console.base + "/console/inbox")  # hers is given: it is not in her inbox now
    expect(alice.locator(f"a[href='{gate_url}']")).to_have_count(0)
    alice.close()
    bob = _sign_in(browser, console, "bob", "/console/inbox")
    bob.click(f"a[href='{gate_url}']")
    expect(bob.locator("#quorum")).to_contain_text("1 so far (alice)")
    bob.click("button.approve")
    bob.wait_for_url(re.compile(f"/console/runs/{run_id}$"))
    expect(bob.locator("#run-status")).to_have_text("succeeded", timeout=RUN_BOUND * 1000)
    bob.close()
    events = _events(console, run_id)
    approvals = [(e["by"], e["count"], e["needed"]) for e in _kinds(events, "approval")]
    assert approvals == [("alice", 1, 2), ("bob", 2, 2)]
    [refused] = _kinds(events, "approval_refused")
    assert refused["by"] == "alice" and "already approved" in refused["reason"]
    assert any("wiped-after-two" in str(e.get("text", "")) for e in events)


def test_an_unanswered_gate_escalates_to_the_next_role_then_expires_denied(
    browser: Any,  # noqa: F811
    console: Console,
) -> None:
    from playwright.sync_api import expect

    eve = _sign_in(browser, console, "eve", "/console/inbox")  # L1: not hers yet
    run_id = _alert(console, "escalate-test", "escalate-1")
    gate = f"a.gate-link[href='/console/runs/{run_id}/gates/disable']"
    alice, _ = _session(console, "alice")
    assert f"/console/runs/{run_id}/gates/disable" in alice.get("/console/inbox").text
    events = _until(console, run_id, lambda ev: _kinds(ev, "approval_escalated"), "escalation")
    [escalated] = _kinds(events, "approval_escalated")
    assert (escalated["from_role"], escalated["role"]) == ("IR-lead", "L1")
    eve.reload()  # now it is hers, with when it is denied
    card = eve.locator("li.card", has=eve.locator(gate))
    expect(card).to_contain_text("escalated from IR-lead")
    expect(card.locator(".expiry")).to_contain_text("is denied at")
    assert f"/console/runs/{run_id}/gates/disable" not in alice.get("/console/inbox").text
    # Nobody answers: the gate is denied (fails closed), and the run ends without the step.
    events = _until(console, run_id, lambda ev: _kinds(ev, "run_finished"), "the run's end")
    assert _kinds(events, "approval_expired")
    [finished] = [e for e in _kinds(events, "step_finished") if e["status"] != "waiting_approval"]
    assert finished["step_id"] == "disable" and finished["status"] == "denied", finished
    assert not any("disabled-account" in str(e.get("text", "")) for e in events)
    eve.goto(console.base + f"/console/runs/{run_id}")
    expect(eve.locator("article.step[data-key=':disable'] .status")).to_have_text("denied")
    eve.close()


def test_a_person_cancels_a_waiting_run_from_its_page_as_themselves(
    browser: Any,  # noqa: F811
    console: Console,
) -> None:
    from playwright.sync_api import expect

    run_id = _alert(console, "console-test", "third")
    api = f"{console.base}/api/runs/{run_id}/actions"
    as_eve = httpx.post(api, json={"action": "cancel"}, timeout=60,
                        headers={"Authorization": f"Bearer {console.tokens['eve']}"})  # fmt: skip
    assert as_eve.status_code == 403 and "IR-lead" in as_eve.json()["error"]
    assert httpx.post(api, json={"action": "cancel"}, timeout=60).status_code == 401
    page = _sign_in(browser, console, "alice", f"/console/runs/{run_id}")
    expect(page.locator("#resume")).to_have_count(0)  # it waits at a gate: not interrupted
    page.fill("input[name=comment]", "false positive")
    page.click("#cancel")
    page.wait_for_url(re.compile(f"/console/runs/{run_id}$"))
    expect(page.locator("#run-status")).to_have_text("cancelled", timeout=RUN_BOUND * 1000)
    page.close()
    events = _events(console, run_id)
    [note] = [e for e in _kinds(events, "note") if e["text"].startswith("cancelled")]
    assert (note["by"], note["role"], note["auth"]) == ("alice", "IR-lead", "password")
    assert events[-1]["event"] == "run_finished" and events[-1]["status"] == "cancelled"


def test_a_question_is_answered_from_the_inbox(
    browser: Any,  # noqa: F811
    console: Console,
) -> None:
    from playwright.sync_api import expect

    run_id = _alert(console, "question-test", "q-browser")
    page = _sign_in(browser, console, "eve", "/console/inbox")
    link = page.locator(f"a.question-link[href='/console/runs/{run_id}/questions/legit']")
    expect(link).to_contain_text("Did the user confirm the sign-in was theirs?")
    link.click()
    page.click("button[value=no]")
    page.wait_for_url(re.compile(f"/console/runs/{run_id}$"))
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=RUN_BOUND * 1000)
    page.close()
    [answered] = _kinds(_events(console, run_id), "answer")
    assert (answered["value"], answered["by"]) == ("no", "eve")
    assert (answered["role"], answered["auth"], answered["source"]) == ("L1", "password", "service")


def test_the_console_s_workflows_replay_without_nondeterminism(console: Console) -> None:
    """Last in the module: the histories of a quorum, an escalation on a durable timer, a
    cancel from the page and answered questions replay against the current workflow code."""
    count, failures = replay_all(console.service.temporal)
    assert count >= 6, count
    assert failures == {}, failures
