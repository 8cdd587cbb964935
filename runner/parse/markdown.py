"""Markdown text -> :class:`~runner.format.model.Runbook`, from markdown-it-py's block tokens.

Pure: it reads the file and nothing else, and never runs anything. It never raises for what a
file *says*: every finding becomes a :class:`~runner.format.model.Problem` with its line, so
`check` can report all of them at once. It raises :class:`~runner.errors.UnreadableRunbook` only
when the bytes are not a text file it can read (missing, binary, not UTF-8, over 1 MiB).

Structure is found from line ranges: a step owns the lines from its heading (or list item) to
the next one, and every fence belongs to whichever range holds its opening line. That makes the
rule "every fenced block appears exactly once" true by construction.

Long on purpose: one pass over markdown-it-py's tokens builds the whole plan, and every finding
carries the token's line; split, the passes would disagree on where things are.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import difflib
import gc
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeGuard

import msgspec
import yaml
from markdown_it import MarkdownIt
from markdown_it.common.utils import unescapeAll
from markdown_it.token import Token
from mdit_py_plugins.front_matter import front_matter_plugin

from runner.errors import ExpressionError, UnreadableRunbook
from runner.format import schema
from runner.format import syntax as fmt
from runner.format.expr import parse_expression
from runner.format.inputs import InputValueError, coerce
from runner.format.model import (
    Block,
    Concurrency,
    Heading,
    InputSpec,
    Metadata,
    Problem,
    ProblemLevel,
    Procedure,
    Question,
    Runbook,
    RunEnd,
    Section,
    Severity,
    Step,
    Trigger,
)
from runner.parse import flow
from runner.parse.trigger import with_routing

MAX_BYTES = 1024 * 1024

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# "1. Confirm", "2) Isolate", "Step 3: Notify", "Step 4 - Patch": the author's own numbering.
_STEP_NUMBER_RE = re.compile(r"^\s*(?:step\s+\d+\s*[.):\-–—]?|\d+[.):])\s+", re.IGNORECASE)
# "Role: lead", "**Role:** lead", "_role_: `lead`". One character class on each side of the
# word, so the match is linear: adjacent optional runs of overlapping classes backtracked as n⁴.
_ROLE_RE = re.compile(r"[\s*_]*role[\s*_]*:(?P<rest>[^\n]*)", re.I)


def _role_line(line: str) -> str | None:
    """The role a `Role:` line names, or None; the name holds no emphasis or code marks."""
    match = _ROLE_RE.match(line)
    role = match.group("rest").strip(" \t\f\v*_`") if match else ""
    return role if role and not any(c in role for c in "*_`") else None


# Emphasis markers, code ticks and link syntax; an underscore only at a word's edge, so that
# `host_id` in a title keeps its underscore.
# A paragraph line that a reader takes for a heading but CommonMark does not: `###2. Check`.
_HEADING_LIKE_RE = re.compile(r"^ {0,3}(#{1,6})(?=[^#\s])(.*)$")
_MARKUP_RE = re.compile(r"\*+|`+|(?<![0-9A-Za-z])_+|_+(?![0-9A-Za-z])|\[([^\]]*)\]\([^)]*\)")


def _refuse_aliases(text: str) -> None:
    """Aliases (`*name`) can make a few hundred bytes expand to gigabytes (a "billion laughs");
    front matter never needs them. Only text with a `*` is scanned, with the C parser."""
    if "*" not in text:
        return
    for event in yaml.parse(text, Loader=_SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise yaml.MarkedYAMLError(
                problem=f"uses the YAML alias *{event.anchor}; write the value out instead",
                problem_mark=event.start_mark,  # type: ignore[arg-type]  # the C Mark has the same fields
            )


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark").use(front_matter_plugin)
    # Structure comes from block tokens alone; skipping inline parsing halves the parse time.
    md.disable("inline")
    # Tables and link reference definitions hold no heading and no fence, so reading them as
    # paragraphs changes no step; the two rules cost a third of the block parse. The corpus
    # test checks the fence count against a reading with both enabled.
    md.disable(["reference"])
    # `parse_text` normalises line ends and NUL with str.replace, in C; markdown-it's own rule
    # does it again with a regex substitution at every line end: 8% of its time. text_join only
    # joins inline tokens, which are never made here.
    md.disable(["normalize", "text_join"])
    return md


_MD = _markdown()


# --- reading -----------------------------------------------------------------------------------


def read_text(path: Path, display: str | None = None) -> tuple[str, str]:
    """The file's text (CRLF normalised) and the SHA-256 of its bytes."""
    name = display or str(path)
    try:
        # One open and one fstat: a folder fails the open, and the size is checked before
        # anything is read, so a huge file costs no memory.
        # O_NONBLOCK: a FIFO opens at once instead of waiting for a writer, and is refused below.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as handle:
            info = os.fstat(handle.fileno())
            size = info.st_size
            if not stat.S_ISREG(info.st_mode):
                raise UnreadableRunbook(
                    "is not a regular file (a FIFO, a device or a socket); a runbook is a file",
                    path=name,
                    code="RB004",
                )
            if size > MAX_BYTES:
                raise UnreadableRunbook(
                    f"file is {size:,} bytes, over the 1 MiB limit for a runbook; "
                    "split it into several runbooks",
                    path=name,
                    code="RB003",
                )
            os.set_blocking(handle.fileno(), True)
            # At most one byte past the limit: st_size is only what the file said a moment ago.
            data = handle.read(MAX_BYTES + 1)
            if len(data) > MAX_BYTES:
                raise UnreadableRunbook(
                    "file is over the 1 MiB limit for a runbook; split it into several runbooks",
                    path=name,
                    code="RB003",
                )
    except IsADirectoryError:
        raise UnreadableRunbook(
            "is a folder, not a runbook file", path=name, code="RB004"
        ) from None
    except FileNotFoundError:
        raise UnreadableRunbook("no such file", path=name, code="RB004") from None
    except OSError as exc:
        raise UnreadableRunbook(
            f"cannot read the file: {exc.strerror}", path=name, code="RB004"
        ) from None
    return decode(data, name), hashlib.sha256(data).hexdigest()


