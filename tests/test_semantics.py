"""What a run does is what the runbook says, or it stops loudly: through real kernels.

Shell blocks stop at their first failing command; `exit N` keeps the shell; a replaced kernel
gets the run's values back; outputs are typed and an unset one is an error; `exit(N)` in
Python ends the block; secrets are redacted in every form and kept for resume; output of any
size arrives whole; nothing a block leaves running outlives the run.
"""

from __future__ import annotations

import base64
import json
import shlex
from pathlib import Path
from urllib.parse import quote

import pytest
from runner_helpers import cli, finished, of, run_engine, stdout_text, write_book

from runner.exec.engine import RunOptions
from runner.format.inputs import InputValueError, coerce
from runner.format.model import InputSpec, RunStatus
from runner.runs.journal import read_events
from runner.runs.redact import MIN_SECRET_LENGTH, Redactor
from runner.runs.state import resume_state


def test_a_shell_block_stops_at_its_first_failing_command(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        1. Fails.

           ```bash
           echo about to fail
           false
           echo should not print
           ```

        2. Never runs.

           ```bash
           echo never
           ```
        """,
    )
    result, events = run_engine(book, tmp_path / "runs")
    assert result.status is RunStatus.FAILED
    assert "should not print" not in stdout_text(events)
    assert finished(events) == {"fails": "failed"}
    step = of(events, "step_finished")[0]
    assert step["error"] == "line 2: `false` exited 1"
    assert step["exit_status"] == 1


def test_errexit_false_runs_every_line_and_judges_the_last(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        1. Tolerant.

           ```bash {errexit=false}
           false
           echo goes on
           ```
        """,
    )
    result, events = run_engine(book, tmp_path / "runs")
    assert result.status is RunStatus.SUCCEEDED
    assert "goes on\n" in stdout_text(events)


def test_exit_3_ends_the_step_and_keeps_directory_and_exports(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        f"""
        1. Leaves early.

           ```bash {{on_failure=continue}}
           cd {tmp_path}
           export KEPT=yes
           exit 3
           echo never
           ```

        2. Still there.

           ```bash
           echo "$PWD $KEPT $HOST_ID"
           ```
        """,
        inputs="host_id:\n  default: wks-1\n",
    )
    _, events = run_engine(book, tmp_path / "runs", inputs={"host_id": "wks-1"})
    steps = of(events, "step_finished")
    assert (steps[0]["status"], steps[0]["exit_status"], steps[0]["error"]) == (
        "failed",
        3,
        "exit 3",
    )
    assert f"{tmp_path} yes wks-1\n" in stdout_text(events)
    assert of(events, "kernel_restored") == []  # the shell was never replaced


