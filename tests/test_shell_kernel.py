"""The runbook-shell kernel, driven through real jupyter_client as the runner drives it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import BlockingKernelClient, KernelManager
from jupyter_client.kernelspec import KernelSpecManager

from runner.shell_kernel.spec import KERNEL_NAME, ensure_kernelspec, install_kernelspec

TIMEOUT = 30  # seconds any single message may take; generous, never a speed assertion


@dataclass
class Cell:
    """What a client saw for one execute_request."""

    reply: dict[str, Any]  # execute_reply content
    streams: list[tuple[str, str]] = field(default_factory=list)  # (name, text) in order
    errors: list[dict[str, Any]] = field(default_factory=list)  # iopub error contents

    def text(self, name: str) -> str:
        return "".join(text for stream, text in self.streams if stream == name)


def execute(
    kc: BlockingKernelClient,
    code: str,
    user_expressions: dict[str, str] | None = None,
    on_stream: Callable[[str], None] | None = None,
) -> Cell:
    """Run ``code``; collect this request's iopub output until idle, then its reply."""
    msg_id = kc.execute(code, user_expressions=user_expressions or {})
    streams: list[tuple[str, str]] = []
    errors: list[dict[str, Any]] = []
    while True:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            streams.append((content["name"], content["text"]))
            if on_stream is not None:
                on_stream(content["text"])
        elif kind == "error":
            errors.append(content)
        elif kind == "status" and content["execution_state"] == "idle":
            break
    while True:
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        if reply["parent_header"].get("msg_id") == msg_id:
            return Cell(reply["content"], streams, errors)


def start_kernel() -> tuple[KernelManager, BlockingKernelClient]:
    ensure_kernelspec()
    km = KernelManager(kernel_name=KERNEL_NAME)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=TIMEOUT)
    return km, kc


@pytest.fixture(scope="module")
def kernel() -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    km, kc = start_kernel()
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel()


@pytest.fixture
def kc(kernel: tuple[KernelManager, BlockingKernelClient]) -> BlockingKernelClient:
    return kernel[1]


def value(cell: Cell, name: str) -> str:
    entry = cell.reply["user_expressions"][name]
    assert entry["status"] == "ok", entry
    text: str = entry["data"]["text/plain"]
    return text


def test_kernel_info_describes_a_bash_kernel(kc: BlockingKernelClient) -> None:
    kc.kernel_info()
    info = kc.get_shell_msg(timeout=TIMEOUT)["content"]
    assert info["implementation"] == "runbook-shell"
    assert info["language_info"]["name"] == "bash"
    assert info["language_info"]["mimetype"] == "text/x-sh"
    assert info["language_info"]["file_extension"] == ".sh"


def test_directory_variables_and_exports_persist(kc: BlockingKernelClient, tmp_path: Path) -> None:
    first = execute(kc, f"cd {tmp_path}\nPLAIN=kept\nexport EXPORTED=inherited")
    assert first.reply["status"] == "ok"
    second = execute(kc, 'pwd; echo "$PLAIN"; bash -c \'echo "$EXPORTED"\'')
    assert second.text("stdout") == f"{tmp_path}\nkept\ninherited\n"


def test_stdout_and_stderr_arrive_as_separate_streams(kc: BlockingKernelClient) -> None:
    cell = execute(kc, "echo to-out; echo to-err >&2")
    assert cell.text("stdout") == "to-out\n"
    assert cell.text("stderr") == "to-err\n"


def test_failing_last_command_is_an_error_with_its_exit_status(kc: BlockingKernelClient) -> None:
    cell = execute(kc, "echo before; (exit 4)")
    assert cell.reply["status"] == "error"
    assert cell.reply["ename"] == "ExitStatus"
    assert cell.reply["evalue"] == "line 1: `( exit 4 )` exited 4"
    assert cell.reply["exit_status"] == 4
    assert [e["ename"] for e in cell.errors] == ["ExitStatus"]
    assert cell.text("stdout") == "before\n"


