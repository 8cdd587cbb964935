"""A decision's answer, read and checked against its question's type.

One function for every place an answer comes from (the terminal, `--answer`, `runbook answer`,
a drill scenario), so they accept and refuse exactly the same values.
"""

from __future__ import annotations

from runner.format.model import Question

YES = frozenset({"yes", "y", "true"})
NO = frozenset({"no", "n", "false"})
#: Longest text answer: a decision is a short answer, not a report.
MAX_TEXT = 500


def read_answer(question: Question, raw: object) -> str | int | float:
    """The answer as recorded: `yes`/`no`, one of the choices as written, a number, or the
    text. ValueError with what the question accepts when it does not fit."""
    text = str(raw).strip() if not isinstance(raw, bool) else ("yes" if raw else "no")
    kind = question.type
    if kind == "yesno":
        low = text.lower()
        if low in YES:
            return "yes"
        if low in NO:
            return "no"
        raise ValueError(f"answer yes or no, not {text!r}")
    if kind == "choice":
        for choice in question.choices:
            if text.lower() == choice.lower():
                return choice
        raise ValueError(f"answer one of {', '.join(question.choices)}, not {text!r}")
    if kind == "number":
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"answer a number, not {text!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(f"answer a finite number, not {text!r}")
        return number
    if not text:
        raise ValueError("the answer is empty; type a short text")
    if len(text) > MAX_TEXT or "\n" in text:
        raise ValueError(f"answer one line of at most {MAX_TEXT} characters")
    return text


def accepted(question: Question) -> str:
    """What the question accepts, as a prompt says it: `yes/no`, `a/b/c`, `a number`."""
    if question.type == "yesno":
        return "yes/no"
    if question.type == "choice":
        return "/".join(question.choices)
    return "a number" if question.type == "number" else "a short text"
