"""The `when=` condition language: a small, safe expression language, parsed and never `eval`-ed.

Grammar (lowest precedence first)::

    expr       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := operand (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") operand)?
    operand    := STRING | NUMBER | true | false | null | NAME | "[" [operand ("," operand)*] "]"
                | "(" expr ")"

Names are inputs and step outputs. A name with no value is an error of the run, never silently
true or false: an operator must see that a condition could not be decided.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import NamedTuple

from runner.errors import ExpressionError

Value = str | int | float | bool | None | list["Value"] | tuple["Value", ...]

# Alternatives ordered by how often they occur (names first); their first characters differ, so
# the order changes nothing but speed.
_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<op>[=!<>]=|[<>()\[\],])
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<bad>\S)
    )""",
    re.VERBOSE,
)
# Group index -> token kind: `match.lastindex` is cheaper than `match.lastgroup`.
_KINDS = ("", *sorted(_TOKEN_RE.groupindex, key=_TOKEN_RE.groupindex.__getitem__))
_KEYWORDS = {"and", "or", "not", "in"}
_CONSTANTS: dict[str, Value] = {
    "true": True, "True": True, "false": False, "False": False, "null": None, "None": None,
}  # fmt: skip


class _Tok(NamedTuple):
    # A tuple rather than a dataclass: tokens are made in the thousands when a folder of
    # runbooks is checked, and tuples are the cheapest object Python builds.
    kind: str  # number, string, op, name, keyword, end
    text: str
    column: int


def _tokenize(source: str) -> list[_Tok]:
    # One pass of the regex engine over the whole condition: every non-blank character starts
    # some token, so nothing is skipped silently; `bad` catches what no rule accepts.
    toks: list[_Tok] = []
    append = toks.append
    for match in _TOKEN_RE.finditer(source):
        group = match.lastindex or 0
        kind, text = _KINDS[group], match[group]
        if kind == "bad":
            raise ExpressionError(
                f"unexpected character {text!r}", expression=source, column=match.start(group)
            )
        if kind == "name" and text in _KEYWORDS:
            kind = "keyword"
        append(_new_tok(_Tok, (kind, text, match.start(group))))
    append(_Tok("end", "", len(source)))
    return toks


# `_Tok(...)` runs a Python-level `__new__` for every token; this builds the same tuple in C.
_new_tok = tuple.__new__


# The parsed tree is a tree of closures over an environment; `names` is collected while parsing
# so the linter can report unknown names without evaluating anything.
Node = Callable[[Mapping[str, Value]], Value]


