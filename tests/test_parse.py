"""The format's rules, one small inline runbook each: what the parser makes of the file."""

from __future__ import annotations

import textwrap

import pytest

from runner.format.model import Runbook
from runner.parse.markdown import parse_text

FRONT = """\
---
name: Sample
service: edr
roles:
  L1: analyst
  L2: responder
---
"""


def rb(body: str, front: str = FRONT, path: str = "runbooks/sample.md") -> Runbook:
    return parse_text(front + textwrap.dedent(body), path=path)


def codes(runbook: Runbook) -> list[str]:
    return [p.code for p in runbook.problems]


# --- front matter ----------------------------------------------------------------------------


def test_front_matter_keys_are_typed() -> None:
    front = """\
---
id: endpoint-x
name: Endpoint
service: edr
owner: soc
severity: critical
objective: Contain within 1 hour
time_limit: 1h30m
roles: {L1: analyst}
tools: [curl, jq]
trigger:
  when: XDR raises an alert
  match: {source: xdr, kind: malware}
inputs:
  host_id: {type: string, required: true, pattern: "^wks-[0-9]+$"}
  count: {type: integer, default: 3}
  hosts: {type: list, default: [a, b]}
tags: [edr]
notify: [soc-lead]
kernels: {powershell: pwsh}
---
"""
    r = rb("## Steps\n\n1. Look\n", front=front)
    meta = r.metadata
    assert r.problems == ()
    assert (meta.id, meta.name, meta.service, meta.owner) == (
        "endpoint-x",
        "Endpoint",
        "edr",
        "soc",
    )
    assert meta.severity is not None and meta.severity.value == "critical"
    assert meta.time_limit == 5400.0 and meta.time_limit_text == "1h30m"
    assert dict(meta.roles) == {"L1": "analyst"}
    assert meta.tools == ("curl", "jq")
    assert meta.trigger.when == "XDR raises an alert"
    assert dict(meta.trigger.match) == {"source": "xdr", "kind": "malware"}
    host = meta.input("host_id")
    assert host is not None and host.required and host.pattern == "^wks-[0-9]+$"
    count = meta.input("count")
    assert count is not None and count.type == "integer" and count.default == 3
    hosts = meta.input("hosts")
    assert hosts is not None and hosts.default == ("a", "b")
    assert meta.tags == ("edr",) and meta.notify == ("soc-lead",)
    assert dict(meta.kernels) == {"powershell": "pwsh"}
    assert r.front_matter_line == 1


def test_id_defaults_to_file_stem() -> None:
    assert rb("## Steps\n1. a\n", path="runbooks/Lost Laptop.md").metadata.id == "lost-laptop"


BAD_FRONT = [
    ("yaml-syntax", "name: [unclosed\nservice: x\n", "RB010", 3, "not valid YAML"),
    ("not-a-mapping", "- a\n- b\n", "RB011", 1, "must be a mapping"),
    ("missing-service", "name: X\n", "RB012", 1, "lacks required key 'service'"),
    ("unknown-key", "name: X\nservice: y\nsevrity: high\n", "RB013", 4, "did you mean 'severity'"),
    ("bad-severity", "name: X\nservice: y\nseverity: urgent\n", "RB014", 4, "'critical'"),
    ("bad-duration", "name: X\nservice: y\ntime_limit: soon\n", "RB014", 4, "duration"),
    (
        "input-key-typo",
        "name: X\nservice: y\ninputs:\n  a:\n    tpye: string\n",
        "RB013",
        6,
        "did you mean 'type'",
    ),
    (
        "input-bad-type",
        "name: X\nservice: y\ninputs:\n  a:\n    type: text\n",
        "RB014",
        6,
        "'string'",
    ),
    (
        "default-not-integer",
        "name: X\nservice: y\ninputs:\n  a:\n    type: integer\n    default: many\n",
        "RB014",
        5,
        "not a whole number",
    ),
    (
        "default-not-in-enum",
        "name: X\nservice: y\ninputs:\n  a:\n    enum: [x, y]\n    default: z\n",
        "RB014",
        5,
        "not one of: x, y",
    ),
    (
        "default-against-pattern",
        "name: X\nservice: y\ninputs:\n  a:\n    pattern: '^h-[0-9]+$'\n    default: q\n",
        "RB014",
        5,
        "does not match the pattern",
    ),
    (
        "bad-pattern",
        "name: X\nservice: y\ninputs:\n  a:\n    pattern: '(['\n",
        "RB014",
        5,
        "bad pattern",
    ),
    ("input-name", "name: X\nservice: y\ninputs:\n  host-id: {}\n", "RB014", 5, "identifier"),
    (
        "trigger-typo",
        "name: X\nservice: y\ntrigger:\n  whn: x\n",
        "RB013",
        5,
        "did you mean 'when'",
    ),
    ("trigger-number", "name: X\nservice: y\ntrigger: 5\n", "RB014", 4, "`when:`"),
    ("list-item", "name: X\nservice: y\ntools: [curl, 3]\n", "RB014", 4, "got `int` (item 2)"),
    ("bad-id", "name: X\nservice: y\nid: Lost Laptop\n", "RB014", 4, "slug"),
    ("input-not-mapping", "name: X\nservice: y\ninputs:\n  b: 7\n", "RB014", 5, "as a mapping"),
]