def test_the_first_failing_command_stops_the_cell(kc: BlockingKernelClient) -> None:
    cell = execute(kc, "echo about to fail\nfalse\necho should not print")
    assert cell.reply["status"] == "error"
    assert cell.reply["evalue"] == "line 2: `false` exited 1"
    assert cell.reply["runbook"]["failure"] == {"line": 2, "command": "false", "status": 1}
    assert cell.text("stdout") == "about to fail\n"
    assert execute(kc, "echo alive").text("stdout") == "alive\n"


TESTED = """if false; then echo no; fi
false || echo handled-or
false && echo no
! false
while false; do :; done
f() { false; echo f-goes-on; }
if f; then echo f-in-if; fi
echo done"""


def test_tested_commands_do_not_stop_the_cell_as_with_set_e(kc: BlockingKernelClient) -> None:
    cell = execute(kc, TESTED)
    assert cell.reply["status"] == "ok", cell.reply
    assert cell.text("stdout") == "handled-or\nf-goes-on\nf-in-if\ndone\n"


@pytest.mark.parametrize(
    ("code", "line", "command"),
    [
        ("f() {\n  echo in-f\n  false\n  echo no\n}\nf\necho no", 3, "false"),
        ("for i in 1 2 3; do\n  if ((i == 2)); then (exit 9); fi\ndone\necho no", 2, "( exit 9 )"),
        ("x=$(false; echo sub)\necho no", 1, "x=$(false; echo sub)"),
        ("echo a | false | cat\necho no", 1, "cat"),
    ],
    ids=["in-a-function", "in-a-loop", "command-substitution", "pipeline"],
)
def test_a_failure_anywhere_stops_the_cell_and_names_its_line(
    kc: BlockingKernelClient, code: str, line: int, command: str
) -> None:
    cell = execute(kc, code)
    assert cell.reply["status"] == "error"
    assert cell.reply["runbook"]["failure"]["line"] == line
    assert cell.reply["runbook"]["failure"]["command"] == command
    assert "no" not in cell.text("stdout").split()


def test_set_plus_e_and_errexit_false_turn_the_stop_off(kc: BlockingKernelClient) -> None:
    cell = execute(kc, "set +e\nfalse\necho goes-on\nset -e\nfalse\necho no")
    assert cell.reply["runbook"]["failure"]["line"] == 5
    assert cell.text("stdout") == "goes-on\n"
    # Scoped to its cell: the next one stops at its first failure again.
    again = execute(kc, "false\necho no")
    assert again.reply["status"] == "error"
    assert again.text("stdout") == ""