class Expression:
    """A parsed condition. ``names`` lists every variable it reads."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.names: set[str] = set()
        self._toks = _tokenize(source)
        self._i = 0
        self._depth = 0
        if self._toks[0].kind == "end":
            raise ExpressionError("empty condition", expression=source)
        self._root = self._or()
        tok = self._toks[self._i]
        if tok.kind != "end":
            raise ExpressionError(f"unexpected {tok.text!r}", expression=source, column=tok.column)

    def evaluate(self, env: Mapping[str, Value]) -> bool:
        """True or False; raises ExpressionError when a name has no value."""
        return bool(self._root(env))

    # --- recursive descent ---------------------------------------------------------------
    # The next token is read as `self._toks[self._i]` rather than through a method: conditions
    # are parsed for every step of every runbook checked, and the calls were a third of it.

    def _take(self) -> _Tok:
        tok = self._toks[self._i]
        self._i += 1
        return tok

    def _expect(self, text: str) -> None:
        tok = self._take()
        if tok.text != text:
            found = repr(tok.text) if tok.kind != "end" else "the end"
            raise ExpressionError(
                f"expected {text!r} but found {found}", expression=self.source, column=tok.column
            )

    # A chain of `or` (`and`) is one flat node over a list, not a nest of pairs: a condition of
    # a thousand clauses must not recurse a thousand frames deep when it is evaluated.
    def _or(self) -> Node:
        parts = [self._and()]
        while self._toks[self._i].text == "or":
            self._take()
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else _any(parts)

    def _and(self) -> Node:
        parts = [self._not()]
        while self._toks[self._i].text == "and":
            self._take()
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else _all(parts)

    def _not(self) -> Node:
        tok = self._toks[self._i]
        if tok.text == "not" and tok.kind == "keyword":
            tok = self._take()
            inner = self._nested(tok, self._not)
            return lambda env: not inner(env)
        return self._comparison()

    def _nested(self, tok: _Tok, parse: Callable[[], Node]) -> Node:
        # Nesting is bounded so that a hostile condition gets a message, not a RecursionError.
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ExpressionError(
                f"condition nested more than {MAX_DEPTH} levels deep",
                expression=self.source,
                column=tok.column,
            )
        try:
            return parse()
        finally:
            self._depth -= 1

    def _comparison(self) -> Node:
        left = self._operand()
        tok = self._toks[self._i]
        op = tok.text
        if tok.kind == "keyword" and op == "not":
            self._take()
            if self._toks[self._i].text != "in":
                raise ExpressionError(
                    "expected 'in' after 'not'", expression=self.source, column=tok.column
                )
            op = "not in"
        elif not (tok.kind == "op" and op in _COMPARE) and tok.text != "in":
            return left
        self._take()
        right = self._operand()
        compare = _COMPARE[op]
        source = self.source

        def node(env: Mapping[str, Value]) -> Value:
            a, b = left(env), right(env)
            try:
                return compare(a, b)
            except TypeError:
                raise ExpressionError(
                    f"cannot compare {a!r} {op} {b!r}", expression=source
                ) from None

        return node

    def _operand(self) -> Node:
        tok = self._toks[self._i]
        self._i += 1
        kind = tok.kind
        if kind == "string":
            text = _unquote(tok.text)
            return lambda env: text
        if kind == "name":
            return self._name(tok)
        if kind == "number":
            num: Value = float(tok.text) if "." in tok.text else int(tok.text)
            return lambda env: num
        if tok.text == "(" and tok.kind == "op":
            inner = self._nested(tok, self._or)
            self._expect(")")
            return inner
        if tok.text == "[" and tok.kind == "op":
            return self._nested(tok, self._list)
        found = repr(tok.text) if tok.kind != "end" else "the end"
        raise ExpressionError(
            f"expected a value but found {found}", expression=self.source, column=tok.column
        )

    def _name(self, tok: _Tok) -> Node:
        if tok.text in _CONSTANTS:
            const = _CONSTANTS[tok.text]
            return lambda env: const
        name = tok.text
        self.names.add(name)
        source = self.source

        def lookup(env: Mapping[str, Value]) -> Value:
            if name not in env:
                raise ExpressionError(
                    f"{name!r} has no value (not an input, nor an output of a step run so far)",
                    expression=source,
                )
            return env[name]

        return lookup

    def _list(self) -> Node:
        items: list[Node] = []
        if self._toks[self._i].text != "]":
            items.append(self._operand())
            while self._toks[self._i].text == ",":
                self._take()
                items.append(self._operand())
        self._expect("]")
        return lambda env: [item(env) for item in items]


MAX_DEPTH = 32


def _any(parts: list[Node]) -> Node:
    return lambda env: any(bool(p(env)) for p in parts)


def _all(parts: list[Node]) -> Node:
    return lambda env: all(bool(p(env)) for p in parts)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body) if "\\" in body else body


def _in(a: Value, b: Value) -> bool:
    if isinstance(b, str):
        return str(a) in b
    if isinstance(b, list | tuple):
        return a in b
    raise TypeError


_COMPARE: dict[str, Callable[[Value, Value], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,  # type: ignore[operator]
    "<=": lambda a, b: a <= b,  # type: ignore[operator]
    ">": lambda a, b: a > b,  # type: ignore[operator]
    ">=": lambda a, b: a >= b,  # type: ignore[operator]
    "in": _in,
    "not in": lambda a, b: not _in(a, b),
}


def parse_expression(source: str) -> Expression:
    """Parse a `when=` condition; raises ExpressionError with the column on a syntax error."""
    return Expression(source)


_WORDS = {
    "==": "is", "!=": "is not", "<": "is less than", "<=": "is at most", ">": "is more than",
    ">=": "is at least", "in": "is one of", "and": "and", "or": "or", "not": "not",
}  # fmt: skip


def describe(condition: Expression | str) -> str:
    """The condition in plain words, for people: "only when severity is one of high or critical".

    Give the parsed condition the model carries; a string is parsed here (only for callers
    that hold no model, as the site's templates once did)."""
    if isinstance(condition, str):
        try:
            condition = parse_expression(condition)
        except ExpressionError:
            return f"only when {condition}"
    toks = condition._toks[:-1]
    words: list[str] = []
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok.kind == "keyword" and tok.text == "not" and _next_is_in(toks, i):
            words.append("is not one of")
            i += 2
            continue
        if tok.text == "[" and tok.kind == "op":
            end = next(k for k in range(i, len(toks)) if toks[k].text == "]")
            items = [_word(t) for t in toks[i + 1 : end] if t.text != ","]
            words.append(_or_list(items))
            i = end + 1
            continue
        words.append(_WORDS.get(tok.text, _word(tok)) if tok.kind != "string" else _word(tok))
        i += 1
    text = " ".join(words).replace("( ", "(").replace(" )", ")")
    return f"only when {text}"


def _next_is_in(toks: list[_Tok], i: int) -> bool:
    return i + 1 < len(toks) and toks[i + 1].kind == "keyword" and toks[i + 1].text == "in"


def _word(tok: _Tok) -> str:
    if tok.kind != "string":
        return tok.text
    text = _unquote(tok.text)
    return f"'{text}'" if not text or any(c.isspace() for c in text) else text


def _or_list(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts) or "nothing"
    return ", ".join(parts[:-1]) + " or " + parts[-1]
