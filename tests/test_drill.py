"""`runbook drill` as a team uses it: real processes, a real lab per drill, real kernels.

Every example runbook's standard drill passes from a copy of `runbooks/` alone (the done-when of
the drills issue); the EDR-outage drill exercises injected faults, a denied approval and
alternative procedures, and its report is read back; bad scenarios and non-loopback URLs are
refused with the file and line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import textwrap
from pathlib import Path

import httpx
import msgspec
import pytest
from runner_helpers import RUNBOOK, cli

from runner.drills.drill import stale_problems
from runner.drills.scenario import (
    Answer,
    Scenario,
    ScenarioError,
    ValidationProblem,
    load_scenario,
    parse_error_path,
    split_validation_error,
)
from runner.runs.journal import read_events

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.name for p in (REPO / "runbooks").glob("*.md"))
OUTAGE = "runbooks/drills/compromised-endpoint-edr-outage.yaml"


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding only what a fresh clone has for drills: the runbooks and their drills."""
    root = tmp_path_factory.mktemp("clone")
    shutil.copytree(REPO / "runbooks", root / "runbooks")
    return root


def _run_dir(root: Path, runbook_id: str) -> Path:
    runs = sorted((root / ".runbook" / "runs").glob(f"*-{runbook_id}-*"))
    assert runs, f"no run of {runbook_id} under {root}"
    return runs[-1]


