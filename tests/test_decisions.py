"""Decision steps, policies on steps a person does, and roles kept in the loop (issue 14).

Parsing and `check` on small texts; the engine through a real shell kernel; the pause ->
`runbook answer` -> `runbook resume` path through the console script.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runner_helpers import cli, finished, of, run_engine, stdout_text, write_book

from runner.check.lint import lint
from runner.exec.engine import RunOptions
from runner.exec.operator import ScriptedOperator
from runner.exec.session import answer, open_run
from runner.format.answers import read_answer
from runner.format.model import Problem, Question, RunStatus
from runner.parse.markdown import parse_text

HEAD = """---
name: T
service: s
objective: o
time_limit: 5m
roles: {L1: analyst, L2: responder, IR-lead: lead, Legal: counsel}
---
# T

## Steps

"""


def _parse(steps: str):  # type: ignore[no-untyped-def]
    return parse_text(HEAD + steps, path="runbooks/t.md")


def _codes(steps: str) -> list[tuple[str, int, str]]:
    problems: list[Problem] = lint(_parse(steps))
    return [(p.code, p.line, p.level) for p in problems if p.code not in ("RB044",)]


# --- parsing ---------------------------------------------------------------------------------


def test_a_decision_block_is_a_typed_question_whose_answer_is_an_output() -> None:
    book = _parse(
        "### 1. Ask\n\nRole: L1\n\n```decision {id=legit-check}\nIs the sign-in\nlegitimate?\n```\n"
        "\n### 2. Pick\n\nRole: L1\n\n"
        '```decision {id=next choices="close, Escalate" outputs=route}\n'
        "What next?\n```\n"
        '\n### 3. Count\n\nRole: L1\n\n```decision {id=n type=number ask="How many hosts?"}\n```\n'
    )
    one, two, three = book.steps
    assert one.question == Question("Is the sign-in legitimate?", "yesno", (), "legit_check")
    assert one.id == "legit-check" and one.manual and one.outputs == ("legit_check",)
    assert two.question == Question("What next?", "choice", ("close", "Escalate"), "route")
    assert three.question == Question("How many hosts?", "number", (), "n")
    assert book.problems == ()


@pytest.mark.parametrize(
    ("raw", "kind", "choices", "value"),
    [
        ("Y", "yesno", (), "yes"),
        ("false", "yesno", (), "no"),
        ("ESCALATE", "choice", ("close", "escalate"), "escalate"),
        ("3", "number", (), 3),
        ("2.5", "number", (), 2.5),
        ("  on the phone  ", "text", (), "on the phone"),
    ],
)
def test_answers_are_read_as_their_type(
    raw: str, kind: str, choices: tuple[str, ...], value: object
) -> None:
    assert read_answer(Question("q", kind, choices, "x"), raw) == value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "kind", "says"),
    [
        ("maybe", "yesno", "answer yes or no"),
        ("later", "choice", "answer one of close, escalate"),
        ("three", "number", "answer a number"),
        ("nan", "number", "finite"),
        ("", "text", "empty"),
        ("a\nb", "text", "one line"),
    ],
)
def test_an_answer_that_does_not_fit_says_what_fits(raw: str, kind: str, says: str) -> None:
    question = Question("q", kind, ("close", "escalate") if kind == "choice" else (), "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=says):
        read_answer(question, raw)


@pytest.mark.parametrize(
    ("line", "role", "informed", "consulted"),
    [
        ("Role: L2 (informed: IR-lead)", "L2", ("IR-lead",), ()),
        ("**Role:** L2 (informed: IR-lead, L1; consulted: Legal)", "L2", ("IR-lead", "L1"),
         ("Legal",)),
        ("Role: L2\nInformed: IR-lead and L1\n**Consulted:** Legal", "L2", ("IR-lead", "L1"),
         ("Legal",)),
    ],
)  # fmt: skip
def test_a_step_has_one_responsible_role_and_others_kept_in_the_loop(
    line: str, role: str, informed: tuple[str, ...], consulted: tuple[str, ...]
) -> None:
    (step,) = _parse(f"### 1. Do it\n\n{line}\n\n```bash\ntrue\n```\n").steps
    assert (step.role, step.informed, step.consulted) == (role, informed, consulted)


def test_a_manual_step_takes_when_approve_and_timeout_from_its_blocks() -> None:
    (step,) = _parse(
        "### 1. Call\n\nRole: L1\n\n"
        "```text {when=\"severity == 'high'\" approve=IR-lead timeout=5m}\ncall them\n```\n"
    ).steps
    assert step.manual
    assert (step.when, step.approver_role, step.timeout) == ("severity == 'high'", "IR-lead", 300)


# --- check ------------------------------------------------------------------------------------


A = "### 1. A\n\nRole: L1\n\n"  # a step with a role, its body to follow


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # an undeclared informed role
        ("### 1. A\n\nRole: L1 (informed: CISO)\n", [("RB035", 12, "error")]),
        # a gate on a checklist beside a command would vanish
        (A + "```text {approve=IR-lead}\nx\n```\n\n```bash\ntrue\n```\n",
         [("RB048", 16, "error")]),
        # a policy on a block in no step
        ("```text {timeout=5m}\nx\n```\n\n### 1. A\n\nRole: L1\n", [("RB048", 12, "warning")]),
        # retries cannot apply to a person
        (A + "```text {retries=2}\nx\n```\n", [("RB049", 16, "warning")]),
        # outputs only from a decision
        (A + "```text {outputs=x}\nx\n```\n", [("RB049", 16, "warning")]),
        (A + "```decision {id=a type=yes-no}\nq?\n```\n", [("RB070", 16, "error")]),
        (A + "```decision {id=a choices=one}\nq?\n```\n", [("RB070", 16, "error")]),
        (A + "```decision {id=a}\n```\n", [("RB070", 16, "error")]),
        (A + "```bash {choices=a,b}\ntrue\n```\n", [("RB070", 16, "error")]),
        (A + "```decision {id=a}\nq?\n```\n\n```bash\ntrue\n```\n",
         [("RB071", 16, "error")]),
        (A + "```decision {id=a}\nq?\n```\n\n```decision {id=b}\nr?\n```\n",
         [("RB071", 20, "error")]),
        ("```decision {id=a}\nq?\n```\n\n### 1. A\n\nRole: L1\n", [("RB071", 12, "error")]),
        # a when that names a decision's output is fine once the decision came first
        (A + "```decision {id=a outputs=ok}\nq?\n```\n\n### 2. B\n\nRole: L1\n\n"
         "```text {when=\"ok == 'no'\"}\nx\n```\n", []),
        (A + "```text {when=\"ok == 'no'\"}\nx\n```\n", [("RB033", 16, "error")]),
        # a phase in parts, each with its command, runs as one step: said, not flattened quietly
        (A + "**1.1 Disable**\n\n```bash {approve=true}\ntrue\n```\n\n"
         "1.2 Revoke\n\n```bash\ntrue\n```\n",
         [("RB029", 12, "warning")]),
        (A + "1. Collect\n\n   ```bash\n   true\n   ```\n\n"
         "2. Scan\n\n   ```bash\n   true\n   ```\n",
         [("RB029", 12, "warning")]),
        # numbered instructions around one command are one step's text
        (A + "1. Open the console\n2. Find the host\n\n```bash\ntrue\n```\n\n```bash\ntrue\n```\n",
         []),
    ],
)  # fmt: skip
def test_check_says_when_an_attribute_cannot_apply(
    steps: str, expected: list[tuple[str, int, str]]
) -> None:
    assert _codes(steps) == expected


# --- the engine, through a real shell kernel --------------------------------------------------

BRANCHES = """
### 1. Ask the user