def decode(data: bytes, name: str) -> str:
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise UnreadableRunbook(
            "binary file (contains NUL bytes); a runbook is a UTF-8 Markdown file",
            path=name,
            code="RB002",
            line=line,
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UnreadableRunbook(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8",
            path=name,
            code="RB001",
            line=line,
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_file(path: str | Path) -> Runbook:
    """Parse a runbook file. Raises UnreadableRunbook for files that are not readable text."""
    p = Path(path)
    text, sha = read_text(p, str(path))
    return parse_text(text, path=p, sha256=sha)


def parse_text(text: str, path: str | Path = "<string>", sha256: str | None = None) -> Runbook:
    """Parse runbook Markdown that is already in memory."""
    p = Path(path)
    if sha256 is None:
        sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    source = text
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if "\0" in text:  # as CommonMark asks, and markdown-it's (disabled) normalize rule did
        text = text.replace("\0", "\ufffd")
    with _collector_paused():
        return dataclasses.replace(_Parser(text, p).parse(sha256), source=source)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Keep Python's cyclic garbage collector out of one parse.

    A parse allocates a few hundred tokens and model objects, all alive until it ends, so every
    collection it triggers walks them and frees nothing: about 6% of the parse time. Mercurial
    pauses the collector around its parsers for the same reason (``util.nogc``). The parse makes
    no reference cycles that would need the collector; it runs again on leaving.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# --- helpers -----------------------------------------------------------------------------------


_NOT_SLUG_RE = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    slug = _NOT_SLUG_RE.sub("-", text.lower()).strip("-")
    return slug[:64].rstrip("-")


def plain(text: str) -> str:
    """Inline Markdown reduced to its words: for titles and criteria."""
    if "*" in text or "`" in text or "_" in text or "[" in text:  # most titles have no markup
        text = _MARKUP_RE.sub(lambda m: m.group(1) or "", text)
    return " ".join(text.split())


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(slots=True)
class _Heading:
    level: int
    title: str
    line: int  # 1-based


@dataclass(slots=True)
class _Span:
    """A range of lines [start, end), 1-based, with the token index range that covers it."""

    title: str
    start: int
    end: int
    heading_level: int  # 0 for list items and synthetic spans


# --- the parser ------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, path: Path) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.path = path
        self.name = str(path)
        self.problems: list[Problem] = []
        self.tokens: list[Token] = _MD.parse(text)
        self.n_lines = len(self.lines)
        self.fences: list[Token] = []
        # Opening lines of the fences, sorted: a step finds its fences by bisection, so that a
        # file of thousands of steps is not read in quadratic time.
        self.fence_lines: list[int] = []
        # The 1-based line each token opens on; a closing token (no map) takes its predecessor's,
        # so the list is sorted and a line range maps to a slice of tokens.
        self.token_lines: list[int] = []
        # Top-level headings, in order: the structure. All four lists come from one pass.
        self.headings: list[_Heading] = []
        self.look_alikes: list[Heading] = []
        line = 0
        for i, tok in enumerate(self.tokens):
            if tok.map:
                line = tok.map[0] + 1
                if tok.type == "fence":
                    self.fences.append(tok)
                    self.fence_lines.append(line)
                # Only top-level headings structure a runbook; one inside a list is prose.
                elif tok.type == "heading_open" and tok.level == 0:
                    title = plain(self.tokens[i + 1].content)
                    self.headings.append(_Heading(int(tok.tag[1]), title, line))
                elif tok.type == "inline" and "#" in tok.content:
                    self._look_alikes(tok.content, line)
            self.token_lines.append(line)
        self.used_fences: set[int] = set()  # ids of fence tokens assigned to a step
        # A fence is read once, whichever part of the parser asks first, so that each of its
        # problems is reported once.
        self.raw_blocks: dict[int, Block] = {}

    def _look_alikes(self, content: str, line: int) -> None:
        for k, text_line in enumerate(content.split("\n")):
            match = _HEADING_LIKE_RE.match(text_line) if "#" in text_line else None
            if match:
                hashes, rest = match.groups()
                self.look_alikes.append(Heading(len(hashes), plain(rest), line + k, real=False))

    def problem(self, line: int, level: ProblemLevel, code: str, message: str) -> None:
        self.problems.append(Problem(self.name, line, level, code, message))

    # --- top level --------------------------------------------------------------------

    def parse(self, sha256: str) -> Runbook:
        fm, fm_line, fm_end = self._front_matter()
        headings = self.headings
        h1 = next((h for h in headings if h.level == 1), None)
        sections = self._sections(headings)
        meta = self._metadata(fm, fm_line, h1.title if h1 else None)
        kernels = dict(meta.kernels)

        steps_span = next((s for s in sections if s.title.lower() == "steps"), None)
        steps: tuple[Step, ...] = ()
        if steps_span is not None:
            steps = self._steps(self._step_spans(steps_span, 3), kernels, prefix="")
        procedures: list[Procedure] = []
        criteria: dict[str, tuple[str, ...]] = {}
        other: list[Section] = []
        for span in sections:
            low = span.title.lower()
            if span is steps_span:
                continue
            if _is_procedures(span):
                procedures += self._procedures(span, kernels)
            elif low in ("success criteria", "failure criteria"):
                criteria[low] = self._list_items(span)
            other.append(Section(span.title, span.start, span.end, self._body(span)))
        if steps_span is None:
            steps = self._compat_steps(headings, kernels)
        self._stray_blocks([s for s in sections if s is steps_span or _is_procedures(s)], kernels)
        doc_blocks = tuple(
            self._raw_block(tok, kernels) for tok in self.fences if id(tok) not in self.used_fences
        )
        first_h2 = next((h.line for h in headings if h.level == 2), self.n_lines + 1)
        intro_start = (h1.line + 1) if h1 and h1.line < first_h2 else fm_end
        description = "\n".join(self.lines[intro_start - 1 : first_h2 - 1]).strip()
        return Runbook(
            path=self.path,
            sha256=sha256,
            metadata=meta,
            steps=steps,
            procedures=tuple(procedures),
            success_criteria=criteria.get("success criteria", ()),
            failure_criteria=criteria.get("failure criteria", ()),
            sections=tuple(other),
            doc_blocks=doc_blocks,
            description=description,
            has_steps_section=steps_span is not None,
            steps_line=steps_span.start if steps_span is not None else 0,
            front_matter=MappingProxyType(dict(fm or {})),
            front_matter_line=fm_line,
            problems=tuple(self.problems),
            headings=tuple(
                sorted(
                    [Heading(h.level, h.title, h.line) for h in headings] + self.look_alikes,
                    key=lambda h: h.line,
                )
            ),
        )

    def _stray_blocks(self, spans: Sequence[_Span], kernels: Mapping[str, str]) -> None:
        """A runnable block in a steps section that no step holds never runs: say so.

        It sits before the first step (under `## Steps` before the first `###` or list item, or
        between a procedure's heading and its first item), where an author expects it to run.
        """
        for tok in self.fences:
            assert tok.map is not None
            line = tok.map[0] + 1
            if id(tok) in self.used_fences or not any(s.start < line < s.end for s in spans):
                continue
            block = self._raw_block(tok, kernels)
            if block.executable:
                self.problem(
                    line, "warning", "RB045",
                    f"```{block.lang} block is in no step, so it will never run; move it under "
                    "a step's `###` heading or into a numbered item, or mark it `{exec=false}`",
                )  # fmt: skip

    def _sections(self, headings: Sequence[_Heading]) -> list[_Span]:
        bounds = [h for h in headings if h.level <= 2]
        spans = []
        for k, h in enumerate(bounds):
            if h.level != 2:
                continue
            end = bounds[k + 1].line if k + 1 < len(bounds) else self.n_lines + 1
            spans.append(_Span(h.title, h.line, end, 2))
        return spans

    def _body(self, span: _Span) -> str:
        return "\n".join(self.lines[span.start : span.end - 1]).strip("\n")

    # --- front matter -------------------------------------------------------------------

    def _front_matter(self) -> tuple[dict[str, Any] | None, int, int]:
        """The front matter mapping, the line of its opening `---`, and the first line after."""
        tok = self.tokens[0] if self.tokens else None
        if tok is None or tok.type != "front_matter" or not tok.map:
            if self.lines[0].rstrip() == "---" and self.n_lines > 1:
                # markdown-it reads an unclosed front matter as a rule and prose: say so.
                self.problem(1, "error", "RB015",
                             "front matter opened here is never closed; add a `---` line "
                             "after the last key")  # fmt: skip
            return None, 0, 1
        start, end = tok.map[0] + 1, tok.map[1] + 1
        try:
            _refuse_aliases(tok.content)
            data = yaml.load(tok.content, Loader=_SafeLoader)
        except (yaml.YAMLError, ValueError) as exc:
            # ValueError: an integer of more digits than Python converts (a hostile file).
            mark = getattr(exc, "problem_mark", None)
            line = start + 1 + (mark.line if mark else 0)
            what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            self.problem(line, "error", "RB010", f"front matter is not valid YAML: {what}")
            return {}, start, end
        if data is None:
            data = {}
        if isinstance(data, dict) and is_runbook_front_matter(data):
            self._duplicate_keys(tok.content, start)
        if not isinstance(data, dict):
            self.problem(
                start,
                "error",
                "RB011",
                "front matter must be a mapping of keys (name: ..., service: ...), "
                f"not a {type(data).__name__}",
            )
            return {}, start, end
        return {str(k): v for k, v in data.items()}, start, end

    def _duplicate_keys(self, content: str, start: int) -> None:
        """RB016: a key given twice in one mapping; YAML keeps the last without a word."""
        for key, first, again in duplicate_keys(content):
            self.problem(
                start + 1 + again, "error", "RB016",
                f"front matter key {key!r} is given twice, at lines {start + 1 + first} and "
                f"{start + 1 + again}; only the last one counts: delete one of them",
            )  # fmt: skip

    def _key_line(self, fm_line: int, path: Sequence[str | int]) -> int:
        """Best-effort line of a key in the front matter, for messages."""
        line = fm_line
        for part in path:
            if isinstance(part, int):
                continue
            pattern = re.compile(rf"^\s*-?\s*['\"]?{re.escape(str(part))}['\"]?\s*:")
            for n in range(line, min(self.n_lines, fm_line + 400)):
                if pattern.match(self.lines[n]):
                    line = n + 1
                    break
        return line

    def _metadata(self, fm: dict[str, Any] | None, fm_line: int, h1: str | None) -> Metadata:
        stem_id = slugify(self.path.stem) or "runbook"
        if fm is None or not is_runbook_front_matter(fm):
            # Plain Markdown, or another tool's front matter (Hugo, MkDocs, Runme): read it in
            # compatibility mode; `check` says what it lacks of the standard format.
            title = (fm or {}).get("title")
            name = title if isinstance(title, str) and title.strip() else h1
            return Metadata(id=stem_id, name=name or self.path.stem)
        self._validate_front_matter(fm, fm_line)
        meta = _build_metadata(fm, stem_id, h1 or self.path.stem)
        if not isinstance(fm.get("trigger"), dict) and not _maps_alerts(fm):
            return meta  # no routing keys: the common case costs nothing more
        # Routing: conditions and alert paths are parsed here, once (runner.routing).
        meta, issues = with_routing(meta, fm)
        for issue in issues:
            self.problem(self._key_line(fm_line, issue.loc), "error", issue.code, issue.message)
        return meta

    def _validate_front_matter(self, fm: dict[str, Any], fm_line: int) -> None:
        valid, issues = schema.validate_front_matter(fm)
        for issue in issues:
            self._schema_problem(issue, fm_line)
        # Values the schema cannot judge are checked one by one, so that one bad key does not
        # hide the problems of the others.
        if isinstance(fm.get("time_limit"), str | int | float):
            self._check_duration(fm["time_limit"], ("time_limit",), fm_line)
        specs = valid.inputs if valid is not None else schema.valid_inputs(fm)
        for name, spec in specs.items():
            self._check_input(name, spec, fm_line)

    def _schema_problem(self, issue: schema.SchemaIssue, fm_line: int) -> None:
        key = ".".join(issue.loc)
        if issue.kind == "missing":
            self.problem(
                fm_line,
                "error",
                "RB012",
                f"front matter lacks required key {key!r}; add `{key}: ...`",
            )
            return
        line = self._key_line(fm_line, issue.loc)
        if issue.kind == "unknown":
            hint = did_you_mean(issue.loc[-1], issue.allowed)
            self.problem(line, "error", "RB013", f"unknown key {key!r}{hint}")
        else:
            self.problem(line, "error", "RB014", f"bad value for {key!r}: {issue.message}")

    def _check_duration(self, value: object, loc: tuple[str, ...], fm_line: int) -> None:
        try:
            fmt.parse_duration(value)
        except ValueError as exc:
            line = self._key_line(fm_line, loc)
            self.problem(line, "error", "RB014", f"bad value for {'.'.join(loc)!r}: {exc}")

    def _check_input(self, name: str, spec: schema.InputSchema, fm_line: int) -> None:
        if not fmt.IDENT_RE.match(name):
            self._input_problem(
                name, fm_line,
                f"input name {name!r} must be an identifier (letters, digits, _), "
                "since it becomes a variable in the kernels",
            )  # fmt: skip
        if spec.pattern is not None:
            try:
                re.compile(spec.pattern)
            except re.error as exc:
                self._input_problem(name, fm_line, f"input {name!r}: bad pattern: {exc}")
                return
        if spec.default is not None:
            try:
                coerce(_input_spec(name, msgspec.structs.asdict(spec)), spec.default)
            except InputValueError as exc:
                self._input_problem(name, fm_line, f"input {name!r}: default {exc}")

    def _input_problem(self, name: str, fm_line: int, message: str) -> None:
        # The key's line is searched for only when there is something to report.
        self.problem(self._key_line(fm_line, ("inputs", name)), "error", "RB014", message)

    # --- steps --------------------------------------------------------------------------

    def _token_indexes(self, start: int, end: int) -> range:
        """Indexes of the tokens on lines [start, end), by bisection over their lines."""
        first = bisect.bisect_left(self.token_lines, start)
        return range(first, bisect.bisect_left(self.token_lines, end, lo=first))

    def _tokens_in(self, start: int, end: int) -> Iterable[Token]:
        """The tokens that open on a line in [start, end)."""
        return [
            tok for tok in map(self.tokens.__getitem__, self._token_indexes(start, end)) if tok.map
        ]

    def _step_spans(self, span: _Span, level: int) -> list[_Span]:
        """The step ranges of a section: one per heading of `level`, else one per list item."""
        heads = [h for h in self.headings if h.level == level and span.start < h.line < span.end]
        if heads:
            return [
                _Span(h.title, h.line, heads[k + 1].line if k + 1 < len(heads) else span.end, level)
                for k, h in enumerate(heads)
            ]
        return self._list_spans(span)

    def _list_spans(self, span: _Span) -> list[_Span]:
        """Steps from the top-level ordered lists of a section, one per item."""
        items: list[tuple[str, int]] = []
        in_ordered = False
        for i in self._token_indexes(span.start + 1, span.end):
            tok = self.tokens[i]
            if not tok.map:
                if tok.type == "ordered_list_close" and tok.level == 0:
                    in_ordered = False
                continue
            if tok.level == 0:
                in_ordered = tok.type == "ordered_list_open" or (
                    in_ordered and tok.type != "bullet_list_open"
                )
            if tok.type == "list_item_open" and tok.level == 1 and in_ordered:
                title = self._item_title(i)
                items.append((title, tok.map[0] + 1))
        return [
            _Span(title, line, items[k + 1][1] if k + 1 < len(items) else span.end, 0)
            for k, (title, line) in enumerate(items)
        ]

    def _item_title(self, index: int) -> str:
        # By index: a slice (or islice) walks the rest of the tokens for every item: quadratic.
        for k in range(index + 1, len(self.tokens)):
            tok = self.tokens[k]
            if tok.type == "inline":
                first = tok.content.strip().split("\n", 1)[0]
                title = plain(first)
                return title if len(title) <= 80 else title[:77].rstrip() + "..."
            if tok.type in ("list_item_close", "fence"):
                break
        return ""

    def _steps(
        self,
        spans: Sequence[_Span],
        kernels: Mapping[str, str],
        prefix: str,
        default_role: str | None = None,
    ) -> tuple[Step, ...]:
        used_ids = self._explicit_ids(spans, kernels)
        return tuple(
            self._step(number, s, kernels, prefix, used_ids, default_role)
            for number, s in enumerate(spans, 1)
        )

    def _fences_in(self, s: _Span) -> list[Token]:
        first = bisect.bisect_left(self.fence_lines, s.start)
        return self.fences[first : bisect.bisect_left(self.fence_lines, s.end, lo=first)]

    def _explicit_ids(self, spans: Sequence[_Span], kernels: Mapping[str, str]) -> set[str]:
        """Ids the author wrote, reserved before any step gets a generated id.

        Without this, a step titled "Isolate" placed before a block with `id=isolate` would take
        the id first and the author would be told of a duplicate they never wrote.
        """
        ids = set()
        for s in spans:
            raw = [self._raw_block(tok, kernels) for tok in self._fences_in(s)]
            explicit = next((b.id for b in raw if _names_step(b) and b.id), "")
            if explicit:
                ids.add(explicit)
        return ids

    def _step(
        self,
        number: int,
        s: _Span,
        kernels: Mapping[str, str],
        prefix: str,
        used: set[str],
        default_role: str | None = None,
    ) -> Step:
        title = _STEP_NUMBER_RE.sub("", s.title).strip() or f"Step {number}"
        fences = self._fences_in(s)
        raw = [self._raw_block(tok, kernels) for tok in fences]
        self.used_fences.update(id(tok) for tok in fences)
        explicit = next((b.id for b in raw if _names_step(b) and b.id), "")
        step_id = explicit or slugify(title) or f"step-{number}"
        if not explicit:
            base, k = step_id, 2
            while step_id in used:
                step_id, k = f"{base}-{k}", k + 1
        used.add(step_id)
        blocks = self._name_blocks(raw, prefix + step_id)
        own, role_line, informed, consulted = self._roles_at(s)
        role = own or next((b.role for b in blocks if b.role), None) or default_role
        text = "\n".join(self.lines[s.start - 1 : s.end - 1]).strip("\n")
        return Step(
            number, step_id, title, s.start, s.end, role, text, blocks, role_line,
            informed, consulted,
        )  # fmt: skip

    def _name_blocks(self, raw: list[Block], base: str) -> tuple[Block, ...]:
        out: list[Block] = []
        k = 0
        for block in raw:
            if block.executable and not block.id:
                k += 1
                block = replace(block, id=base if k == 1 else f"{base}-{k}")
            out.append(block)
        return tuple(out)

    def _role(self, s: _Span) -> str | None:
        return self._roles_at(s)[0]

    def _roles_at(self, s: _Span) -> tuple[str | None, int, tuple[str, ...], tuple[str, ...]]:
        """The role a `Role:` line before the span's first fence names, that line (1-based;
        0 when there is none or the token has no map), and the informed and consulted roles
        (`Role: L2 (informed: IR-lead)`, `Informed: IR-lead`, `Consulted: Legal` lines)."""
        tokens = self.tokens
        role: str | None = None
        line = 0
        others: dict[str, list[str]] = {"informed": [], "consulted": []}
        for i in self._token_indexes(s.start, s.end):
            tok = tokens[i]
            if tok.type == "fence":
                break
            # A role line has a colon: most prose is passed over without trying the pattern.
            if tok.type == "inline" and ":" in tok.content:
                for k, text_line in enumerate(tok.content.split("\n")):
                    if ":" not in text_line:
                        continue
                    kind, names = _other_roles_line(text_line)
                    if kind:
                        others[kind] += names
                        continue
                    found = _role_line(text_line) if role is None else None
                    if found:
                        found, extra = _split_role(found)
                        for kind, names in extra:
                            others[kind] += names
                        role, line = found, (tok.map[0] + 1 + k) if tok.map else 0
        return (
            role,
            line,
            tuple(dict.fromkeys(others["informed"])),
            tuple(dict.fromkeys(others["consulted"])),
        )

    def _compat_steps(
        self, headings: Sequence[_Heading], kernels: Mapping[str, str]
    ) -> tuple[Step, ...]:
        """Plain Markdown without `## Steps`: each runnable fence is a step named by its heading."""
        spans = []
        heading_lines = [h.line for h in headings]
        for tok in self.fences:
            # Fences already in an alternative procedure belong to it.
            if id(tok) in self.used_fences or not self._raw_block(tok, kernels).executable:
                continue
            assert tok.map is not None
            line = tok.map[0] + 1
            above = bisect.bisect_left(heading_lines, line)
            title = headings[above - 1].title if above else f"Block at line {line}"
            spans.append(_Span(title, line, tok.map[1] + 1, 0))
        used = self._explicit_ids(spans, kernels)
        return tuple(self._step(number, s, kernels, "", used) for number, s in enumerate(spans, 1))

    # --- procedures and criteria ----------------------------------------------------------

    def _procedures(self, span: _Span, kernels: Mapping[str, str]) -> list[Procedure]:
        heads = self._step_spans(span, 3)
        out: list[Procedure] = []
        for h in heads if heads and heads[0].heading_level == 3 else []:
            proc_id = slugify(h.title) or f"procedure-{len(out) + 1}"
            inner = _Span(h.title, h.start, h.end, 3)
            spans = self._step_spans(inner, 4)
            # A `Role:` line between the procedure's heading and its first step applies to
            # every step that names none of its own.
            role = None
            if spans and spans[0].start > h.start + 1:
                role = self._role(_Span(h.title, h.start + 1, spans[0].start, 0))
            steps = self._steps(spans, kernels, prefix=f"{proc_id}/", default_role=role)
            if not steps:
                steps = self._single_step(inner, kernels, proc_id)
            text = "\n".join(self.lines[h.start : h.end - 1]).strip("\n")
            ends = next(
                (RunEnd(*e) for line in text.split("\n") if (e := fmt.ends_the_run_line(line))),
                None,
            )
            out.append(Procedure(proc_id, h.title, h.start, h.end, text, steps, ends))
        return out

    def _single_step(self, s: _Span, kernels: Mapping[str, str], proc_id: str) -> tuple[Step, ...]:
        """A procedure written as prose (and maybe code) with no list: one step."""
        return (self._step(1, _Span(s.title, s.start, s.end, 0), kernels, f"{proc_id}/", set()),)

    def _list_items(self, span: _Span) -> tuple[str, ...]:
        items = []
        for i in self._token_indexes(span.start + 1, span.end):
            tok = self.tokens[i]
            if tok.type == "list_item_open" and tok.level == 1 and tok.map:
                nxt = self.tokens[i + 2] if i + 2 < len(self.tokens) else None
                if nxt is not None and nxt.type == "inline":
                    items.append(plain(nxt.content))
        if not items:
            items = [
                plain(t.content)
                for t in self._tokens_in(span.start + 1, span.end)
                if t.type == "inline" and t.level == 1
            ]
        return tuple(i for i in items if i)

    # --- blocks -----------------------------------------------------------------------------

    def _raw_block(self, tok: Token, kernels: Mapping[str, str]) -> Block:
        cached = self.raw_blocks.get(id(tok))
        if cached is None:
            cached = self.raw_blocks[id(tok)] = self._read_block(tok, kernels)
        return cached

    def _read_block(self, tok: Token, kernels: Mapping[str, str]) -> Block:
        assert tok.map is not None
        line = tok.map[0] + 1
        info = tok.info
        info = (unescapeAll(info) if "\\" in info or "&" in info else info).strip()
        lang = fmt.normalise_lang(info)
        self._check_closed(tok, line)
        attrs = self._attributes(info, line)
        typed = self._typed(attrs, line)
        asked = {k: typed.pop("_" + k) for k in fmt.DECISION_ATTRIBUTES if "_" + k in typed}
        if lang == fmt.DECISION_LANG:
            typed.pop("exec", None)
            question = self._question(tok.content, asked, typed, line)
            if question is not None:
                typed["question"] = question
                typed["outputs"], typed["output_types"] = (question.output,), MappingProxyType({})
        elif asked:
            self.problem(
                line, "error", "RB070",
                f"{', '.join(sorted(asked))}= only apply to a ```decision block; this "
                f"```{lang or '(no language)'} block ignores them",
            )  # fmt: skip
        runnable = typed.pop("exec", True)
        kernel = kernels.get(lang) or fmt.DEFAULT_KERNELS.get(lang)
        if lang == fmt.CALL_KERNEL and "runbook" not in kernels:
            kernel = fmt.CALL_KERNEL  # run by the engine itself: a sub-runbook
        if not runnable:
            kernel = None
        typed["loop"], found = flow.read_loop(attrs, kernel is not None, lang)
        call, more = flow.read_call(attrs, lang, tok.content, kernel is not None)
        for code, message in found + more:
            self.problem(line, "error", code, message)
        if call is not None:
            typed["call"] = call
        return Block(
            lang=lang,
            code=tok.content,
            line=line,
            end_line=tok.map[1] + 1,
            info=info,
            kernel=kernel,
            attributes=MappingProxyType(attrs),
            fence=tok.markup,
            **typed,
        )

    def _question(
        self, body: str, asked: Mapping[str, str], typed: dict[str, Any], line: int
    ) -> Question | None:
        """A decision block's question, or None after reporting (RB070) what is wrong."""
        text = " ".join(body.split()) or " ".join(asked.get("ask", "").split())
        kind = asked.get("type", "choice" if "choices" in asked else "yesno").strip().lower()
        choices = tuple(c.strip() for c in asked.get("choices", "").split(",") if c.strip())
        outputs = typed.get("outputs") or ()
        block_id = str(typed.get("id", ""))
        default = block_id.replace("-", "_")
        output = outputs[0] if outputs else (default if fmt.IDENT_RE.match(default) else "")
        problem = ""
        if not text:
            problem = 'it asks nothing; write the question in the block, or ask="..."'
        elif kind not in fmt.ANSWER_TYPES:
            problem = f"type={kind!r} is not one of {', '.join(fmt.ANSWER_TYPES)}"
        elif kind == "choice" and len(choices) < 2:
            problem = 'a choice needs at least two answers: choices="close,escalate"'
        elif kind != "choice" and choices:
            problem = f"choices= is for type=choice, not type={kind}"
        elif len(outputs) > 1 or typed.get("output_types"):
            problem = "a decision records one answer: outputs=NAME, one name, no type"
        elif not output:
            problem = "name the output the answer is recorded as: outputs=NAME"
        if problem:
            self.problem(line, "error", "RB070", f"decision block: {problem}")
            return None
        return Question(text, kind, choices, output)  # type: ignore[arg-type]  # checked above

    def _check_closed(self, tok: Token, line: int) -> None:
        assert tok.map is not None
        last = self.lines[tok.map[1] - 1] if tok.map[1] - 1 < self.n_lines else ""
        # The closing fence may sit inside a block quote or a list item: drop that prefix.
        last = last.lstrip(" \t>").strip()
        char = tok.markup[:1]
        closed = (
            tok.map[1] - tok.map[0] >= 2 and len(last) >= len(tok.markup) and set(last) == {char}
        )
        if not closed:
            self.problem(
                line,
                "error",
                "RB037",
                f"code fence {tok.markup!r} opened here is never closed; "
                f"add a closing {tok.markup} line after the code",
            )

    def _attributes(self, info: str, line: int) -> dict[str, str]:
        if "{" not in info:
            return {}
        brace = info[info.index("{") :].strip()
        if not brace.endswith("}"):
            self.problem(
                line, "error", "RB031",
                f"block attributes {brace!r} are not closed; end them with '}}'",
            )  # fmt: skip
            return {}
        if brace.startswith('{"') or brace.startswith('{ "'):
            return self._json_attributes(brace, line)
        try:
            return split_attributes(brace[1:-1])
        except ValueError as exc:
            self.problem(line, "error", "RB031", f"block attributes {brace!r}: {exc}")
            return {}

    def _json_attributes(self, brace: str, line: int) -> dict[str, str]:
        try:
            data = json.loads(brace)
        except json.JSONDecodeError as exc:
            self.problem(line, "error", "RB031", f"block attributes are not valid JSON: {exc.msg}")
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): (json.dumps(v) if isinstance(v, dict | list) else str(v).lower()
                         if isinstance(v, bool) else str(v)) for k, v in data.items()}  # fmt: skip

    def _typed(self, attrs: Mapping[str, str], line: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in attrs.items():
            if key not in fmt.BLOCK_ATTRIBUTES:
                hint = did_you_mean(key, fmt.BLOCK_ATTRIBUTES)
                self.problem(line, "error", "RB030", f"unknown block attribute {key!r}{hint}")
                continue
            try:
                _apply_attribute(out, key, value)
            except (ValueError, ExpressionError) as exc:
                code = exc.code if isinstance(exc, _QuorumError) else _ATTR_CODE.get(key, "RB031")
                self.problem(line, "error", code, f"attribute {key}={value!r}: {exc}")
        return out


# key, key=value, key="quoted value", key='quoted value' (backslash escapes inside quotes).
# A hand-written scanner rather than shlex: shlex costs a tenth of the whole parse.
_ATTR_RE = re.compile(
    r"""\s*(?P<key>[^\s="']+)(?:=(?:"(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>(?:[^'\\]|\\.)*)'|(?P<bare>[^\s"'][^\s]*|)))?(?=\s|$)"""
)
_ESCAPE_RE = re.compile(r"\\(.)")


def split_attributes(text: str) -> dict[str, str]:
    """`id=x approve=true when="a in ['b']"` -> a mapping; a bare key means `true`."""
    attrs: dict[str, str] = {}
    pos, end = 0, len(text.rstrip())
    while pos < end:
        match = _ATTR_RE.match(text, pos)
        if match is None:
            rest = text[pos:].strip()
            if rest[:1] in "\"'" or '="' in rest or "='" in rest:
                raise ValueError(f"a quote is not closed near {rest[:30]!r}")
            raise ValueError(f"cannot read {rest[:30]!r}; write key=value pairs")
        key, dq, sq, bare = match.groups()  # one call, not one per group
        quoted = dq if dq is not None else sq
        if quoted is not None:
            value = _ESCAPE_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
        elif bare is not None:
            value = bare
        else:
            value = "true"
        attrs[key] = value
        pos = match.end()
    return attrs


def _names_step(block: Block) -> bool:
    """Whether a block's `id=` names its step: a runnable block's, or a decision's."""
    return block.executable or block.question is not None


# "Informed: IR-lead, SOC-manager", "**Consulted:** Legal": roles kept in the loop.
_OTHER_ROLES_RE = re.compile(r"[\s*_]*(?P<kind>informed|consulted)[\s*_]*:(?P<rest>[^\n]*)", re.I)
# "L2 (informed: IR-lead; consulted: Legal)": the parenthesis after the responsible role.
_ROLE_PAREN_RE = re.compile(r"^(?P<role>[^()]+?)\s*\((?P<inner>[^()]*)\)\s*$")


def _role_names(text: str) -> list[str]:
    return [n.strip(" \t*_`") for n in re.split(r"[,;]| and ", text) if n.strip(" \t*_`")]


def _other_roles_line(line: str) -> tuple[str, list[str]]:
    """("informed" | "consulted", the roles) for such a line, else ("", [])."""
    match = _OTHER_ROLES_RE.match(line)
    if not match:
        return "", []
    return match.group("kind").lower(), _role_names(match.group("rest"))


def _split_role(text: str) -> tuple[str, list[tuple[str, list[str]]]]:
    """`L2 (informed: IR-lead; consulted: Legal)` -> ("L2", [("informed", [...]), ...]). A
    parenthesis that names neither stays part of the role, which RB035 then reports."""
    match = _ROLE_PAREN_RE.match(text)
    if not match:
        return text, []
    found = []
    for part in re.split(r";|(?=\b(?:informed|consulted)\s*:)", match.group("inner"), flags=re.I):
        kind, names = _other_roles_line(part)
        if not kind and part.strip():
            return text, []
        if kind:
            found.append((kind, names))
    return (match.group("role").strip(), found) if found else (text, [])


def _is_procedures(span: _Span) -> bool:
    return span.title.lower() in ("alternative procedures", "alternate procedures", "alternatives")


#: Front matter keys no other tool we know of uses: a file with one of them is meant as a runbook
#: even without `name` or `service` (which `check` then reports as missing, RB012).
RUNBOOK_ONLY_KEYS = frozenset(
    {
        "severity",
        "objective",
        "time_limit",
        "roles",
        "inputs",
        "trigger",
        "kernels",
        "notify",
        "concurrency",
    }
)


def is_runbook_front_matter(fm: Mapping[str, object]) -> bool:
    """Whether a front matter is meant for this format: it names the runbook or its service, or
    has a key only runbooks have.

    Other tools' front matter (Hugo's `title`/`weight`, Runme's `runme:`/`shell:`) is not
    validated as ours; the file is read as plain Markdown instead.
    """
    return "name" in fm or "service" in fm or any(k in fm for k in RUNBOOK_ONLY_KEYS)


def duplicate_keys(content: str) -> list[tuple[str, int, int]]:
    """(key, first line, repeated line) for each key given twice in one YAML mapping; lines are
    0-based within ``content``. PyYAML's loader keeps the last value silently, so the composed
    node tree (which keeps every key with its position) is read instead."""
    try:
        root = yaml.compose(content, Loader=_SafeLoader)
    except yaml.YAMLError:
        return []
    found: list[tuple[str, int, int]] = []
    todo = [root] if root is not None else []
    while todo:
        node = todo.pop()
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line
                    if key.value in seen:
                        found.append((str(key.value), seen[key.value], line))
                    seen.setdefault(key.value, line)
                todo.append(value)
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)
    return sorted(found, key=lambda f: f[2])