@pytest.mark.parametrize(("yaml_text", "code", "line", "words"),
                         [c[1:] for c in BAD_FRONT], ids=[c[0] for c in BAD_FRONT])  # fmt: skip
def test_bad_front_matter_is_reported_with_its_line(
    yaml_text: str, code: str, line: int, words: str
) -> None:
    r = parse_text(f"---\n{yaml_text}---\n## Steps\n1. a\n", path="x.md")
    found = [p for p in r.problems if p.code == code]
    assert len(found) == 1, r.problems
    assert found[0].line == line and words in found[0].message and found[0].level == "error"


def test_every_bad_key_is_reported_at_its_own_line() -> None:
    # Validation stops at the first problem only on the fast path; a failing front matter is
    # walked key by key so that one run of `check` shows the author everything to fix.
    yaml_text = (
        "name: 5\nservice: y\nsevrity: high\nroles: {L1: [x]}\n"
        "inputs:\n  a: {tpye: string, required: maybe}\n"
    )
    r = parse_text(f"---\n{yaml_text}---\n## Steps\n1. a\n", path="x.md")
    assert [(p.line, p.code, p.message) for p in r.problems] == [
        (2, "RB014", "bad value for 'name': expected `str`, got `int`"),
        (4, "RB013", "unknown key 'sevrity' (did you mean 'severity'?)"),
        (5, "RB014", "bad value for 'roles': expected `str`, got `array`"),
        (7, "RB013", "unknown key 'inputs.a.tpye' (did you mean 'type'?)"),
        (7, "RB014", "bad value for 'inputs.a.required': expected `bool`, got `str`"),
    ]


def test_union_keys_give_one_problem_each() -> None:
    r = parse_text("---\nname: X\nservice: y\nnotify: 5\ntrigger: [a]\n---\n", path="x.md")
    assert sorted(p.message.split(":")[0] for p in r.problems) == [
        "bad value for 'notify'",
        "bad value for 'trigger'",
    ]


def test_crlf_and_bom() -> None:
    text = "\ufeff" + (FRONT + "## Steps\n\n### 1. One\nRole: L1\n\n```bash\nls\n```\n")
    r = parse_text(text.replace("\n", "\r\n"), path="x.md")
    assert r.problems == ()
    assert r.metadata.name == "Sample"
    assert [(s.title, s.role, s.blocks[0].code) for s in r.steps] == [("One", "L1", "ls\n")]


def test_no_front_matter_takes_name_from_h1() -> None:
    r = parse_text("# Disk full on db01\n\nText.\n\n```bash\ndf -h\n```\n", path="notes.md")
    assert r.metadata.name == "Disk full on db01"
    assert not r.metadata.has_front_matter
    assert r.problems == ()


def test_foreign_front_matter_is_read_as_plain_markdown() -> None:
    r = parse_text("---\ntitle: Hugo page\nweight: 3\n---\n# H1\n```sh\nls\n```\n", path="h.md")
    assert r.problems == ()
    assert not r.metadata.has_front_matter
    assert r.metadata.name == "Hugo page"
    assert r.front_matter_line == 1


# --- steps -----------------------------------------------------------------------------------

