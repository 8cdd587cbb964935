"""The engine through real kernels: state, outputs, failures, timeouts, interrupts, secrets."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from runner_helpers import finished, kernel_processes, of, run_engine, stdout_text, write_book

from runner.exec.engine import RunOptions
from runner.exec.operator import ScriptedOperator
from runner.format.model import RunStatus
from runner.kernels.cancel import CancelToken
from runner.kernels.pool import KernelPool, KernelSession
from runner.runs.journal import verify


def test_state_persists_and_outputs_cross_kernels(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        1. Python sets state.

           ```python {outputs=count}
           count = 2
           greeting = "hi"
           ```

        2. Python still has it.

           ```python
           print(greeting, count + 1)
           ```

        3. Shell sets state and an output.

           ```bash {outputs=where}
           cd /tmp && export WHERE=$(pwd)
           MARK=kept
           ```

        4. Shell still has it, and the Python output.

           ```bash
           echo "$PWD $MARK $COUNT $HOST"
           ```

        5. Python sees the shell output.

           ```python
           print(where, host)
           ```
        """,
        inputs="host:\n  default: web-1\n",
    )
    result, events = run_engine(book, tmp_path / "runs", inputs={"host": "web-1"})
    assert result.status is RunStatus.SUCCEEDED and result.exit_code == 0
    out = stdout_text(events)
    assert "hi 3\n" in out
    assert "/tmp kept 2 web-1\n" in out
    assert "/tmp web-1\n" in out
    assert [e["values"] for e in of(events, "outputs")] == [{"count": 2}, {"where": "/tmp"}]
    assert {e["kernel"] for e in of(events, "kernel_started")} == {"python3", "runbook-shell"}
    assert verify(result.run_dir).ok


def test_failing_shell_command_fails_the_step_and_stops(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        1. Fails.

           ```bash
           echo before; false
           ```

        2. Never runs.

           ```bash
           echo never
           ```
        """,
    )
    result, events = run_engine(book, tmp_path / "runs")
    assert result.status is RunStatus.FAILED and result.exit_code == 1
    step = of(events, "step_finished")[0]
    assert (step["status"], step["exit_status"]) == ("failed", 1)
    assert "never" not in stdout_text(events)
    assert of(events, "run_finished")[0]["status"] == "failed"


def test_python_error_is_journaled_with_traceback(tmp_path: Path) -> None:
    book = write_book(tmp_path, "1. Raises.\n\n   ```python\n   1 / 0\n   ```\n")
    _result, events = run_engine(book, tmp_path / "runs")
    error = next(e for e in of(events, "output") if e["kind"] == "error")
    assert error["ename"] == "ZeroDivisionError" and error["traceback"]
    assert of(events, "step_finished")[0]["error"].startswith("ZeroDivisionError")


def test_timeout_interrupts_and_the_kernel_keeps_its_state(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        1. Set.

           ```python
           kept = 42
           ```

        2. Too slow.

           ```python {timeout=300ms on_failure=continue}
           import time
           time.sleep(30)
           ```

        3. Shell too slow.

           ```bash {timeout=300ms on_failure=continue}
           sleep 30
           ```

        4. Still there.

           ```python
           print(kept)
           ```
        """,
    )
    result, events = run_engine(book, tmp_path / "runs")
    statuses = finished(events)
    assert statuses["too-slow"] == "timed_out" and statuses["shell-too-slow"] == "timed_out"
    assert statuses["still-there"] == "succeeded"
    assert "42\n" in stdout_text(events)
    assert result.status is RunStatus.FAILED  # continue goes on, but the run did not fully succeed


def interrupt_when(marker: Path, signum: int = signal.SIGINT) -> threading.Thread:
    """Send ``signum`` to this process once ``marker`` exists: the step has started."""

    def wait() -> None:
        while not marker.exists():
            time.sleep(0.01)  # polling a file the step writes: causal, not a guess
        os.kill(os.getpid(), signum)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread


