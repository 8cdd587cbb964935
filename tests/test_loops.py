"""Loops (`foreach=`): each item its own attempt, with its own status, timeout and retries; a
gate once or per item; a failed item fails the step unless the author says otherwise, and is
never hidden; a resumed run goes on with the items not done. Through the bash kernel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner_helpers import finished, of, run_engine, stdout_text, write_book

from runner.exec.operator import ScriptedOperator
from runner.exec.session import decide, open_run, waiting_gate
from runner.format.model import RunStatus
from runner.runs.journal import read_events
from runner.runs.state import fold, resume_state

MEMBERS = "members:\n  type: list\n  default: [a, b, c]\n"


def run(book: Path, runs: Path, **kw: Any) -> tuple[Any, list[dict[str, Any]]]:
    kw.setdefault("inputs", {"members": ["a", "b", "c"]})
    return run_engine(book, runs, **kw)


def items(events: list[dict[str, Any]]) -> list[tuple[Any, str, int]]:
    return [(e["item"], e["status"], e["attempt"]) for e in of(events, "item_finished")]


def loop_book(tmp_path: Path, attrs: str, body: str) -> Path:
    return write_book(
        tmp_path,
        f"""
        ### 1. Each member
        Role: lead

        ```bash {{id=each foreach=members as=member {attrs}}}
        echo "$MEMBER" >> {tmp_path}/ran
        {body}
        ```

        ### 2. After
        Role: lead

        ```bash {{id=after}}
        echo "after: ${{MEMBER-unset}}"
        ```
        """,
        inputs=MEMBERS,
    )


def test_each_item_is_its_own_attempt_with_its_own_retries(tmp_path: Path) -> None:
    # b fails its first attempt only: its retry is its own, a and c run once each.
    book = loop_book(
        tmp_path, "retries=1",
        f'if [ "$MEMBER" = b ] && [ ! -e {tmp_path}/once ]; then touch {tmp_path}/once; false; fi',
    )  # fmt: skip
    result, events = run(book, tmp_path / "runs")
    assert result.status is RunStatus.SUCCEEDED
    assert items(events) == [("a", "succeeded", 1), ("b", "failed", 1), ("b", "succeeded", 2),
                             ("c", "succeeded", 1)]  # fmt: skip
    assert (tmp_path / "ran").read_text().split() == ["a", "b", "b", "c"]
    # One step, not one per item; the item is withdrawn after the loop.
    assert [e["step_id"] for e in of(events, "step_started")] == ["each", "after"]
    assert "after: unset" in stdout_text(events)
    step = fold(result.run_dir, events).steps[0]
    assert [(i.item, i.status, i.attempts) for i in step.items] == [
        ("a", "succeeded", 1), ("b", "succeeded", 2), ("c", "succeeded", 1)]  # fmt: skip


def test_a_failed_item_fails_the_step_and_the_rest_are_shown_not_run(tmp_path: Path) -> None:
    book = loop_book(tmp_path, "", '[ "$MEMBER" != b ]')
    result, events = run(book, tmp_path / "runs")
    assert result.status is RunStatus.FAILED
    assert finished(events) == {"each": "failed"}  # step 2 never ran
    assert items(events) == [("a", "succeeded", 1), ("b", "failed", 1), ("c", "skipped", 0)]
    skipped = of(events, "item_finished")[-1]
    assert skipped["reason"] == "not run: item 2 (b) failed and on_item_failure is stop"
    error = of(events, "step_finished")[0]["error"]
    assert error.startswith("1 of 3 items failed; item 2 (b): ")


def test_an_item_timeout_is_per_item(tmp_path: Path) -> None:
    book = loop_book(tmp_path, "timeout=2s on_item_failure=finish",
                     '[ "$MEMBER" != b ] || sleep 30')  # fmt: skip
    result, events = run(book, tmp_path / "runs")
    assert result.status is RunStatus.FAILED
    assert items(events) == [("a", "succeeded", 1), ("b", "timed_out", 1), ("c", "succeeded", 1)]


def test_finish_runs_the_rest_then_fails_continue_lets_it_through(tmp_path: Path) -> None:
    book = loop_book(tmp_path, "on_item_failure=finish", '[ "$MEMBER" != b ]')
    result, events = run(book, tmp_path / "runs")
    assert result.status is RunStatus.FAILED
    assert items(events) == [("a", "succeeded", 1), ("b", "failed", 1), ("c", "succeeded", 1)]
    assert finished(events) == {"each": "failed"}

    other = tmp_path / "continue"
    other.mkdir()
    book = loop_book(other, "on_item_failure=continue", '[ "$MEMBER" != b ]')
    result, events = run(book, other / "runs")
    assert result.status is RunStatus.SUCCEEDED
    assert finished(events) == {"each": "succeeded", "after": "succeeded"}
    # The failed item stays failed, and the step says so.
    assert ("b", "failed", 1) in items(events)
    reason = of(events, "step_finished")[0]["reason"]
    assert reason == (
        "2 of 3 items succeeded; failed, and let through by on_item_failure=continue: 2 (b)"
    )


def test_resume_goes_on_with_the_items_not_done(tmp_path: Path) -> None:
    book = loop_book(tmp_path, "", f'[ "$MEMBER" != b ] || [ -e {tmp_path}/fixed ]')
    first, _ = run(book, tmp_path / "runs")
    assert first.status is RunStatus.FAILED
    (tmp_path / "fixed").touch()
    state = resume_state(read_events(first.run_dir), keyed_from=1)
    assert state.items_done == {(None, "each"): {1: "a"}}
    second, events = run(book, tmp_path / "runs", resume=state, run_dir=first.run_dir)
    assert second.status is RunStatus.SUCCEEDED
    # a ran once, in the first attempt; b twice; c once.
    assert (tmp_path / "ran").read_text().split() == ["a", "b", "b", "c"]
    last = of(events, "step_finished")
    assert last[-2]["reason"] == "3 of 3 items succeeded (1 in an earlier attempt)"


def test_one_gate_for_the_loop_shows_every_item(tmp_path: Path) -> None:
    book = loop_book(tmp_path, "approve=lead", "true")
    operator = ScriptedOperator("tester", ["run", "approve:alice", "run"])
    result, events = run(book, tmp_path / "runs", operator=operator)
    assert result.status is RunStatus.SUCCEEDED
    requests = of(events, "approval_requested")
    assert len(requests) == 1
    assert requests[0]["code"].startswith("# foreach member in: a, b, c\n")
    assert [e["item"] for e in of(events, "item_finished")] == ["a", "b", "c"]


def test_a_gate_per_item_asks_for_each_and_a_denial_fails_the_step(tmp_path: Path) -> None:
    book = loop_book(tmp_path, "approve=lead approve_each=true", "true")
    operator = ScriptedOperator("tester", ["run", "approve:alice", "deny:bob:not c"])
    result, events = run(book, tmp_path / "runs", operator=operator)
    assert result.status is RunStatus.FAILED
    codes = [e["code"] for e in of(events, "approval_requested")]
    assert len(codes) == 2 and "MEMBER=a" in codes[0] and "MEMBER=b" in codes[1]
    assert items(events) == [("a", "succeeded", 1), ("b", "denied", 0), ("c", "skipped", 0)]
    assert (tmp_path / "ran").read_text().split() == ["a"]


def test_an_item_gate_pauses_and_an_approval_covers_that_item_only(tmp_path: Path) -> None:
    book = loop_book(tmp_path, "approve=lead approve_each=true", "true")
    runs = tmp_path / "runs"
    first, _ = run(book, runs)
    assert first.status is RunStatus.PAUSED
    opened = open_run(runs, first.run_id)
    gate = waiting_gate(opened, "1")
    decide(opened, gate, decision="approved", by="alice", role="lead", comment=None)
    opened = open_run(runs, first.run_id)
    second, events = run(book, runs, resume=opened.state, run_dir=first.run_dir)
    # Item a ran with the approval; item b asks again.
    assert second.status is RunStatus.PAUSED
    assert (tmp_path / "ran").read_text().split() == ["a"]
    waiting = of(events, "step_finished")[-1]
    assert waiting["reason"] == "item 2 of 3 (b) waits for an approval"


def test_a_loop_over_an_earlier_output_and_a_literal(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        ### 1. List
        Role: lead

        ```bash {id=list outputs=hosts}
        HOSTS="web-1 web-2"
        ```

        ### 2. Each host
        Role: lead

        ```bash {id=each foreach=hosts as=host}
        echo "host $HOST"
        ```

        ### 3. Each port
        Role: lead

        ```bash {id=ports foreach="[22, 443]" as=port}
        echo "port $PORT"
        ```
        """,
    )
    result, events = run_engine(book, tmp_path / "runs")
    assert result.status is RunStatus.SUCCEEDED
    assert stdout_text(events) == "host web-1\nhost web-2\nport 22\nport 443\n"


def test_an_empty_list_fails_the_step_loudly(tmp_path: Path) -> None:
    book = loop_book(tmp_path, "", "true")
    result, events = run(book, tmp_path / "runs", inputs={"members": []})
    assert result.status is RunStatus.FAILED
    assert "the list is empty" in of(events, "step_finished")[0]["error"]
