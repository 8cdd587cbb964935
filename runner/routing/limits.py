"""Bounds on an alert payload, checked before anything reads it.

The intake (next issue) will take payloads from the network, so a payload is judged before it
is trusted: size first (cheap), then UTF-8, then JSON, then shape. Every refusal is an
:class:`AlertError` that names the problem, and none leaves a partial result behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import msgspec

from runner.errors import RunbookError

MAX_BYTES = 5 * 1024 * 1024  # a payload; Alertmanager's largest groups are far smaller
MAX_DEPTH = 32  # nesting of objects and arrays
MAX_ITEMS = 10_000  # items of any one array, and alerts in one payload
MAX_STRING = 256 * 1024  # characters of any one string


class AlertError(RunbookError):
    """An alert payload that cannot be used: the message says what is wrong with it."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds, adjustable for tests and for the intake's configuration."""

    max_bytes: int = MAX_BYTES
    max_depth: int = MAX_DEPTH
    max_items: int = MAX_ITEMS
    max_string: int = MAX_STRING


DEFAULT = Limits()
_DECODER = msgspec.json.Decoder()


def decode_text(data: bytes, where: str, limits: Limits = DEFAULT) -> str:
    """The payload as text: within the size limit and valid UTF-8 (a BOM is dropped)."""
    if len(data) > limits.max_bytes:
        raise AlertError(
            f"the payload is {len(data):,} bytes, over the limit of {limits.max_bytes:,}; "
            "send the alerts in smaller batches",
            path=where,
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AlertError(
            f"the payload is not UTF-8 (byte {exc.start}: {data[exc.start : exc.start + 1]!r}); "
            "alerts are JSON, which is UTF-8",
            path=where,
        ) from None
    return text.removeprefix("\ufeff")


def parse_json(text: str, where: str, limits: Limits = DEFAULT) -> object:
    """One JSON document, within the shape limits."""
    try:
        value = _DECODER.decode(text.encode("utf-8"))
    except RecursionError:
        raise AlertError(_too_deep(limits), path=where) from None
    except msgspec.DecodeError as exc:
        raise AlertError(
            f"the payload is not JSON: {_json_problem(text, exc)}", path=where
        ) from None
    check_shape(value, where, limits)
    return value


def _json_problem(text: str, exc: msgspec.DecodeError) -> str:
    # msgspec says "malformed" and a byte offset; the standard library says line and column.
    try:
        json.loads(text)
    except json.JSONDecodeError as std:
        return f"{std.msg} at line {std.lineno}, column {std.colno}"
    except RecursionError:
        return "it is nested too deeply"
    return str(exc)


def _too_deep(limits: Limits) -> str:
    return f"the payload is nested more than {limits.max_depth} levels deep; no alert format is"


def check_shape(value: object, where: str, limits: Limits = DEFAULT) -> None:
    """Depth, array lengths and string lengths within bounds, walked without recursion."""
    stack: list[tuple[object, int]] = [(value, 1)]
    max_depth, max_items, max_string = limits.max_depth, limits.max_items, limits.max_string
    while stack:
        node, depth = stack.pop()
        kind = type(node)
        if kind is dict:
            children: list[object] = list(node.values())  # type: ignore[attr-defined]
        elif kind is list:
            children = node  # type: ignore[assignment]
            if len(children) > max_items:
                raise AlertError(
                    f"an array in the payload has {len(children):,} items, over the limit of "
                    f"{max_items:,}; send the alerts in smaller batches",
                    path=where,
                )
        else:
            if kind is str and len(node) > max_string:  # type: ignore[arg-type]
                raise AlertError(
                    f"a string in the payload is {len(node):,} characters long, over the "  # type: ignore[arg-type]
                    f"limit of {max_string:,}",
                    path=where,
                )
            continue
        if children:
            if depth >= max_depth:
                raise AlertError(_too_deep(limits), path=where)
            # Scalars need no visit unless they are strings, which are checked here.
            for child in children:
                ck = type(child)
                if ck is dict or ck is list or (ck is str and len(child) > max_string):  # type: ignore[arg-type]
                    stack.append((child, depth + 1))