STEP_TITLES = [
    ("dot", "### 1. Confirm the alert", "Confirm the alert"),
    ("paren", "### 2) Confirm the alert", "Confirm the alert"),
    ("step-word", "### Step 3: Confirm the alert", "Confirm the alert"),
    ("step-dash", "### Step 4 - Confirm the alert", "Confirm the alert"),
    ("plain", "### Confirm the alert", "Confirm the alert"),
    ("year-kept", "### 2024 review", "2024 review"),
    ("markup", "### 1. Confirm **the** `alert`", "Confirm the alert"),
]


@pytest.mark.parametrize(("heading", "title"), [c[1:] for c in STEP_TITLES],
                         ids=[c[0] for c in STEP_TITLES])  # fmt: skip
def test_h3_step_titles_do_not_double_the_number(heading: str, title: str) -> None:
    r = rb(f"## Steps\n\n{heading}\n\nDo it.\n")
    assert [(s.number, s.title) for s in r.steps] == [(1, title)]


def test_h3_steps_are_numbered_in_order_with_lines() -> None:
    r = rb("""\
        ## Steps

        ### 1. Confirm
        ```bash
        curl -s http://x
        ```

        ### 2. Isolate

        ```python
        print(1)
        ```
        ### 3. Call
        Phone the owner.
        """)
    assert [(s.number, s.id, s.line, s.manual) for s in r.steps] == [
        (1, "confirm", 10, False),
        (2, "isolate", 15, False),
        (3, "call", 20, True),
    ]
    assert r.steps[0].blocks[0].line == 11
    assert r.steps[1].blocks[0].kernel == "python3"
    assert r.steps[0].blocks[0].kernel == "runbook-shell"


def test_ordered_list_steps_with_nested_fences() -> None:
    r = rb("""\
        ## Steps

        1. Confirm the alert in the console.
           Role: L1

           ```bash {id=confirm}
           curl -s http://edr/alerts
           ```

        2. Isolate the host
           ```bash
           curl -X POST http://edr/isolate
           ```
        3. Tell the owner.

        - a bullet list is not a step
        """)
    assert [(s.number, s.title, s.role, len(s.blocks)) for s in r.steps] == [
        (1, "Confirm the alert in the console.", "L1", 1),
        (2, "Isolate the host", None, 1),
        (3, "Tell the owner.", None, 0),
    ]
    assert r.steps[0].id == "confirm"
    assert r.steps[1].blocks[0].code == "curl -X POST http://edr/isolate\n"


def test_fence_between_list_items_belongs_to_the_item_before() -> None:
    r = rb("""\
        ## Steps

        1. First

        ```bash
        echo first
        ```

        2. Second
        """)
    assert [len(s.blocks) for s in r.steps] == [1, 0]
    assert len(r.all_blocks()) == 1


ROLE_LINES = [
    ("plain", "Role: L2"),
    ("bold-label", "**Role:** L2"),
    ("bold-label-colon-outside", "**Role**: L2"),
    ("bold-value", "Role: **L2**"),
    ("italic", "_Role:_ L2"),
    ("lower", "role: L2"),
    ("code-value", "Role: `L2`"),
]


@pytest.mark.parametrize("line", [c[1] for c in ROLE_LINES], ids=[c[0] for c in ROLE_LINES])
def test_role_line_variants(line: str) -> None:
    r = rb(f"## Steps\n\n### Isolate\n{line}\n\nIsolate it.\n")
    assert r.steps[0].role == "L2"


def test_role_attribute_on_block() -> None:
    r = rb("## Steps\n\n### Isolate\n```bash {role=L2}\nls\n```\n")
    assert r.steps[0].role == "L2"


def test_role_line_wins_over_block_attribute() -> None:
    r = rb("## Steps\n\n### Isolate\nRole: L1\n```bash {role=L2}\nls\n```\n")
    assert r.steps[0].role == "L1"


def test_role_in_prose_is_not_a_role_line() -> None:
    r = rb("## Steps\n\n### Isolate\nAsk the responder about their role.\n")
    assert r.steps[0].role is None


# --- blocks ----------------------------------------------------------------------------------

LANGS = [
    ("python", "python", "python3"),
    ("py", "py", "python3"),
    ("bash", "bash", "runbook-shell"),
    ("sh", "sh", "runbook-shell"),
    ("shell", "shell", "runbook-shell"),
    ("upper-case", "BASH", "runbook-shell"),
    ("text", "text", None),
    ("console", "console", None),
    ("json", "json", None),
    ("yaml", "yaml", None),
    ("no-language", "", None),
    ("unknown-language", "brainfuck", None),
]