Role: lead

```decision {id=legit-check outputs=legit}
Was the sign-in yours?
```

### 2. Close

```bash {when="legit == 'yes'" end="closed as false positive"}
echo "closing"
```

### 3. Disable

```bash {when="legit == 'no'"}
echo "disabling because $LEGIT"
```
"""


def test_the_answer_is_an_output_that_chooses_the_branch_and_says_who_gave_it(
    tmp_path: Path,
) -> None:
    book = write_book(tmp_path, BRANCHES)
    person = ScriptedOperator("dana", ["answer:perhaps", "answer:n:dana"])
    result, events = run_engine(book, tmp_path / "runs", operator=person)
    assert result.status is RunStatus.SUCCEEDED
    assert "refused: answer yes or no, not 'perhaps'" in person.asked  # asked again
    (asked,) = of(events, "question_asked")
    assert (asked["question"], asked["type"], asked["output"]) == (
        "Was the sign-in yours?",
        "yesno",
        "legit",
    )
    (given,) = of(events, "answer")
    assert (given["value"], given["by"], given["source"]) == ("no", "dana", "terminal")
    assert given["ts"] and given["waited"] is not None
    assert finished(events) == {
        "legit-check": "succeeded",
        "close": "skipped",
        "disable": "succeeded",
    }
    assert "disabling because no" in stdout_text(events)


def test_an_answer_on_the_command_line_is_recorded_as_such(tmp_path: Path) -> None:
    book = write_book(tmp_path, BRANCHES)
    options = RunOptions(yes=True, answers=(("legit-check", "yes"),))
    result, events = run_engine(book, tmp_path / "runs", options=options)
    assert result.status is RunStatus.SUCCEEDED
    assert result.ended_by and result.ended_by["reason"] == "closed as false positive"
    (given,) = of(events, "answer")
    assert (given["value"], given["by"], given["source"]) == ("yes", "tester", "command_line")
    assert of(events, "run_started")[0]["options"]["answers"] == {"legit-check": "yes"}
    assert "disable" not in finished(events)


def test_unanswered_the_run_pauses_then_an_answer_and_a_resume_go_on(tmp_path: Path) -> None:
    book = write_book(tmp_path, BRANCHES)
    runs = tmp_path / "runs"
    result, events = run_engine(book, runs)
    assert result.status is RunStatus.PAUSED and result.exit_code == 3
    assert finished(events) == {"legit-check": "waiting_answer"}
    assert of(events, "run_paused")[0]["reason"] == "step 1 needs an answer"
    opened = open_run(runs, result.run_id)
    with pytest.raises(Exception, match="answer yes or no"):
        answer(opened, "1", "dunno", by="dana")
    answer(opened, "legit-check", "no", by="dana")
    again = open_run(runs, result.run_id)
    result, events = run_engine(book, runs, resume=again.state, run_dir=result.run_dir)
    assert result.status is RunStatus.SUCCEEDED
    assert len(of(events, "question_asked")) == 1  # not asked again
    assert finished(events)["disable"] == "succeeded"
    assert [e["source"] for e in of(events, "answer")] == ["runbook_answer"]


def test_manual_steps_obey_when_approve_and_timeout(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        ### 1. Decide

        ```bash {outputs=severity}
        SEVERITY=low
        ```

        ### 2. Call the CISO

        ```text {when="severity == 'high'"}
        call
        ```

        ### 3. Wipe the laptop by hand

        ```text {approve=lead}
        wipe
        ```
        """,
    )
    runs = tmp_path / "runs"
    result, events = run_engine(book, runs)
    assert finished(events) == {
        "decide": "succeeded",
        "call-the-ciso": "skipped",
        "wipe-the-laptop-by-hand": "waiting_approval",
    }
    assert of(events, "step_finished")[1]["reason"] == "condition false: severity == 'high'"
    assert result.status is RunStatus.PAUSED
    assert of(events, "approval_requested")[0]["code"].strip() == (
        "### 3. Wipe the laptop by hand\n\n```text {approve=lead}\nwipe\n```"
    )
    person = ScriptedOperator("dana", ["run", "approve:priya", "done"])
    result, events = run_engine(book, tmp_path / "runs2", operator=person)
    assert finished(events)["wipe-the-laptop-by-hand"] == "succeeded"
    assert of(events, "approval")[0]["by"] == "priya"


