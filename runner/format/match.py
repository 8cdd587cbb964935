"""The match language of `trigger.match`: conditions over dotted paths of the alert envelope.

Written in the front matter as YAML and parsed once, with the runbook, into the typed objects
below; evaluating one is then a few dictionary lookups. The language, in full:

    match:
      source: alertmanager                  # a scalar: equals (the old `field: value` form)
      severity: {in: [high, critical]}      # one of
      labels.alertname: {regex: "^Http"}    # re.search; anchor with ^ and $
      labels.job: {glob: "portal-*"}        # shell-style, case-sensitive
      raw.risk_score: {gte: 70}             # gt, gte, lt, lte: numbers only
      entities.ips: {cidr: [10.0.0.0/8]}    # any listed network
      labels.team: {exists: true}
      any:                                  # all: / any: take a list of such mappings
        - labels.env: prod
        - labels.env: {glob: "prod-*"}
      not: {labels.silenced: "true"}

Entries of one mapping must all hold. A path reaching several values (a list) holds when any of
them satisfies the test; a path reaching none fails every test but `exists: false`.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from runner.format.paths import FieldPath, PathError, parse_path

Op = Literal["equals", "in", "regex", "glob", "gt", "gte", "lt", "lte", "cidr", "exists"]
OPERATORS: tuple[Op, ...] = (
    "equals", "in", "regex", "glob", "gt", "gte", "lt", "lte", "cidr", "exists"
)  # fmt: skip
COMBINATORS = ("all", "any", "not")
_NUMERIC = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConditionError(ValueError):
    """A condition that cannot be evaluated; ``loc`` is where it is, under `trigger.match`."""

    def __init__(self, message: str, loc: tuple[str, ...]) -> None:
        super().__init__(message)
        self.loc = loc


def normal(value: object) -> str:
    """A value as equality compares it: alerts send `5`, `"5"` and `5.0` for the same thing."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


@dataclass(frozen=True, slots=True)
class Miss:
    """Why a condition did not hold: the test that failed and what the alert had there."""

    test: str  # the failing test as written: "labels.job equals 'web'"
    found: str  # what the path reached: "'db'", or "nothing"


@dataclass(frozen=True, slots=True)
class Test:
    """One test of one path."""

    path: FieldPath
    op: Op
    # The operand in the form the test needs: a string, a frozenset of strings, a compiled
    # pattern, a number, networks, or a bool for `exists`.
    operand: str | frozenset[str] | re.Pattern[str] | float | tuple[Network, ...] | bool
    text: str  # as shown by --explain

    def holds(self, view: Mapping[str, object]) -> bool:
        """Whether the test holds: the fast path, with no Miss built for a test that fails."""
        values = self.path.values(view)
        if self.op == "exists":
            return bool(values) == self.operand
        for value in values:  # noqa: SIM110 -- a loop: any() of a generator costs more here
            if self._holds(value):
                return True
        return False

    def miss(self, view: Mapping[str, object]) -> Miss | None:
        values = self.path.values(view)
        if self.op == "exists":
            if bool(values) == self.operand:
                return None
        else:
            for value in values:
                if self._holds(value):
                    return None
        return Miss(self.text, _found(values))

    def _holds(self, value: object) -> bool:
        operand = self.operand
        if isinstance(operand, str):  # equals and glob
            if self.op == "glob":
                return isinstance(value, str) and fnmatch.fnmatchcase(value, operand)
            return normal(value) == operand
        if isinstance(operand, frozenset):
            return normal(value) in operand
        if isinstance(operand, re.Pattern):
            return isinstance(value, str | int | float) and bool(operand.search(normal(value)))
        if isinstance(operand, tuple):
            return _in_networks(value, operand)
        number = _number(value)
        if number is None or isinstance(operand, bool):
            return False
        return _compare(self.op, number, operand)


def _compare(op: str, number: float, operand: float) -> bool:
    if op == "gt":
        return number > operand
    if op == "gte":
        return number >= operand
    if op == "lt":
        return number < operand
    return number <= operand