@pytest.mark.parametrize(("lang", "kernel"), [c[1:] for c in LANGS], ids=[c[0] for c in LANGS])
def test_language_picks_the_kernel(lang: str, kernel: str | None) -> None:
    r = rb(f"## Steps\n\n### One\n```{lang}\nx\n```\n")
    block = r.steps[0].blocks[0]
    assert block.kernel == kernel
    assert r.steps[0].manual is (kernel is None)


def test_kernels_mapping_runs_other_languages() -> None:
    front = FRONT.replace("roles:", "kernels:\n  powershell: pwsh\nroles:")
    r = rb("## Steps\n\n### One\n```powershell\nGet-Process\n```\n", front=front)
    assert r.steps[0].blocks[0].kernel == "pwsh"


def test_exec_false_makes_documentation() -> None:
    r = rb("## Steps\n\n### One\n```bash {exec=false}\nrm -rf /tmp/x\n```\n")
    assert r.steps[0].manual and r.steps[0].blocks[0].kernel is None


FENCES = [
    ("tilde", "~~~bash\nls\n~~~\n"),
    ("four-backticks", "````bash\n```\nnested\n```\n````\n"),
    ("long-tilde", "~~~~~bash\nls\n~~~~~\n"),
    ("indented-close", "```bash\nls\n  ```\n"),
]


@pytest.mark.parametrize("fence", [c[1] for c in FENCES], ids=[c[0] for c in FENCES])
def test_fence_kinds(fence: str) -> None:
    r = rb(f"## Steps\n\n### One\n{fence}")
    assert r.problems == ()
    assert r.steps[0].blocks[0].kernel == "runbook-shell"


def test_four_backtick_fence_keeps_inner_fence_as_code() -> None:
    r = rb("## Steps\n\n### One\n````bash\n```\nnested\n```\n````\n")
    assert r.steps[0].blocks[0].code == "```\nnested\n```\n"
    assert len(r.all_blocks()) == 1


def test_all_attributes() -> None:
    r = rb("""\
        ## Steps

        ### Isolate
        ```bash {id=isolate role=L2 approve=true timeout=5m retries=2 retry_delay=10s retry_backoff=2 on_failure=procedure:manual-isolation when="severity in ['high','critical']" outputs=ticket_id,host}
        curl x
        ```
        """)  # noqa: E501
    assert r.problems == ()
    b = r.steps[0].blocks[0]
    assert (b.id, b.role, b.approve, b.approver_role) == ("isolate", "L2", True, None)
    assert (b.timeout, b.retries, b.retry_delay, b.retry_backoff) == (300.0, 2, 10.0, 2.0)
    assert b.on_failure == "procedure:manual-isolation"
    assert b.when == "severity in ['high','critical']"
    assert b.outputs == ("ticket_id", "host")
    assert b.attributes["timeout"] == "5m"


def test_approve_with_a_role() -> None:
    r = rb("## Steps\n\n### Isolate\n```bash {approve=L2}\nls\n```\n")
    assert r.steps[0].approve and r.steps[0].approver_role == "L2"


def test_runme_json_attributes() -> None:
    r = rb('## Steps\n\n### Isolate\n```sh {"name":"isolate","interactive":false}\nls\n```\n')
    assert r.problems == ()
    assert r.steps[0].id == "isolate"
    assert r.steps[0].blocks[0].attributes["interactive"] == "false"


BAD_ATTRS = [
    (
        "typo",
        "{aprove=true}",
        "RB030",
        "unknown block attribute 'aprove' (did you mean 'approve'?)",
    ),
    ("unknown", "{colour=red}", "RB030", "unknown block attribute 'colour'"),
    ("unclosed-brace", "{id=x", "RB031", "not closed"),
    ("bad-quote", '{when="x == 1}', "RB031", "a quote is not closed"),
    ("bad-json", '{"name": }', "RB031", "not valid JSON"),
    ("duration", "{timeout=soon}", "RB031", "expected a duration"),
    ("duration-unit", "{timeout=5y}", "RB031", "expected a duration"),
    ("retries", "{retries=two}", "RB031", "whole number"),
    ("on-failure", "{on_failure=explode}", "RB031", "abort, continue or procedure:NAME"),
    ("outputs", "{outputs=a-b}", "RB031", "identifiers"),
    ("id-space", '{id="a b"}', "RB031", "one word"),
    ("when-syntax", '{when="severity in (1"}', "RB032", "found the end at column 15"),
    ("when-eval", "{when=__import__('os')}", "RB032", "unexpected '('"),
    ("backoff", "{retry_backoff=0.5}", "RB031", "at least 1"),
]