@pytest.mark.slow
@pytest.mark.parametrize("runbook", EXAMPLES)
def test_every_example_runbook_passes_its_drill(clone: Path, runbook: str) -> None:
    result = cli(["drill", f"runbooks/{runbook}", "--yes"], clone, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    out = result.stdout
    assert "Drill expectations" in out
    assert "✓ run status — expected succeeded, got succeeded" in out
    assert "✗" not in out.split("Drill expectations", 1)[1]
    # The scenario's state assertions ran against the lab: each is listed as held.
    scenario = load_scenario(clone / "runbooks" / "drills" / runbook.replace(".md", ".yaml"))
    assert scenario.spec.expect.state, "a standard drill asserts on the lab's end state"
    for assertion in scenario.spec.expect.state:
        assert f"✓ {assertion.path} " in out
    run_dir = _run_dir(clone, runbook.removesuffix(".md"))
    started = read_events(run_dir)[0]
    assert started["mode"] == "drill"
    assert (run_dir / "report.md").is_file() and (run_dir / "report.html").is_file()
    assert f"drill report: {run_dir.relative_to(clone) / 'report.md'}" in out


@pytest.mark.slow
def test_the_other_answer_of_a_decision_drills_its_own_branch(clone: Path) -> None:
    # pass-the-hash.yaml (answered "no") runs in the test above; this one answers "yes".
    scenario = "runbooks/drills/pass-the-hash-false-positive.yaml"
    result = cli(["drill", "runbooks/pass-the-hash.md", "--scenario", scenario, "--yes"], clone)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "✓ run status — expected succeeded, got succeeded" in result.stdout
    assert "✗" not in result.stdout.split("Drill expectations", 1)[1]
    assert "ended by step 3: closed as a false positive" in result.stdout
    run_dir = _run_dir(clone, "pass-the-hash")
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "answered **yes** by dana (scenario" in report
    title = "Decide: ask the account's owner whether the sessions were theirs"
    assert f"| 2 | {title} | L1 | yes | dana |" in report  # the manual steps' table
    events = read_events(run_dir)
    (given,) = [e for e in events if e["event"] == "answer"]
    assert (given["value"], given["by"], given["source"]) == ("yes", "dana", "scenario")
    statuses = {e["step_id"]: e["status"] for e in events if e["event"] == "step_finished"}
    assert "lock-account" not in statuses and "isolate-machines" not in statuses


@pytest.fixture(scope="module")
def outage(clone: Path) -> tuple[str, Path]:
    """The EDR-outage drill, run once: its terminal output and its run folder."""
    result = cli(
        ["drill", "compromised-endpoint", "--scenario", OUTAGE, "--yes"], clone, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    return result.stdout, _run_dir(clone, "compromised-endpoint")


@pytest.mark.slow
def test_faults_drive_alternative_procedures_and_are_journaled(outage: tuple[str, Path]) -> None:
    out, run_dir = outage
    events = read_events(run_dir)
    assert events[-1]["event"] == "run_finished"
    assert events[-1]["status"] == "succeeded_with_handled_failures"
    faults = [e for e in events if e["event"] == "fault"]
    assert [(f["step_id"], f["status"]) for f in faults] == [
        ("confirm-alert", 503),
        ("lateral-movement", 500),
    ]
    # Each fault comes before its step starts, and the step felt it.
    for fault in faults:
        start = next(
            e for e in events if e["event"] == "step_started" and e["step_id"] == fault["step_id"]
        )
        assert fault["seq"] < start["seq"]
    finished = {
        (e.get("procedure"), e["step_id"]): e["status"]
        for e in events
        if e["event"] == "step_finished"
    }
    assert finished[(None, "lateral-movement")] == "handled"
    assert finished[(None, "confirm-alert")] == "succeeded"
    attempts = [
        e["attempt"]
        for e in events
        if e["event"] == "step_started" and e["step_id"] == "confirm-alert"
    ]
    assert attempts == [1, 2]
    procedures = {e.get("procedure") for e in events if e["event"] == "step_finished"}
    assert {"manual-isolation", "contain-lateral-movement"} <= procedures
    assert "fault injected: The EDR's telemetry API fails (HTTP 500)" in out


@pytest.mark.slow
def test_denied_approval_takes_the_alternative_procedure(outage: tuple[str, Path]) -> None:
    _, run_dir = outage
    events = read_events(run_dir)
    approval = next(e for e in events if e["event"] == "approval" and e["step_id"] == "isolate")
    assert (approval["decision"], approval["by"], approval["role"]) == (
        "denied",
        "priya",
        "IR-lead",
    )
    assert approval["comment"] == "The EDR is unstable; isolate at the switch port instead."
    isolate = [e for e in events if e["event"] == "step_finished" and e["step_id"] == "isolate"]
    assert [e["status"] for e in isolate] == ["denied", "handled"]
    assert not any(e["event"] == "step_started" and e["step_id"] == "isolate" for e in events)
    manual = [
        e
        for e in events
        if e["event"] == "decision" and e["step_id"].startswith("ask-the-network-on-call")
    ]
    assert [(d["decision"], d["by"]) for d in manual] == [("done", "sam")]


@pytest.mark.slow
def test_drill_report_content(outage: tuple[str, Path]) -> None:
    _, run_dir = outage
    report = (run_dir / "report.md").read_text()
    sha = hashlib.sha256((REPO / "runbooks" / "compromised-endpoint.md").read_bytes()).hexdigest()
    assert report.startswith("# Drill report: Compromised endpoint detected by XDR")
    assert f"SHA-256 `{sha[:16]}`" in report
    assert "against a time limit of 1h00m: **met**" in report
    # Time per step: every main step in the timeline with a duration.
    timeline = report.split("## Timeline", 1)[1].split("## ", 1)[0]
    for title in (
        "Confirm the alert",
        "Check for lateral movement",
        "Reimage from the golden image",
    ):
        row = next(line for line in timeline.splitlines() if f"| {title} |" in line)
        assert re.fullmatch(
            r"[0-9.]+(ms|s)( \(\d attempts\))?", row.rstrip(" |").split("|")[-1].strip()
        )
    findings = report.split("## Drill findings", 1)[1].split("## Failures", 1)[0]
    assert "The EDR's telemetry API fails (HTTP 500)" in findings
    assert "handled: alternative procedure contain-lateral-movement ran" in findings
    assert "the step still succeeded after 2 attempts" in findings
    assert "Who is the network on-call, and how do I page them?" in findings
    assert "— sam (L2)" in findings
    assert "priya (IR-lead)" in findings
    assert "**denied** by priya (IR-lead)" in report
    html = (run_dir / "report.html").read_text()
    assert "<title>Drill report: Compromised endpoint detected by XDR</title>" in html
    assert "Who is the network on-call" in html


@pytest.mark.slow
def test_the_lab_token_never_reaches_journal_or_report(outage: tuple[str, Path]) -> None:
    _, run_dir = outage
    events = read_events(run_dir)
    assert events[0]["inputs"]["api_token"] == "***"
    journal = (run_dir / "journal.jsonl").read_text()
    assert '"api_token": "***"' in journal or '"api_token":"***"' in journal
    # The token is random per drill; nothing that looks like a bearer value was written. The
    # report quotes the blocks' code as written, which names the token only by variable.
    report = (run_dir / "report.md").read_text()
    for as_written in ("Bearer $API_TOKEN", "Bearer {api_token}"):
        report = report.replace(as_written, "")
    assert "Bearer " not in report


def _scenario(tmp_path: Path, text: str, name: str = "drill.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.mark.slow
def test_expected_state_mismatch_fails_and_shows_the_assertion(tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path,
        """
        runbook: server-not-responding
        answers:
          restart: approve
        expect:
          status: succeeded
          state:
            - {path: services.web-portal, equals: down}
            - {path: tickets.INC-1001, equals: resolved}
            - {path: services.no-such-service, equals: up}
        """,
    )
    result = cli(
        [
            "drill",
            str(REPO / "runbooks/server-not-responding.md"),
            "--scenario",
            str(scenario),
            "--yes",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        tmp_path,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr
    out = result.stdout
    assert "✓ run status — expected succeeded, got succeeded" in out
    assert "✗ services.web-portal equals down — actual: up" in out
    assert "✓ tickets.INC-1001 equals resolved" in out
    assert (
        "✗ services.no-such-service equals up — services.no-such-service is not in the lab" in out
    )


def test_non_loopback_base_url_is_refused(tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path,
        """
        runbook: server-not-responding
        inputs:
          base_url: https://monitoring.corp.example
        """,
    )
    result = cli(
        [
            "drill",
            str(REPO / "runbooks/server-not-responding.md"),
            "--scenario",
            str(scenario),
            "--yes",
        ],
        tmp_path,
    )
    assert result.returncode == 2
    assert f"{scenario}:3: input 'base_url' points at 'monitoring.corp.example'" in result.stderr
    assert "drills run against the lab only" in result.stderr
    assert not (tmp_path / ".runbook").exists()  # nothing ran


def test_lab_option_off_loopback_is_refused(tmp_path: Path) -> None:
    result = cli(
        [
            "drill",
            str(REPO / "runbooks/server-not-responding.md"),
            "--scenario",
            str(REPO / "runbooks/drills/server-not-responding.yaml"),
            "--yes",
            "--lab",
            "http://10.1.2.3:8765",
        ],
        tmp_path,
    )
    assert result.returncode == 2
    assert "points at '10.1.2.3', which is not this machine" in result.stderr


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param(
            """
            runbook: server-not-responding
            answers:
              restart: {decision: approve, by: kim}
            faults:
              - at_step: restart
                route: POST /api/services/{name}/restart
                status: 700
            """,
            7,
            "faults.0.status: Expected `int` <= 599",
            id="fault-status",
        ),
        pytest.param(
            """
            runbook: server-not-responding
            expect:
              status: succeeded
              stat:
                - {path: services.web-portal, equals: up}
            """,
            4,
            "expect.stat: unknown key (did you mean 'state'?)",
            id="unknown-key",
        ),
        pytest.param(
            """
            runbook: server-not-responding
            expect:
              state:
                - {path: services.web-portal, equals: up, contains: up}
            """,
            4,
            "give exactly one of equals, not_equals, contains, not_contains",
            id="two-tests",
        ),
        pytest.param(
            """
            runbook: server-not-responding
            answers:
              restart: [approve
            """,
            4,
            "not valid YAML",
            id="yaml-syntax",
        ),
        pytest.param(
            """
            runbook: server-not-responding
            participants: {kim: L2}
            answers:
              restart: {decision: approve, by: kym}
            """,
            4,
            "'kym' is not a participant (participants: kim)",
            id="unknown-participant",
        ),
        pytest.param(
            """
            runbook: server-not-responding
            faults:
              - {at_step: restrat, route: /api/services}
            """,
            3,
            "no step 'restrat' in runbook 'server-not-responding'",
            id="unknown-step",
        ),
        pytest.param(
            """
            runbook: server-not-responding
            inputs:
              api_token: hunter2
            """,
            3,
            "input 'api_token' is a secret: scenarios hold no secrets",
            id="secret-input",
        ),
        pytest.param(
            """
            runbook: server-not-responding
            answers:
              tell-the-users: approve
            """,
            3,
            "step tell-the-users needs no approval",
            id="approve-manual-step",
        ),
    ],
)
def test_bad_scenario_names_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    scenario = _scenario(tmp_path, text)
    result = cli(
        [
            "drill",
            str(REPO / "runbooks/server-not-responding.md"),
            "--scenario",
            str(scenario),
            "--yes",
        ],
        tmp_path,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{scenario}:{line}: " in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_scenario_says_where_it_looked(tmp_path: Path) -> None:
    book = tmp_path / "mine.md"
    shutil.copy(REPO / "runbooks" / "server-not-responding.md", book)
    result = cli(["drill", str(book), "--yes"], tmp_path)
    assert result.returncode == 2
    assert "no drill scenario for runbook 'server-not-responding'" in result.stderr
    assert "--scenario FILE" in result.stderr


def test_shipped_scenarios_load() -> None:
    for path in sorted((REPO / "runbooks" / "drills").glob("*.yaml")):
        try:
            load_scenario(path)
        except ScenarioError as exc:  # pragma: no cover - the assertion message shows it
            pytest.fail(str(exc))
    outage = load_scenario(REPO / OUTAGE)
    assert outage.spec.expect.status == "succeeded_with_handled_failures"
    assert json.dumps(outage.spec.alert)  # the alert is plain data, shown to participants


@pytest.mark.slow
def test_check_stale_warns_for_runbooks_not_drilled(
    outage: tuple[str, Path], tmp_path: Path
) -> None:
    _, run_dir = outage
    runs = tmp_path / "runs"
    shutil.copytree(run_dir, runs / run_dir.name)  # one drill of compromised-endpoint, today
    books = [str(REPO / "runbooks" / f"{n}.md") for n in ("compromised-endpoint", "ransomware")]
    args = ["check", "--stale", "30", "--runs-dir", str(runs), *books]
    result = cli(args, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        f"{books[1]}: warning RB050 not drilled within 30 days: never drilled "
        f"(no drill in {runs}); run `runbook drill {books[1]}`"
    ]
    assert cli([*args, "--strict"], tmp_path).returncode == 1
    # Forty days on, the drill made today is too old too.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=40)
    problems = stale_problems([Path(b) for b in books], 30, runs, now=later)
    assert [Path(p.path).stem for p in problems] == ["compromised-endpoint", "ransomware"]
    assert "days ago (succeeded_with_handled_failures)" in problems[0].message


@pytest.mark.slow
def test_interactive_drill_shows_the_alert_first(tmp_path: Path) -> None:
    import pexpect

    runs = tmp_path / "runs"
    child = pexpect.spawn(
        RUNBOOK,
        ["drill", "server-not-responding", "--runs-dir", str(runs), "--operator", "olga"],
        cwd=str(REPO),
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 200),
    )
    child.expect("Alert")
    briefing = child.before + child.after
    child.expect(r"\(r/Enter\)")
    assert "web-portal" in child.before and "Participants:" in child.before
    assert "[1/9]" not in briefing  # the alert comes before step 1
    answers = {0: "", 1: "a", 2: "kim", 3: "", 4: "d", 5: "status page updated"}
    child.sendline("")
    while True:
        index = child.expect(
            [
                r"\(r/Enter\)",
                r"approve \(a\)",
                r"approver's name",
                r"comment \(optional\)",
                r"\(d\), skip \(s\), quit",
                r"note \(optional\)",
                pexpect.EOF,
            ]
        )
        if index == 6:
            break
        child.sendline(answers[index])
    child.close()
    assert child.exitstatus == 0
    events = read_events(next(runs.iterdir()))
    assert events[0]["mode"] == "drill" and events[0]["interactive"] is True
    approval = next(e for e in events if e["event"] == "approval")
    assert (approval["decision"], approval["by"]) == ("approved", "kim")
    manual = next(e for e in events if e["event"] == "decision" and e["decision"] == "done")
    assert (manual["by"], manual["note"]) == ("olga", "status page updated")


@pytest.mark.slow
def test_drill_against_a_running_lab(tmp_path: Path) -> None:
    from runner.lab import LabServer

    with LabServer(tmp_path / "lab.db", reset=True) as lab:
        headers = {"Authorization": f"Bearer {lab.token}"}
        # A dirty lab: the drill resets it first, so the service is down again when it starts.
        httpx.post(f"{lab.url}/api/services/web-portal/restart", headers=headers, json={})
        result = cli(
            [
                "drill",
                "server-not-responding",
                "--yes",
                "--lab",
                lab.url,
                "--runs-dir",
                str(tmp_path / "runs"),
            ],
            REPO,
            env={"RUNBOOK_LAB_TOKEN": lab.token},
            timeout=120,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr
        state = httpx.get(f"{lab.url}/api/_lab/state", headers=headers).json()
    assert state["services"]["web-portal"] == "up"
    assert state["tickets"]["INC-1001"] == "resolved"
    assert state["faults"] == []
    # The token was known here: its value is nowhere in the terminal output or the run folder.
    assert lab.token not in result.stdout + result.stderr
    written = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    assert written
    assert [p for p in written if lab.token.encode() in p.read_bytes()] == []


# --- scenario validation in-process: msgspec's location back to the YAML line ---------------------


@pytest.mark.parametrize(
    ("path", "loc"),
    [
        pytest.param("$", (), id="root"),
        pytest.param("$.runbook", ("runbook",), id="field"),
        pytest.param("$.faults[0].status", ("faults", 0, "status"), id="index-then-field"),
        pytest.param("$.expect.state[12]", ("expect", "state", 12), id="nested-index"),
        pytest.param("$.a[1][2]", ("a", 1, 2), id="list-in-list"),
        pytest.param("$.answers[...].decision", ("answers", ..., "decision"), id="mapping-value"),
        pytest.param("$.x[...][...]", ("x", ..., ...), id="mapping-in-mapping"),
        pytest.param("", None, id="empty"),
        pytest.param("faults[0]", None, id="no-dollar"),
        pytest.param("$.", None, id="empty-name"),
        pytest.param("$..a", None, id="double-dot"),
        pytest.param("$.a[x]", None, id="bad-index"),
        pytest.param("$.a[-1]", None, id="negative-index"),
        pytest.param("$.a]", None, id="stray-bracket"),
    ],
)
def test_parse_error_path(path: str, loc: tuple[object, ...] | None) -> None:
    assert parse_error_path(path) == loc


def _msgspec_error(data: object, schema: object) -> str:
    """msgspec's own text for ``data``, so these tests notice if msgspec changes its format."""
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert(data, type=schema, strict=False)
    return str(caught.value)


def test_split_validation_error_reads_msgspecs_own_messages() -> None:
    fault = {"at_step": "a", "route": "/api/x", "status": 700}
    problem = split_validation_error(_msgspec_error({"runbook": "x", "faults": [fault]}, Scenario))
    assert problem == ValidationProblem("Expected `int` <= 599", ("faults", 0, "status"))
    problem = split_validation_error(_msgspec_error({"runbook": "x", "answers": {3: {}}}, Scenario))
    assert problem == ValidationProblem("Expected `str`, got `int`", ("answers",), in_key=True)
    problem = split_validation_error(_msgspec_error({}, Scenario))
    assert problem == ValidationProblem("Object missing required field `runbook`", ())
    # A message quoting the scenario's own text keeps it whole: the location is the last one.
    route = "GET /x - at `$.runbook`"
    text = _msgspec_error({"runbook": "x", "faults": [{"at_step": "a", "route": route}]}, Scenario)
    problem = split_validation_error(text)
    assert problem.path == ("faults", 0)
    assert problem.message.endswith(f"got {route!r}")


def test_split_validation_error_without_a_readable_location() -> None:
    assert split_validation_error("Expected `object`, got `array`") == ValidationProblem(
        "Expected `object`, got `array`", ()
    )
    odd = "Expected `int` - at `$.a[?]`"
    assert split_validation_error(odd) == ValidationProblem(odd, ())


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param(
            """
            runbook: x
            answers:
              restart: run
              isolate: aprove
            """,
            4,
            "answers.isolate.decision: Invalid enum value 'aprove'; expected one of: run, skip, "
            "done, approve, deny",
            id="shorthand-decision",
        ),
        pytest.param(
            """
            runbook: x
            answers:
              restart: run
              isolate:
                notes:
                  - {by: kim, text: ok}
                  - {by: 3, text: "which console?"}
            """,
            7,
            "answers.isolate.notes.1.by: Expected `str`, got `int`",
            id="key-found-for-mapping-value",
        ),
        pytest.param(
            """
            runbook: x
            answers:
              restart: run
              3: done
            """,
            4,
            "answers.3: Expected `str`, got `int`; put the key in quotes: '3'",
            id="number-as-key",
        ),
        pytest.param(
            """
            runbook: x
            faults:
              - {at_step: restart, route: /api/services}
              - {at_step: restart}
            """,
            4,
            "faults.1.route: missing; add `route:` (see docs/drills.md)",
            id="missing-key",
        ),
        pytest.param(
            """
            description: no runbook
            """,
            1,
            "runbook: missing; add `runbook:` (see docs/drills.md)",
            id="missing-runbook",
        ),
        pytest.param(
            """
            runbook: x
            faults: {at_step: restart, route: /api/services}
            """,
            2,
            "faults: Expected `list`, got `mapping`",
            id="mapping-for-list",
        ),
        pytest.param(
            """
            runbook: x
            faults:
              - {at_step: restart, route: /api/services, times: 0}
            """,
            3,
            "faults.0: times must be at least 1, or -1 for every request until the end",
            id="fault-times-zero",
        ),
        pytest.param(
            """
            runbook: x
            faults:
              - at_step: restart
                route: "PUT /x - at `$.runbook`"
            """,
            3,
            "faults.0: 'route' must look like \"POST /api/edr/hosts/{id}/isolate\" or "
            "\"/api/edr\"; got 'PUT /x - at `$.runbook`'",
            id="route-quoting-a-location",
        ),
        pytest.param(
            """
            runbook: x
            expect:
              status: succeded
            """,
            3,
            "expect.status: Invalid enum value 'succeded'; expected one of: succeeded, "
            "succeeded_with_handled_failures, failed, cancelled",
            id="expect-status",
        ),
        pytest.param(
            """
            runbook: x
            inputs:
              severity:
            """,
            3,
            "inputs.severity: Expected `bool | int | float | str | list`, got `null`",
            id="input-without-value",
        ),
    ],
)
def test_invalid_scenario_message(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = _scenario(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(caught.value) == f"{path}:{line}: {message}"


def test_every_unknown_key_is_listed_with_its_line(tmp_path: Path) -> None:
    path = _scenario(
        tmp_path,
        """
        runbok: server-not-responding
        answers:
          restart: {decision: approve, comment: ok, notes: [{by: kim, txt: hi}]}
        faults:
          - {at_step: restart, route: /api/services, stauts: 503}
        expect:
          stat: []
        """,
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    hint = "; see docs/drills.md for the scenario keys"
    assert str(caught.value).splitlines() == [
        f"{path}:1: invalid scenario:",
        f"  line 1: runbok: unknown key (did you mean 'runbook'?){hint}",
        f"  line 3: answers.restart.notes.0.txt: unknown key (did you mean 'text'?){hint}",
        f"  line 5: faults.0.stauts: unknown key (did you mean 'status'?){hint}",
        f"  line 7: expect.stat: unknown key (did you mean 'state'?){hint}",
    ]


def test_yaml_values_are_read_as_an_author_means_them(tmp_path: Path) -> None:
    path = _scenario(
        tmp_path,
        """
        runbook: server-not-responding
        inputs: {port: "8080", retries: 3, ratio: 0.5, dry: true, hosts: [a, 1]}
        answers:
          restart: approve
          tell-the-users: {decision: done, notes: [{by: kim, text: "which page?", unclear: true}]}
        faults:
          - {at_step: restart, route: "POST /api/services/{name}/restart", status: "503", delay: 2}
        expect:
          state:
            - {path: services.web-portal, equals: null}
            - {path: firewall_rules, not_contains: {type: ip}}
        """,
    )
    spec = load_scenario(path).spec
    assert spec.inputs == {
        "port": "8080",
        "retries": 3,
        "ratio": 0.5,
        "dry": True,
        "hosts": ["a", 1],
    }
    assert spec.answers["restart"] == Answer(decision="approve")
    assert spec.answers["tell-the-users"].notes[0].unclear is True
    fault = spec.faults[0]
    assert (fault.status, fault.times, fault.delay) == (503, 1, 2.0)
    # `equals: null` is a test for null; the tests not written are not.
    assert [(a.test, a.expected) for a in spec.expect.state] == [
        ("equals", None),
        ("not_contains", {"type": "ip"}),
    ]