def _in_networks(value: object, networks: tuple[Network, ...]) -> bool:
    if not isinstance(value, str):
        return False
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return any(address.version == n.version and address in n for n in networks)


def _found(values: Sequence[object]) -> str:
    if not values:
        return "nothing"
    shown = ", ".join(repr(v)[:80] for v in values[:3])
    return shown + (f" and {len(values) - 3} more" if len(values) > 3 else "")


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every condition holds."""

    items: tuple[Condition, ...]

    def holds(self, view: Mapping[str, object]) -> bool:
        for item in self.items:  # noqa: SIM110 -- a loop: all() of a generator costs more here
            if not item.holds(view):
                return False
        return True

    def miss(self, view: Mapping[str, object]) -> Miss | None:
        for item in self.items:
            found = item.miss(view)
            if found is not None:
                return found
        return None


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one condition holds."""

    items: tuple[Condition, ...]

    def holds(self, view: Mapping[str, object]) -> bool:
        for item in self.items:  # noqa: SIM110 -- a loop: any() of a generator costs more here
            if item.holds(view):
                return True
        return False

    def miss(self, view: Mapping[str, object]) -> Miss | None:
        first: Miss | None = None
        for item in self.items:
            found = item.miss(view)
            if found is None:
                return None
            first = first or found
        if first is None:
            return Miss("any: (no alternatives)", "nothing")
        return Miss(f"any of {len(self.items)} alternatives (the first: {first.test})", first.found)


@dataclass(frozen=True, slots=True)
class NotOf:
    """The condition does not hold."""

    item: Condition
    text: str

    def holds(self, view: Mapping[str, object]) -> bool:
        return not self.item.holds(view)

    def miss(self, view: Mapping[str, object]) -> Miss | None:
        return Miss(f"not: {self.text}", "it held") if self.item.miss(view) is None else None


Condition = Test | AllOf | AnyOf | NotOf


def equalities(condition: Condition | None) -> Iterable[tuple[FieldPath, frozenset[str]]]:
    """The `equals`/`in` tests every alert matching `condition` must pass: routing indexes
    runbooks by them, so an alert is tested only against runbooks it can match."""
    if isinstance(condition, Test) and condition.op in ("equals", "in"):
        operand = condition.operand
        yield (
            condition.path,
            operand if isinstance(operand, frozenset) else frozenset({str(operand)}),
        )
    elif isinstance(condition, AllOf):
        for item in condition.items:
            yield from equalities(item)


# --- parsing ---------------------------------------------------------------------------------


def parse_match(raw: Mapping[str, object]) -> tuple[Condition | None, list[ConditionError]]:
    """The condition `trigger.match` says, or None for an empty one; and every problem in it.

    A condition with problems is None: a runbook must never route on part of what it says.
    """
    errors: list[ConditionError] = []
    condition = _mapping(raw, ("match",), errors)
    if errors or not raw:
        return None, errors
    return condition, errors


def _mapping(
    raw: Mapping[str, object], loc: tuple[str, ...], errors: list[ConditionError]
) -> AllOf:
    items: list[Condition] = []
    for key, value in raw.items():
        where = (*loc, str(key))
        try:
            items.extend(_entry(str(key), value, where, errors))
        except ConditionError as exc:
            errors.append(exc)
    return AllOf(tuple(items))


def _entry(
    key: str, value: object, loc: tuple[str, ...], errors: list[ConditionError]
) -> list[Condition]:
    if key in ("all", "any"):
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConditionError(f"`{key}:` takes a list of condition mappings", loc)
        parts = tuple(_mapping(v, (*loc, str(n)), errors) for n, v in enumerate(value))
        return [AllOf(parts) if key == "all" else AnyOf(parts)]
    if key == "not":
        if not isinstance(value, dict):
            raise ConditionError("`not:` takes a condition mapping", loc)
        return [NotOf(_mapping(value, loc, errors), _describe(value))]
    try:
        path = parse_path(key)
    except PathError as exc:
        raise ConditionError(str(exc), loc) from None
    if isinstance(value, dict):
        if not value:
            raise ConditionError(f"{key}: an empty mapping tests nothing; give an operator", loc)
        return [_test(path, str(op), operand, (*loc, str(op))) for op, operand in value.items()]
    if isinstance(value, list):
        return [_test(path, "in", value, loc)]
    return [_test(path, "equals", value, loc)]