@pytest.mark.parametrize(("attrs", "code", "words"), [c[1:] for c in BAD_ATTRS],
                         ids=[c[0] for c in BAD_ATTRS])  # fmt: skip
def test_bad_attributes(attrs: str, code: str, words: str) -> None:
    r = rb(f"## Steps\n\n### One\n```bash {attrs}\nls\n```\n")
    found = [p for p in r.problems if p.code == code]
    assert len(found) == 1, r.problems
    assert words in found[0].message
    assert found[0].line == 11  # the fence's line, counting the front matter


def test_unclosed_fence() -> None:
    r = rb("## Steps\n\n### One\n```bash\nls\n")
    assert codes(r) == ["RB037"]
    assert r.problems[0].line == 11


def test_unclosed_fence_in_a_block_quote_is_found_and_closed_one_is_not() -> None:
    closed = rb("## Steps\n\n### One\n> ```bash\n> ls\n> ```\n")
    assert closed.problems == ()
    unclosed = rb("## Steps\n\n### One\n> ```bash\n> ls\n\nafter\n")
    assert codes(unclosed) == ["RB037"]


def test_each_problem_reported_once_in_compat_mode() -> None:
    r = parse_text("# T\n```bash {aprove=1}\nls\n```\n```json {x=1}\n{}\n```\n", path="t.md")
    assert codes(r) == ["RB030", "RB030"]


def test_explicit_id_later_is_not_taken_by_an_earlier_title() -> None:
    r = rb("## Steps\n\n### Isolate\nCall.\n\n### Other\n```bash {id=isolate}\nls\n```\n")
    assert [s.id for s in r.steps] == ["isolate-2", "isolate"]


def test_same_titles_get_distinct_ids() -> None:
    r = rb("## Steps\n\n### Check\nA.\n### Check\nB.\n")
    assert [s.id for s in r.steps] == ["check", "check-2"]


# --- sections: procedures, criteria, documentation -------------------------------------------


def test_procedures_with_h4_steps_and_list_steps() -> None:
    r = rb("""\
        ## Steps

        ### Isolate
        ```bash {on_failure=procedure:manual-isolation}
        curl x
        ```

        ## Alternative procedures

        ### Manual isolation

        #### Unplug
        Role: L1

        #### Confirm
        ```bash
        ping -c1 host
        ```

        ### Restore from image

        1. Pick the image
        2. Re-image
           ```python
           print("reimage")
           ```

        ### Call the vendor

        Phone them.
        """)
    assert [(p.id, p.title) for p in r.procedures] == [
        ("manual-isolation", "Manual isolation"),
        ("restore-from-image", "Restore from image"),
        ("call-the-vendor", "Call the vendor"),
    ]
    manual, image, vendor = r.procedures
    assert [(s.title, s.role, s.manual) for s in manual.steps] == [
        ("Unplug", "L1", True),
        ("Confirm", None, False),
    ]
    assert manual.steps[1].blocks[0].id == "manual-isolation/confirm"
    assert [s.title for s in image.steps] == ["Pick the image", "Re-image"]
    assert image.steps[1].blocks[0].kernel == "python3"
    assert [s.title for s in vendor.steps] == ["Call the vendor"]
    assert r.procedure("manual-isolation") is manual
    assert r.procedure("Manual isolation") is manual
    assert len(r.all_blocks()) == 3


def test_criteria_and_other_sections() -> None:
    r = rb("""\
        Intro paragraph.

        ## When to use

        When **XDR** fires.

        ## Steps

        ### One
        Do it.

        ## Success criteria

        - Host is **isolated**
        - Ticket [open](http://t)

        ## Failure criteria

        1. Host still talks to the C2

        ## Escalation

        ```text
        call +1 555
        ```
        """)
    assert r.success_criteria == ("Host is isolated", "Ticket open")
    assert r.failure_criteria == ("Host still talks to the C2",)
    titles = [s.title for s in r.sections]
    assert "When to use" in titles and "Escalation" in titles
    assert r.description == "Intro paragraph."
    assert [b.code for b in r.doc_blocks] == ["call +1 555\n"]


