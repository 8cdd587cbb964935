"""The person (or stand-in) the engine asks for every decision.

The engine never reads the terminal itself: it asks an :class:`Operator`. Three stand behind it:

- :class:`TerminalOperator`: a person at a TTY, with rich prompts;
- :class:`UnattendedOperator`: ``--yes`` or no TTY: runs every executable step, skips manual
  steps ("manual step, needs a person"), applies each step's ``on_failure`` after a failure,
  and never approves anything itself (fail closed);
- :class:`ScriptedOperator`: answers from a list, for drills and tests.

Long on purpose: every question the engine may ask (step, manual step, failure, approval,
decision) with its three answerers side by side, so none of them misses one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.text import Text

from runner.format.answers import accepted, read_answer
from runner.format.model import Question, Step
from runner.text.gate import Evidence, evidence_view
from runner.text.terminal import fold_lines, visible

#: The reason recorded for a manual step in an unattended run.
MANUAL_SKIP_REASON = "manual step, needs a person"


@dataclass(frozen=True, slots=True)
class Decision:
    """An answer to one prompt."""

    # run | skip | quit | retry | done | continue | on_failure (apply the step's policy) |
    # offscript
    action: str
    note: str | None = None  # the operator's optional note
    code: str = ""  # for offscript: the command to run
    language: str | None = None  # for offscript: "python" or "bash"; None = the step's kernel
    waited: float = 0.0  # seconds from prompt to answer


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """What an approver sees before deciding."""

    step: Step
    procedure: str | None
    code: str  # the exact code, with the values it uses shown (secrets redacted)
    approver_role: str | None  # `approve=ROLE`
    evidence: tuple[tuple[str, str, str, str], ...]  # (step, title, status, why) so far
    run_operator: str
    distinct_required: bool  # the two-person rule is on
    # (name, the run's value, the kernel's value now) where an off-script command changed a
    # value the code uses; secrets redacted.
    changed: tuple[tuple[str, str, str], ...] = ()
    needed: int = 1  # a quorum: distinct approvals the gate needs ...
    have: int = 0  # ... and has already (this approver gives one of the rest)
    deadline: float | None = None  # when the gate expires (epoch seconds), if it does


@dataclass(frozen=True, slots=True)
class Approval:
    """An approver's answer."""

    decision: str  # approved | denied
    by: str
    role: str | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """A person's answer to a decision step: a value of the question's type, or an action."""

    action: str  # answer | later (the run pauses) | quit
    value: str | int | float | None = None
    by: str = ""
    source: str = "terminal"  # terminal | scenario
    waited: float = 0.0  # seconds from the question to the answer


class Operator(Protocol):
    """Everything the engine may ask a person."""

    name: str  # who is running the run (journaled as `operator`)
    interactive: bool  # a person answers (decisions are journaled)

    def before_step(self, step: Step, index: int, total: int) -> Decision: ...

    def manual(self, step: Step, index: int, total: int) -> Decision: ...

    def after_failure(self, step: Step, status: str, error: str | None) -> Decision: ...

    def approve(self, request: ApprovalRequest) -> Approval | None:
        """The decision, or None when nobody can decide now (the run pauses)."""
        ...

    def answer(self, step: Step, question: Question) -> Answer:
        """A decision step's answer, checked against its type (`later`: the run pauses)."""
        ...


class UnattendedOperator:
    """`--yes` or no TTY: run everything executable, never approve, and after a failure do what
    the step's ``on_failure`` says (the engine applies it without asking)."""

    interactive = False

    def __init__(self, name: str) -> None:
        self.name = name

    def before_step(self, step: Step, index: int, total: int) -> Decision:
        return Decision("run")

    def manual(self, step: Step, index: int, total: int) -> Decision:
        return Decision("skip", note=MANUAL_SKIP_REASON)

    def after_failure(self, step: Step, status: str, error: str | None) -> Decision:
        return Decision("on_failure")

    def approve(self, request: ApprovalRequest) -> Approval | None:
        return None

    def answer(self, step: Step, question: Question) -> Answer:
        return Answer("later")  # nobody to ask: the run pauses (or takes --answer)