def test_an_answer_later_than_the_timeout_times_the_step_out(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        ### 1. Ask

        ```decision {id=ask outputs=go timeout=0s on_failure=continue}
        Go on?
        ```

        ### 2. After

        ```bash
        echo "after: ${GO:-unset}"
        ```
        """,
    )
    runs = tmp_path / "runs"
    result, _ = run_engine(book, runs)
    answer(open_run(runs, result.run_id), "ask", "yes", by="dana")
    result, events = run_engine(
        book, runs, resume=open_run(runs, result.run_id).state, run_dir=result.run_dir
    )
    assert finished(events)["ask"] == "timed_out"
    assert "past the step's timeout" in of(events, "step_finished")[-2]["reason"]
    assert "after: unset" in stdout_text(events)  # a late answer is not taken as the output


# --- the command line -------------------------------------------------------------------------


def test_pause_answer_resume_from_the_command_line(tmp_path: Path) -> None:
    write_book(tmp_path, BRANCHES)
    runs = ["--runs-dir", "runs"]
    bad = cli(["run", "book.md", "--yes", "--answer", "1=perhaps", *runs], tmp_path)
    assert bad.returncode == 2 and "answer yes or no, not 'perhaps'" in bad.stderr
    wrong = cli(["run", "book.md", "--yes", "--answer", "2=yes", *runs], tmp_path)
    assert wrong.returncode == 2 and "the steps that ask are 1 (legit-check)" in wrong.stderr
    ran = cli(["run", "book.md", "--yes", *runs], tmp_path)
    assert ran.returncode == 3, ran.stdout + ran.stderr
    assert "step 1 waits for an answer" in ran.stdout
    assert "runbook answer" in ran.stdout
    shown = cli(["pending", "last", *runs], tmp_path)
    assert shown.returncode == 0 and "? Was the sign-in yours?" in shown.stdout
    as_json = json.loads(cli(["pending", "last", "--format", "json", *runs], tmp_path).stdout)
    assert as_json["questions"][0]["output"] == "legit"
    assert cli(["approve", "last", "1", "--by", "x", *runs], tmp_path).returncode == 2
    refused = cli(["answer", "last", "1", "perhaps", "--by", "dana", *runs], tmp_path)
    assert refused.returncode == 2 and "answer yes or no" in refused.stderr
    given = cli(["answer", "last", "1", "YES", "--by", "dana", *runs], tmp_path)
    assert given.returncode == 0 and "answered 'yes' by dana" in given.stdout
    resumed = cli(["resume", "last", "--yes", *runs], tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "ended by step 2: closed as false positive" in resumed.stdout
    assert "closing" in resumed.stdout and "disabling" not in resumed.stdout


def test_the_terminal_asks_again_until_the_answer_fits() -> None:
    import io

    from rich.console import Console

    from runner.exec.operator import TerminalOperator

    typed = iter(["three", "", "4"])
    out = io.StringIO()
    person = TerminalOperator("dana", Console(file=out, width=100), read=lambda _: next(typed))
    question = Question("How many \x1b[31mhosts?", "number", (), "hosts")
    (step,) = _parse("### 1. Count\n\nRole: L1\n\n```decision {id=n type=number}\nq\n```\n").steps
    given = person.answer(step, question)
    assert (given.action, given.value, given.by) == ("answer", 4, "dana")
    shown = out.getvalue()
    assert shown.count("not an answer: answer a number") == 2
    assert "\x1b[31m" not in shown  # the runbook's text is shown, never obeyed
    later = TerminalOperator("dana", Console(file=io.StringIO()), read=lambda _: "l")
    assert later.answer(step, question).action == "later"
