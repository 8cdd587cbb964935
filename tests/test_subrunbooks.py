"""Sub-runbooks: a ```runbook block runs another runbook inside this run, its steps journaled
under the calling step's label (`2/contain/1`), its named outputs coming back; a gate inside it
pauses the run and a resume goes on inside it. And what `check` says about calls and loops."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from runner_helpers import finished, of, run_engine, stdout_text, write_book

from runner.check.lint import check_path
from runner.exec.session import decide, open_run, waiting_gate
from runner.format.model import RunStatus
from runner.runs.state import fold

CHILD = """---
name: Contain a host
service: test
objective: Contain it
time_limit: 5m
roles:
  lead: Incident lead
inputs:
  host_id: {type: string, required: true}
  reason: {type: string, default: none given}
---
# Contain a host

## Steps

### 1. Look
Role: lead

```bash {id=look}
echo "child sees $HOST_ID for $REASON, verdict=${VERDICT-unset}"
```

### 2. Isolate
Role: lead

```bash {id=isolate outputs=contained GATE}
echo "isolating $HOST_ID" >> RAN
CONTAINED="yes-$HOST_ID"
```
"""

PARENT = """
### 1. Judge
Role: lead

```bash {id=judge outputs=verdict}
VERDICT=malicious
```

### 2. Contain
Role: lead

Run [Contain a host](contain.md) for the host.

```runbook {id=contain runbook=contain outputs=contained with="host_id=host,reason='GuardDuty'"}
```

### 3. Report
Role: lead