@dataclass
class ScriptedOperator:
    """Answers prompts from a script, in order: drills and tests drive the engine with it.

    ``answers`` are strings such as ``"run"``, ``"skip: not today"``, ``"!echo hi"`` (an
    off-script command), ``"on_failure"`` (after a failure: apply the step's policy) or
    ``"approve:alice"`` / ``"deny:bob:too risky"``. When the script runs out, the operator
    behaves like :class:`UnattendedOperator` (run, skip manual steps, apply ``on_failure``
    after a failure, no approval).
    """

    name: str = "scripted"
    answers: list[str] = field(default_factory=list)
    interactive: bool = True
    asked: list[str] = field(default_factory=list)  # the prompts seen, for assertions

    def _next(self, prompt: str) -> str | None:
        self.asked.append(prompt)
        return self.answers.pop(0) if self.answers else None

    def before_step(self, step: Step, index: int, total: int) -> Decision:
        return _parse_answer(self._next(f"step {step.number}"), "run")

    def manual(self, step: Step, index: int, total: int) -> Decision:
        return _parse_answer(self._next(f"manual {step.number}"), "skip", MANUAL_SKIP_REASON)

    def after_failure(self, step: Step, status: str, error: str | None) -> Decision:
        return _parse_answer(self._next(f"{status} {step.number}"), "on_failure")

    def approve(self, request: ApprovalRequest) -> Approval | None:
        answer = self._next(f"approve {request.step.number}")
        if not answer:
            return None
        verb, _, rest = answer.partition(":")
        by, _, comment = rest.partition(":")
        decision = "approved" if verb == "approve" else "denied"
        return Approval(decision, by or self.name, request.approver_role, comment or None)

    def answer(self, step: Step, question: Question) -> Answer:
        """``"answer:VALUE"`` or ``"answer:VALUE:by"``; a value that does not fit the type is
        refused as at the terminal (recorded in ``asked``) and the next answer taken."""
        while True:
            given = self._next(f"answer {step.number}")
            if given is None or given == "later":
                return Answer("later")
            if given == "quit":
                return Answer("quit")
            _, _, rest = given.partition(":")
            value, _, by = rest.partition(":")
            try:
                return Answer("answer", read_answer(question, value), by or self.name)
            except ValueError as exc:
                self.asked.append(f"refused: {exc}")


def _parse_answer(answer: str | None, default: str, default_note: str | None = None) -> Decision:
    if answer is None:
        return Decision(default, note=default_note)
    if answer.startswith("!"):
        return Decision("offscript", code=answer[1:].strip())
    action, _, note = answer.partition(":")
    return Decision(action.strip(), note=note.strip() or None)


# --- the terminal ------------------------------------------------------------------------------

_STEP_KEYS = {"r": "run", "s": "skip", "q": "quit", "": "run"}
_FAIL_KEYS = {"r": "retry", "s": "skip", "q": "quit"}
_MANUAL_KEYS = {"d": "done", "s": "skip", "q": "quit"}

HELP = """[bold]Keys[/]
  [bold]r[/] / Enter  run the step          [bold]s[/]  skip it (you may add a note)
  [bold]q[/]          quit the run            [bold]?[/]  this help
  [bold]!CMD[/]       run CMD off-script in the step's kernel (journaled)
  [bold]!py CMD[/] / [bold]!sh CMD[/]  run it in the Python or shell kernel
After a failure: [bold]r[/] retry, [bold]s[/] skip and go on, [bold]q[/] quit; when the step
  names an on_failure policy, [bold]p[/] runs its alternative procedure, or [bold]c[/] continues.
Manual steps: [bold]d[/] done, [bold]s[/] skip, [bold]q[/] quit; then an optional note.
Approvals: [bold]a[/] approve, [bold]d[/] deny, [bold]l[/] leave for later (the run pauses).
Ctrl-C during a step: [bold]1[/] interrupts the step, [bold]2[/] restarts the kernel and cancels
  the step, [bold]3[/] ends the run. Ctrl-C (or Ctrl-D) at a prompt ends the run.
Up/Down recall earlier answers; the line can be edited as in a shell."""