_ATTR_CODE = {"when": "RB032"}


class _QuorumError(ValueError):
    """A quorum written wrong: RB048 (the count), RB049 (a count with no role)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _quorum(value: str, key: str) -> tuple[str | None, int]:
    """`IR-lead*2` -> ("IR-lead", 2); `IR-lead` -> ("IR-lead", 1); `true` -> (None, 1)."""
    role, star, count = value.strip().rpartition("*") if "*" in value else (value.strip(), "", "")
    role = role.strip()
    if not star:
        return (None if role.lower() in fmt.TRUE_WORDS else role), 1
    if not count.strip().isdigit() or int(count) < 1:
        raise _QuorumError(
            "RB052",
            f"the count after `*` must be a whole number of people, at least 1 "
            f"(e.g. {key}={role or 'IR-lead'}*2)",
        )
    if not role or role.lower() in fmt.TRUE_WORDS:
        raise _QuorumError(
            "RB053",
            f"a quorum of {int(count)} needs a role whose holders count toward it "
            f"(e.g. {key}=IR-lead*{int(count)}); anyone may give any name without one",
        )
    return role, int(count)


def _apply_attribute(out: dict[str, Any], key: str, value: str) -> None:
    if key in ("id", "name"):
        if value.split() != [value]:  # empty, or spaces somewhere
            raise ValueError("an id is one word with no spaces")
        out["id"] = value
    elif key == "role":
        out["role"] = value
    elif key == "approve":
        low = value.strip().lower()
        if low in fmt.FALSE_WORDS:
            out["approve"] = False
        else:
            out["approve"] = True
            role, needed = _quorum(value, "approve")
            if role:
                out["approver_role"] = role
            if needed > 1:
                out["approvals_needed"] = needed
    elif key == "approval_timeout":
        out["approval_timeout"] = fmt.parse_duration(value)
    elif key == "escalate":
        role, needed = _quorum(value, "escalate")
        if role is None:
            raise ValueError(
                "expected the role an expired gate passes to, e.g. escalate=IR-manager"
            )
        out["escalate_role"], out["escalate_needed"] = role, needed
    elif key == "timeout":
        out["timeout"] = fmt.parse_duration(value)
    elif key == "retries":
        if not value.isdigit():
            raise ValueError("expected a whole number of retries, e.g. retries=2")
        out["retries"] = int(value)
    elif key == "retry_delay":
        out["retry_delay"] = fmt.parse_duration(value)
    elif key == "retry_backoff":
        backoff = float(value)
        if backoff < 1:
            raise ValueError("the backoff multiplier must be at least 1")
        out["retry_backoff"] = backoff
    elif key == "on_failure":
        if not fmt.ON_FAILURE_RE.match(value):
            raise ValueError("expected abort, continue or procedure:NAME")
        out["on_failure"] = value
    elif key == "when":
        out["condition"] = parse_expression(value)
        out["when"] = value
    elif key == "outputs":
        out["outputs"], out["output_types"] = _outputs(value)
    elif key == "errexit":
        out["errexit"] = fmt.parse_bool(value)
    elif key == "end":
        out["end"] = RunEnd(*fmt.parse_end(value))
    elif key == "exec":
        out["exec"] = fmt.parse_bool(value)
    elif key == "idempotent":
        out["idempotent"] = fmt.parse_bool(value)
    elif key in fmt.DECISION_ATTRIBUTES:
        out["_" + key] = value  # read with the block's language (_Parser._question)
    # foreach/as/approve_each/on_item_failure and runbook/with are read whole (runner.parse.flow).
    # Runme's own attributes are accepted and have no effect here.


def _outputs(value: str) -> tuple[tuple[str, ...], Mapping[str, str]]:
    """`count:int,verdict` -> the names, and the types of those that carry one."""
    names: list[str] = []
    types: dict[str, str] = {}
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        name, _, kind = (part.strip() for part in entry.partition(":"))
        if not fmt.IDENT_RE.match(name):
            raise ValueError(f"output names must be identifiers, not {name!r}")
        if kind:
            if kind not in fmt.OUTPUT_TYPES:
                raise ValueError(
                    f"output {name!r}: unknown type {kind!r}; use one of "
                    + ", ".join(fmt.OUTPUT_TYPES)
                )
            types[name] = kind
        names.append(name)
    return tuple(names), MappingProxyType(types)


# --- metadata ----------------------------------------------------------------------------------


def _as_tuple(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return (str(value),)


def _as_str_map(value: object) -> Mapping[str, str]:
    if not isinstance(value, dict):
        return MappingProxyType({})
    return MappingProxyType({str(k): "" if v is None else str(v) for k, v in value.items()})


def _input_spec(name: str, raw: object) -> InputSpec:
    data = raw if isinstance(raw, dict) else {}
    kind = data.get("type", "string")
    enum = data.get("enum") or ()
    default = data.get("default")
    return InputSpec(
        name=name,
        type=kind if kind in ("string", "integer", "number", "boolean", "list") else "string",
        description=str(data.get("description") or ""),
        required=bool(data.get("required", False)),
        default=tuple(default) if isinstance(default, list) else default,
        enum=tuple(enum) if isinstance(enum, list) else (),
        pattern=str(data["pattern"]) if data.get("pattern") else None,
        secret=bool(data.get("secret", False)),
        expose="block" if data.get("expose") == "block" else "run",
    )


def _maps_alerts(fm: Mapping[str, Any]) -> bool:
    inputs = fm.get("inputs")
    return isinstance(inputs, dict) and any(
        isinstance(v, dict) and ("from" in v or "default_safe" in v) for v in inputs.values()
    )


_SEVERITIES = frozenset(s.value for s in Severity)


def _is_severity(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value in _SEVERITIES


def _concurrency(raw: object) -> Concurrency:
    """The limits as written, where they are usable (the schema reported the rest)."""
    if not isinstance(raw, dict):
        return Concurrency()

    def count(value: object) -> int | None:
        return (
            value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
        )

    target = raw.get("target")
    return Concurrency(
        runs=count(raw.get("runs")),
        target=target if isinstance(target, str) and target else None,
        per_target=count(raw.get("per_target")) or 1,
    )


def _build_metadata(fm: Mapping[str, Any], stem_id: str, fallback_name: str) -> Metadata:
    """Typed metadata from a front matter that may be invalid: take what is usable."""
    severity = fm.get("severity")
    time_limit: float | None = None
    if fm.get("time_limit") is not None:
        try:
            time_limit = fmt.parse_duration(fm["time_limit"])
        except ValueError:
            time_limit = None
    trig = fm.get("trigger")
    if isinstance(trig, dict):
        match = trig.get("match") if isinstance(trig.get("match"), dict) else {}
        trigger = Trigger(str(trig.get("when") or ""), MappingProxyType(dict(match or {})))
    else:
        trigger = Trigger(str(trig or ""))
    inputs = fm.get("inputs") if isinstance(fm.get("inputs"), dict) else {}
    raw_id = fm.get("id")
    return Metadata(
        id=str(raw_id) if isinstance(raw_id, str) and raw_id else stem_id,
        name=str(fm.get("name") or fallback_name),
        service=str(fm.get("service") or ""),
        owner=str(fm.get("owner") or ""),
        severity=Severity(severity) if _is_severity(severity) else None,
        objective=str(fm.get("objective") or ""),
        time_limit=time_limit,
        time_limit_text=str(fm.get("time_limit") or ""),
        roles=_as_str_map(fm.get("roles")),
        tools=_as_tuple(fm.get("tools")),
        trigger=trigger,
        inputs=tuple(_input_spec(str(k), v) for k, v in (inputs or {}).items()),
        tags=_as_tuple(fm.get("tags")),
        notify=_as_tuple(fm.get("notify")),
        kernels=_as_str_map(fm.get("kernels")),
        concurrency=_concurrency(fm.get("concurrency")),
        has_front_matter=True,
    )
