"""Secret values out of everything written or shown: the journal, reports, the terminal.

A secret rarely reaches output as its plain self. Ordinary code prints it through `repr`
(`print([token])`, a `KeyError`), `json.dumps`, a URL or an `Authorization: Basic` header,
and the runner itself shows it shell-quoted in approval code. Each of those forms is
replaced too, and base64 is matched at each of its three alignments, so a secret inside a
longer encoded blob is found as well.

Short secrets are refused where inputs are read (:data:`MIN_SECRET_LENGTH`): a secret of
one to seven characters cannot be told apart from ordinary output, so replacing it would
mangle innocent text (every "x" of the output), and not replacing it would leak it.

Outputs that hold a secret keep a *template* (:meth:`Redactor.template`): the text with
each secret replaced by a reference to its input, so a resumed run rebuilds the real value
from the secret inputs it is given again, and no file holds the secret itself.
"""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from runner.format.inputs import MIN_SECRET_LENGTH

#: What a secret is replaced with.
REDACTED = "***"


def forms(secret: str) -> set[str]:
    """Every form in which ``secret`` may reach output, itself included."""
    found = {
        secret,
        shlex.quote(secret),
        repr(secret)[1:-1],
        ascii(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
    }
    raw = secret.encode("utf-8")
    for offset in range(3):
        found.update(_base64_cores(raw, offset))
    return {f for f in found if len(f) >= min(len(secret), MIN_SECRET_LENGTH)}


def _base64_cores(raw: bytes, offset: int) -> list[str]:
    """The base64 characters that depend on ``raw`` alone when it starts ``offset`` bytes into
    an encoded stream: the first and last characters also carry bits of its neighbours."""
    total = offset + len(raw)
    start = -(-offset * 8 // 6)  # the first character whose bits all come from raw
    end = (total // 3) * 4  # the characters of complete groups
    out = []
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        core = encode(b"\0" * offset + raw).decode("ascii")[start:end]
        out.append(core)
    return out


class Redactor:
    """Replaces every secret value, in each of its forms, with ``***``."""

    def __init__(
        self, secret_values: Iterable[str] = (), *, names: Mapping[str, str] | None = None
    ) -> None:
        # form -> (secret, name of its input or ""); longest first, so a secret that
        # contains another is replaced whole.
        self._names: dict[str, str] = dict(names or {})  # secret value -> input name
        self._forms: dict[str, str] = {}
        self._ordered: list[str] = []
        for value in secret_values:
            self.add(value)
        for value in self._names:
            self.add(value)

    @classmethod
    def for_inputs(cls, values: Mapping[str, Any], secrets: Iterable[str]) -> Redactor:
        """A redactor for the secret inputs among ``values`` (lists give each item)."""
        names: dict[str, str] = {}
        for name in secrets:
            value = values.get(name)
            for item in value if isinstance(value, list | tuple) else (value,):
                if item not in (None, ""):
                    names[str(item)] = name
        return cls(names=names)

    def add(self, value: str) -> None:
        if not value or value in self._forms.values():
            return
        for form in forms(value):
            self._forms.setdefault(form, value)
        self._ordered = sorted(self._forms, key=len, reverse=True)

    @property
    def longest(self) -> int:
        """The length of the longest form: how much text a split secret could span."""
        return len(self._ordered[0]) if self._ordered else 0

    def __bool__(self) -> bool:
        return bool(self._ordered)

    def text(self, text: str) -> str:
        for form in self._ordered:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def value(self, obj: Any) -> Any:
        if not self._ordered:
            return obj
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            return {k: self.value(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.value(v) for v in obj]
        return obj

    def template(self, text: str) -> list[str | dict[str, str]] | None:
        """``text`` as pieces: plain strings, and ``{"secret": INPUT}`` where a secret of a
        named input stood in its plain form; None when it holds no secret. A secret that
        appears in another form, or has no input name, cannot be rebuilt: the piece is then
        ``{"lost": "***"}``."""
        if not self._ordered or self.text(text) == text:
            return None
        pieces: list[str | dict[str, str]] = []
        rest = text
        while rest:
            hit = self._first(rest)
            if hit is None:
                pieces.append(rest)
                break
            at, form = hit
            if at:
                pieces.append(rest[:at])
            secret = self._forms[form]
            name = self._names.get(secret)
            pieces.append({"secret": name} if name and form == secret else {"lost": REDACTED})
            rest = rest[at + len(form) :]
        return pieces

    def _first(self, text: str) -> tuple[int, str] | None:
        """The earliest (and at one place the longest) form in ``text``."""
        best: tuple[int, str] | None = None
        for form in self._ordered:
            at = text.find(form)
            if at >= 0 and (best is None or at < best[0]):
                best = (at, form)
        return best


def rebuild(pieces: list[Any], secrets: Mapping[str, str]) -> str | None:
    """The text a :meth:`Redactor.template` came from, given the secret inputs' values again;
    None when a piece cannot be rebuilt (a form other than the plain one, a missing input)."""
    out = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
        elif isinstance(piece, dict) and piece.get("secret") in secrets:
            out.append(secrets[piece["secret"]])
        else:
            return None
    return "".join(out)
