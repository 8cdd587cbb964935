"""Source severities on the runbook scale: low, medium, high, critical.

Each format's own scale is mapped in its normaliser (OCSF `severity_id`, Azure `Sev0`...); the
words below are those sources use in free text. A word none of them knows is `medium`: it
neither pages anyone at night nor drops out of a `severity: {in: [medium, high, critical]}`
route, and `raw` keeps what the source said (docs/triggers.md).
"""

from __future__ import annotations

from runner.format.model import Severity

_WORDS: dict[str, Severity] = {}
for _sev, _words in {
    Severity.CRITICAL: "critical crit fatal emergency emerg disaster p1 sev1 sev0 severe page",
    Severity.HIGH: "high error err major p2 sev2 urgent",
    Severity.MEDIUM: "medium warning warn moderate average p3 sev3",
    Severity.LOW: "low info informational information minor notice debug verbose p4 p5 sev4 "
    "none ok",
}.items():
    for _word in _words.split():
        _WORDS[_word] = _sev


def from_word(word: object, default: Severity = Severity.MEDIUM) -> Severity:
    """A severity from the words sources use (`Critical`, `warning`, `P2`, `sev-1`)."""
    if not isinstance(word, str):
        return default
    key = word.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    return _WORDS.get(key, default)


def from_score(score: float) -> Severity:
    """A 0-100 risk score, with Elastic's bands (21, 47, 73)."""
    if score >= 74:
        return Severity.CRITICAL
    if score >= 48:
        return Severity.HIGH
    if score >= 22:
        return Severity.MEDIUM
    return Severity.LOW


#: OCSF `severity_id`: 0 Unknown, 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical, 6 Fatal.
OCSF_IDS = {
    1: Severity.LOW, 2: Severity.LOW, 3: Severity.MEDIUM, 4: Severity.HIGH,
    5: Severity.CRITICAL, 6: Severity.CRITICAL,
}  # fmt: skip
#: Azure Monitor: Sev0 Critical, Sev1 Error, Sev2 Warning, Sev3 Informational, Sev4 Verbose.
AZURE = {
    "sev0": Severity.CRITICAL, "sev1": Severity.HIGH, "sev2": Severity.MEDIUM,
    "sev3": Severity.LOW, "sev4": Severity.LOW,
}  # fmt: skip