def _describe(value: Mapping[str, object]) -> str:
    return ", ".join(f"{k}: {v!r}" for k, v in value.items())


_Builder = Callable[[FieldPath, object, tuple[str, ...]], Test]


def _test(path: FieldPath, op: str, operand: object, loc: tuple[str, ...]) -> Test:
    builder = _BUILDERS.get(op)
    if builder is None:
        from difflib import get_close_matches

        close = get_close_matches(op, OPERATORS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConditionError(
            f"{path}: unknown operator {op!r}{hint}; use one of {', '.join(OPERATORS)}", loc
        )
    return builder(path, operand, loc)


def _scalar(path: FieldPath, op: str, operand: object, loc: tuple[str, ...]) -> str:
    if operand is None or isinstance(operand, dict | list):
        raise ConditionError(f"{path} {op}: expected a text or number, got {operand!r}", loc)
    return normal(operand)


def _equals(path: FieldPath, operand: object, loc: tuple[str, ...]) -> Test:
    value = _scalar(path, "equals", operand, loc)
    return Test(path, "equals", value, f"{path} equals {value!r}")


def _one_of(path: FieldPath, operand: object, loc: tuple[str, ...]) -> Test:
    if not isinstance(operand, list) or not operand:
        raise ConditionError(f"{path} in: expected a non-empty list of values", loc)
    values = frozenset(_scalar(path, "in", v, loc) for v in operand)
    return Test(path, "in", values, f"{path} in {sorted(values)!r}")


def _regex(path: FieldPath, operand: object, loc: tuple[str, ...]) -> Test:
    if not isinstance(operand, str):
        raise ConditionError(f"{path} regex: expected a regular expression as text", loc)
    try:
        pattern = re.compile(operand)
    except re.error as exc:
        raise ConditionError(f"{path} regex {operand!r} does not compile: {exc}", loc) from None
    return Test(path, "regex", pattern, f"{path} matches the regex {operand!r}")


def _glob(path: FieldPath, operand: object, loc: tuple[str, ...]) -> Test:
    if not isinstance(operand, str):
        raise ConditionError(f"{path} glob: expected a pattern as text, such as 'web-*'", loc)
    return Test(path, "glob", operand, f"{path} matches the glob {operand!r}")


def _numeric(op: Op) -> _Builder:
    def build(path: FieldPath, operand: object, loc: tuple[str, ...]) -> Test:
        number = None if isinstance(operand, bool) else _number(operand)
        if number is None:
            raise ConditionError(f"{path} {op}: expected a number, got {operand!r}", loc)
        return Test(path, op, number, f"{path} {_NUMERIC[op]} {normal(number)}")

    return build


def _cidr(path: FieldPath, operand: object, loc: tuple[str, ...]) -> Test:
    texts = operand if isinstance(operand, list) else [operand]
    networks = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(str(text), strict=False))
        except ValueError:
            raise ConditionError(
                f"{path} cidr: {text!r} is not a network such as 10.0.0.0/8 or 2001:db8::/32", loc
            ) from None
    if not networks:
        raise ConditionError(f"{path} cidr: give at least one network", loc)
    shown = ", ".join(str(n) for n in networks)
    return Test(path, "cidr", tuple(networks), f"{path} in the network(s) {shown}")


def _exists(path: FieldPath, operand: object, loc: tuple[str, ...]) -> Test:
    if not isinstance(operand, bool):
        raise ConditionError(f"{path} exists: expected true or false, got {operand!r}", loc)
    return Test(path, "exists", operand, f"{path} {'exists' if operand else 'is absent'}")


_BUILDERS: dict[str, _Builder] = {
    "equals": _equals,
    "in": _one_of,
    "regex": _regex,
    "glob": _glob,
    "gt": _numeric("gt"),
    "gte": _numeric("gte"),
    "lt": _numeric("lt"),
    "lte": _numeric("lte"),
    "cidr": _cidr,
    "exists": _exists,
}
