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
from dataclasses import dataclass

from .errors import ExpressionError

Value = str | int | float | bool | None | list["Value"] | tuple["Value", ...]

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+(?:\.\d+)?)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
      | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in"}
_CONSTANTS: dict[str, Value] = {
    "true": True, "True": True, "false": False, "False": False, "null": None, "None": None,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # number, string, op, name, keyword, end
    text: str
    column: int


def _tokenize(source: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(source):
        if source[pos:].strip() == "":
            break
        match = _TOKEN_RE.match(source, pos)
        if not match or match.end() == pos:
            col = len(source) - len(source[pos:].lstrip())
            raise ExpressionError(
                f"unexpected character {source[col]!r}", expression=source, column=col
            )
        kind = match.lastgroup or "op"
        text = match.group(kind)
        col = match.start(kind)
        if kind == "name" and text in _KEYWORDS:
            kind = "keyword"
        toks.append(_Tok(kind, text, col))
        pos = match.end()
    toks.append(_Tok("end", "", len(source)))
    return toks


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
        if self._toks[0].kind == "end":
            raise ExpressionError("empty condition", expression=source)
        self._root = self._or()
        tok = self._peek()
        if tok.kind != "end":
            raise ExpressionError(
                f"unexpected {tok.text!r}", expression=source, column=tok.column
            )

    def evaluate(self, env: Mapping[str, Value]) -> bool:
        """True or False; raises ExpressionError when a name has no value."""
        return bool(self._root(env))

    # --- recursive descent ---------------------------------------------------------------

    def _peek(self) -> _Tok:
        return self._toks[self._i]

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

    def _or(self) -> Node:
        left = self._and()
        while self._peek().text == "or":
            self._take()
            a, b = left, self._and()
            left = lambda env, a=a, b=b: bool(a(env)) or bool(b(env))  # noqa: E731
        return left

    def _and(self) -> Node:
        left = self._not()
        while self._peek().text == "and":
            self._take()
            a, b = left, self._not()
            left = lambda env, a=a, b=b: bool(a(env)) and bool(b(env))  # noqa: E731
        return left

    def _not(self) -> Node:
        if self._peek().text == "not" and self._peek().kind == "keyword":
            self._take()
            inner = self._not()
            return lambda env: not inner(env)
        return self._comparison()

    def _comparison(self) -> Node:
        left = self._operand()
        tok = self._peek()
        op = tok.text
        if tok.kind == "keyword" and op == "not":
            self._take()
            if self._peek().text != "in":
                raise ExpressionError(
                    "expected 'in' after 'not'", expression=self.source, column=tok.column
                )
            op = "not in"
        elif not (tok.kind == "op" and op in _COMPARE) and not (tok.text == "in"):
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
        tok = self._take()
        if tok.kind == "number":
            num: Value = float(tok.text) if "." in tok.text else int(tok.text)
            return lambda env: num
        if tok.kind == "string":
            text = _unquote(tok.text)
            return lambda env: text
        if tok.kind == "name":
            return self._name(tok)
        if tok.text == "(":
            inner = self._or()
            self._expect(")")
            return inner
        if tok.text == "[":
            return self._list()
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
        if self._peek().text != "]":
            items.append(self._operand())
            while self._peek().text == ",":
                self._take()
                items.append(self._operand())
        self._expect("]")
        return lambda env: [item(env) for item in items]


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


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


def describe(source: str) -> str:
    """The condition in plain words, for the site: "only when severity is high or critical"."""
    try:
        parse_expression(source)
    except ExpressionError:
        return f"only when {source}"
    words = source
    for old, new in ((" not in ", " is not one of "), (" in ", " is one of "), ("==", "is"),
                     ("!=", "is not"), (">=", "is at least"), ("<=", "is at most")):  # fmt: skip
        words = words.replace(old, new)
    words = re.sub(r"\[([^\]]*)\]", lambda m: _or_list(m.group(1)), words)
    return f"only when {words}"


def _or_list(inner: str) -> str:
    parts = [p.strip().strip("'\"") for p in inner.split(",") if p.strip()]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " or " + parts[-1]
