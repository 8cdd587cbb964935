"""Loops (`foreach=`) and sub-runbook calls (```runbook blocks) read from a block's attributes.

The parser hands over the attributes as written; this module builds the typed `Loop` and
`Call` and says what is wrong with them (RB100-RB116, docs/format.md). What needs the rest of
the runbook (does the list source exist, is the called runbook there) is `check`'s
(runner/check/flow.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

import yaml

from runner.format import syntax as fmt
from runner.format.model import Call, Loop, Scalar

LOOP_KEYS = ("foreach", "as", "approve_each", "on_item_failure")
CALL_KEYS = ("runbook", "with")
#: What a ```runbook block may carry besides its own keys: the step's policies that mean
#: something for a whole sub-runbook. Timeouts and retries belong to the called steps.
CALL_ALLOWED = frozenset({"id", "name", "role", "approve", "when", "on_failure", "outputs", "end"})

Found = list[tuple[str, str]]  # (code, message)

# name=value pairs, the value a bare word or a quoted literal; separated by commas.
_PAIR_RE = re.compile(
    r"""\s*(?P<key>[^\s=,]+)\s*=\s*(?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|$)"""
)


def literal_items(text: str) -> tuple[Scalar, ...]:
    """`[etcd-1, etcd-2]` -> the items; ValueError (with the fix) for anything else."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem", None) or "it does not parse"
        raise ValueError(f"the literal list does not parse ({mark}); write [a, b, c]") from None
    if not isinstance(value, list):
        raise ValueError('a literal foreach= is a list in brackets, e.g. foreach="[a, b, c]"')
    if not value:
        raise ValueError("the literal list is empty: the step would do nothing")
    for item in value:
        if isinstance(item, list | dict) or item is None:
            raise ValueError(f"each item is a word or a number, not {item!r}")
    return tuple(value)


def read_loop(attrs: Mapping[str, str], executable: bool, lang: str) -> tuple[Loop | None, Found]:
    """The block's loop, and what is wrong with its attributes."""
    found: Found = []
    given = [k for k in LOOP_KEYS if k in attrs]
    if not given:
        return None, found
    if "foreach" not in attrs:
        found.append(
            (
                "RB100",
                f"{', '.join(given)} without foreach=: nothing loops; add "
                "foreach=LIST or remove them",
            )
        )
        return None, found
    if not executable:
        found.append(
            (
                "RB100",
                "foreach= on a block that does not run (documentation): "
                "nothing loops; use a runnable language such as ```bash",
            )
        )
        return None, found
    if lang == fmt.CALL_KERNEL:
        found.append(
            (
                "RB105",
                "foreach= on a ```runbook block is not supported; call the "
                "runbook from a step per item, or loop inside the called runbook",
            )
        )
        return None, found
    source = attrs["foreach"].strip()
    items: tuple[Scalar, ...] | None = None
    if source.startswith("[") or not fmt.IDENT_RE.match(source):
        try:
            items = literal_items(source)
        except ValueError as exc:
            found.append(("RB102", f"foreach={source!r}: {exc}"))
            return None, found
    var = attrs.get("as", "item").strip()
    if not fmt.IDENT_RE.match(var):
        found.append(("RB031", f"as={var!r}: the item's name is an identifier, e.g. as=member"))
        return None, found
    policy = attrs.get("on_item_failure", "stop").strip()
    if policy not in fmt.ITEM_FAILURE_POLICIES:
        found.append(
            (
                "RB031",
                f"on_item_failure={policy!r}: expected one of "
                + ", ".join(fmt.ITEM_FAILURE_POLICIES),
            )
        )
        return None, found
    try:
        each = fmt.parse_bool(attrs.get("approve_each", "false"))
    except ValueError as exc:
        found.append(("RB031", f"approve_each: {exc}"))
        return None, found
    return Loop(source, items, var, each, policy), found


def read_call(
    attrs: Mapping[str, str], lang: str, code: str, runnable: bool
) -> tuple[Call | None, Found]:
    """A ```runbook block's call, and what is wrong with it."""
    found: Found = []
    if lang != fmt.CALL_KERNEL or not runnable:
        stray = [k for k in CALL_KEYS if k in attrs]
        if stray:
            found.append(
                (
                    "RB110",
                    f"{', '.join(stray)}= applies to a ```runbook block only; "
                    'write the call as ```runbook {runbook=ID with="..."}',
                )
            )
        return None, found
    target = attrs.get("runbook", "").strip()
    if not target or not fmt.SLUG_RE.match(target):
        found.append(
            (
                "RB110",
                "a ```runbook block names the runbook it runs: "
                '```runbook {runbook=contain-host with="host_id=host_id"}',
            )
        )
        return None, found
    extra = sorted(k for k in attrs if k not in CALL_ALLOWED and k not in CALL_KEYS)
    if extra:
        found.append(
            (
                "RB110",
                f"{', '.join(extra)} cannot apply to a ```runbook block (its "
                "steps have their own); set them in the called runbook",
            )
        )
    if code.strip():
        found.append(
            (
                "RB110",
                "a ```runbook block's body is not read; put the inputs in "
                'with="name=value,..." and describe the call in the step\'s text',
            )
        )
    try:
        mapping = parse_with(attrs.get("with", ""))
    except ValueError as exc:
        found.append(("RB110", f"with={attrs.get('with', '')!r}: {exc}"))
        return None, found
    return Call(target, MappingProxyType(mapping)), found


def parse_with(text: str) -> dict[str, str]:
    """`host_id=hostname,reason='GuardDuty finding'` -> child input -> value as written."""
    out: dict[str, str] = {}
    pos, end = 0, len(text.rstrip())
    while pos < end:
        match = _PAIR_RE.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(
                f"cannot read {text[pos:][:30]!r}; write name=value pairs, separated by commas"
            )
        key, value = match.group("key"), match.group("value")
        if not fmt.IDENT_RE.match(key):
            raise ValueError(f"{key!r} is not an input name")
        if not value:
            raise ValueError(f"{key}= has no value; give a name of this run or a 'literal'")
        if key in out:
            raise ValueError(f"{key} is given twice")
        out[key] = value
        pos = match.end()
    return out