def failure_keys(step: Step) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The answers after a failure of ``step``: key -> action, and (key, label) to show. The
    step's own ``on_failure`` is offered when it names something other than the default stop."""
    keys = dict(_FAIL_KEYS)
    choices = [("r", "retry"), ("s", "skip and go on"), ("q", "quit")]
    policy = step.on_failure
    if policy.startswith("procedure:"):
        keys["p"] = "on_failure"
        choices.append(("p", f"run procedure {policy.split(':', 1)[1]}"))
    elif policy == "continue":
        keys["c"] = "on_failure"
        choices.append(("c", "continue, as the runbook says"))
    return keys, choices


class TerminalOperator:
    """A person at a terminal."""

    interactive = True

    def __init__(
        self, name: str, console: Console, read: Callable[[str], str] | None = None
    ) -> None:
        self.name = name
        self.console = console
        self._readline = read is None and _line_editing()
        self._read = read or input
        self._shown: ApprovalRequest | None = None  # the approval request last displayed
        # An earlier step's last lines of output, by its label (`3`, `proc:2`), for the
        # approver's evidence; the live display, which saw the output, sets it.
        self.tail: Callable[[str], tuple[str, ...]] = lambda label: ()

    def _ask(self, prompt: str) -> str:
        try:
            if self._readline:
                # readline must be handed the prompt: printed apart, a recalled history line
                # or a Ctrl-A would redraw over it.
                return self._read(_readline_prompt(self.console, prompt)).strip()
            self.console.print(prompt, end="", markup=True, highlight=False)
            return self._read("").strip()
        except EOFError:
            # Ctrl-D (end of input): the person left; end the run as Ctrl-C at a prompt does,
            # so the engine journals it cancelled instead of the error escaping unrecorded.
            raise KeyboardInterrupt from None

    def _choose(self, prompt: str, keys: Mapping[str, str], allow_offscript: bool) -> Decision:
        started = time.monotonic()
        while True:
            answer = self._ask(prompt)
            if answer == "?":
                self.console.print(HELP)
                continue
            if allow_offscript and answer.startswith("!"):
                return _offscript(answer[1:].strip())
            action = keys.get(answer.lower()[:1] if answer else "")
            if action is not None:
                return Decision(action, waited=time.monotonic() - started)
            self.console.print(f"[yellow]unknown answer {escape(answer)!r}; ? shows the keys[/]")

    def _code(self, code: str, lang: str) -> Syntax:
        """Code as a person must see it before running or approving it: every byte. Lines
        wider than the terminal are folded with a visible mark, never cut off."""
        width = max(20, self.console.width - 1)
        return Syntax(fold_lines(visible(code.rstrip("\n")), width), lang, theme="ansi_dark")

    def before_step(self, step: Step, index: int, total: int) -> Decision:
        for block in step.executable_blocks:
            self.console.print(self._code(block.code, block.lang or "text"))
        decision = self._choose(
            "[bold]run[/] (r/Enter), skip (s), quit (q), ? help > ", _STEP_KEYS, True
        )
        if decision.action == "skip":
            return Decision("skip", note=self._ask("note (optional) > ") or None)
        return decision

    def manual(self, step: Step, index: int, total: int) -> Decision:
        decision = self._choose(
            "[bold]done[/] (d), skip (s), quit (q), ? help > ", _MANUAL_KEYS, True
        )
        if decision.action in ("done", "skip"):
            note = self._ask("note (optional) > ") or None
            return Decision(decision.action, note=note, waited=decision.waited)
        return decision

    def after_failure(self, step: Step, status: str, error: str | None) -> Decision:
        self.console.print(
            f"[red]step {step.number} {status}[/]" + (f": {escape(error)}" if error else "")
        )
        keys, choices = failure_keys(step)
        prompt = ", ".join(f"{escape(label)} ({key})" for key, label in choices)
        return self._choose(f"{prompt}, ? help > ", keys, True)

    def approve(self, request: ApprovalRequest) -> Approval | None:
        if request is not self._shown:  # asked again after a refusal: the facts are on screen
            self._shown = request
            self._show_request(request)
        while True:
            answer = self._ask("approve (a), deny (d), or leave for later (l) > ").lower()[:1]
            if answer in ("a", "d", "l"):
                break
        if answer == "l":
            return None
        by = self._approver_name(request)
        role = request.approver_role
        # escape() the whole "[default]": rich would take a bare [word] for a style tag.
        held = self._ask(f"approver's role {escape(f'[{role}]')} > ") if role else ""
        comment = self._ask("comment (optional) > ") or None
        return Approval("approved" if answer == "a" else "denied", by, held or role, comment)

    def answer(self, step: Step, question: Question) -> Answer:
        """Ask until the answer fits the question's type; `l` leaves it for later (the run
        pauses), `q` quits."""
        started = time.monotonic()
        self.console.print(Text(f"? {visible(question.text)}", style="bold yellow"))
        prompt = f"answer ({escape(visible(accepted(question)))}), later (l), quit (q) > "
        while True:
            given = self._ask(prompt)
            if given.lower() in ("l", "later"):
                return Answer("later", by=self.name)
            if given.lower() in ("q", "quit"):
                return Answer("quit", by=self.name)
            try:
                value = read_answer(question, given)
            except ValueError as exc:
                self.console.print(Text(f"not an answer: {visible(str(exc))}", style="yellow"))
                continue
            return Answer("answer", value, self.name, waited=time.monotonic() - started)

    def _show_request(self, request: ApprovalRequest) -> None:
        c = self.console
        role = request.approver_role
        c.print(
            f"[bold yellow]Approval needed[/] for step {request.step.number} "
            f"{escape(visible(request.step.title))}"
            + (f" (approver role: {escape(visible(role))})" if role else "")
        )
        if request.needed > 1:
            c.print(
                f"Quorum: {request.needed} distinct approvers; {request.have} of "
                f"{request.needed} so far. One approval is given here; the others with "
                "`runbook approve`, then `runbook resume`."
            )
        if request.deadline is not None:
            import datetime as dt

            at = dt.datetime.fromtimestamp(request.deadline, dt.UTC).strftime("%H:%M:%S UTC")
            c.print(f"The gate expires at {at}; an answer after that is refused.")
        if request.evidence:
            rows = [
                Evidence(label, title, status, why, self.tail(label))
                for label, title, status, why in request.evidence
            ]
            c.print(evidence_view(rows))
        c.print("The code to approve, with the values it uses:")
        # The code holds input values (alert fields): escaped, so what is approved is what is seen.
        c.print(self._code(request.code, "text"))
        for name, was, now in request.changed:
            c.print(
                Text(
                    f"⚠ {visible(name)} was changed off-script: {visible(was)!r} when the run "
                    f"started, {visible(now)!r} in the kernel now: the code runs with that",
                    style="bold yellow",
                )
            )
        if request.distinct_required:
            who = escape(visible(request.run_operator))
            c.print(f"Two-person rule: the approver may not be {who}.")

    def _approver_name(self, request: ApprovalRequest) -> str:
        if not request.distinct_required:
            default = request.run_operator
            return self._ask(f"approver's name {escape(f'[{default}]')} > ") or default
        # No default under the two-person rule: the one it would offer is the one it refuses.
        while True:
            name = self._ask("approver's name > ")
            if name:
                return name


def _line_editing() -> bool:
    """Line editing and history (arrows, Ctrl-R) for input(): loading readline is enough."""
    try:
        import readline  # noqa: F401  (imported for its effect on input())
    except ImportError:  # not on every platform: the prompt still works, without editing
        return False
    return True


def _readline_prompt(console: Console, markup: str) -> str:
    """The prompt as input() must get it: styles rendered, each escape sequence wrapped in
    \\001...\\002 so readline does not count it as taking space on the line."""
    import re

    with console.capture() as captured:
        console.print(markup, end="", markup=True, highlight=False)
    return re.sub(r"(\x1b\[[0-9;]*m)", "\x01\\1\x02", captured.get())


def _offscript(text: str) -> Decision:
    head, _, rest = text.partition(" ")
    if head in ("py", "python"):
        return Decision("offscript", code=rest, language="python")
    if head in ("sh", "bash", "shell"):
        return Decision("offscript", code=rest, language="bash")
    return Decision("offscript", code=text)