def test_a_shell_killed_by_its_own_code_gets_inputs_outputs_and_directory_back(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    book = write_book(
        tmp_path,
        f"""
        1. Decide.

           ```bash {{outputs=verdict}}
           cd {work}
           VERDICT=malicious
           UNDECLARED=gone
           export UNDECLARED
           ```

        2. Kill the shell.

           ```bash {{on_failure=continue}}
           kill -KILL $$
           ```

        3. Write where the run says.

           ```bash
           echo "$HOST_ID $VERDICT $PWD ${{UNDECLARED:-lost}}"
           touch after
           ```
        """,
        inputs="host_id:\n  default: wks-7\n",
    )
    result, events = run_engine(book, tmp_path / "runs", inputs={"host_id": "wks-7"})
    assert f"wks-7 malicious {work} lost\n" in stdout_text(events)
    assert (work / "after").exists()
    restored = of(events, "kernel_restored")
    assert len(restored) == 1
    assert restored[0]["inputs"] == ["host_id"] and restored[0]["outputs"] == ["verdict"]
    assert restored[0]["cwd"] == str(work)
    assert "UNDECLARED" in restored[0]["lost"]
    assert finished(events)["write-where-the-run-says"] == "succeeded"
    assert result.status is RunStatus.FAILED  # step 2 failed; `continue` only went on


def test_a_python_kernel_killed_mid_step_and_retried_gets_everything_back(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "died-once"
    work = tmp_path / "py-work"
    work.mkdir()
    book = write_book(
        tmp_path,
        f"""
        1. Count.

           ```python {{outputs=count}}
           import os
           os.chdir({str(work)!r})
           count = 3
           ```

        2. Dies the first time.

           ```python {{retries=1}}
           import os, signal
           if not os.path.exists({str(marker)!r}):
               open({str(marker)!r}, "w").close()
               os.kill(os.getpid(), signal.SIGKILL)
           print("seen", host_id, count, os.getcwd())
           ```
        """,
        inputs="host_id:\n  default: db-2\n",
    )
    result, events = run_engine(book, tmp_path / "runs", inputs={"host_id": "db-2"})
    assert result.status is RunStatus.SUCCEEDED
    assert f"seen db-2 3 {work}\n" in stdout_text(events)
    restored = of(events, "kernel_restored")
    assert restored and restored[0]["cwd"] == str(work) and restored[0]["lost"] is None


def test_typed_outputs_compare_as_numbers_in_when(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        1. Count.

           ```bash {outputs=count:int,isolated:bool}
           COUNT=12
           ISOLATED=yes
           ```

        2. Many.

           ```bash {when="count >= 10 and isolated"}
           echo many
           ```

        3. Few.

           ```bash {when="count < 10"}
           echo few
           ```
        """,
    )
    result, events = run_engine(book, tmp_path / "runs")
    assert result.status is RunStatus.SUCCEEDED
    assert of(events, "outputs")[0]["values"] == {"count": 12, "isolated": True}
    assert finished(events) == {"count": "succeeded", "many": "succeeded", "few": "skipped"}


def test_an_output_that_does_not_read_as_its_type_fails_the_step(tmp_path: Path) -> None:
    book = write_book(
        tmp_path, "1. Count.\n\n   ```bash {outputs=count:int}\n   COUNT=abc\n   ```\n"
    )
    result, events = run_engine(book, tmp_path / "runs")
    assert result.status is RunStatus.FAILED
    error = of(events, "step_finished")[0]["error"]
    assert error == "output 'count': expected a whole number, got 'abc'"


@pytest.mark.parametrize(
    ("lang", "code", "words"),
    [
        ("bash", "c1=one", "$C1 was never set"),
        ("python", "c2 = 'one'", "the Python variable c1"),
    ],
    ids=["shell", "python"],
)
def test_an_output_that_was_never_set_is_an_error(
    tmp_path: Path, lang: str, code: str, words: str
) -> None:
    book = write_book(tmp_path, f"1. Set.\n\n   ```{lang} {{outputs=c1}}\n   {code}\n   ```\n")
    result, events = run_engine(book, tmp_path / "runs")
    assert result.status is RunStatus.FAILED
    assert words in of(events, "step_finished")[0]["error"]
    assert of(events, "outputs") == []


@pytest.mark.parametrize(
    ("code", "status", "exit_status"),
    [
        ("exit(1)", "failed", 1),
        ("quit()", "succeeded", 0),
        ("import sys; sys.exit(3)", "failed", 3),
        ("exit(0)", "succeeded", 0),
    ],
)
def test_exit_in_a_python_block_ends_it_with_that_status(
    tmp_path: Path, code: str, status: str, exit_status: int | None
) -> None:
    book = write_book(
        tmp_path,
        f"1. Leaves.\n\n   ```python\n   print('before')\n   {code}\n   print('after')\n   ```\n",
    )
    _, events = run_engine(book, tmp_path / "runs")
    step = of(events, "step_finished")[0]
    assert (step["status"], step["exit_status"]) == (status, exit_status)
    out = stdout_text(events)
    assert "before\n" in out and "after" not in out


# --- secrets ---------------------------------------------------------------------------------

SECRET_INPUT = "api_token:\n  secret: true\n  required: true\n"


@pytest.mark.parametrize("length", [1, MIN_SECRET_LENGTH - 1])
def test_a_secret_too_short_to_redact_safely_is_refused(length: int) -> None:
    spec = InputSpec(name="api_token", secret=True)
    with pytest.raises(InputValueError, match="use a longer secret"):
        coerce(spec, "x" * length)


@pytest.mark.parametrize(
    "secret",
    ["p'a\\ss\"wörd-8", "x" * MIN_SECRET_LENGTH, "s3cr3t-t0ken-with-some-length-0123456789"],
    ids=["quotes-backslash-non-ascii", "shortest-allowed", "long"],
)
def test_no_form_of_a_secret_reaches_the_runs_folder(tmp_path: Path, secret: str) -> None:
    book = write_book(
        tmp_path,
        """
        1. Leak it every way.

           ```python
           import base64, json, sys, urllib.parse
           tok = api_token
           print([tok])
           print(json.dumps({"t": tok}))
           print(urllib.parse.quote(tok, safe=""), urllib.parse.quote_plus(tok))
           print(base64.b64encode(("user:" + tok).encode()).decode())
           sys.stdout.write(tok[:3]); sys.stdout.flush()
           sys.stdout.write(tok[3:] + "\\n")
           print("innocent text: ExitStatus x xx xxx")
           ```

        2. And from the shell, behind a gate.

           ```bash {approve=true}
           echo "$API_TOKEN"
           printf '%q\\n' "$API_TOKEN"
           ```
        """,
        inputs=SECRET_INPUT,
    )
    result, events = run_engine(
        book, tmp_path / "runs", inputs={"api_token": secret}, secrets=["api_token"],
        options=RunOptions(approve=("2",)),
    )  # fmt: skip
    assert result.status is RunStatus.SUCCEEDED, finished(events)
    forms = {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        quote(secret, safe=""),
        shlex.quote(secret),
        base64.b64encode(("user:" + secret).encode()).decode()[8:-4],
    }
    for path in result.run_dir.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            leaked = [f for f in forms if f in text]
            assert not leaked, (path.name, leaked)
    assert "innocent text: ExitStatus x xx xxx\n" in stdout_text(events)
    assert "export API_TOKEN='***'" in of(events, "approval_requested")[0]["code"]


def test_redaction_leaves_innocent_text_alone() -> None:
    redactor = Redactor(["hunter2-hunter2"])
    text = "exit status 3; ExitStatus x; hunter2 alone is not the secret"
    assert redactor.text(text) == text


def test_an_output_holding_a_secret_is_real_again_after_a_resume(tmp_path: Path) -> None:
    proof = tmp_path / "proof"
    book = write_book(
        tmp_path,
        f"""
        1. Build a header.

           ```python {{outputs=auth_header}}
           auth_header = "Bearer " + api_token
           ```

        2. Use it, behind a gate.

           ```python {{approve=true}}
           ok = auth_header == "Bearer " + api_token
           open({str(proof)!r}, "w").write("match" if ok else "MISMATCH")
           ```
        """,
        inputs=SECRET_INPUT,
    )
    secret = "a-real-token-0123456789"
    result, events = run_engine(
        book, tmp_path / "runs", inputs={"api_token": secret}, secrets=["api_token"]
    )
    assert result.status is RunStatus.PAUSED
    assert of(events, "outputs")[0]["values"] == {"auth_header": "Bearer ***"}
    state = resume_state(read_events(result.run_dir))
    assert state.secret_templates == {"auth_header": ["Bearer ", {"secret": "api_token"}]}
    resumed, _ = run_engine(
        book,
        tmp_path / "runs",
        inputs={"api_token": secret},
        secrets=["api_token"],
        options=RunOptions(approve=("2",)),
        resume=state,
        run_dir=result.run_dir,
    )
    assert resumed.status is RunStatus.SUCCEEDED
    assert proof.read_text() == "match"


# --- output of any size ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("lang", "code"),
    [
        ("bash", "seq 1 24000000"),
        (
            "python",
            "import sys\nfor start in range(1, 24000001, 100000):\n"
            "    sys.stdout.write(''.join(f'{n}\\n' for n in range(start, start + 100000)))",
        ),
    ],
    ids=["shell", "python"],
)
def test_200_mb_of_output_arrives_whole_and_in_order(tmp_path: Path, lang: str, code: str) -> None:
    body = "\n".join("   " + line for line in code.splitlines())
    book = write_book(tmp_path, f"1. Flood.\n\n   ```{lang}\n{body}\n   ```\n")
    result, events = run_engine(book, tmp_path / "runs")
    assert result.status is RunStatus.SUCCEEDED
    text = stdout_text(events)
    expected = "".join(f"{n}\n" for n in range(1, 24000001))
    assert len(text) == len(expected) > 200_000_000
    assert text == expected


def test_one_long_line_without_a_newline_arrives_whole(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        "1. Long line.\n\n   ```bash\n   head -c 16000000 /dev/zero | tr '\\0' a\n   ```\n",
    )
    result, events = run_engine(book, tmp_path / "runs")
    assert result.status is RunStatus.SUCCEEDED
    assert stdout_text(events) == "a" * 16_000_000


# --- what a block leaves behind --------------------------------------------------------------


def test_background_processes_are_listed_and_none_outlives_the_run(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        1. Leave things running.

           ```bash
           sleep 301 &
           (setsid sleep 302 &)
           echo started
           ```

        2. And from Python.

           ```python
           import subprocess
           subprocess.Popen(["sleep", "303"], start_new_session=True)
           ```
        """,
    )
    result, events = run_engine(book, tmp_path / "runs")
    assert result.status is RunStatus.SUCCEEDED
    listed = [p for e in of(events, "background_processes") for p in e["processes"]]
    commands = {p["command"] for p in listed}
    assert {"sleep 301", "sleep 302", "sleep 303"} <= commands
    stopped = of(events, "background_stopped")
    assert stopped and {p["pid"] for p in listed} <= {p["pid"] for p in stopped[0]["processes"]}
    for process in listed:
        assert not Path(f"/proc/{process['pid']}").exists() or _zombie(process["pid"])


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_block_reading_stdin_gets_end_of_file_at_once(tmp_path: Path) -> None:
    book = write_book(
        tmp_path, '1. Reads.\n\n   ```bash\n   read -r answer || echo "eof"\n   cat\n   ```\n'
    )
    result, events = run_engine(book, tmp_path / "runs")
    assert result.status is RunStatus.SUCCEEDED
    assert stdout_text(events) == "eof\n"


def test_no_form_of_a_secret_reaches_the_terminal_or_any_report(tmp_path: Path) -> None:
    secret = "p'a\\ss\"wörd-8 x"
    book = write_book(
        tmp_path,
        """
        1. Print it every way.

           ```python {outputs=auth}
           import base64, json, sys
           auth = "Basic " + base64.b64encode(("user:" + api_token).encode()).decode()
           print([api_token], json.dumps(api_token), auth)
           sys.stdout.write(api_token[:5]); sys.stdout.flush(); print(api_token[5:])
           raise KeyError(api_token)
           ```
        """,
        inputs=SECRET_INPUT,
    )
    env = {"RUNBOOK_INPUT_API_TOKEN": secret}
    ran = cli(["run", book.name, "--yes"], tmp_path, env=env)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    shown = [ran.stdout + ran.stderr]
    for fmt in ("md", "html", "ipynb"):
        made = cli(["report", "last", "--format", fmt], tmp_path)
        assert made.returncode == 0, made.stderr
        shown.append(made.stdout)
    logged = cli(["log", "last"], tmp_path)
    shown.append(logged.stdout)
    files = [p for p in (tmp_path / ".runbook").rglob("*") if p.is_file()]
    shown += [p.read_text(errors="replace") for p in files]
    forms = {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        base64.b64encode(("user:" + secret).encode()).decode()[8:-4],
    }
    for text in shown:
        assert not [f for f in forms if f in text]
    assert "***" in ran.stdout


def test_a_kernel_restarted_after_a_timeout_gets_everything_back(tmp_path: Path) -> None:
    work = tmp_path / "stubborn"
    work.mkdir()
    book = write_book(
        tmp_path,
        f"""
        1. Set.

           ```python {{outputs=count:int}}
           import os
           os.chdir({str(work)!r})
           count = 5
           ```

        2. Ignores interrupts.

           ```python {{timeout=300ms on_failure=continue}}
           import time
           while True:
               try:
                   time.sleep(0.05)
               except KeyboardInterrupt:
                   pass
           ```

        3. Still has it.

           ```python
           import os
           print("seen", host_id, count, os.getcwd())
           ```
        """,
        inputs="host_id:\n  default: srv-3\n",
    )
    _, events = run_engine(book, tmp_path / "runs", inputs={"host_id": "srv-3"})
    assert finished(events)["ignores-interrupts"] == "timed_out"
    assert f"seen srv-3 5 {work}\n" in stdout_text(events)
    assert of(events, "kernel_restored")[0]["cwd"] == str(work)


def test_a_block_scoped_secret_is_in_the_kernel_only_while_a_block_names_it(
    tmp_path: Path,
) -> None:
    book = write_book(
        tmp_path,
        """
        1. Does not name it.

           ```bash
           env | grep -c TOKEN || echo "not in the environment"
           ```

        2. Names it.

           ```bash
           test -n "$API_TOKEN" && echo "has it"
           ```

        3. Python does not name it either.

           ```python
           import os
           print("py:", "api" + "_token" in globals(), [k for k in os.environ if "TOKEN" in k])
           ```
        """,
        inputs=SECRET_INPUT + "  expose: block\n",
    )
    result, events = run_engine(
        book, tmp_path / "runs", inputs={"api_token": "scoped-secret-1"}, secrets=["api_token"]
    )
    assert result.status is RunStatus.SUCCEEDED, finished(events)
    out = stdout_text(events)
    assert "not in the environment\nhas it\npy: False []\n" in out


def test_the_runner_s_input_variables_never_reach_a_kernel(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        1. Look.

           ```bash
           env | grep '^RUNBOOK_INPUT_' || echo "shell: none"
           ```

        2. Look from Python.

           ```python
           import os
           print("python:", [k for k in os.environ if k.startswith("RUNBOOK_INPUT_")])
           ```
        """,
        inputs=SECRET_INPUT,
    )
    ran = cli(["run", book.name, "--yes"], tmp_path, env={"RUNBOOK_INPUT_API_TOKEN": "x" * 12})
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "shell: none" in ran.stdout and "python: []" in ran.stdout


def test_a_step_with_end_ends_the_run_with_its_reason(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        1. Decide.

           ```bash {outputs=verdict}
           VERDICT=benign
           ```

        2. Close a false positive.

           ```bash {when="verdict == 'benign'" end="closed as false positive"}
           echo closing
           ```

        3. Contain.

           ```bash
           echo "must not run"
           ```
        """,
    )
    result, events = run_engine(book, tmp_path / "runs")
    assert result.status is RunStatus.SUCCEEDED
    assert "must not run" not in stdout_text(events)
    assert "contain" not in finished(events)
    ended = of(events, "run_finished")[0]["ended_by"]
    assert ended == {
        "status": "succeeded",
        "reason": "closed as false positive",
        "procedure": None,
        "step": 2,
        "step_id": "close-a-false-positive",
    }


def test_a_procedure_that_ends_the_run_does_not_return_to_the_main_path(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        """
        1. Try the API.

           ```bash {on_failure=procedure:escalate}
           false
           ```

        2. Main path.

           ```bash
           echo "must not run"
           ```

        ## Alternative procedures

        ### Escalate

        Ends the run as failed: escalated to the vendor.

        ```bash
        echo escalating
        ```
        """,
    )
    result, events = run_engine(book, tmp_path / "runs")
    assert result.status is RunStatus.FAILED
    assert "escalating\n" in stdout_text(events)
    assert "must not run" not in stdout_text(events)
    ended = of(events, "run_finished")[0]["ended_by"]
    assert (ended["procedure"], ended["status"], ended["reason"]) == (
        "escalate",
        "failed",
        "escalated to the vendor.",
    )
