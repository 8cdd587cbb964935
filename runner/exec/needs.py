"""A step never runs without the outputs it reads.

An output is set by the step that declares it (`outputs=host`, or a decision's answer). When
that step did not set it (it was skipped by its condition or by a person, denied, handled, or
cut off and skipped after a lost worker), a later step that reads it would run with an empty
value: ``isolate "$HOST"`` isolating nothing, or the wrong thing. The engine asks here before
such a step and stops it, naming the output, the step that should have set it and why it did
not. What counts as a read is ``runner.format.reads``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from runner.format.model import Step
from runner.format.reads import Source, declared_outputs, reads

__all__ = ["Source", "declared_outputs", "unset_reads"]


def unset_reads(
    step: Step, declared: Mapping[str, Source], have: Iterable[str]
) -> list[tuple[str, Source]]:
    """The outputs of other steps that ``step``'s code reads and that nobody set yet."""
    present = set(have)
    own = {n for b in step.blocks for n in b.outputs}
    candidates = [n for n in declared if n not in own and n not in present]
    found: list[tuple[str, Source]] = []
    for block in step.executable_blocks:
        for name in reads(block, candidates):
            if all(name != seen for seen, _ in found):
                found.append((name, declared[name]))
    return found