def test_sections_match_case_insensitively() -> None:
    r = rb("## STEPS\n\n### One\nx\n\n## success CRITERIA\n- done\n")
    assert r.has_steps_section and len(r.steps) == 1
    assert r.success_criteria == ("done",)


def test_compat_mode_every_runnable_fence_is_a_step_named_by_its_heading() -> None:
    r = parse_text(
        textwrap.dedent("""\
        # Disk full

        ## Check usage

        ```bash
        df -h
        ```

        Output looks like:

        ```text
        /dev/sda1 100%
        ```

        ## Clean up

        ```sh
        journalctl --vacuum-size=100M
        ```

        ```python
        print("done")
        ```
        """),
        path="disk.md",
    )
    assert not r.has_steps_section
    assert [(s.number, s.title, s.id) for s in r.steps] == [
        (1, "Check usage", "check-usage"),
        (2, "Clean up", "clean-up"),
        (3, "Clean up", "clean-up-2"),
    ]
    assert [b.lang for b in r.doc_blocks] == ["text"]
    assert len(r.all_blocks()) == 4


def test_headings_inside_lists_do_not_make_sections() -> None:
    r = rb("## Steps\n\n1. First\n   ## Not a section\n2. Second\n")
    assert [s.title for s in r.steps] == ["First", "Second"]


def test_parsing_never_runs_code() -> None:
    r = rb("## Steps\n\n### One\n```python\nraise SystemExit('ran')\n```\n")
    assert r.steps[0].blocks[0].code == "raise SystemExit('ran')\n"


def test_sha256_is_of_the_bytes() -> None:
    import hashlib

    text = FRONT + "## Steps\n1. a\n"
    assert rb("## Steps\n1. a\n").sha256 == hashlib.sha256(text.encode()).hexdigest()


def test_procedure_role_line_applies_to_its_steps() -> None:
    r = rb("""\
        ## Steps

        ### One
        Role: L1

        ## Alternative procedures

        ### By hand

        Role: L2

        1. Unplug it.
        2. Call the owner.
           Role: L1
        """)
    assert [s.role for s in r.procedures[0].steps] == ["L2", "L1"]


# A hang guard, not a speed figure (those are in benchmarks/): the parse is linear, so this
# near-1-MiB file takes about two seconds; a per-step rescan of the file took over a minute.
@pytest.mark.timeout(30)
def test_a_file_of_thousands_of_list_steps_parses_in_linear_time() -> None:
    items = "\n".join(
        f"{n}. Step {n}\n   Role: L1\n\n   ```bash\n   echo {n}\n   ```" for n in range(1, 15001)
    )
    runbook = rb(f"## Steps\n\n{items}\n")
    assert len(runbook.steps) == 15000
    last = runbook.steps[-1]
    assert (last.title, last.role, last.blocks[0].code) == ("Step 15000", "L1", "echo 15000\n")
    assert last.line == 8 + 1 + 6 * 14999 + 1


@pytest.mark.parametrize(
    ("heading", "title"),
    [
        ("### 2. Block the peer with `-i host_id=<peer>`", "Block the peer with -i host_id=<peer>"),
        ("### 3. **Isolate** the _host_", "Isolate the host"),
        ("### 4. See [the guide](https://example.org) for run_id", "See the guide for run_id"),
    ],
    ids=["underscore-in-code", "emphasis", "link"],
)
def test_titles_drop_markup_but_keep_words(heading: str, title: str) -> None:
    book = parse_text(f"# T\n\n## Steps\n\n{heading}\n\nDo it.\n", "t.md")
    assert book.steps[0].title == title


def test_nul_in_text_becomes_the_replacement_character() -> None:
    # CommonMark replaces NUL with U+FFFD; the parser does it itself (markdown-it's normalize
    # rule is off for speed), so a NUL never reaches a kernel from a string parsed in memory.
    r = parse_text("# T\n\n## Steps\n\n1. Run\n\n   ```bash\n   echo a\0b\n   ```\n", path="x.md")
    assert r.steps[0].blocks[0].code == "echo a\ufffdb\n"