def test_ctrl_c_cancels_the_step_and_asks_what_next(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    book = write_book(
        tmp_path,
        f"""
        1. Long.

           ```bash
           touch {marker}
           sleep 30
           ```

        2. Next.

           ```bash
           echo next
           ```
        """,
    )
    interrupt_when(marker)
    operator = ScriptedOperator("alice", ["run", "skip", "run"])
    result, events = run_engine(book, tmp_path / "runs", operator=operator)
    assert finished(events) == {"long": "cancelled", "next": "succeeded"}
    assert "cancelled 1" in operator.asked
    decisions = [e["decision"] for e in of(events, "decision")]
    assert decisions == ["run", "skip", "run"]
    assert result.status is RunStatus.FAILED
    # Cancelled, not run out: the block's clock stopped long before the sleep would have.
    assert of(events, "block_finished")[0]["duration"] < 20


def test_ctrl_c_unattended_ends_the_run_cancelled(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    book = write_book(
        tmp_path,
        f"1. Long.\n\n   ```python\n   import time\n   open({str(marker)!r}, 'w').close()\n"
        "   time.sleep(30)\n   ```\n",
    )
    interrupt_when(marker)
    result, events = run_engine(book, tmp_path / "runs")
    assert result.status is RunStatus.CANCELLED and result.exit_code == 130
    assert finished(events) == {"long": "cancelled"}


def test_ctrl_c_while_the_kernel_is_still_starting_is_not_lost(tmp_path: Path) -> None:
    """The kernel's start is in jupyter_client's event loop, which used to swallow Ctrl-C."""
    marker = tmp_path / "ran"
    book = write_book(
        tmp_path, f"1. Would run.\n\n   ```python\n   open({str(marker)!r}, 'w')\n   ```\n"
    )
    token = CancelToken()
    launched = threading.Event()

    class Pool(KernelPool):
        def get(self, name: str) -> KernelSession:
            self._session(name)  # launched, not yet answering
            launched.set()
            return super().get(name)

    def press() -> None:
        launched.wait(30)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press, daemon=True).start()
    with Pool() as pool:
        pool.cancel = token
        result, events = run_engine(book, tmp_path / "runs", pool=pool)
    assert result.status is RunStatus.CANCELLED and result.exit_code == 130
    assert not marker.exists()
    assert finished(events) == {"would-run": "cancelled"}


def test_kernel_death_fails_the_step_and_a_retry_restarts_it(tmp_path: Path) -> None:
    marker = tmp_path / "died-once"
    book = write_book(
        tmp_path,
        f"""
        1. Dies the first time.

           ```python {{retries=1}}
           import os, signal
           print("host", host)
           if not os.path.exists({str(marker)!r}):
               open({str(marker)!r}, "w").close()
               os.kill(os.getpid(), signal.SIGKILL)
           ```
        """,
        inputs="host:\n  default: db-2\n",
    )
    result, events = run_engine(book, tmp_path / "runs", inputs={"host": "db-2"})
    attempts = of(events, "step_finished")
    assert [(e["attempt"], e["status"], e["error"]) for e in attempts] == [
        (1, "failed", "kernel died"),
        (2, "succeeded", None),
    ]
    assert len([e for e in of(events, "kernel_started") if e["kernel"] == "python3"]) == 2
    assert "host db-2" in stdout_text(events)  # inputs injected again into the new kernel
    assert result.status is RunStatus.SUCCEEDED


def test_secret_never_reaches_the_runs_folder(tmp_path: Path) -> None:
    secret = "hunter2-Zq9"
    book = write_book(
        tmp_path,
        """
        1. Prints the secret in pieces.

           ```python
           import sys
           sys.stdout.write(token[:4]); sys.stdout.flush()
           sys.stdout.write(token[4:] + "\\n"); sys.stdout.flush()
           ```

        2. Shell prints it.

           ```bash {outputs=echoed}
           echo "token=$TOKEN"; export ECHOED="$TOKEN"
           ```

        3. Raises with it.

           ```python
           raise ValueError(token)
           ```
        """,
        inputs="token:\n  secret: true\n  required: true\n",
    )
    _result, events = run_engine(
        book, tmp_path / "runs", inputs={"token": secret}, secrets=["token"]
    )
    assert "***" in stdout_text(events)
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
            assert secret[:4] + "\n" not in path.read_text(errors="replace")


def test_verify_catches_a_one_byte_edit(tmp_path: Path) -> None:
    book = write_book(tmp_path, "1. Say.\n\n   ```bash\n   echo abc\n   ```\n")
    result, _ = run_engine(book, tmp_path / "runs")
    journal = result.run_dir / "journal.jsonl"
    data = bytearray(journal.read_bytes())
    where = data.index(b"abc")
    data[where] = ord("x")
    journal.write_bytes(bytes(data))
    outcome = verify(result.run_dir)
    assert not outcome.ok
    bad = next(n for n, line in enumerate(data.split(b"\n"), 1) if b"xbc" in line)
    assert outcome.line == bad  # the edited line no longer matches its own hash
    assert outcome.message == f"line {bad} was edited: it does not match its own hash"


def test_manual_steps_skipped_unattended_and_recorded_interactively(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        "1. Call the user.\n\n   Role: lead\n\n2. Run it.\n\n   ```bash\n   echo ran\n   ```\n",
    )
    _, events = run_engine(book, tmp_path / "runs")
    started = of(events, "step_started")[0]
    assert (started["step_id"], started["kernel"], started["role"], started["title"]) == (
        "call-the-user",
        None,
        "lead",
        "Call the user.",
    )
    (decision,) = of(events, "decision")  # an unattended run journals the manual step's outcome
    assert (decision["decision"], decision["note"], decision["by"], decision["role"]) == (
        "skip",
        "manual step, needs a person",
        "tester",
        "lead",
    )
    assert decision["waited"] >= 0
    first = of(events, "step_finished")[0]
    assert (first["status"], first["reason"]) == ("skipped", "manual step, needs a person")
    assert started["seq"] < decision["seq"] < first["seq"]
    operator = ScriptedOperator("bob", ["done: user confirmed", "!echo off-script", "run"])
    _result, events = run_engine(book, tmp_path / "runs", operator=operator)
    assert finished(events) == {"call-the-user": "succeeded", "run-it": "succeeded"}
    decision = of(events, "decision")[0]
    assert (decision["decision"], decision["note"], decision["by"], decision["role"]) == (
        "done",
        "user confirmed",
        "bob",
        "lead",
    )
    off = of(events, "off_script")[0]
    assert (off["code"], off["status"], off["kernel"]) == ("echo off-script", "ok", "runbook-shell")
    assert "off-script\n" in stdout_text(events)


def test_only_and_from_skip_with_reasons(tmp_path: Path) -> None:
    steps = "".join(f"{n}. S{n}.\n\n   ```bash\n   echo s{n}\n   ```\n\n" for n in (1, 2, 3))
    book = write_book(tmp_path, steps)
    _, events = run_engine(book, tmp_path / "runs", options=RunOptions(only=("2",)))
    reasons = {e["step"]: (e["status"], e["reason"]) for e in of(events, "step_finished")}
    assert reasons[1] == ("skipped", "not selected (--only 2)") and reasons[2][0] == "succeeded"
    _, events = run_engine(book, tmp_path / "runs", options=RunOptions(from_step="s3"))
    assert [e["status"] for e in of(events, "step_finished")] == ["skipped", "skipped", "succeeded"]


def test_each_block_is_journaled_with_its_exact_code(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        1. Two blocks, the second fails.

           ```python
           print("first block", host)
           ```

           ```bash
           echo "second block on $HOST"
           exit 4
           ```
        """,
        inputs="host:\n  default: web-3\n",
    )
    result, events = run_engine(book, tmp_path / "runs", inputs={"host": "web-3"})
    starts, ends = of(events, "block_started"), of(events, "block_finished")
    assert [(e["lang"], e["kernel"], e["code"], e["attempt"]) for e in starts] == [
        ("python", "python3", 'print("first block", host)\n', 1),
        ("bash", "runbook-shell", 'echo "second block on $HOST"\nexit 4\n', 1),
    ]
    assert [(e["status"], e["exit_status"]) for e in ends] == [("succeeded", None), ("failed", 4)]
    assert [e["block_id"] for e in starts] == [e["block_id"] for e in ends]
    assert len(set(e["block_id"] for e in starts)) == 2
    assert all(e["duration"] >= 0 for e in ends)
    # each block's output lies between its own start and finish
    for start, end in zip(starts, ends, strict=True):
        inside = [e for e in of(events, "output") if start["seq"] < e["seq"] < end["seq"]]
        assert inside and {e["block_id"] for e in inside} == {start["block_id"]}
    step = of(events, "step_finished")[0]
    assert (step["status"], step["exit_status"]) == ("failed", 4)
    assert ends[-1]["seq"] < step["seq"] and result.status is RunStatus.FAILED


def test_secret_in_block_code_is_redacted(tmp_path: Path) -> None:
    book = write_book(
        tmp_path, '1. Uses a literal.\n\n   ```bash\n   echo "pw=Sekr1t-literal"\n   ```\n'
    )
    _, events = run_engine(book, tmp_path / "runs", inputs={"pw": "Sekr1t-literal"}, secrets=["pw"])
    assert of(events, "block_started")[0]["code"] == 'echo "pw=***"\n'


def test_a_dead_shell_kernel_leaves_no_bash_or_command_behind(tmp_path: Path) -> None:
    """bash runs in a session of its own (so interrupts reach it and never the kernel): when the
    kernel dies, the run must still stop bash and whatever it started."""
    book = write_book(
        tmp_path,
        f"""
        1. Starts a long command, then its kernel dies.

           ```bash
           sh -c 'sleep 600; echo {tmp_path}' &
           kill -9 $PPID
           sleep 600
           ```
        """,
    )
    _result, events = run_engine(book, tmp_path / "runs")
    assert finished(events) == {"starts-a-long-command-then-its-kernel-dies": "failed"}
    assert of(events, "step_finished")[0]["error"] == "kernel died"
    assert kernel_processes(str(tmp_path)) == []