def test_errexit_false_in_the_request_metadata_runs_every_line(
    kernel: tuple[KernelManager, BlockingKernelClient],
) -> None:
    _, kc = kernel
    content = {"code": "false\necho goes-on\ntrue", "silent": False, "user_expressions": {}}
    msg = kc.session.msg("execute_request", content, metadata={"runbook": {"errexit": False}})
    kc.shell_channel.send(msg)
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    while reply["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
        reply = kc.get_shell_msg(timeout=TIMEOUT)
    assert reply["content"]["status"] == "ok"


def test_set_options_written_in_a_cell_are_scoped_to_it(kc: BlockingKernelClient) -> None:
    cell = execute(kc, 'set -euo pipefail\necho "flags=$-"')
    assert cell.reply["status"] == "ok"
    assert "u" in cell.text("stdout")
    after = execute(kc, 'echo "${NEVER_SET_ANYWHERE}flags=$-"')
    assert after.reply["status"] == "ok"
    assert "u" not in after.text("stdout").split("=", 1)[1]


def test_set_of_positional_parameters_is_refused_loudly(kc: BlockingKernelClient) -> None:
    cell = execute(kc, "set -- a b\necho no")
    assert cell.reply["status"] == "error"
    assert "use an array" in cell.text("stderr")


def test_exit_ends_the_cell_with_its_status_and_keeps_the_shell(
    kc: BlockingKernelClient, tmp_path: Path
) -> None:
    before = execute(kc, "true", user_expressions={"pid": "$$"})
    cell = execute(
        kc, f"cd {tmp_path}\nexport KEPT=yes\nhelper() {{ echo helped; }}\nexit 3\necho no"
    )
    assert cell.reply["status"] == "error"
    assert cell.reply["exit_status"] == 3
    assert cell.reply["evalue"] == "exit 3"
    assert cell.reply["runbook"]["exited"] is True
    assert cell.text("stdout") == ""
    after = execute(kc, 'echo "$PWD $KEPT"; helper', user_expressions={"pid": "$$"})
    assert after.text("stdout") == f"{tmp_path} yes\nhelped\n"
    assert value(after, "pid") == value(before, "pid")


def test_exit_zero_in_a_function_ends_the_cell_successfully(kc: BlockingKernelClient) -> None:
    cell = execute(kc, "finish() { echo finishing; exit 0; }\nfinish\necho no")
    assert cell.reply["status"] == "ok"
    assert cell.text("stdout") == "finishing\n"


def test_exit_in_a_subshell_only_ends_the_subshell(kc: BlockingKernelClient) -> None:
    cell = execute(kc, '(exit 4) || echo "sub=$?"\necho after')
    assert cell.reply["status"] == "ok"
    assert cell.text("stdout") == "sub=4\nafter\n"


def test_a_failing_command_in_a_pipeline_fails_the_cell(kc: BlockingKernelClient) -> None:
    # `curl -f URL | jq ...` must fail when curl does, or a step reports success for a 503.
    cell = execute(kc, "(exit 7) | cat")
    assert cell.reply["status"] == "error"
    assert cell.reply["exit_status"] == 7


def test_cell_code_does_not_stay_on_disk(kc: BlockingKernelClient) -> None:
    # The runner injects secret inputs as cells; their text must not linger in a file.
    cell = execute(kc, "export PROBE_SECRET=hunter2-value", user_expressions={"d": "${PWD}"})
    assert cell.reply["status"] == "ok"
    leftovers = [
        path
        for path in Path(tempfile.gettempdir()).glob("runbook-shell-*/*")
        if "hunter2-value" in path.read_text(errors="replace")
    ]
    assert leftovers == []


def test_multi_line_code_with_functions_loops_and_heredocs(kc: BlockingKernelClient) -> None:
    code = """greet() {
  local who=$1
  echo "hello $who"
}
for name in ada grace; do
  greet "$name"
done
cat <<EOF
heredoc sees $(greet linus)
EOF
"""
    cell = execute(kc, code)
    assert cell.reply["status"] == "ok"
    assert cell.text("stdout") == "hello ada\nhello grace\nheredoc sees hello linus\n"
    assert execute(kc, "greet again").text("stdout") == "hello again\n"


def test_user_expressions_read_shell_state_after_the_cell(kc: BlockingKernelClient) -> None:
    cell = execute(
        kc,
        "TICKET_ID=INC-4242\nNOTE='two words'",
        user_expressions={"ticket": "$TICKET_ID", "note": "$NOTE", "unset": "${NEVER_SET:-}"},
    )
    assert value(cell, "ticket") == "INC-4242"
    assert value(cell, "note") == "two words"
    assert value(cell, "unset") == ""


def test_user_expression_that_cannot_expand_is_reported_as_error(
    kc: BlockingKernelClient,
) -> None:
    cell = execute(kc, "true", user_expressions={"bad": "${NEVER_SET:?}", "ok": "fine"})
    assert cell.reply["user_expressions"]["bad"]["status"] == "error"
    assert value(cell, "ok") == "fine"


def test_a_killed_shell_is_replaced_in_its_directory_and_says_what_was_lost(
    kc: BlockingKernelClient, tmp_path: Path
) -> None:
    before = execute(
        kc, f"cd {tmp_path}; export LOST=yes; gone() {{ :; }}", user_expressions={"pid": "$$"}
    )
    cell = execute(kc, "echo leaving; kill -KILL $$")
    assert cell.reply["status"] == "error"
    assert cell.reply["ename"] == "ShellExited"
    restarted = cell.reply["runbook"]["restarted"]
    assert restarted["cwd"] == str(tmp_path)
    assert "LOST" in restarted["lost_exports"]
    assert "gone" in restarted["lost_functions"]
    assert "leaving\n" in cell.text("stdout")
    after = execute(kc, 'echo "lost=${LOST:-} $PWD"', user_expressions={"pid": "$$"})
    assert after.reply["status"] == "ok"
    assert after.text("stdout") == f"lost= {tmp_path}\n"
    assert value(after, "pid") != value(before, "pid")


def interrupt_by_message(km: KernelManager) -> None:
    km.interrupt_kernel()


def interrupt_by_signal(km: KernelManager) -> None:
    km.signal_kernel(signal.SIGINT)


@pytest.mark.parametrize("interrupt", [interrupt_by_message, interrupt_by_signal])
@pytest.mark.parametrize(
    "code",
    ["sleep 30", "spin() { while :; do :; done; }; spin"],
    ids=["sleep", "builtin-loop"],
)
def test_interrupt_stops_the_cell_and_keeps_the_shell(
    kernel: tuple[KernelManager, BlockingKernelClient],
    interrupt: Callable[[KernelManager], None],
    code: str,
) -> None:
    km, kc = kernel
    execute(kc, "SURVIVES=yes")

    def on_stream(text: str) -> None:
        if "started" in text:
            interrupt(km)

    cell = execute(kc, f"echo started\n{code}\necho not-reached", on_stream=on_stream)
    assert cell.reply["status"] == "error"
    assert cell.reply["ename"] == "KeyboardInterrupt"
    assert "not-reached" not in cell.text("stdout")
    after = execute(kc, 'echo "survives=$SURVIVES"')
    assert after.reply["status"] == "ok"
    assert after.text("stdout") == "survives=yes\n"


def test_ten_thousand_lines_all_arrive_in_order(kc: BlockingKernelClient) -> None:
    cell = execute(kc, "seq 1 10000")
    assert cell.text("stdout") == "".join(f"{n}\n" for n in range(1, 10001))


def test_commands_reading_stdin_get_end_of_file(kc: BlockingKernelClient) -> None:
    cell = execute(kc, 'read -r line || echo "read=$?"; cat; echo done')
    assert cell.reply["status"] == "ok"
    assert cell.text("stdout") == "read=1\ndone\n"


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie awaiting its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_shutdown_leaves_no_bash_or_child_behind() -> None:
    km, kc = start_kernel()
    cell = execute(kc, "sleep 300 &", user_expressions={"bash": "$$", "child": "$!"})
    pids = [int(value(cell, "bash")), int(value(cell, "child"))]
    assert all(running(pid) for pid in pids)
    kc.stop_channels()
    km.shutdown_kernel()
    # A SIGKILLed process may linger for a moment until it is reaped.
    deadline = time.monotonic() + TIMEOUT
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(running(pid) for pid in pids)


def test_install_kernelspec_into_a_prefix(tmp_path: Path) -> None:
    path = install_kernelspec(prefix=str(tmp_path))
    spec = json.loads((Path(path) / "kernel.json").read_text())
    assert spec["argv"] == [sys.executable, "-m", "runner.shell_kernel", "-f", "{connection_file}"]
    assert spec["display_name"] == "Shell (runbook)"
    assert spec["language"] == "bash"
    manager = KernelSpecManager(kernel_dirs=[str(tmp_path / "share" / "jupyter" / "kernels")])
    assert manager.get_kernel_spec(KERNEL_NAME).display_name == "Shell (runbook)"


def test_module_install_command_writes_the_kernelspec(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "runner.shell_kernel", "install", "--prefix", str(tmp_path)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    kernel_json = tmp_path / "share" / "jupyter" / "kernels" / KERNEL_NAME / "kernel.json"
    assert json.loads(kernel_json.read_text())["language"] == "bash"