```bash {id=report}
echo "parent: $CONTAINED verdict=$VERDICT host=$HOST_ID"
```
"""


def books(tmp_path: Path, gate: str = "") -> Path:
    child = CHILD.replace("GATE", gate).replace("RAN", str(tmp_path / "ran"))
    (tmp_path / "contain.md").write_text(child)
    return write_book(tmp_path, PARENT, inputs="host:\n  type: string\n")


def test_a_called_runbook_runs_inside_the_run_and_its_outputs_come_back(tmp_path: Path) -> None:
    book = books(tmp_path)
    result, events = run_engine(book, tmp_path / "runs", inputs={"host": "i-0abc"})
    assert result.status is RunStatus.SUCCEEDED
    out = stdout_text(events)
    # The child gets its mapped inputs and never the caller's other values.
    assert "child sees i-0abc for GuardDuty, verdict=unset\n" in out
    # The caller's values are back after the call, with the output it named.
    assert "parent: yes-i-0abc verdict=malicious host=\n" in out  # no $HOST_ID left
    labels = [(e["procedure"], e["step_id"], e["status"]) for e in of(events, "step_finished")]
    assert labels == [(None, "judge", "succeeded"), ("2/contain", "look", "succeeded"),
                      ("2/contain", "isolate", "succeeded"), (None, "contain", "succeeded"),
                      (None, "report", "succeeded")]  # fmt: skip
    started = of(events, "subrunbook_started")[0]
    assert started["prefix"] == "2/contain" and started["runbook"]["id"] == "contain"
    assert of(events, "subrunbook_finished")[0]["outputs"] == {"contained": "yes-i-0abc"}
    record = fold(result.run_dir, events)
    assert [s.label for s in record.steps] == ["1", "2", "2/contain/1", "2/contain/2", "3"]
    assert "contained" in record.values and "verdict" in record.values


def test_a_gate_inside_the_called_runbook_pauses_the_run_and_resume_goes_on_inside_it(
    tmp_path: Path,
) -> None:
    book = books(tmp_path, gate="approve=lead")
    runs = tmp_path / "runs"
    first, events = run_engine(book, runs, inputs={"host": "i-0abc"})
    assert first.status is RunStatus.PAUSED
    assert not (tmp_path / "ran").exists()
    paused = of(events, "run_paused")[0]
    assert paused["procedure"] == "2/contain" and paused["step_id"] == "isolate"
    opened = open_run(runs, first.run_id)
    gate = waiting_gate(opened, "2/contain/2")
    decide(opened, gate, decision="approved", by="alice", role="lead", comment=None)
    opened = open_run(runs, first.run_id)
    second, events = run_engine(
        book, runs, inputs={"host": "i-0abc"}, resume=opened.state, run_dir=first.run_dir
    )
    assert second.status is RunStatus.SUCCEEDED
    assert (tmp_path / "ran").read_text() == "isolating i-0abc\n"
    # Step 1 of the child is done and not run again; the caller's step 3 sees the output.
    again = events[events.index(of(events, "run_resumed")[0]) :]
    assert "child sees" not in stdout_text(again)
    assert "parent: yes-i-0abc verdict=malicious" in stdout_text(again)


def test_a_failing_called_step_fails_the_calling_step(tmp_path: Path) -> None:
    book = books(tmp_path)
    child = tmp_path / "contain.md"
    child.write_text(child.read_text().replace('CONTAINED="yes-$HOST_ID"', "false"))
    result, events = run_engine(book, tmp_path / "runs", inputs={"host": "i-0abc"})
    assert result.status is RunStatus.FAILED
    assert finished(events)["contain"] == "failed"
    error = next(e for e in of(events, "step_finished") if e["step_id"] == "contain")["error"]
    assert error == "runbook 2/contain: step 2/contain/2 failed"


# --- check -----------------------------------------------------------------------------------


def codes(path: Path) -> list[str]:
    return sorted(p.code for p in check_path(path) if p.level == "error")


@pytest.mark.parametrize(
    ("block", "code"),
    [
        ('```runbook {runbook=nowhere with="host_id=host"}', "RB111"),
        ('```runbook {runbook=contain with="hostid=host"}', "RB112"),  # unknown and unmapped
        ('```runbook {runbook=contain with="host_id=hots"}', "RB113"),
        ('```runbook {runbook=contain with="host_id=host" outputs=nope}', "RB115"),
        ('```runbook {runbook=contain with="host_id=host" timeout=1m}', "RB110"),
        ('```runbook {with="host_id=host"}', "RB110"),
        ("```bash {foreach=hosts}", "RB101"),
        ("```bash {foreach=host}", "RB101"),  # a string input, not a list
        ('```bash {foreach="[a, [b]]"}', "RB102"),
        ('```bash {foreach="{a: 1}"}', "RB102"),
        ("```text {foreach=members}", "RB100"),
        ("```bash {as=member}", "RB100"),
        ("```bash {foreach=members as=host}", "RB103"),
        ("```bash {foreach=members on_item_failure=sometimes}", "RB031"),
    ],
)
def test_check_reports_bad_calls_and_loops(tmp_path: Path, block: str, code: str) -> None:
    (tmp_path / "contain.md").write_text(CHILD.replace("GATE", ""))
    book = write_book(
        tmp_path,
        f"""
        ### 1. Do
        Role: lead

        {block}
        ```
        """,
        inputs="host:\n  type: string\nmembers:\n  type: list\n",
    )
    found = codes(book)
    assert code in found, found


def test_check_finds_a_cycle_of_calls(tmp_path: Path) -> None:
    for me, other in (("a", "b"), ("b", "a")):
        (tmp_path / f"{me}.md").write_text(textwrap.dedent(f"""\
            ---
            name: {me}
            service: test
            ---
            # {me}

            ## Steps

            ### 1. Call
            ```runbook {{runbook={other}}}
            ```
            """))  # fmt: skip
    problems = [p for p in check_path(tmp_path / "a.md") if p.code == "RB114"]
    assert len(problems) == 1 and "a -> b -> a" in problems[0].message


def test_the_shipped_call_and_loops_check_clean(tmp_path: Path) -> None:
    book = books(tmp_path)
    assert codes(book) == []


def test_a_called_runbook_edited_while_the_run_waits_is_not_mixed_in(tmp_path: Path) -> None:
    book = books(tmp_path, gate="approve=lead")
    runs = tmp_path / "runs"
    first, _ = run_engine(book, runs, inputs={"host": "i-0abc"})
    assert first.status is RunStatus.PAUSED
    child = tmp_path / "contain.md"
    child.write_text(child.read_text().replace("### 1. Look", "### 1. Look around"))
    opened = open_run(runs, first.run_id)
    second, events = run_engine(
        book, runs, inputs={"host": "i-0abc"}, resume=opened.state, run_dir=first.run_dir
    )
    assert second.status is RunStatus.FAILED
    error = next(e for e in reversed(of(events, "step_finished")) if e["step_id"] == "contain")
    assert "changed since this run started it" in error["error"]
    assert not (tmp_path / "ran").exists()


def test_the_site_and_the_plan_show_the_loop_and_the_call() -> None:
    from plugins.runbooks.steps import badges
    from runner.parse.markdown import parse_file
    from runner.text.plan import step_facts

    repo = Path(__file__).resolve().parent.parent
    etcd = parse_file(repo / "runbooks" / "etcd-quota-low-space.md")
    defrag = next(s for s in etcd.steps if s.id == "defrag")
    shown = " ".join(badges(defrag, etcd))
    assert "for each member in members" in shown and "needs approval by SRE-lead" in shown
    assert "once for each member in members (on a failed item: stop)" in step_facts(defrag)
    ec2 = parse_file(repo / "runbooks" / "ec2-malware-finding.md")
    contain = next(s for s in ec2.steps if s.id == "contain")
    assert "runs runbook contain-host" in " ".join(badges(contain, ec2))
